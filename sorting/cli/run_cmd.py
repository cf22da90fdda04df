"""``crmsort run LINE.yaml [--processes] [--duration S] [--record BAG]`` — start a line.

In-process by default (every node in this process); ``--processes`` starts one
process per node group of the YAML's ``deploy`` section, talking over DDS
(Cyclone, ROS 2 wire conventions, loopback unless the YAML names interfaces).
Ctrl-C or SIGTERM stops every process cleanly and closes the bag.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="start a line (in-process, or one process per node group)")
    p.add_argument("line", nargs="?", default=str(DEFAULT_LINE), help="line YAML")
    p.add_argument("--processes", action="store_true",
                   help="one process per node group over DDS (deploy.groups in the YAML)")
    p.add_argument("--duration", type=float, default=None,
                   help="line time to run in s (default: until Ctrl-C)")
    p.add_argument("--record", default=None, metavar="BAG", help="record every topic to BAG")
    p.add_argument("--speed", type=float, default=1.0,
                   help="multiple of real time (default 1); see --fast")
    p.add_argument("--fast", action="store_true", help="run as fast as the CPU allows")
    p.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
    p.add_argument("--no-dds", action="store_true",
                   help="in-process: do not publish /diagnostics on DDS")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment

    line, deploy = load_deployment(args.line)
    if args.domain is not None:
        deploy = deploy.model_copy(update={"domain_id": args.domain})
    rate = None if args.fast else args.speed
    con = console()
    if args.processes:
        from sorting.deploy.processes import run_processes

        res = run_processes(args.line, line, deploy, args.duration, args.record, rate=rate)
        counts, sim_s, wall = res.counts, res.sim_duration_s, res.wall_s
        mode = f"{len(deploy.groups) or 'per-node'} group(s) over DDS domain {deploy.domain_id}"
    else:
        from sorting.deploy.inprocess_run import run_in_process

        r = run_in_process(line, deploy, args.duration, args.record, rate=rate,
                           dds=not args.no_dds)
        counts, sim_s, wall = r.counts, r.sim_duration_s, r.wall_s
        mode = "in-process"
    table = Table(title=f"{line.name}: {sim_s:.1f} s of line time in {wall:.1f} s ({mode})")
    table.add_column("topic")
    table.add_column("messages", justify="right")
    for topic, n in sorted(counts.items()):
        table.add_row(topic, str(n))
    con.print(table)
    if args.record:
        con.print(f"bag: {args.record}")
    return 0
