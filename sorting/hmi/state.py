"""What the HMI shows, kept from the line's messages (thread-safe; see the package docstring)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from sorting.control.machine import command_name
from sorting.deploy.health import DiagnosticsMonitor
from sorting.msgs.convert import stamp_ns
from sorting.nodes.balance import SCOPE_RUN, SCOPE_SHIFT, balance_summary
from sorting.nodes.line_monitor import state_name

STATUS_TYPE = "crmsort_msgs/msg/LineStatus"
CONTROL_TYPE = "crmsort_msgs/msg/LineControlState"
BALANCE_TYPE = "crmsort_msgs/msg/MassBalance"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"


def status_dict(st: Any) -> dict[str, Any]:
    """A ``LineStatus`` as plain data (purity None before the first pick)."""
    purity = float(st.purity)
    return {
        "t_ns": stamp_ns(st.header.stamp), "state": state_name(int(st.state)),
        "belt_position_m": float(st.belt_position_m), "belt_speed_mps": float(st.belt_speed_mps),
        "uptime_s": float(st.uptime_s), "objects_seen": int(st.objects_seen),
        "objects_picked": int(st.objects_picked), "objects_missed": int(st.objects_missed),
        "throughput_objects_per_min": float(st.throughput_objects_per_min),
        "throughput_kg_per_h": float(st.throughput_kg_per_h),
        "purity": None if math.isnan(purity) else purity,
        "alarms": [str(a) for a in st.active_alarms],
    }


def control_dict(msg: Any) -> dict[str, Any]:
    """A ``LineControlState`` as plain data: the controller's state and why, and its answer
    to the last command (``last``: None before any command)."""
    out: dict[str, Any] = {
        "state": state_name(int(msg.state)), "reason": str(msg.reason),
        "belt_run": bool(msg.belt_run), "estop": bool(msg.estop),
        "picks_in_flight": int(msg.picks_in_flight), "last": None}
    if int(msg.last_command):
        out["last"] = {"command": command_name(int(msg.last_command)),
                       "stamp_ns": stamp_ns(msg.last_command_stamp),
                       "source": str(msg.last_source), "accepted": bool(msg.last_accepted),
                       "message": str(msg.last_message)}
    return out


def crm_rows(balance: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per critical element of a :func:`balance_summary`: grams fed, picked (into any
    bin) and lost (residue), and the share picked; largest feed first."""
    if balance is None:
        return []
    rows = []
    for e, row in balance["elements"].items():
        if not row["critical"]:
            continue
        by = row["by_destination"]
        fed = by.get("feed", {}).get("kg", 0.0)
        if fed <= 0:
            continue
        picked = sum(v["kg"] for d, v in by.items() if d not in ("feed", "residue"))
        rows.append({"element": e, "fed_g": 1000 * fed, "picked_g": 1000 * picked,
                     "lost_g": 1000 * by.get("residue", {}).get("kg", 0.0),
                     "recovery": picked / fed})
    return sorted(rows, key=lambda r: -r["fed_g"])


class HmiState:
    """The last status, balances and node health of one line (``namespace``, e.g.
    ``/line1``). :meth:`update` takes a message of any topic (others are ignored);
    :meth:`snapshot` gives what the page shows, with how long ago (wall time) each part
    was heard."""

    def __init__(self, namespace: str = "/line1", stale_after_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.namespace = namespace.rstrip("/")
        self.topics = {f"{self.namespace}/status": STATUS_TYPE,
                       f"{self.namespace}/control/state": CONTROL_TYPE,
                       f"{self.namespace}/sorting/balance": BALANCE_TYPE,
                       "/diagnostics": DIAGNOSTICS_TYPE}
        self.clock = clock
        self._lock = threading.Lock()
        self._status: dict[str, Any] | None = None
        self._control: dict[str, Any] | None = None
        self._line_t_ns: int | None = None  # the line's clock, from its latest stamps
        self._balance: dict[int, dict[str, Any]] = {}
        self._heard: dict[str, float] = {}
        self._nodes = DiagnosticsMonitor(stale_after_s=stale_after_s, clock=clock)
        self.messages = 0

    def update(self, topic: str, msg: Any) -> None:
        """Keep ``msg`` if ``topic`` is one the HMI shows."""
        kind = self.topics.get(topic)
        if kind is None:
            return
        with self._lock:
            self.messages += 1
            now = self.clock()
            if kind == STATUS_TYPE:
                self._status = status_dict(msg)
                self._heard["status"] = now
                self._line_time(stamp_ns(msg.header.stamp))
            elif kind == CONTROL_TYPE:
                self._control = control_dict(msg)
                self._heard["control"] = now
                self._line_time(stamp_ns(msg.header.stamp))
            elif kind == BALANCE_TYPE:
                scope = int(msg.scope)
                if scope in (SCOPE_RUN, SCOPE_SHIFT):
                    self._balance[scope] = balance_summary(msg)
                    self._heard["balance"] = now
            else:
                self._nodes.update(msg)
                self._heard["diagnostics"] = now

    def _line_time(self, t_ns: int) -> None:
        if self._line_t_ns is None or t_ns > self._line_t_ns:
            self._line_t_ns = t_ns

    def line_time_ns(self) -> int | None:
        """The line's clock (ns) as its latest status or controller state was stamped; None
        before either is heard. A command sent over DDS carries it as its source time, so
        that a ``--processes`` line, whose processes take samples in line-clock order,
        takes the command at its next clock step."""
        with self._lock:
            return self._line_t_ns

    def answer(self, stamp_ns: int, source: str) -> dict[str, Any] | None:
        """The line controller's answer to the command stamped ``stamp_ns`` from ``source``
        (``control_dict(...)["last"]``), once heard; else None."""
        with self._lock:
            last = self._control["last"] if self._control is not None else None
            if last is not None and last["stamp_ns"] == stamp_ns and last["source"] == source:
                return dict(last)
            return None

    def tap(self, topic: str, _msg_type: str, _t_ns: int, msg: Any) -> None:
        """An :meth:`InProcessExecutor.add_tap` callback."""
        self.update(topic, msg)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for ``/api/state``: ``status``, ``control`` (:func:`control_dict`),
        ``balance`` and ``crm`` (each with
        ``run`` and ``shift``: :func:`balance_summary`, :func:`crm_rows`), ``nodes`` and
        ``age_s`` (wall s since each part was last heard; None: never; the controller's in
        ``control_age_s``)."""
        with self._lock:
            now = self.clock()
            return {
                "namespace": self.namespace,
                "status": self._status,
                "control": self._control,
                "balance": {"run": self._balance.get(SCOPE_RUN),
                            "shift": self._balance.get(SCOPE_SHIFT)},
                "crm": {"run": crm_rows(self._balance.get(SCOPE_RUN)),
                        "shift": crm_rows(self._balance.get(SCOPE_SHIFT))},
                "nodes": [{"name": h.name, "level": h.level_name, "hardware_id": h.hardware_id,
                           "message": h.message} for h in self._nodes.snapshot()],
                "age_s": {k: (now - self._heard[k]) if k in self._heard else None
                          for k in ("status", "balance", "diagnostics")},
                "control_age_s": (now - self._heard["control"]) if "control" in self._heard
                else None,
                "messages": self.messages,
            }
