"""Health of a running line: a ``DiagnosticArray`` for every node on ``/diagnostics``.

:class:`HealthNode` is added once per executor (process) and reports on *every*
other node of that executor from the runtime's own counters, so no node needs
code of its own: per node one ``DiagnosticStatus`` named by its fully qualified
name with

- ``pub <topic> rate_hz`` / ``count``: what it published (rate over the last period);
- ``sub <topic> received`` / ``dropped`` / ``age_s``: what reached it, queue drops,
  and the time since its last message (s of the line's clock);
- ``errors``: callbacks that raised (executor ``on_error="log"``);
- ``watchdog``: ``hold`` or ``ok``, for a node that carries a motion-safety
  watchdog (an arm node's ``watchdog``, :class:`robot.safety.Watchdog`).

Levels: ERROR when callbacks failed during the last period, WARN when an input
(not a latched, transient-local one) that has delivered before has been silent
for longer than ``stale_after_s`` (the
watchdog; the message names the topic and the age), when a queue dropped
messages in the last period, or when an arm holds because its safety watchdog
finds tracking or encoder data stale (the message says which source, how old, and
the timeout — the same text the arm's driver raises), else OK.
:class:`DiagnosticsMonitor` is the reading side: it keeps the last status of each
node and marks a node STALE when no status has come for ``stale_after_s`` of wall
time (a dead process).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from robot.safety import Watchdog
from sorting.errors import RuntimeGraphError
from sorting.msgs import new
from sorting.msgs.convert import header
from sorting.runtime.context import Node, NodeContext
from sorting.runtime.inprocess import InProcessExecutor

DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}

ExtraFn = Callable[[int], Iterable[Any]]


def status_msg(level: int, name: str, message: str, hardware_id: str,
               values: dict[str, Any]) -> Any:
    """A ``diagnostic_msgs/DiagnosticStatus`` (values are formatted with ``str``/``:g``)."""
    kvs = [
        new("diagnostic_msgs/msg/KeyValue", key=k,
            value=f"{v:.6g}" if isinstance(v, float) else str(v))
        for k, v in values.items()
    ]
    return new("diagnostic_msgs/msg/DiagnosticStatus", level=level, name=name, message=message,
               hardware_id=hardware_id, values=kvs)


@dataclass
class _SubWatch:
    received: int = 0
    dropped: int = 0
    last_change_ns: int | None = None


@dataclass
class StaleWatchdog:
    """Input watchdog: a topic that delivered before and then stays silent for longer than
    ``stale_after_s`` is stale. ``observe(topic, count, now_ns)`` feeds it a counter."""

    stale_after_s: float = 3.0
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> (count, t_ns)

    def observe(self, topic: str, count: int, now_ns: int) -> None:
        prev = self._seen.get(topic)
        if (prev is None or count != prev[0]) and count > 0:
            self._seen[topic] = (count, now_ns)

    def age_s(self, topic: str, now_ns: int) -> float | None:
        """Seconds since ``topic`` last changed, None if it never delivered."""
        prev = self._seen.get(topic)
        return None if prev is None else (now_ns - prev[1]) * 1e-9

    def stale(self, now_ns: int) -> list[tuple[str, float]]:
        """(topic, age s) of every stale topic, sorted by topic."""
        out = []
        for topic in sorted(self._seen):
            age = self.age_s(topic, now_ns)
            if age is not None and age > self.stale_after_s:
                out.append((topic, age))
        return out


class HealthNode(Node):
    """Publishes ``/diagnostics`` for every other node of ``executor`` (see the module doc).

    Parameters: ``period_s`` (publish period, s of the line clock), ``stale_after_s``
    (input watchdog), ``hardware_id`` (the process/host, shown by ``crmsort status``).
    ``extra(now_ns)`` may add statuses (e.g. the DDS bridge's).
    """

    def __init__(self, ctx: NodeContext, executor: InProcessExecutor,
                 extra: ExtraFn | None = None) -> None:
        super().__init__(ctx)
        self.executor = executor
        self.extra = extra
        self.period_s = float(ctx.declare_parameter("period_s", 1.0).value)
        self.stale_after_s = float(ctx.declare_parameter("stale_after_s", 3.0).value)
        self.hardware_id = str(ctx.declare_parameter("hardware_id", "").value)
        self.pub = ctx.create_publisher(DIAGNOSTICS_TYPE, DIAGNOSTICS_TOPIC, 10)
        ctx.create_timer(self.period_s, self._tick)
        self._self_name = ctx.get_namespace().rstrip("/") + "/" + ctx.get_name()
        self._watch: dict[str, StaleWatchdog] = {}
        self._subs: dict[tuple[str, str], _SubWatch] = {}
        self._pub_counts: dict[str, tuple[int, int]] = {}
        self._errors: dict[str, int] = {}
        self.last: Any = None

    def statuses(self, now_ns: int) -> list[Any]:
        """One DiagnosticStatus per node of the executor (this node excluded), plus extras."""
        ex = self.executor
        published = {t.topic: t.published for t in ex.topics()}
        rates: dict[str, float] = {}
        for topic, count in published.items():
            prev = self._pub_counts.get(topic)
            if prev is not None and now_ns > prev[1]:
                rates[topic] = (count - prev[0]) / ((now_ns - prev[1]) * 1e-9)
            self._pub_counts[topic] = (count, now_ns)
        subs_by_node: dict[str, list[Any]] = {}
        for s in ex.subscriptions():
            subs_by_node.setdefault(s.node, []).append(s)
        errors = ex.error_counts()
        # latched (transient-local) inputs arrive once by design: no watchdog on them
        latched = {(rec.fqn, sub.topic) for rec in ex._nodes.values() for sub in rec.subs
                   if sub.qos.transient_local}
        out = []
        for info in ex.nodes():
            if info.name == self._self_name:
                continue
            values: dict[str, Any] = {"class": info.cls}
            problems: list[str] = []
            level = OK
            for topic in info.publishes:
                values[f"pub {topic} count"] = published.get(topic, 0)
                values[f"pub {topic} rate_hz"] = rates.get(topic, 0.0)
            wd = self._watch.setdefault(info.name, StaleWatchdog(self.stale_after_s))
            for s in subs_by_node.get(info.name, []):
                w = self._subs.setdefault((info.name, s.topic), _SubWatch())
                if (info.name, s.topic) not in latched:
                    wd.observe(s.topic, s.received, now_ns)
                age = wd.age_s(s.topic, now_ns)
                values[f"sub {s.topic} received"] = s.received
                values[f"sub {s.topic} dropped"] = s.dropped
                values[f"sub {s.topic} age_s"] = -1.0 if age is None else age
                if s.dropped > w.dropped:
                    level = max(level, WARN)
                    problems.append(f"dropped {s.dropped - w.dropped} on {s.topic}")
                w.received, w.dropped = s.received, s.dropped
            for topic, age in wd.stale(now_ns):
                level = max(level, WARN)
                problems.append(f"stale input {topic}: no message for {age:.1f} s")
            hold = self._safety_hold(info.name, now_ns)
            if hold is not None:
                values["watchdog"] = "hold" if hold else "ok"
                if hold:
                    level = max(level, WARN)
                    problems.append(hold)
            n_err = errors.get(info.name, 0)
            values["errors"] = n_err
            if n_err > self._errors.get(info.name, 0):
                level = ERROR
                problems.append(f"{n_err - self._errors.get(info.name, 0)} callback error(s)")
            self._errors[info.name] = n_err
            out.append(status_msg(level, info.name, "; ".join(problems) or "ok",
                                  self.hardware_id, values))
        if self.extra is not None:
            out.extend(self.extra(now_ns))
        return out

    def _safety_hold(self, fqn: str, now_ns: int) -> str | None:
        """The hold reason of node ``fqn``'s safety watchdog ("" while it lets the arm move),
        or None when the node has no watchdog."""
        try:
            node = self.executor.node(fqn)
        except RuntimeGraphError:  # still being constructed
            return None
        wd = getattr(node, "watchdog", None)
        if not isinstance(wd, Watchdog):
            return None
        return wd.hold_reason(now_ns * 1e-9) or ""

    def _tick(self) -> None:
        now = self.ctx.get_clock().now().nanoseconds
        msg = new(DIAGNOSTICS_TYPE, header=header(now, ""), status=self.statuses(now))
        self.last = msg
        self.pub.publish(msg)


@dataclass
class NodeHealth:
    """Last known health of one node as :class:`DiagnosticsMonitor` sees it."""

    name: str
    level: int
    message: str
    hardware_id: str
    values: dict[str, str]
    heard_s: float  # monotonic wall time of the last status

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, str(self.level))


class DiagnosticsMonitor:
    """Aggregates ``DiagnosticArray`` messages; a node silent ``stale_after_s`` (wall) → STALE."""

    def __init__(self, stale_after_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.nodes: dict[str, NodeHealth] = {}

    def update(self, array: Any) -> None:
        now = self.clock()
        for st in array.status:
            self.nodes[st.name] = NodeHealth(
                st.name, int(st.level), st.message, st.hardware_id,
                {kv.key: kv.value for kv in st.values}, now,
            )

    def snapshot(self) -> list[NodeHealth]:
        """Every node heard of, sorted by name; silent ones as STALE with the silence in s."""
        now = self.clock()
        out = []
        for name in sorted(self.nodes):
            h = self.nodes[name]
            silent = now - h.heard_s
            if silent > self.stale_after_s:
                h = NodeHealth(h.name, STALE, f"no diagnostics for {silent:.1f} s "
                               f"(last: {h.message})", h.hardware_id, h.values, h.heard_s)
            out.append(h)
        return out

    def stale(self) -> list[str]:
        return [h.name for h in self.snapshot() if h.level == STALE]
