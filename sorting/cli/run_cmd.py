"""``crmsort run LINE.yaml [--processes] [--duration S] [--record BAG]`` — start a line.

In-process by default (every node in this process); ``--processes`` starts one
process per node group of the YAML's ``deploy`` section, talking over DDS
(Cyclone, ROS 2 wire conventions, loopback unless the YAML names interfaces and
peers). ``--prefix GROUP=CMD`` starts a group behind a command, as a ROS 2
launch ``prefix`` does (``--prefix "perception=ssh picker2"``,
``--prefix "perception=ip netns exec cam"``).

Stopping: Ctrl-C or SIGTERM ends the run at the next clock step; every process
is shut down (SIGTERM, then SIGKILL after 5 s; a second Ctrl-C kills at once),
the bag is closed and the summary printed. Exit status: 0 when the run reached
``--duration`` or was stopped by Ctrl-C/SIGTERM; 1 when every node process of a
``--processes`` run exited on its own (the summary says so); 2 for a bad line
or deployment (a group that cannot start). A signal that comes while the
command is still loading its modules, before the line starts, ends it with 130.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE
from sorting.deploy.errors import DeployConfigError


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
    p.add_argument("--prefix", action="append", default=[], metavar="GROUP=CMD",
                   help="--processes: start GROUP behind CMD (e.g. 'ssh host'); repeatable")
    p.add_argument("--report-timeout", type=float, default=10.0, metavar="S",
                   help="--processes: drop a silent group (crashed, network cut) from the "
                        "clock after S s of wall time (default 10; must exceed the 2 s DDS "
                        "lease); the others wait that long")
    p.add_argument("--no-dds", action="store_true",
                   help="in-process: do not publish /diagnostics, status and sorting/balance "
                        "on DDS")
    p.add_argument("--hmi", type=int, default=None, metavar="PORT",
                   help="in-process: serve the operator's web page on 127.0.0.1:PORT "
                        "(crmsort hmi serves it for a --processes line); its Start, Stop, "
                        "E-stop and Reset command the line")
    p.add_argument("--read-only", action="store_true",
                   help="with --hmi: the page shows the line but sends no commands (403)")
    p.set_defaults(func=run)


def parse_prefixes(items: list[str]) -> dict[str, list[str]]:
    """``["g=cmd words", …]`` → ``{g: ["cmd", "words"]}``; DeployConfigError for a bad item."""
    out: dict[str, list[str]] = {}
    for item in items:
        group, sep, cmd = item.partition("=")
        words = shlex.split(cmd) if sep else []
        if not group.strip() or not words:
            raise DeployConfigError(f"--prefix {item!r}: expected GROUP=COMMAND")
        if group.strip() in out:
            raise DeployConfigError(f"--prefix: group {group.strip()!r} given twice")
        out[group.strip()] = words
    return out


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment

    line, deploy = load_deployment(args.line)
    if args.domain is not None:
        deploy = deploy.model_copy(update={"domain_id": args.domain})
    prefixes = parse_prefixes(args.prefix)
    if prefixes and not args.processes:
        raise DeployConfigError("--prefix needs --processes")
    if args.read_only and args.hmi is None:
        raise DeployConfigError("--read-only applies to the page of --hmi PORT")
    if args.hmi is not None and args.processes:
        raise DeployConfigError("--hmi serves an in-process line; for --processes run "
                                "`crmsort hmi LINE.yaml` beside it")
    rate = None if args.fast else args.speed
    con = console()
    code = 0
    stopped = ""
    if args.processes:
        from sorting.deploy.processes import ALL_EXITED, run_processes

        res = run_processes(args.line, line, deploy, args.duration, args.record, rate=rate,
                            launch_prefix=prefixes, report_timeout_s=args.report_timeout)
        counts, sim_s, wall = res.counts, res.sim_duration_s, res.wall_s
        mode = f"{len(deploy.groups) or 'per-node'} group(s) over DDS domain {deploy.domain_id}"
        if res.stop_reason == ALL_EXITED:
            code = 1
            stopped = f"[red]stopped: {ALL_EXITED}[/]"
        elif res.stop_reason != "duration":
            stopped = f"stopped by {res.stop_reason}: every process shut down"
    else:
        import logging

        from sorting.deploy.inprocess_run import run_in_process
        from sorting.runtime.log import logger_name

        # the operator's commands (accepted: info, refused: warning) belong on this console
        ctl_log = logging.getLogger(logger_name(line.namespace, "line_control"))
        if ctl_log.getEffectiveLevel() > logging.INFO:
            ctl_log.setLevel(logging.INFO)
        hmi = tap = sink = None
        if args.hmi is not None:
            from sorting.hmi import HmiServer, HmiState
            from sorting.hmi.commands import QueueSink

            state = HmiState(line.namespace)
            tap = state.tap
            sink = None if args.read_only else QueueSink()
            hmi = HmiServer(state, port=args.hmi, title=f"crmsort — {line.name}",
                            commands=sink, read_only=args.read_only).start()
            con.print(f"HMI: {hmi.url}" + (" (read-only)" if args.read_only else ""))
        try:
            r = run_in_process(line, deploy, args.duration, args.record, rate=rate,
                               dds=not args.no_dds, tap=tap, commands=sink)
        finally:
            if hmi is not None:
                hmi.stop()
        counts, sim_s, wall = r.counts, r.sim_duration_s, r.wall_s
        mode = "in-process"
        if r.stop_reason != "duration":
            stopped = f"stopped by {r.stop_reason}: nodes shut down"
    table = Table(title=f"{line.name}: {sim_s:.1f} s of line time in {wall:.1f} s ({mode})")
    table.add_column("topic")
    table.add_column("messages", justify="right")
    for topic, n in sorted(counts.items()):
        table.add_row(topic, str(n))
    con.print(table)
    if stopped:
        con.print(stopped)
    if args.record:
        con.print(f"bag: {args.record} (closed)")
    return code
