"""``crmsort status`` — the live line's health, from ``/diagnostics`` over DDS.

It joins the line's DDS domain with the line YAML's network settings (loopback
unless ``deploy.network`` names interfaces and unicast peers), so it runs on any
machine of the line. An arm held by its safety watchdog shows as WARN with the
reason (which data went stale, how old, the timeout).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE

_STYLE = {"OK": "green", "WARN": "yellow", "ERROR": "red", "STALE": "magenta"}


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="print the health of a running line (/diagnostics)")
    p.add_argument("line", nargs="?", default=str(DEFAULT_LINE),
                   help="line YAML (its deploy section gives domain and network)")
    p.add_argument("--wait", type=float, default=2.5, help="listen this long, s (default 2.5)")
    p.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
    p.set_defaults(func=run)


def collect(domain_id: int, wait_s: float, deploy: Any) -> list[Any]:
    """Listen to ``/diagnostics`` for ``wait_s`` and return the aggregated node health."""
    from sorting.deploy.dds import DataWait
    from sorting.deploy.group import participant_for
    from sorting.deploy.health import DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, DiagnosticsMonitor
    from sorting.msgs import deserialize
    from sorting.runtime import QoSProfile

    part = participant_for(deploy.model_copy(update={"domain_id": domain_id}))
    try:
        reader = part.reader(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, QoSProfile(depth=100))
        wait = DataWait(part, [reader])
        monitor = DiagnosticsMonitor(stale_after_s=max(deploy.stale_after_s, wait_s))
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            if wait.wait(min(left, 0.2)):
                for raw, _ts in reader.take():
                    monitor.update(deserialize(raw, DIAGNOSTICS_TYPE))
        return monitor.snapshot()
    finally:
        part.close()


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment

    _line, deploy = load_deployment(args.line)
    domain = deploy.domain_id if args.domain is None else args.domain
    nodes = collect(domain, args.wait, deploy)
    con = console()
    if not nodes:
        con.print(f"[yellow]no /diagnostics on DDS domain {domain} within {args.wait} s[/] "
                  "(is the line running? same domain and network?)")
        return 1
    table = Table(title=f"line health (DDS domain {domain})")
    for col in ("node", "level", "host/process", "message"):
        table.add_column(col)
    for h in nodes:
        style = _STYLE.get(h.level_name, "")
        table.add_row(h.name, f"[{style}]{h.level_name}[/]", h.hardware_id, h.message)
    con.print(table)
    return 0 if all(h.level == 0 for h in nodes) else 1
