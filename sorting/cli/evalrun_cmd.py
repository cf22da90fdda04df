"""``crmsort eval-run RUN`` — a simulated run's tracking, per-object CRM grams, stream grades
and mass balance against the simulator's truth (see :mod:`sorting.evaluation.run_eval`)."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.evaluation.run_eval import evaluate_run
from sorting.evaluation.tracking_eval import median_abs

SHAPES = {0: "box", 1: "cylinder", 2: "lump"}


def register(sub: Any) -> None:
    p = sub.add_parser("eval-run", help="score a simulated run (crmsort demo --out RUN) "
                       "against the simulator's truth")
    p.add_argument("run", help="run folder with bag/ and ledger.json")
    p.add_argument("--line", default=None,
                   help="line YAML of the run (default: RUN/line.yaml, else line1)")
    p.add_argument("--namespace", default=None,
                   help="the line's topic namespace (default: /<the line's name>)")
    p.add_argument("--min-grams", type=float, default=1.0,
                   help="grade rows for CRM elements with at least this much fed (default 1)")
    p.add_argument("--lost", action="store_true",
                   help="list every object that did not keep one identity: never tracked, "
                   "split over tracks or sharing one, how much of it lay hidden under "
                   "others as it passed the camera (also into eval_run.json)")
    p.add_argument("--masses", type=int, nargs="?", const=10, default=None, metavar="N",
                   help="booked vs true mass per true class, and the N tracks (default 10) "
                   "whose booked mass is furthest from their object's, with the error in "
                   "the line's own u (also into eval_run.json)")
    p.set_defaults(func=run)


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:+.1f} %"


def _print_lost(rep: Any, run_dir: Path, line: Any) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from sorting.config import load_line
    from sorting.evaluation.lost import lost_objects
    from sorting.evaluation.run_eval import sensing_start_x

    bag = run_dir / "bag"
    view_x = sensing_start_x(line or load_line()) + LOST_VIEW_OFFSET_M
    rows = lost_objects(rep, bag, view_x)
    table = Table(title=f"Objects that did not keep one identity ({len(rows)})")
    for col in ("id", "class", "kg", "cause", "t s", "y m", "hidden", "tracks (reports)",
                "shares a track with", "lying on it"):
        table.add_column(col, justify="left")
    for r in rows:
        table.add_row(str(r.id), r.class_name, f"{r.mass_kg:.3f}", r.cause, f"{r.t_s:.1f}",
                      f"{r.y_m:+.2f}", f"{100 * r.hidden_share:.0f} %",
                      " ".join(f"{k}({n})" for k, n in r.tracks.items()) or "–",
                      " ".join(f"{k}:{c}" for k, c in r.shares_with.items()) or "–",
                      " ".join(f"{k}:{c}" for k, c in r.under.items()) or "–")
    console().print(table)
    counts = Counter(r.cause for r in rows)
    console().print("by cause: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    return [asdict(r) for r in rows]


def _print_masses(rep: Any, n: int) -> dict[str, Any]:
    from dataclasses import asdict

    from sorting.evaluation.masses import largest_mass_errors, mass_by_class

    classes = mass_by_class(rep)
    table = Table(title="Mass per true class (tracks' last reports vs their objects)")
    for col in ("class", "tracks", "kg true", "kg booked", "error", "z (line's u)",
                "booked as another class"):
        table.add_column(col, justify="right")
    for c in classes:
        table.add_row(c.class_name, str(c.tracks), f"{c.true_kg:.2f}", f"{c.booked_kg:.2f}",
                      _pct(c.rel_error), f"{c.z:+.1f}", str(c.other_class))
    console().print(table)
    worst = largest_mass_errors(rep, n)
    table = Table(title=f"The {len(worst)} tracks furthest from their object's mass")
    for col in ("track", "object", "class (true → booked)", "y m", "kg true", "kg booked",
                "error kg", "z"):
        table.add_column(col, justify="right")
    for e in worst:
        cls = (e.true_class if e.booked_class == e.true_class
               else f"{e.true_class} → {e.booked_class}")
        table.add_row(str(e.track_id), str(e.object_id), cls, f"{e.y_m:+.2f}",
                      f"{e.true_kg:.3f}", f"{e.booked_kg:.3f} ± {e.booked_u_kg:.3f}",
                      f"{e.error_kg:+.3f}", f"{e.z:+.1f}")
    console().print(table)
    return {"by_class": [asdict(c) | {"rel_error": c.rel_error, "z": c.z} for c in classes],
            "largest_errors": [asdict(e) | {"error_kg": e.error_kg, "z": e.z} for e in worst]}


#: where along the camera's view an object's hidden share is taken (past its upstream edge)
LOST_VIEW_OFFSET_M = 0.15


def _frac(p: float | None) -> str:
    return "–" if p is None else f"{100 * p:.1f} %"


def run(args: argparse.Namespace) -> int:
    con = console()
    from sorting.config import load_line

    saved = Path(args.run) / "line.yaml"
    line = (load_line(Path(args.line)) if args.line
            else load_line(saved) if saved.is_file() else None)
    namespace = args.namespace or f"/{line.name if line is not None else 'line1'}"
    rep = evaluate_run(Path(args.run), line=line, namespace=namespace)
    t = rep.tracking
    volume_err = {SHAPES.get(k, str(k)): median_abs(v)
                  for k, v in sorted(t.by_shape_volume.items())}
    lost_n, lost_kg = rep.untracked()
    summary: dict[str, Any] = {
        "objects_seen": t.objects_seen,
        "identity_rate": t.identity_rate,
        "identity_rate_feed": rep.feed_identity_rate,
        "untracked_objects": lost_n,
        "untracked_kg": lost_kg,
        "tracks": t.tracks,
        "class_accuracy": t.class_accuracy,
        "volume_median_abs_rel_err": volume_err,
        "mass_median_abs_rel_err": median_abs(t.mass_rel_err),
        "interval_coverage_object_element": t.interval_coverage,
        "interval_coverage_object_all_crm": rep.object_coverage,
        "closure_mass": rep.closure(),
    }
    con.print(f"[bold]{args.run}[/]: {t.objects_seen} objects tracked, identity kept "
              f"{100 * t.identity_rate:.1f} %, {t.tracks} tracks, class right "
              f"{100 * t.class_accuracy:.1f} %")
    con.print(f"over the stream: identity kept {100 * rep.feed_identity_rate:.1f} % of the "
              f"{rep.true_flows['feed'].objects} objects that left the line; {lost_n} of them "
              f"({lost_kg:.2f} kg) never had a track of their own")
    vol = ", ".join(f"{s} {100 * e:.1f} %" for s, e in volume_err.items())
    con.print(f"median |rel. error|: volume {vol}; mass "
              f"{100 * median_abs(t.mass_rel_err):.1f} %")
    con.print(f"95 % intervals cover the truth: {100 * t.interval_coverage:.1f} % of "
              f"(object, element) pairs, {100 * rep.object_coverage:.1f} % of objects "
              f"(every CRM element at once)")
    feed_true, feed_booked = rep.true_flows["feed"], rep.booked_flows.get("feed")
    con.print(f"stream: {feed_true.objects} objects left the line, "
              f"{feed_true.mass_kg:.2f} kg true, "
              f"{feed_booked.mass_kg if feed_booked else 0.0:.2f} kg booked; "
              f"mass balance closure vs weighed outputs {_pct(rep.closure())}")
    table = Table(title="CRM stream grade and closure (booked by the line vs truth)")
    for col in ("element", "fed g (true)", "grade true", "grade booked", "grade error",
                "booked u (k=1)", "closure"):
        table.add_column(col, justify="right")
    grades = {}
    within_5 = within_2u = 0
    for e in rep.crm_elements(min_kg=args.min_grams / 1000):
        err, u = rep.grade_error(e), rep.grade_u(e)
        within_5 += abs(err) <= 0.05
        within_2u += math.isfinite(u) and abs(err) <= 2 * u
        grades[e] = {"fed_g": 1000 * feed_true.element_kg[e], "grade_true":
                     feed_true.grade(e), "grade_error": err, "grade_u_rel": u,
                     "closure": rep.closure(e)}
        table.add_row(e, f"{1000 * feed_true.element_kg[e]:,.2f}",
                      f"{feed_true.grade(e):.3e}",
                      f"{feed_booked.grade(e) if feed_booked else 0.0:.3e}",
                      _pct(err), "–" if not math.isfinite(u) else f"± {100 * u:.1f} %",
                      _pct(rep.closure(e)))
    con.print(table)
    con.print(f"stream grades within ± 5 % of the truth: {within_5} of {len(grades)}; "
              f"within twice the line's own stated u: {within_2u} of {len(grades)}")
    summary["grades_within_5pct"] = within_5
    summary["grades_within_2u"] = within_2u
    dest = Table(title="Destinations: booked by the line vs weighed (truth)")
    for col in ("destination", "objects true", "objects booked", "kg true", "kg booked",
                "purity true", "purity expected"):
        dest.add_column(col, justify="right")
    purity: dict[str, dict[str, float | None]] = {}
    for d in sorted(set(rep.true_flows) | set(rep.booked_flows)):
        a, b = rep.true_flows.get(d), rep.booked_flows.get(d)
        is_bin = d not in ("feed", "residue")
        pt, pb = rep.purity(d) if is_bin else (None, None)
        if is_bin:
            purity[d] = {"true": pt, "expected": pb}
        dest.add_row(d, str(a.objects if a else 0), str(b.objects if b else 0),
                     f"{a.mass_kg if a else 0.0:.3f}", f"{b.mass_kg if b else 0.0:.3f}",
                     _frac(pt), _frac(pb))
    con.print(dest)
    pt, pb = rep.purity()
    purity["all bins"] = {"true": pt, "expected": pb}
    summary["purity"] = purity
    con.print(f"purity of everything picked: {_frac(pt)} true, {_frac(pb)} expected by the line")
    summary["grades"] = grades
    if args.lost:
        summary["lost_objects"] = _print_lost(rep, Path(args.run), line)
    if args.masses is not None:
        summary["masses"] = _print_masses(t, args.masses)
    out = Path(args.run) / "eval_run.json"
    out.write_text(json.dumps(summary, indent=2, default=float))
    con.print(f"report: {out}")
    return 0
