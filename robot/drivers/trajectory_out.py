"""ROS 2 output: a driver that turns a plan into :class:`JointTrajectoryData` and hands it to a
sink (``sorting`` converts it to ``trajectory_msgs/JointTrajectory`` and publishes it, or sends
it as a ``FollowJointTrajectory`` goal to ros2_control). The outcome is unverified."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from robot.drivers.base import ArmState, Outcome, PickOutcome
from robot.motion.trajectory import JointTrajectoryData
from robot.pick_cycle import DeltaPickCycle, PickPlan
from robot.safety import SafetyGuard


class TrajectoryArmDriver:
    """Sample each plan every ``dt_s`` (s) and pass it to ``sink`` after the guard checks the
    plan *and* the sampled points; nothing reaches the sink when a check raises."""

    def __init__(
        self,
        cycle: DeltaPickCycle,
        guard: SafetyGuard,
        sink: Callable[[JointTrajectoryData], None],
        dt_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cycle, self.arm, self.name, self.guard = cycle, cycle.arm, cycle.name, guard
        self.sink, self.dt_s, self.clock = sink, dt_s, clock
        self.belt_speed_mps = 0.0
        self._state = ArmState.IDLE
        self._q = self.arm.standby_q.copy()

    @property
    def state(self) -> ArmState:
        return ArmState.ESTOPPED if self.guard.estopped else self._state

    def trajectory(self, plan: PickPlan) -> JointTrajectoryData:
        traj = plan.to_trajectory(self.arm.joint_names, self.dt_s, f"{self.name}_base_link")
        self.guard.validate_trajectory(traj)
        return traj

    def execute(self, plan: PickPlan) -> PickOutcome:
        self.guard.authorize(plan, plan.t_start_s, self.belt_speed_mps, self._q)
        traj = self.trajectory(plan)
        self.sink(traj)
        self._q = plan.phases[-1].q_end.copy()
        return PickOutcome(
            Outcome.PICKED,
            self.name,
            plan.bin_name,
            plan.object_id,
            "trajectory sent (unverified)",
            plan.cycle_s,
            plan.t_end_s,
            verified=False,
            vacuum_kpa=math.nan,
        )

    def estop(self, reason: str = "E-stop") -> None:
        self.guard.arm_estop.trip(reason, self.clock())

    def reset(self) -> None:
        self.guard.arm_estop.reset()
