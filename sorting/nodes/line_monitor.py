"""Line monitor: belt state, sensor liveness and alarms for the operator, as ``LineStatus``.

Subscribes to the belt encoder (``belt/joint_states``) and to each watched
sensor topic; publishes ``status`` (crmsort_msgs/LineStatus) at ``rate_hz``.
Alarms: ``BELT_STOPPED`` (encoder speed below ``min_speed_mps`` while
running), ``ENCODER_SILENT`` and ``<TOPIC>_SILENT`` when a stream has been
quiet for more than ``silence_periods`` of its expected period.

State: the line controller's (``control/state``, crmsort_msgs/LineControlState:
STOPPED, STARTING, RUNNING, STOPPING, ESTOP) once one is heard, RUNNING before;
FAULT instead of RUNNING while an alarm is active. ``BELT_STOPPED`` is raised only
while the line should run (RUNNING, or no controller heard): a belt stopped by
the operator is no alarm.

KPIs, from the tracker's running mass balance (``balance_topic``,
crmsort_msgs/MassBalance, the line's own estimates): objects seen (booked into
the feed: left the sensing zone or picked), picked and missed (sent to a bin,
left in the residue); throughput in objects/min and kg/h over the last
``kpi_window_s`` of line time; purity, the bins' expected share of mass that
belongs there, mass-weighted over the bins (NaN before the first pick).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from sorting.control import LineState
from sorting.errors import ConfigError
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.nodes.balance import SCOPE_RUN, balance_kpis
from sorting.nodes.line_control import STATE_SUB_QOS
from sorting.runtime.context import Node, NodeContext

STATE_RUNNING = int(LineState.RUNNING)
STATE_ESTOP = int(LineState.ESTOP)
STATE_FAULT = int(LineState.FAULT)
#: crmsort_msgs/LineStatus STATE_*, by code
STATES = tuple(s.name for s in LineState)


def state_name(code: int) -> str:
    """A ``LineStatus.state`` code's name (``STATE_<n>`` for one the message does not name)."""
    return STATES[code] if 0 <= code < len(STATES) else f"STATE_{code}"


@dataclass
class _Watch:
    topic: str
    period_s: float
    last_ns: int | None = None
    count: int = 0


class LineMonitorNode(Node):
    """Publishes the line's state and alarms (see the module docstring)."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.rate_hz = float(ctx.declare_parameter("rate_hz", 1.0).value)
        self.min_speed = float(ctx.declare_parameter("min_speed_mps", 0.02).value)
        self.silence_periods = float(ctx.declare_parameter("silence_periods", 3.0).value)
        # parallel lists, so the parameters map onto ROS 2 parameter types
        topics = list(ctx.declare_parameter("watch_topics", []).value or [])
        types = list(ctx.declare_parameter("watch_types", []).value or [])
        rates = list(ctx.declare_parameter("watch_rates_hz", []).value or [])
        if not len(topics) == len(types) == len(rates):
            raise ConfigError(
                f"{ctx.get_name()}: watch_topics, watch_types and watch_rates_hz must have equal "
                f"lengths, got {len(topics)}, {len(types)}, {len(rates)}"
            )
        self.watches: dict[str, _Watch] = {}
        for topic, typename, rate in zip(topics, types, rates, strict=True):
            w = _Watch(topic=topic, period_s=1.0 / float(rate))
            self.watches[topic] = w
            ctx.create_subscription(typename, topic, self._make_cb(w), 5)
        self.encoder = _Watch(topic="belt/joint_states", period_s=0.1)
        ctx.create_subscription(
            "sensor_msgs/msg/JointState", "belt/joint_states", self._on_belt, 50
        )
        self.kpi_window_s = float(ctx.declare_parameter("kpi_window_s", 60.0).value)
        if self.kpi_window_s <= 0:
            raise ConfigError(f"{ctx.get_name()}: kpi_window_s must be > 0, got "
                              f"{self.kpi_window_s}")
        balance_topic = str(ctx.declare_parameter("balance_topic", "sorting/balance").value)
        #: (t_ns, objects fed, kg fed) of the running balance, oldest first
        self.feed_history: deque[tuple[int, int, float]] = deque()
        self.kpis: dict[str, float] = {"objects_seen": 0, "objects_picked": 0,
                                       "objects_missed": 0, "purity": math.nan}
        if balance_topic:
            ctx.create_subscription("crmsort_msgs/msg/MassBalance", balance_topic,
                                    self._on_balance, 10)
        #: the line controller's last state (None: none heard; the line is taken as RUNNING)
        self.control_state: int | None = None
        ctx.create_subscription("crmsort_msgs/msg/LineControlState", "control/state",
                                self._on_control, STATE_SUB_QOS)
        self.pub = ctx.create_publisher("crmsort_msgs/msg/LineStatus", "status", 10)
        ctx.create_timer(1.0 / self.rate_hz, self._publish)
        self.position_m = 0.0
        self.speed_mps = 0.0
        self._prev: tuple[int, float] | None = None
        self.start_ns = ctx.get_clock().now().nanoseconds
        self.last_status: Any = None

    def _make_cb(self, watch: _Watch) -> Any:
        def cb(msg: Any) -> None:
            watch.last_ns = self.ctx.get_clock().now().nanoseconds
            watch.count += 1

        return cb

    def _on_belt(self, msg: Any) -> None:
        t_ns = stamp_ns(msg.header.stamp)
        pos = float(msg.position[0])
        if self._prev is not None and t_ns > self._prev[0]:
            # speed from encoder travel, not from the drive's claim
            self.speed_mps = (pos - self._prev[1]) / ((t_ns - self._prev[0]) * 1e-9)
        self._prev = (t_ns, pos)
        self.position_m = pos
        self.encoder.last_ns = self.ctx.get_clock().now().nanoseconds
        self.encoder.count += 1

    def _on_control(self, msg: Any) -> None:
        self.control_state = int(msg.state)

    def _on_balance(self, msg: Any) -> None:
        if int(msg.scope) != SCOPE_RUN:
            return
        t_ns = stamp_ns(msg.header.stamp)
        self.kpis = balance_kpis(msg)
        seen, kg = int(self.kpis["objects_seen"]), self.kpis["kg_fed"]
        if self.feed_history and t_ns <= self.feed_history[-1][0]:
            return
        self.feed_history.append((t_ns, seen, kg))
        # keep one entry at or before the window's start, so the rate spans the whole window
        window_ns = round(self.kpi_window_s * 1e9)
        while len(self.feed_history) > 2 and self.feed_history[1][0] <= t_ns - window_ns:
            self.feed_history.popleft()

    def throughput(self) -> tuple[float, float]:
        """(objects/min, kg/h) booked into the feed over the last ``kpi_window_s`` (or since
        the first balance, when the line has run for less); zeros before two balances."""
        if len(self.feed_history) < 2:
            return 0.0, 0.0
        t1, n1, kg1 = self.feed_history[-1]
        t0, n0, kg0 = self.feed_history[0]
        span_s = (t1 - t0) * 1e-9
        return (n1 - n0) / span_s * 60.0, (kg1 - kg0) / span_s * 3600.0

    def alarms(self, now_ns: int) -> list[str]:
        """Active alarm codes at ``now_ns``."""
        out = []
        for w in [self.encoder, *self.watches.values()]:
            ref = w.last_ns if w.last_ns is not None else self.start_ns
            if (now_ns - ref) * 1e-9 > self.silence_periods * w.period_s + 1.0 / self.rate_hz:
                name = (
                    "ENCODER" if w is self.encoder else w.topic.strip("/").replace("/", "_").upper()
                )
                out.append(f"{name}_SILENT")
        uptime = (now_ns - self.start_ns) * 1e-9
        should_run = self.control_state is None or self.control_state == STATE_RUNNING
        if (should_run and self.encoder.count > 0 and uptime > 2.0
                and abs(self.speed_mps) < self.min_speed):
            out.append("BELT_STOPPED")
        return out

    def state(self, alarms: list[str]) -> int:
        """The ``LineStatus.state`` code: the controller's state (RUNNING before one is
        heard), FAULT instead of RUNNING while ``alarms`` are active."""
        state = STATE_RUNNING if self.control_state is None else self.control_state
        return STATE_FAULT if state == STATE_RUNNING and alarms else state

    def _publish(self) -> None:
        now = self.ctx.get_clock().now().nanoseconds
        alarms = self.alarms(now)
        per_min, kg_per_h = self.throughput()
        status = new(
            "crmsort_msgs/msg/LineStatus",
            header=header(now, "belt"),
            state=self.state(alarms),
            belt_position_m=self.position_m,
            belt_speed_mps=self.speed_mps,
            uptime_s=(now - self.start_ns) * 1e-9,
            active_alarms=alarms,
            objects_seen=int(self.kpis["objects_seen"]),
            objects_picked=int(self.kpis["objects_picked"]),
            objects_missed=int(self.kpis["objects_missed"]),
            throughput_objects_per_min=per_min,
            throughput_kg_per_h=kg_per_h,
            purity=self.kpis["purity"],
        )
        self.last_status = status
        self.pub.publish(status)
