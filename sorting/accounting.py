"""Grade accounting: mass balance per element over the feed, each bin and the residue.

Every object that leaves the sensing zone is booked once, with its fused
estimate, to its destination: a bin (picked) or ``residue`` (went off the
belt end). For each element ``e`` and destination ``d``:

- ``mass_e(d)`` = Σ element mass of the objects booked to ``d`` (± u, added in quadrature);
- grade ``g_e(d) = mass_e(d) / mass(d)`` (mass fraction of ``e`` in what ``d`` received);
- recovery ``r_e(d) = mass_e(d) / mass_e(feed)``;
- closure error ``(mass_e(feed) - Σ_d mass_e(d)) / mass_e(feed)`` — zero when every
  booked object reached exactly one destination; non-zero flags objects lost
  from the books (e.g. booked to the feed but never to a destination).

A bin's **purity** is the share of its mass that belongs there: each object booked to a bin
counts with its mass times the posterior probability (its ``class_mix``) that its class is
one the bin takes (``bins``: bin name -> class names, the sort policy's). It is the line's
own expectation, from its class beliefs; a bin the ledger was not told about has none.
An object the sort policy had sent to a bin that left in the residue is **missed**.

The books run over the whole run and, where the ledger knows its shifts (``Shifts``:
``hours`` long, the first starting ``start_hour`` hours after midnight UTC of the line's
clock), also per shift: an object booked at ``t_ns`` goes to the shift that holds that
time as well, so the shifts' books add up to the running ones.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sorting.errors import SortingError
from sorting.tracking.fusion import ObjectEstimate

FEED = "feed"
RESIDUE = "residue"
#: the columns of :meth:`GradeLedger.rows` (and of ledger.csv)
ROW_FIELDS = ["destination", "element", "kg", "u_kg", "grade", "recovery"]


@dataclass
class _Account:
    objects: int = 0
    mass_kg: float = 0.0
    mass_var: float = 0.0
    element_kg: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    element_var: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: expected mass of the objects that belong here (bins the ledger knows the classes of)
    belong_kg: float = 0.0
    #: objects (and their kg) the sort policy had sent to a bin that ended up here (residue)
    missed: int = 0
    missed_kg: float = 0.0

    def book(self, est: ObjectEstimate, classes: frozenset[str] | None = None,
             missed: bool = False) -> None:
        self.objects += 1
        self.mass_kg += est.mass_kg
        self.mass_var += est.mass_u_kg**2
        if classes is not None:
            mix = est.class_mix or ((est.class_name, 1.0),)
            self.belong_kg += est.mass_kg * sum(p for c, p in mix if c in classes)
        if missed:
            self.missed += 1
            self.missed_kg += est.mass_kg
        for e, m, u in zip(est.elements, est.element_mass_kg, est.element_mass_u_kg,
                           strict=True):
            self.element_kg[e] += m
            self.element_var[e] += u * u


@dataclass(frozen=True)
class Shifts:
    """Shifts of ``hours`` each, the first of a day starting ``start_hour`` hours after
    midnight UTC (of the line's clock: the simulator's starts at 0)."""

    hours: float = 8.0
    start_hour: float = 6.0

    def __post_init__(self) -> None:
        if not 0 < self.hours <= 24:
            raise ValueError(f"shift hours: {self.hours} (must be in (0, 24])")
        if not 0 <= self.start_hour < 24:
            raise ValueError(f"shift start_hour: {self.start_hour} (must be in [0, 24))")

    def start_of(self, t_ns: int) -> int:
        """Start (ns since the epoch) of the shift holding ``t_ns``."""
        length = round(self.hours * 3600e9)
        offset = round(self.start_hour * 3600e9)
        return (t_ns - offset) // length * length + offset


def shift_label(start_ns: int) -> str:
    """A shift's start as ISO 8601 UTC, to the minute."""
    return datetime.fromtimestamp(start_ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


class GradeLedger:
    """Running mass balance; ``book(estimate, destination[, t_ns])`` once per object. With
    ``shifts`` and a booking time, the object is also booked to its shift's ledger
    (:attr:`by_shift`, keyed by the shift's start in ns). With ``bins`` (bin name -> the
    classes it takes) the bins' purity is kept too."""

    def __init__(self, shifts: Shifts | None = None,
                 bins: Mapping[str, Iterable[str]] | None = None) -> None:
        self.accounts: dict[str, _Account] = defaultdict(_Account)
        self.shifts = shifts
        self.bins = {b: frozenset(cs) for b, cs in (bins or {}).items()}
        self.by_shift: dict[int, GradeLedger] = {}

    def book(self, est: ObjectEstimate, destination: str, t_ns: int | None = None,
             wanted_bin: str = "") -> None:
        """Book ``est`` to ``destination`` (a bin, or ``residue`` when empty) at ``t_ns``;
        ``wanted_bin``: the bin the sort policy had sent it to ('' if none)."""
        dest = destination or RESIDUE
        self.accounts[FEED].book(est)
        self.accounts[dest].book(est, self.bins.get(dest),
                                 missed=dest == RESIDUE and bool(wanted_bin))
        if self.shifts is not None and t_ns is not None:
            start = self.shifts.start_of(t_ns)
            self.by_shift.setdefault(start, GradeLedger(bins=self.bins)).book(
                est, destination, wanted_bin=wanted_bin)

    def purity(self, destination: str) -> float | None:
        """Expected share of a bin's mass that belongs there; None for a bin the ledger does
        not know the classes of, for the feed and the residue, and for an empty bin."""
        acc = self.accounts.get(destination)
        if destination not in self.bins or acc is None or acc.mass_kg <= 0:
            return None
        return acc.belong_kg / acc.mass_kg

    def picked_purity(self) -> float | None:
        """Expected purity of everything picked into the known bins together (mass-weighted);
        None before the first pick."""
        accs = [self.accounts[b] for b in self.bins if b in self.accounts]
        mass = sum(a.mass_kg for a in accs)
        return sum(a.belong_kg for a in accs) / mass if mass > 0 else None

    @property
    def destinations(self) -> list[str]:
        names = sorted(d for d in self.accounts if d not in (FEED, RESIDUE))
        return [*names, RESIDUE] if RESIDUE in self.accounts else names

    def elements(self) -> list[str]:
        return sorted(self.accounts[FEED].element_kg) if FEED in self.accounts else []

    def element_kg(self, destination: str, element: str) -> tuple[float, float]:
        acc = self.accounts.get(destination)
        if acc is None:
            return 0.0, 0.0
        return acc.element_kg.get(element, 0.0), math.sqrt(acc.element_var.get(element, 0.0))

    def grade(self, destination: str, element: str) -> float:
        acc = self.accounts.get(destination)
        if acc is None or acc.mass_kg <= 0:
            return 0.0
        return acc.element_kg.get(element, 0.0) / acc.mass_kg

    def recovery(self, destination: str, element: str) -> float:
        feed = self.accounts[FEED].element_kg.get(element, 0.0) if FEED in self.accounts else 0
        if feed <= 0:
            return 0.0
        return self.element_kg(destination, element)[0] / feed

    def closure_error(self, element: str) -> float:
        feed = self.element_kg(FEED, element)[0]
        if feed <= 0:
            return 0.0
        out = sum(self.element_kg(d, element)[0] for d in self.destinations)
        return (feed - out) / feed

    def rows(self) -> list[dict[str, object]]:
        """One row per (destination, element): kg, u, grade, recovery."""
        out: list[dict[str, object]] = []
        for dest in [FEED, *self.destinations]:
            for e in self.elements():
                kg, u = self.element_kg(dest, e)
                out.append({
                    "destination": dest, "element": e, "kg": kg, "u_kg": u,
                    "grade": self.grade(dest, e),
                    "recovery": self.recovery(dest, e) if dest != FEED else 1.0,
                })
        return out

    def summary(self) -> dict[str, object]:
        """Destinations (objects, kg ± u), the rows of :meth:`rows` and the closure errors."""
        dests: dict[str, dict[str, object]] = {}
        for d, a in self.accounts.items():
            row: dict[str, object] = {"objects": a.objects, "mass_kg": a.mass_kg,
                                      "mass_u_kg": math.sqrt(a.mass_var)}
            if d in self.bins:
                row["purity"] = self.purity(d)
            if d == RESIDUE:
                row |= {"missed_objects": a.missed, "missed_kg": a.missed_kg}
            dests[d] = row
        return {
            "destinations": dests,
            "elements": self.rows(),
            "closure_error": {e: self.closure_error(e) for e in self.elements()},
        }

    @classmethod
    def from_summary(cls, data: dict[str, object], where: str = "ledger") -> GradeLedger:
        """The books of :meth:`summary` (as written to JSON) back; :class:`SortingError`
        naming ``where`` and the field when one is missing or of the wrong kind."""
        led = cls()
        try:
            dests = data["destinations"]
            rows = data["elements"]
            if not isinstance(dests, dict) or not isinstance(rows, list):
                raise TypeError("destinations must be an object, elements a list")
            for d, a in dests.items():
                acc = led.accounts[str(d)]
                acc.objects = int(a["objects"])
                acc.mass_kg = float(a["mass_kg"])
                acc.mass_var = float(a["mass_u_kg"]) ** 2
                if a.get("purity") is not None:
                    led.bins.setdefault(str(d), frozenset())
                    acc.belong_kg = float(a["purity"]) * acc.mass_kg
                acc.missed = int(a.get("missed_objects", 0))
                acc.missed_kg = float(a.get("missed_kg", 0.0))
            for r in rows:
                acc = led.accounts[str(r["destination"])]
                acc.element_kg[str(r["element"])] = float(r["kg"])
                acc.element_var[str(r["element"])] = float(r["u_kg"]) ** 2
        except (KeyError, TypeError, ValueError) as err:
            raise SortingError(f"{where}: not a ledger summary (needs destinations with "
                               f"objects/mass_kg/mass_u_kg and element rows with "
                               f"destination/element/kg/u_kg): {err!r}") from err
        return led

    def to_json(self, path: Path) -> None:
        """The running books and, per shift (oldest first), the shift's own."""
        data = self.summary()
        if self.shifts is not None:
            data["shift_hours"] = self.shifts.hours
            data["shifts"] = [{"start": shift_label(t), "start_ns": t} | led.summary()
                              for t, led in sorted(self.by_shift.items())]
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> GradeLedger:
        """A ledger written by :meth:`to_json`, with its shifts' books (``by_shift``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SortingError(f"{path}: cannot read the ledger: {err}") from err
        if not isinstance(data, dict):
            raise SortingError(f"{path}: not a ledger (a JSON object is expected)")
        led = cls.from_summary(data, str(path))
        shifts = data.get("shifts", [])
        if not isinstance(shifts, list):
            raise SortingError(f"{path}: shifts: a list is expected")
        for k, sh in enumerate(shifts):
            where = f"{path}: shifts[{k}]"
            if not isinstance(sh, dict) or not isinstance(sh.get("start_ns"), int):
                raise SortingError(f"{where}: start_ns (an integer) is missing")
            led.by_shift[sh["start_ns"]] = cls.from_summary(sh, where)
        return led

    def to_shifts_csv(self, path: Path) -> None:
        """The rows of :meth:`rows` of every shift, the shift's start in the first column."""
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["shift_start", *ROW_FIELDS])
            writer.writeheader()
            for t, led in sorted(self.by_shift.items()):
                writer.writerows({"shift_start": shift_label(t)} | r for r in led.rows())

    def to_csv(self, path: Path) -> None:
        rows = self.rows()
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=ROW_FIELDS)
            writer.writeheader()
            writer.writerows(rows)


def grade_recovery_curve(
    estimates: list[ObjectEstimate], element: str, thresholds_eur: list[float]
) -> list[tuple[float, float, float]]:
    """What-if curve for the sort threshold: ``(threshold, grade, recovery)`` of ``element``
    if every object worth at least the threshold were picked (one product stream).

    Grade = element mass / product mass; recovery = element mass in the product / element
    mass fed. Built from the line's own estimates, so it shows the trade-off the operator
    would choose from, not the truth.
    """
    fed = sum(est.element(element)[0] for est in estimates)
    out = []
    for t in sorted(thresholds_eur):
        chosen = [est for est in estimates if est.value_eur >= t]
        mass = sum(est.mass_kg for est in chosen)
        el = sum(est.element(element)[0] for est in chosen)
        out.append((t, el / mass if mass > 0 else 0.0, el / fed if fed > 0 else 0.0))
    return out


def plot_grades(ledger: GradeLedger, estimates: list[ObjectEstimate], elements: list[str],
                path: Path) -> None:
    """PNG: recovery per bin for ``elements`` (bars) and the grade-recovery curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = [d for d in ledger.destinations if d != RESIDUE]
    width = 0.8 / max(len(bins), 1)
    for k, dest in enumerate(bins):
        ax1.bar([i + k * width for i in range(len(elements))],
                [100 * ledger.recovery(dest, e) for e in elements], width, label=dest)
    ax1.set_xticks([i + width * (len(bins) - 1) / 2 for i in range(len(elements))], elements)
    ax1.set_ylabel("recovery into bin, %")
    ax1.set_title("Recovery per bin (line's estimates)")
    if bins:
        ax1.legend(fontsize=8)
    values = sorted({round(est.value_eur, 4) for est in estimates})
    thresholds = [0.0, *values]
    for e in elements:
        curve = [c for c in grade_recovery_curve(estimates, e, thresholds) if c[1] > 0]
        ax2.plot([100 * r for _, _, r in curve], [100 * g for _, g, _ in curve], ".-", label=e)
    ax2.set_xlabel("recovery, %")
    ax2.set_ylabel("grade, %")
    ax2.set_yscale("log")
    ax2.set_title("Grade-recovery over the value threshold")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
