"""Arm node: executes ``PickTask``s on one arm and reports ``PickResult``s.

Subscribes ``robot/<arm>/pick_task`` (crmsort_msgs/PickTask), ``belt/joint_states``
and ``sorting/objects`` (both feed the arm's watchdog: stale encoder or
tracking data holds the arm); publishes ``robot/<arm>/pick_result``
(crmsort_msgs/PickResult). The pick is planned by the arm's own model
(:class:`robot.pick_cycle.DeltaPickCycle`: intercept, S-curve timing, safety
guard) and run on its hardware — here anything with ``begin(plan, t)``,
``advance(t)`` and ``busy_until_s`` (the simulated arm, or a driver for a real
one). A task the arm cannot take is answered at once (UNREACHABLE/ABORTED)
so the scheduler re-plans it.

With the line's E-stop latch (``line_estop``, shared with the arm's safety guard) the
node also follows the line controller (``control/state``,
crmsort_msgs/LineControlState): an E-stop trips the latch (a moving arm brakes within
its braking time and its pick is ABORTED; no pick starts while it is latched); the
controller's RESET clears the latch and the hardware's own (``reset()``, where it has one).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from robot.drivers.base import Outcome, PickOutcome
from robot.errors import RobotError
from robot.motion.intercept import MovingTarget
from robot.pick_cycle import DeltaPickCycle, PickPlan
from robot.safety import EStopLatch, Watchdog
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.nodes.line_control import STATE_SUB_QOS
from sorting.runtime.context import Node, NodeContext


class ArmHardware(Protocol):
    name: str

    @property
    def busy_until_s(self) -> float: ...
    def begin(self, plan: PickPlan, t_s: float) -> None: ...
    def advance(self, t_s: float) -> PickOutcome | None: ...


class ArmNode(Node):
    """One arm's executor (see the module docstring)."""

    def __init__(self, ctx: NodeContext, cycle: DeltaPickCycle, hardware: ArmHardware,
                 watchdog: Watchdog | None = None, line_estop: EStopLatch | None = None) -> None:
        super().__init__(ctx)
        self.cycle = cycle
        self.hw = hardware
        self.watchdog = watchdog
        self.arm = cycle.name
        self.belt_speed = 0.0
        self.task: Any = None
        self.pending: Any = None
        self.counts: Counter[str] = Counter()
        self.cycle_times: list[float] = []
        self.first_pick_s: float | None = None
        self.last_pick_s: float | None = None
        rate = float(ctx.declare_parameter("rate_hz", 100.0).value)
        self.pub = ctx.create_publisher("crmsort_msgs/msg/PickResult",
                                        f"robot/{self.arm}/pick_result", 10)
        ctx.create_subscription("crmsort_msgs/msg/PickTask", f"robot/{self.arm}/pick_task",
                                self._on_task, 10)
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states",
                                self._on_belt, 50)
        ctx.create_subscription("crmsort_msgs/msg/SortObjectArray", "sorting/objects",
                                self._on_objects, 5)
        self.line_estop = line_estop
        self._estop_from_control = False
        self._from_xyz: Any = None  # where the next plan starts (None: standby)
        if line_estop is not None:
            ctx.create_subscription("crmsort_msgs/msg/LineControlState", "control/state",
                                    self._on_control, STATE_SUB_QOS)
        ctx.create_timer(1.0 / rate, self._tick)

    def _now(self) -> float:
        return self.ctx.get_clock().now().nanoseconds * 1e-9

    def _on_belt(self, msg: Any) -> None:
        if len(msg.velocity):
            self.belt_speed = float(msg.velocity[0])
        if self.watchdog is not None:
            self.watchdog.feed(stamp_ns(msg.header.stamp) * 1e-9, "encoder")

    def _on_control(self, msg: Any) -> None:
        latch = self.line_estop
        assert latch is not None
        if bool(msg.estop):
            # the arms share one line latch: the first to hear trips it, each one resets
            if not latch.latched:
                latch.trip(f"line E-stop ({msg.reason})", self._now())
            self._estop_from_control = True
            return
        if self._estop_from_control:
            # the controller's RESET: the latch clears, the arm may move again
            self._estop_from_control = False
            latch.reset()
            reset = getattr(self.hw, "reset", None)
            if reset is not None:
                reset()
            # braked mid-move, the arm is not at standby: its next plan starts where it stands
            tcp = getattr(self.hw, "tcp_xyz", None)
            self._from_xyz = None if tcp is None else tcp()

    def _on_objects(self, msg: Any) -> None:
        if self.watchdog is not None:
            self.watchdog.feed(stamp_ns(msg.header.stamp) * 1e-9, "tracking")

    def _result(self, task: Any, outcome: int, message: str, cycle_s: float = 0.0) -> None:
        self.counts[Outcome(outcome).name.lower()] += 1
        self.pub.publish(new(
            "crmsort_msgs/msg/PickResult", header=header(round(self._now() * 1e9), "belt"),
            task_id=task.task_id, object_id=task.object_id, arm=self.arm,
            target_bin=task.target_bin, outcome=outcome, message=message,
            cycle_time_s=cycle_s,
        ))

    def _on_task(self, task: Any) -> None:
        # a task may come while the arm still finishes the previous cycle (a missed pick runs
        # on to the bin): hold it and start when the arm is free; a newer task supersedes it
        if self.pending is not None:
            self._result(self.pending, int(Outcome.ABORTED), "superseded by a newer task")
        self.pending = task
        self._try_start(self._now())

    def _try_start(self, now: float) -> None:
        if self.pending is None or self.task is not None or self.hw.busy_until_s > now + 1e-9:
            return
        task, self.pending = self.pending, None
        p = task.pick_point
        try:
            target = MovingTarget(x_m=float(p.x), y_m=float(p.y), z_m=float(p.z),
                                  t_ref_s=stamp_ns(task.pick_time) * 1e-9,
                                  belt_speed_mps=self.belt_speed)
            plan = self.cycle.plan_pick(target, str(task.target_bin), t_start_s=now,
                                        from_xyz=self._from_xyz,
                                        object_id=int(task.object_id))
            self.hw.begin(plan, now)
            self._from_xyz = None
        except RobotError as exc:
            self._result(task, int(Outcome.UNREACHABLE), f"{type(exc).__name__}: {exc}")
            return
        self.task = task

    def _tick(self) -> None:
        now = self._now()
        out = self.hw.advance(now)
        self._try_start(now)
        if out is None or self.task is None:
            return
        task, self.task = self.task, None
        if out.outcome == Outcome.PICKED:
            self.cycle_times.append(out.cycle_time_s)
            self.first_pick_s = self.first_pick_s if self.first_pick_s is not None else now
            self.last_pick_s = now
        self._result(task, int(out.outcome), out.message, out.cycle_time_s)
