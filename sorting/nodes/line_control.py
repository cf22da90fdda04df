"""Line control node: the operator's commands in, the line's state out.

Subscribes ``control/command`` (crmsort_msgs/LineCommand: START, STOP, ESTOP, RESET from
the HMI, the CLI or any ROS 2 tool), ``belt/joint_states`` (the encoder: the belt's
measured speed) and, for every arm in ``arms``, ``robot/<arm>/pick_task`` and
``robot/<arm>/pick_result`` (which picks are in flight); publishes ``control/state``
(crmsort_msgs/LineControlState, latched: :data:`STATE_QOS`) as it starts
(:data:`ANNOUNCE_AFTER_S`), on every change and at ``rate_hz``. The state machine is
:class:`sorting.control.LineController`; the belt (simulator or drive), the scheduler
(picks in RUNNING only), the arms (the line E-stop latch) and the line monitor
(``LineStatus.state``) follow ``control/state``. Every command is logged with its source
and reason, accepted (info) or refused (warning), and answered in the state's ``last_*``.

Parameters: ``nominal_speed_mps`` (the belt's set speed), ``autostart`` (start RUNNING,
as a simulated line always did; false: STOPPED until a START), ``start_speed_fraction``,
``stopped_speed_mps``, ``drain_timeout_s`` (see :class:`~sorting.control.LineController`),
``rate_hz``, ``arms`` (arm names).
"""

from __future__ import annotations

from typing import Any

from sorting.control import Command, LineController, LineState
from sorting.control.machine import Outcome, command_name
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.runtime.context import Node, NodeContext, QoSProfile

CONTROL_STATE_TOPIC = "control/state"
CONTROL_COMMAND_TOPIC = "control/command"
STATE_TYPE = "crmsort_msgs/msg/LineControlState"
COMMAND_TYPE = "crmsort_msgs/msg/LineCommand"
#: ``control/state`` is latched, so that a node that starts later (or a manual line's
#: monitor, before the first heartbeat) knows the state at once; subscribers use
#: :data:`STATE_SUB_QOS`
STATE_QOS = QoSProfile(depth=1, reliable=True, transient_local=True)
STATE_SUB_QOS = QoSProfile(depth=10, reliable=True, transient_local=True)
#: the first state goes out this long after the node starts, s
ANNOUNCE_AFTER_S = 1e-3


class LineControlNode(Node):
    """Hosts the line's :class:`~sorting.control.LineController` (see the module docstring)."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        p = ctx.declare_parameter
        self.controller = LineController(
            float(p("nominal_speed_mps", 0.5).value),
            autostart=bool(p("autostart", True).value),
            start_speed_fraction=float(p("start_speed_fraction", 0.95).value),
            stopped_speed_mps=float(p("stopped_speed_mps", 0.005).value),
            drain_timeout_s=float(p("drain_timeout_s", 10.0).value))
        rate = float(p("rate_hz", 1.0).value)
        arms = [str(a) for a in (p("arms", []).value or [])]
        self.pub = ctx.create_publisher(STATE_TYPE, CONTROL_STATE_TOPIC, STATE_QOS)
        ctx.create_subscription(COMMAND_TYPE, CONTROL_COMMAND_TOPIC, self._on_command, 10)
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states",
                                self._on_belt, 50)
        for arm in arms:
            ctx.create_subscription("crmsort_msgs/msg/PickTask", f"robot/{arm}/pick_task",
                                    self._make_task_cb(arm), 10)
            ctx.create_subscription("crmsort_msgs/msg/PickResult", f"robot/{arm}/pick_result",
                                    self._make_result_cb(arm), 10)
        ctx.create_timer(1.0 / rate, self._heartbeat)
        self._prev: tuple[int, float] | None = None
        self._last_stamp_ns = 0
        self._last: dict[str, Any] = {}  # the answer to the last command (LineControlState last_*)
        self.outcomes: list[Outcome] = []
        # the state from the start, not only from the first heartbeat (a manual line's
        # monitor says STOPPED from its first status); a timer, not the constructor, so that
        # it is published once the line spins, when recorders and bridges are listening
        self._announce_timer = ctx.create_timer(ANNOUNCE_AFTER_S, self._announce)

    def _now_s(self) -> float:
        return self.ctx.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg: Any) -> None:
        code = int(msg.command)
        source, reason = str(msg.source), str(msg.reason)
        self._last_stamp_ns = stamp_ns(msg.header.stamp)
        try:
            cmd = Command(code)
        except ValueError:
            # an unknown code is refused and answered, never fatal to the line
            self.ctx.get_logger().warning(
                f"{command_name(code)} from {source or 'unknown source'!r} REFUSED: unknown "
                f"command code {code} (LineCommand defines "
                f"{', '.join(f'{c.name}={c.value}' for c in Command)})")
            self._answer(code, source, False, f"unknown command code {code}")
            return
        out = self.controller.command(cmd, self._now_s(), source, reason)
        self.outcomes.append(out)
        log = self.ctx.get_logger()
        (log.info if out.accepted else log.warning)(out.log_line())
        self._answer(int(cmd), source, out.accepted, out.message)

    def _answer(self, code: int, source: str, accepted: bool, message: str) -> None:
        sec, nsec = divmod(self._last_stamp_ns, 1_000_000_000)
        self._last = {"last_command_stamp": new("builtin_interfaces/msg/Time", sec=sec,
                                                nanosec=nsec),
                      "last_command": code, "last_source": source, "last_accepted": accepted,
                      "last_message": message}
        self._publish()

    def _on_belt(self, msg: Any) -> None:
        t_ns = stamp_ns(msg.header.stamp)
        pos = float(msg.position[0])
        prev, self._prev = self._prev, (t_ns, pos)
        if prev is None or t_ns <= prev[0]:
            return
        # the belt's speed from encoder travel, not the drive's claim
        speed = (pos - prev[1]) / ((t_ns - prev[0]) * 1e-9)
        if self.controller.observe_belt(speed, t_ns * 1e-9) is not None:
            self._changed()

    def _make_task_cb(self, arm: str) -> Any:
        def cb(msg: Any) -> None:
            self.controller.pick_sent(arm, int(msg.task_id), self._now_s())

        return cb

    def _make_result_cb(self, arm: str) -> Any:
        def cb(msg: Any) -> None:
            if self.controller.pick_answered(arm, int(msg.task_id), self._now_s()) is not None:
                self._changed()

        return cb

    def _changed(self) -> None:
        self.ctx.get_logger().info(f"line {self.controller.state.name} "
                                   f"({self.controller.reason})")
        self._publish()

    def _announce(self) -> None:
        self._announce_timer.cancel()
        self._publish()

    def _heartbeat(self) -> None:
        if self.controller.tick(self._now_s()) is not None:
            self._changed()
            return
        self._publish()

    def _publish(self) -> None:
        c = self.controller
        now_ns = self.ctx.get_clock().now().nanoseconds
        self.pub.publish(new(
            STATE_TYPE, header=header(now_ns, ""), state=int(c.state), belt_run=c.belt_run,
            estop=c.estop_latched, picks_in_flight=len(c.in_flight), reason=c.reason,
            **self._last))


def picks_allowed(msg: Any) -> bool:
    """A ``LineControlState`` lets new picks go out (RUNNING)."""
    return int(msg.state) == LineState.RUNNING
