"""``crmsort schedule eval STREAM`` and ``crmsort schedule generate`` — offline pick scheduling.

``eval`` runs the online scheduler and the baselines (FIFO, greedy, hindsight-optimum
MILP) on a stream file (JSON or CSV, see ``datasets/streams/README.md``) without the
rest of the line and prints value captured, picks per arm, picks/min against the
arm's kinematic limit, idle time and what was missed. ``generate`` writes a seeded
sparse / medium / dense evaluation stream.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.scheduling.evaluate import POLICIES, evaluate
from sorting.scheduling.stream import DENSITY_LOAD, generate_stream, load_stream, save_stream


def register(sub: Any) -> None:
    p = sub.add_parser("schedule", help="pick scheduling: evaluate policies on streams")
    ssub = p.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    e = ssub.add_parser("eval", help="run the scheduler and baselines on a stream file")
    e.add_argument("stream", help="stream file (.json, or .csv with its arms JSON)")
    e.add_argument("--policies", default=",".join(POLICIES),
                   help="comma-separated subset of %(default)s")
    e.add_argument("--grid-s", type=float, default=0.1,
                   help="time grid of the hindsight MILP in s (default %(default)s)")
    e.add_argument("--time-limit-s", type=float, default=60.0,
                   help="HiGHS time limit per chunk in s (default %(default)s)")
    e.add_argument("--missed", type=int, default=5, help="valuable misses to list per policy")
    e.set_defaults(func=_eval)
    g = ssub.add_parser("generate", help="write a seeded evaluation stream")
    g.add_argument("--density", choices=sorted(DENSITY_LOAD), default="medium")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--arms", type=int, default=3)
    g.add_argument("--duration-s", type=float, default=40.0)
    g.add_argument("-o", "--output", required=True, help="output .json or .csv")
    g.set_defaults(func=_generate)


def _eval(args: argparse.Namespace) -> int:
    stream = load_stream(args.stream)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    ev = evaluate(stream, policies, grid_s=args.grid_s, time_limit_s=args.time_limit_s)
    con = console()
    n_pick = sum(1 for o in stream.objects if o.pickable)
    con.print(f"{args.stream}: {len(stream.objects)} objects ({n_pick} worth a pick), "
              f"{len(stream.arms)} arms, belt {stream.belt_speed_mps} m/s")
    ref_name = "optimum"
    if ev.optimum is not None and not ev.optimum.exact:
        ref_name = "optimum bound"
        con.print(f"[yellow]hindsight MILP not proven optimal: best {ev.optimum.objective_eur:.2f}"
                  f" EUR, upper bound {ev.optimum.bound_eur:.2f} EUR (percentages use the "
                  f"bound)[/]")
    t = Table(title="Pick scheduling", title_justify="left")
    for col in ("policy", "value EUR", f"% of {ref_name}", "picks per arm", "picks/min per arm",
                "% of kin. limit", "idle s per arm", "missed", "missed EUR", "Li-ion missed"):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in ev.results.items():
        pct = ev.percent_of_optimum(name)
        t.add_row(
            name, f"{r.value_eur:.2f}", "–" if pct is None else f"{pct:.1f}",
            " / ".join(str(a.picks) for a in r.arms),
            " / ".join(f"{a.picks_per_min:.1f}" for a in r.arms),
            " / ".join(f"{100 * a.saturation:.0f}" for a in r.arms),
            " / ".join(f"{a.idle_s:.1f}" for a in r.arms),
            str(len(r.missed)), f"{sum(m.value_eur for m in r.missed):.2f}",
            str(len(r.priority_missed)),
        )
    con.print(t)
    for name, r in ev.results.items():
        top = r.valuable_missed(args.missed)
        if top:
            con.print(f"  {name} missed most: " + ", ".join(
                f"#{m.object_id} {m.class_name} {m.value_eur:.2f} EUR" for m in top))
    return 0


def _generate(args: argparse.Namespace) -> int:
    spec = generate_stream(args.density, args.seed, n_arms=args.arms,
                           duration_s=args.duration_s)
    save_stream(spec, args.output)
    console().print(f"[bold green]wrote[/] {args.output}: {len(spec.objects)} objects, "
                    f"{len(spec.arms)} arms, {args.density}, seed {args.seed}")
    return 0
