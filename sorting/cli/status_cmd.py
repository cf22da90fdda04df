"""``crmsort status`` — the live line's health, from ``/diagnostics`` over DDS, and its
state, alarms and KPIs from the line monitor's ``LineStatus`` (``/<line>/status``).

It joins the line's DDS domain with the line YAML's network settings (loopback
unless ``deploy.network`` names interfaces and unicast peers), so it runs on any
machine of the line. An arm held by its safety watchdog shows as WARN with the
reason (which data went stale, how old, the timeout).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE
from sorting.nodes.line_monitor import STATE_ESTOP, STATE_FAULT, state_name

STATUS_TYPE = "crmsort_msgs/msg/LineStatus"
_STYLE = {"OK": "green", "WARN": "yellow", "ERROR": "red", "STALE": "magenta"}


@dataclass
class Heard:
    """What ``crmsort status`` heard: the aggregated node health and the last LineStatus."""

    nodes: list[Any] = field(default_factory=list)
    status: Any = None


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="print the health of a running line (/diagnostics)")
    p.add_argument("line", nargs="?", default=str(DEFAULT_LINE),
                   help="line YAML (its deploy section gives domain and network)")
    p.add_argument("--wait", type=float, default=2.5, help="listen this long, s (default 2.5)")
    p.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
    p.set_defaults(func=run)


def collect(domain_id: int, wait_s: float, deploy: Any,
            status_topic: str = "/line1/status") -> Heard:
    """Listen to ``/diagnostics`` and ``status_topic`` for ``wait_s``: the aggregated node
    health and the last ``LineStatus``."""
    from sorting.deploy.dds import DataWait
    from sorting.deploy.group import participant_for
    from sorting.deploy.health import DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, DiagnosticsMonitor
    from sorting.msgs import deserialize
    from sorting.runtime import QoSProfile

    part = participant_for(deploy.model_copy(update={"domain_id": domain_id}))
    try:
        reader = part.reader(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, QoSProfile(depth=100))
        status_reader = part.reader(status_topic, STATUS_TYPE, QoSProfile(depth=10))
        wait = DataWait(part, [reader, status_reader])
        monitor = DiagnosticsMonitor(stale_after_s=max(deploy.stale_after_s, wait_s))
        heard = Heard()
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            if wait.wait(min(left, 0.2)):
                for raw, _ts in reader.take():
                    monitor.update(deserialize(raw, DIAGNOSTICS_TYPE))
                for raw, _ts in status_reader.take():
                    heard.status = deserialize(raw, STATUS_TYPE)
        heard.nodes = monitor.snapshot()
        return heard
    finally:
        part.close()


def status_line(st: Any) -> str:
    """One line for the operator: state, belt, KPIs, alarms of a ``LineStatus``."""
    state = state_name(int(st.state))
    purity = "–" if math.isnan(st.purity) else f"{st.purity:.1%}"
    alarms = ", ".join(st.active_alarms) or "none"
    return (f"{state}, belt {st.belt_speed_mps:.3f} m/s, up {st.uptime_s:.0f} s; "
            f"{st.objects_seen} objects seen, {st.objects_picked} picked, "
            f"{st.objects_missed} missed; {st.throughput_objects_per_min:.1f} objects/min, "
            f"{st.throughput_kg_per_h:.0f} kg/h; purity {purity} (the line's estimate); "
            f"alarms: {alarms}")


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment

    line, deploy = load_deployment(args.line)
    domain = deploy.domain_id if args.domain is None else args.domain
    heard = collect(domain, args.wait, deploy, f"/{line.name}/status")
    nodes = heard.nodes
    con = console()
    if heard.status is not None:
        con.print(f"[bold]{line.name}[/]: {status_line(heard.status)}")
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
    stopped = heard.status is not None and int(heard.status.state) in (STATE_ESTOP, STATE_FAULT)
    return 0 if all(h.level == 0 for h in nodes) and not stopped else 1

