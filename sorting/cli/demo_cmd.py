"""``crmsort demo`` — run the simulated line, record it, print what happened.

This is the one place a newcomer sees the whole line work; each later stage
(detector, volumes, XRF, tracking, picking) adds its rows to the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sorting.cli.demo_report import print_stages
from sorting.cli.output import console, short_type
from sorting.config.line import DEFAULT_LINE, LineConfig, load_line
from sorting.line import RunResult, run_sim_line


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the simulated line, record a bag, print a summary")
    p.add_argument(
        "--duration", type=float, default=60.0, help="belt time to simulate in s (default 60)"
    )
    p.add_argument("--seed", type=int, default=None, help="override the line's seed")
    p.add_argument("--line", default=str(DEFAULT_LINE), help="line YAML (default: %(default)s)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<timestamp>)")
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        help="run at this multiple of real time (default: as fast as possible)",
    )
    p.add_argument("--no-record", action="store_true", help="do not write a bag")
    p.add_argument("--topics", nargs="+", default=None, metavar="TOPIC",
                   help="record only these topics (full names), e.g. for long runs scored "
                   "by `crmsort eval-run`: /sim/ground_truth /line1/sorting/objects")
    p.set_defaults(func=run)


def run_dir(out: str | None) -> Path:
    if out:
        return Path(out)
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def run(args: argparse.Namespace) -> int:
    line = load_line(args.line)
    if args.seed is not None:
        line = line.model_copy(update={"seed": args.seed})
    out = run_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bag = None if args.no_record else out / "bag"
    con = console()
    con.print(
        f"[bold]crmsort demo[/]: line {line.name}, seed {line.seed}, "
        f"{args.duration:g} s of belt time → {out}"
    )
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeRemainingColumn(),
        console=con,
        transient=True,
    ) as prog:
        task = prog.add_task("sim", total=args.duration)
        result = run_sim_line(
            line,
            args.duration,
            bag,
            topics=args.topics,
            speed=args.speed,
            progress=lambda t, _total: prog.update(task, completed=t),
        )
    print_summary(con, result)
    print_stages(con, result)
    (out / "line.yaml").write_text(_dump_line(line))
    export_grades(result, out, con)
    (out / "summary.json").write_text(json.dumps(summary_dict(result), indent=2))
    return 0


def export_grades(r: RunResult, out: Path, con: Console) -> None:
    """ledger.csv / ledger_shifts.csv / ledger.json / grades.png of the run, when objects
    were booked."""
    b = r.built
    if b is None or b.tracker is None or "feed" not in b.tracker.ledger.accounts:
        return
    from perception.catalog import crm_flags
    from sorting.accounting import plot_grades

    led = b.tracker.ledger
    led.to_csv(out / "ledger.csv")
    led.to_shifts_csv(out / "ledger_shifts.csv")
    led.to_json(out / "ledger.json")
    prices = r.line.sorting.prices_eur_per_kg
    crm = [e for e in led.elements() if "critical" in crm_flags(e)]
    top = sorted(crm, key=lambda e: -led.element_kg("feed", e)[0] * prices.get(e, 0.0))[:6]
    plot_grades(led, [est for _tr, est in b.tracker.finished], top, out / "grades.png")
    con.print(f"mass balance: {out / 'ledger.csv'} (per shift: {out / 'ledger_shifts.csv'}), "
              f"{out / 'ledger.json'}, {out / 'grades.png'}")


def _dump_line(line: LineConfig) -> str:
    import yaml

    return yaml.safe_dump(line.model_dump(mode="json"), sort_keys=False)


def summary_dict(r: RunResult) -> dict[str, Any]:
    return {
        "line": r.line.name,
        "seed": r.line.seed,
        "sim_duration_s": r.sim_duration_s,
        "wall_s": round(r.wall_s, 3),
        "real_time_factor": round(r.real_time_factor, 2),
        "bag": str(r.bag_path) if r.bag_path else None,
        "fed_by_class": r.fed_by_class,
        "topics": {
            t: {
                "type": s.msg_type,
                "count": s.count,
                "rate_hz": round(s.rate_hz, 3),
                "bytes": s.bytes,
            }
            for t, s in sorted(r.topics.items())
        },
        "drops": r.drops,
        "detections_by_class": dict(r.built.detector.detections_per_class)
        if r.built is not None and r.built.detector is not None else {},
        "alarms": list(r.last_status.active_alarms) if r.last_status is not None else [],
        "kpis": _kpis(r.last_status) if r.last_status is not None else {},
    }


def _kpis(st: Any) -> dict[str, Any]:
    """The last ``LineStatus``'s KPIs (purity None before the first pick)."""
    return {"objects_seen": int(st.objects_seen), "objects_picked": int(st.objects_picked),
            "objects_missed": int(st.objects_missed),
            "throughput_objects_per_min": round(float(st.throughput_objects_per_min), 3),
            "throughput_kg_per_h": round(float(st.throughput_kg_per_h), 3),
            "purity": None if math.isnan(st.purity) else round(float(st.purity), 5)}


def print_summary(con: Console, r: RunResult) -> None:
    feed = Table(title="Objects fed onto the belt (simulator)", title_justify="left")
    feed.add_column("class")
    feed.add_column("stream")
    feed.add_column("count", justify="right")
    for name, n in sorted(r.fed_by_class.items(), key=lambda kv: (-kv[1], kv[0])):
        feed.add_row(name, r.stream_of_class.get(name, "?"), str(n))
    feed.add_row("[bold]total[/]", "", f"[bold]{sum(r.fed_by_class.values())}[/]")
    con.print(feed)

    topics = Table(title="Topics recorded", title_justify="left")
    for col, just in (
        ("topic", "left"),
        ("type", "left"),
        ("messages", "right"),
        ("rate Hz", "right"),
        ("MB", "right"),
    ):
        topics.add_column(col, justify=just)  # type: ignore[arg-type]
    for t, s in sorted(r.topics.items()):
        topics.add_row(
            t, short_type(s.msg_type), str(s.count), f"{s.rate_hz:.1f}", f"{s.bytes / 1e6:.1f}"
        )
    con.print(topics)

    total_mb = sum(s.bytes for s in r.topics.values()) / 1e6
    con.print(
        f"simulated {r.sim_duration_s:g} s in {r.wall_s:.1f} s wall: "
        f"real-time factor [bold]{r.real_time_factor:.1f}×[/]"
    )
    if r.bag_path:
        con.print(
            f"bag: {r.bag_path} ({total_mb:.1f} MB of messages) — "
            f"inspect with `crmsort bag info {r.bag_path}`"
        )
    dropped = {k: v for k, v in r.drops.items() if v}
    if dropped:
        con.print(f"[yellow]queue drops[/]: {dropped}")
    if r.last_status is not None:
        alarms = list(r.last_status.active_alarms)
        st = r.last_status
        kpis = (f"; {st.objects_seen} objects seen, {st.objects_picked} picked, "
                f"{st.objects_missed} missed; {st.throughput_objects_per_min:.1f} objects/min, "
                f"{st.throughput_kg_per_h:.0f} kg/h; purity "
                + ("–" if math.isnan(st.purity) else f"{st.purity:.1%}")
                if st.objects_seen else "")
        con.print(
            f"line status: belt {st.belt_speed_mps:.3f} m/s, "
            f"alarms: {', '.join(alarms) if alarms else 'none'}{kpis}"
        )
