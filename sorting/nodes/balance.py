"""``crmsort_msgs/MassBalance``: the grade ledger's books as a message, and back.

The tracker publishes the running books and the shift in progress
(:func:`balance_msg`); the line monitor, the HMI and ``crmsort status`` read them
(:func:`balance_summary`), never the tracker's objects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perception.catalog import is_critical
from sorting.accounting import FEED, RESIDUE, GradeLedger
from sorting.msgs import new
from sorting.msgs.convert import header, stamp, stamp_ns

SCOPE_RUN = 0
SCOPE_SHIFT = 1


def balance_msg(ledger: GradeLedger, scope: int, start_ns: int, now_ns: int) -> Any:
    """``ledger``'s books (feed, its bins, residue) as a ``MassBalance`` stamped ``now_ns``."""
    dests = [FEED, *ledger.destinations]
    accs = [ledger.accounts.get(d) for d in dests]
    purity = [ledger.purity(d) for d in dests]
    residue = ledger.accounts.get(RESIDUE)
    rows = []
    for e in ledger.elements():
        kg_u = [ledger.element_kg(d, e) for d in dests]
        rows.append(new(
            "crmsort_msgs/msg/ElementBalance", element=e, critical=is_critical(e),
            kg=np.array([k for k, _ in kg_u], dtype=np.float64),
            u_kg=np.array([u for _, u in kg_u], dtype=np.float64),
            grade=np.array([ledger.grade(d, e) for d in dests], dtype=np.float32),
            recovery=np.array([1.0 if d == FEED else ledger.recovery(d, e) for d in dests],
                              dtype=np.float32),
            closure=ledger.closure_error(e),
        ))
    return new(
        "crmsort_msgs/msg/MassBalance", header=header(now_ns, "belt"), scope=scope,
        period_start=stamp(start_ns), destinations=dests,
        objects=np.array([a.objects if a else 0 for a in accs], dtype=np.uint32),
        mass_kg=np.array([a.mass_kg if a else 0.0 for a in accs], dtype=np.float64),
        mass_u_kg=np.array([math.sqrt(a.mass_var) if a else 0.0 for a in accs],
                           dtype=np.float64),
        purity=np.array([math.nan if p is None else p for p in purity], dtype=np.float32),
        missed_objects=residue.missed if residue else 0,
        missed_kg=residue.missed_kg if residue else 0.0,
        elements=rows,
    )


def balance_summary(msg: Any) -> dict[str, Any]:
    """A ``MassBalance`` as plain data: ``t_ns``, ``scope``, ``start_ns``, ``destinations``
    (name -> objects, mass_kg, mass_u_kg, purity or None), ``missed_objects``,
    ``missed_kg`` and ``elements`` (symbol -> critical, closure, and per destination kg,
    u_kg, grade, recovery)."""
    dests = [str(d) for d in msg.destinations]
    out_dests = {}
    for k, d in enumerate(dests):
        p = float(msg.purity[k]) if k < len(msg.purity) else math.nan
        out_dests[d] = {"objects": int(msg.objects[k]), "mass_kg": float(msg.mass_kg[k]),
                        "mass_u_kg": float(msg.mass_u_kg[k]),
                        "purity": None if math.isnan(p) else p}
    elements = {}
    for row in msg.elements:
        elements[str(row.element)] = {
            "critical": bool(row.critical), "closure": float(row.closure),
            "by_destination": {d: {"kg": float(row.kg[k]), "u_kg": float(row.u_kg[k]),
                                   "grade": float(row.grade[k]),
                                   "recovery": float(row.recovery[k])}
                               for k, d in enumerate(dests)},
        }
    return {"t_ns": stamp_ns(msg.header.stamp), "scope": int(msg.scope),
            "start_ns": stamp_ns(msg.period_start), "destinations": out_dests,
            "missed_objects": int(msg.missed_objects), "missed_kg": float(msg.missed_kg),
            "elements": elements}


def balance_kpis(msg: Any) -> dict[str, float]:
    """The operator's figures of a ``MassBalance``: ``objects_seen`` and ``kg_fed`` (the
    feed), ``objects_picked`` (every bin), ``objects_missed`` and ``purity`` (the bins'
    expected purity, mass-weighted over the bins that have one; NaN before the first
    pick)."""
    dests = [str(d) for d in msg.destinations]
    fed = dests.index(FEED) if FEED in dests else None
    bins = [k for k, d in enumerate(dests) if d not in (FEED, RESIDUE)]
    rated = [k for k in bins if not math.isnan(msg.purity[k])]
    bin_kg = sum(float(msg.mass_kg[k]) for k in rated)
    belong = sum(float(msg.mass_kg[k] * msg.purity[k]) for k in rated)
    return {"objects_seen": int(msg.objects[fed]) if fed is not None else 0,
            "kg_fed": float(msg.mass_kg[fed]) if fed is not None else 0.0,
            "objects_picked": sum(int(msg.objects[k]) for k in bins),
            "objects_missed": int(msg.missed_objects),
            "purity": belong / bin_kg if bin_kg > 0 else math.nan}
