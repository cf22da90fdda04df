"""``crmsort hmi [LINE.yaml] [--port 8080]`` — the operator's web page of a running line.

It joins the line's DDS domain (the YAML's network settings, as ``crmsort status``
does) and serves, on ``--bind``:``--port``, a page with the line's state, alarms,
KPIs (objects seen, picked and missed; objects/min, kg/h; bin purity), each bin's
objects, kg and purity and the CRM grams fed, picked and lost in the current shift
and the run, and every node's health. The data is at ``/api/state`` as JSON. Its
Start, Stop, E-stop and Reset buttons (``POST /api/command``) publish a
``crmsort_msgs/LineCommand`` (source ``hmi``) on the line's ``control/command`` over
DDS; ``--read-only`` serves the page without them (the POST answers 403). Runs until
Ctrl-C (or ``--duration`` seconds). A line run in-process serves the same page itself
with ``crmsort run --hmi PORT``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE


def register(sub: Any) -> None:
    p = sub.add_parser("hmi", help="serve the operator's web page of a running line (DDS)")
    p.add_argument("line", nargs="?", default=str(DEFAULT_LINE),
                   help="line YAML (its name is the namespace; deploy gives domain and network)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0: any)")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; 0.0.0.0: every interface)")
    p.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
    p.add_argument("--read-only", action="store_true",
                   help="show the line, send no commands (POST /api/command answers 403)")
    p.add_argument("--duration", type=float, default=None,
                   help="serve this many seconds, then stop (default: until Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment
    from sorting.hmi import HmiServer, HmiState
    from sorting.hmi.commands import DdsCommandSink
    from sorting.hmi.dds_source import DdsSource

    line, deploy = load_deployment(args.line)
    if args.domain is not None:
        deploy = deploy.model_copy(update={"domain_id": args.domain})
    state = HmiState(line.namespace, stale_after_s=max(deploy.stale_after_s, 3.0))
    source = DdsSource(state, deploy).start()
    commands = None if args.read_only else DdsCommandSink(source.participant, line.namespace,
                                                            state.line_time_ns)
    server = HmiServer(state, args.bind, args.port, title=f"crmsort — {line.name}",
                       commands=commands, read_only=args.read_only).start()
    con = console()
    mode = "read-only" if args.read_only else "commands on"
    con.print(f"HMI of {line.name} (DDS domain {deploy.domain_id}, {mode}): {server.url}  "
              "(Ctrl-C stops)")
    try:
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            time.sleep(0.2 if end is None else max(min(0.2, end - time.monotonic()), 0.0))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        source.stop()
    con.print(f"HMI stopped ({state.messages} messages heard)")
    return 0
