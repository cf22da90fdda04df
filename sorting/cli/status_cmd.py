"""``crmsort status`` — the live line's health, from ``/diagnostics`` over DDS, and its
state, alarms and KPIs from the line monitor's ``LineStatus`` (``/<line>/status``).

It joins the line's DDS domain with the line YAML's network settings (loopback
unless ``deploy.network`` names interfaces and unicast peers), so it runs on any
machine of the line. An arm held by its safety watchdog shows as WARN with the
reason (which data went stale, how old, the timeout).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE
from sorting.nodes.line_monitor import STATE_ESTOP, STATE_FAULT, state_name

_STYLE = {"OK": "green", "WARN": "yellow", "ERROR": "red", "STALE": "magenta"}


@dataclass
class Heard:
    """What ``crmsort status`` heard: the nodes' health and the last LineStatus, as
    :meth:`sorting.hmi.HmiState.snapshot` gives them (None: no LineStatus heard)."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="print the health of a running line (/diagnostics)")
    p.add_argument("line", nargs="?", default=str(DEFAULT_LINE),
                   help="line YAML (its deploy section gives domain and network)")
    p.add_argument("--wait", type=float, default=2.5, help="listen this long, s (default 2.5)")
    p.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
    p.set_defaults(func=run)


def collect(domain_id: int, wait_s: float, deploy: Any, namespace: str = "/line1") -> Heard:
    """Listen on DDS for ``wait_s`` (:class:`~sorting.hmi.dds_source.DdsSource`): the
    aggregated node health from ``/diagnostics`` and the last ``<namespace>/status``."""
    from sorting.hmi import HmiState
    from sorting.hmi.dds_source import DdsSource

    state = HmiState(namespace, stale_after_s=max(deploy.stale_after_s, wait_s))
    source = DdsSource(state, deploy.model_copy(update={"domain_id": domain_id})).start()
    try:
        time.sleep(wait_s)
    finally:
        source.stop()
    snap = state.snapshot()
    return Heard(nodes=snap["nodes"], status=snap["status"])


def status_line(st: dict[str, Any]) -> str:
    """One line for the operator: state, belt, KPIs, alarms of a LineStatus
    (:func:`sorting.hmi.state.status_dict`)."""
    purity = "–" if st["purity"] is None else f"{st['purity']:.1%}"
    alarms = ", ".join(st["alarms"]) or "none"
    return (f"{st['state']}, belt {st['belt_speed_mps']:.3f} m/s, up {st['uptime_s']:.0f} s; "
            f"{st['objects_seen']} objects seen, {st['objects_picked']} picked, "
            f"{st['objects_missed']} missed; {st['throughput_objects_per_min']:.1f} "
            f"objects/min, {st['throughput_kg_per_h']:.0f} kg/h; purity {purity} (the line's "
            f"estimate); alarms: {alarms}")


def run(args: argparse.Namespace) -> int:
    from sorting.deploy.config import load_deployment

    line, deploy = load_deployment(args.line)
    domain = deploy.domain_id if args.domain is None else args.domain
    heard = collect(domain, args.wait, deploy, line.namespace)
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
        style = _STYLE.get(h["level"], "")
        table.add_row(h["name"], f"[{style}]{h['level']}[/]", h["hardware_id"], h["message"])
    con.print(table)
    stopped = heard.status is not None and heard.status["state"] in (
        state_name(STATE_ESTOP), state_name(STATE_FAULT))
    return 0 if all(h["level"] == "OK" for h in nodes) and not stopped else 1

