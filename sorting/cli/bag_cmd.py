"""``crmsort record``, ``crmsort replay`` and ``crmsort bag info``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from sorting.bags import bag_info, format_info, read_messages
from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE, load_line
from sorting.errors import SortingError
from sorting.line import run_sim_line
from sorting.record import Recorder
from sorting.runtime import InProcessExecutor, SimClock, WallClock
from sorting.runtime.replay import replay


def _speed(text: str) -> float | None:
    if text in ("max", "inf"):
        return None
    try:
        value = float(text.rstrip("xX"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"speed must be 'max' or a number like 1 or 5x, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be > 0, got {value}")
    return value


def register(sub: Any) -> None:
    """``crmsort record``, ``crmsort replay``, ``crmsort bag info``."""
    add_record_parser(sub)
    add_replay_parser(sub)
    add_bag_parser(sub)


def add_record_parser(sub: Any) -> None:
    p = sub.add_parser("record", help="run a line and record its topics to a rosbag2 (MCAP) bag")
    p.add_argument("-o", "--output", required=True, help="bag directory to create (must not exist)")
    p.add_argument("--line", default=str(DEFAULT_LINE), help="line YAML (default: %(default)s)")
    p.add_argument("--duration", type=float, default=30.0, help="belt time to record in s")
    p.add_argument(
        "--topics",
        nargs="+",
        default=None,
        metavar="TOPIC",
        help="record only these topics (fully resolved, e.g. /line1/camera/image_raw)",
    )
    p.add_argument(
        "--speed", type=_speed, default=None, help="'max' (default) or a multiple of real time"
    )
    p.set_defaults(func=_record)


def add_replay_parser(sub: Any) -> None:
    p = sub.add_parser("replay", help="feed a bag through the in-process runtime")
    p.add_argument("bag", help="bag directory or .mcap file")
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="'max' (default), 1 for recorded speed, N for N× faster",
    )
    p.add_argument("-o", "--output", default=None, help="record the replayed topics into a new bag")
    p.add_argument(
        "--topics", nargs="+", default=None, metavar="TOPIC", help="replay only these topics"
    )
    p.add_argument("--remap", nargs="+", default=[], metavar="OLD:=NEW", help="rename topics")
    p.set_defaults(func=_replay)


def add_bag_parser(sub: Any) -> None:
    p = sub.add_parser("bag", help="inspect bags")
    bsub = p.add_subparsers(dest="bag_command", metavar="ACTION", required=True)
    i = bsub.add_parser("info", help="topics, types, counts, duration, rates (also of broken bags)")
    i.add_argument("bag", help="bag directory or .mcap/.db3 file")
    i.set_defaults(func=_info)


def _record(args: argparse.Namespace) -> int:
    line = load_line(args.line)
    out = Path(args.output)
    con = console()
    result = run_sim_line(line, args.duration, out, topics=args.topics, speed=args.speed)
    n = sum(s.count for s in result.topics.values())
    con.print(
        f"recorded {n} messages on {len(result.topics)} topics over {args.duration:g} s → {out}"
    )
    return 0


def _parse_remap(items: list[str]) -> dict[str, str]:
    remap = {}
    for item in items:
        if ":=" not in item:
            raise SortingError(f"--remap expects OLD:=NEW, got {item!r}")
        old, new = item.split(":=", 1)
        remap[old] = new
    return remap


def _replay(args: argparse.Namespace) -> int:
    con = console()
    remap = _parse_remap(args.remap)
    clock = SimClock() if args.speed is None else WallClock(rate=args.speed)
    info = bag_info(args.bag)
    start_ns = info.start_ns if info.start_ns is not None else 0
    if args.speed is None:
        clock = SimClock(start_ns=start_ns)
    executor = InProcessExecutor(clock)
    recorder = None
    if args.output:
        recorder = Recorder(Path(args.output))
        executor.add_tap(recorder)
    wall0 = time.perf_counter()
    try:
        stats = replay(
            executor, read_messages(args.bag, topics=args.topics), speed=args.speed, remap=remap
        )
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.close()
    wall = time.perf_counter() - wall0
    span = stats.duration_s
    con.print(
        f"replayed {stats.messages} messages, {span:.1f} s of bag time in {wall:.2f} s "
        f"({span / wall if wall > 0 else float('inf'):.1f}× real time)"
    )
    if recorder is not None:
        con.print(
            f"re-recorded {sum(s.count for s in recorder.stats.values())} messages → {args.output}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    info = bag_info(args.bag)
    print(format_info(info))
    return 1 if info.problems else 0
