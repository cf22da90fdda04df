"""The stage sections of the ``crmsort demo`` summary: perception, per-object CRM content, grades.

Each section prints only when its stage ran; all figures come from the line's
own nodes (their estimates), never from the simulator's truth.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from perception.catalog import crm_flags
from sorting.accounting import FEED, RESIDUE, GradeLedger
from sorting.line import RunResult


def _grams(kg: float) -> str:
    g = kg * 1000
    return f"{g:,.0f}" if g >= 100 else f"{g:.2f}" if g >= 0.01 else f"{g:.1e}"


def print_perception(con: Console, r: RunResult) -> None:
    b = r.built
    if b is None or b.tracker is None:
        return
    finished = b.tracker.finished
    t = Table(title="Perception: objects the line characterised (its own estimates)",
              title_justify="left")
    for col in ("stage", "what it reported"):
        t.add_column(col)
    if b.detector is not None:
        per_class = Counter(dict(b.detector.detections_per_class))
        top = ", ".join(f"{k} {v}" for k, v in per_class.most_common(8))
        t.add_row("detector", f"{sum(per_class.values())} detections in "
                              f"{b.detector.frames} frames ({b.detector.rejected_frames} "
                              f"rejected): {top}")
    if b.volume is not None:
        t.add_row("3D volume", f"{sum(1 for tr, _ in finished if tr.volumes)} objects with a "
                               f"measured volume of {len(finished)} tracked")
    mats = Counter(est.material for _tr, est in finished if est.material != "unknown")
    if mats:
        t.add_row("hyperspectral", ", ".join(f"{k} {v}" for k, v in mats.most_common(8)))
    if b.xrf is not None and b.xrf_quant is not None:
        seen = Counter(e for res in b.xrf_quant.results for e in res.elements)
        common = ", ".join(f"{e} {n}" for e, n in seen.most_common(10))
        t.add_row("XRF", f"{b.xrf.acquisitions} spectra over the DP5 link "
                         f"({b.xrf.failures} failed; {b.xrf.trigger.passed_over} times a "
                         f"rival with more at stake taken first; "
                         f"{b.xrf.trigger.missed_busy} let pass while it was busy"
                         + (f"; {b.xrf.busy_refused} triggers refused while the device still "
                            "counted" if b.xrf.busy_refused else "")
                         + f"); elements detected: {common}")
    if b.xrt is not None:
        st = b.tracker.tracker.stats
        weighed = sum(1 for tr, est in finished if tr.xrt or tr.piles)
        t.add_row("X-ray transmission", f"{b.xrt.objects_out} objects in {b.xrt.lines_in} "
                  f"lines ({b.xrt.rejected} rejected); {weighed} of {len(finished)} tracked "
                  f"objects seen through ({st.shared_xrt} views shared out among touching "
                  f"objects, {st.pile_xrt} weighing piles as a whole, {st.merged_xrt} "
                  f"left out; hidden under others: {st.hidden_births} found, "
                  f"{st.pile_hidden_births} of them in piles)")
    t.add_row("tracker", f"{len(finished)} objects left the sensing zone "
                         f"({b.tracker.tracker.stats.birth_summary()})")
    con.print(t)


def print_objects(con: Console, r: RunResult, limit: int = 12) -> None:
    b = r.built
    if b is None or b.tracker is None or not b.tracker.finished:
        return
    t = Table(title=f"Per-object CRM content (first {limit} objects off the belt; ± = 1 u)",
              title_justify="left")
    for col, just in (("id", "right"), ("class", "left"), ("material", "left"),
                      ("mass g", "right"), ("top CRM content, g", "left"), ("value €", "right"),
                      ("source", "left"), ("sensors", "left"), ("to", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for tr, est in b.tracker.finished[:limit]:
        crm = [(e, m, u) for e, m, u in zip(est.elements, est.element_mass_kg,
                                             est.element_mass_u_kg, strict=True)
               if "critical" in crm_flags(e) and m > 0]
        crm.sort(key=lambda x: -x[1] * r.line.sorting.prices_eur_per_kg.get(x[0], 1.0))
        text = ", ".join(f"{e} {_grams(m)}±{_grams(u)}" for e, m, u in crm[:3])
        t.add_row(str(tr.track_id), est.class_name, est.material,
                  f"{est.mass_kg * 1000:,.0f}±{est.mass_u_kg * 1000:,.0f}", text,
                  f"{est.value_eur:.2f}", est.composition_source, "+".join(est.sensors),
                  tr.bin or RESIDUE)
    con.print(t)


def print_grades(con: Console, r: RunResult) -> None:
    b = r.built
    if b is None or b.tracker is None:
        return
    led = b.tracker.ledger
    if FEED not in led.accounts:
        return
    con.print(destinations_table(led, "Destinations (the line's estimates)"))
    con.print(balance_table(
        led, "CRM mass balance (grams, the line's estimates): fed, picked, lost"))


def destinations_table(led: GradeLedger, title: str) -> Table:
    """Objects and kg ± u per destination; each bin's expected purity; the residue's objects
    that the sort policy had sent to a bin (missed)."""
    t = Table(title=title, title_justify="left")
    for col in ("destination", "objects", "kg", "u kg", "purity", "missed"):
        t.add_column(col, justify="right")
    for d in [FEED, *led.destinations]:
        a = led.accounts[d]
        p = led.purity(d)
        t.add_row(d, str(a.objects), f"{a.mass_kg:.3f}", f"{a.mass_var ** 0.5:.3f}",
                  "" if p is None else f"{p:.1%}",
                  f"{a.missed} ({a.missed_kg:.2f} kg)" if d == RESIDUE else "")
    return t


def balance_table(led: GradeLedger, title: str) -> Table:
    """Per CRM element fed: grams fed, picked and lost, grade and recovery per bin, closure."""
    bins = [d for d in led.destinations if d != RESIDUE]
    t = Table(title=title, title_justify="left")
    t.add_column("element")
    t.add_column("flags")
    for col in ("fed", "picked", "lost", *(f"{b_} grade" for b_ in bins),
                *(f"{b_} recovery" for b_ in bins), "closure"):
        t.add_column(col, justify="right")
    for e in led.elements():
        flags = crm_flags(e)
        if "critical" not in flags:
            continue
        fed = led.element_kg(FEED, e)[0]
        if fed <= 0:
            continue
        picked = sum(led.element_kg(d, e)[0] for d in bins)
        lost = led.element_kg(RESIDUE, e)[0]
        t.add_row(e, "/".join(sorted(f[0].upper() for f in flags)), _grams(fed), _grams(picked),
                  _grams(lost), *(f"{led.grade(d, e):.2%}" for d in bins),
                  *(f"{led.recovery(d, e):.1%}" for d in bins), f"{led.closure_error(e):.1e}")
    return t


def print_picking(con: Console, r: RunResult) -> None:
    b = r.built
    if b is None or not b.arms or b.tracker is None:
        return
    minutes = r.sim_duration_s / 60.0
    t = Table(title="Picking (simulated delta arms)", title_justify="left")
    for col in ("arm", "picked", "picks/min", "missed/dropped", "refused", "mean cycle s"):
        t.add_column(col, justify="left" if col == "arm" else "right")
    for arm in b.arms:
        c = arm.counts
        cyc = sum(arm.cycle_times) / len(arm.cycle_times) if arm.cycle_times else 0.0
        t.add_row(arm.arm, str(c["picked"]), f"{c['picked'] / minutes:.1f}",
                  str(c["missed"] + c["dropped"]), str(c["unreachable"] + c["aborted"]),
                  f"{cyc:.2f}")
    con.print(t)
    finished = b.tracker.finished
    picked_value = sum(est.value_eur for tr, est in finished if tr.bin)
    target = [(tr, est) for tr, est in finished if b.tracker.target_bin(est)]
    wanted_value = sum(est.value_eur for _tr, est in target)
    missed = [(tr, est) for tr, est in target if not tr.bin]
    total = sum(est.value_eur for _tr, est in finished)
    share = picked_value / wanted_value if wanted_value > 0 else 0.0
    con.print(f"value captured (line's estimates): {picked_value:.2f} € of {wanted_value:.2f} € "
              f"targeted ({share:.0%}), {total:.2f} € fed; "
              f"{len(missed)} targeted objects let pass"
              + (": " + ", ".join(f"{est.class_name} ({est.value_eur:.2f} €)"
                                  for _tr, est in missed[:6]) if missed else ""))
    if b.scheduler is not None:
        con.print(f"scheduler: {dict(b.scheduler.counts)}")


def print_stages(con: Console, r: RunResult) -> None:
    """All stage sections, in data-path order."""
    print_perception(con, r)
    print_objects(con, r)
    print_picking(con, r)
    print_grades(con, r)


