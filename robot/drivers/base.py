"""The arm-driver interface and what a pick returns.

Every driver (simulated, serial G-code, joint-trajectory output) takes a
:class:`robot.pick_cycle.PickPlan`, passes it through its :class:`robot.safety.SafetyGuard`
(nothing is sent when that raises) and reports a :class:`PickOutcome`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, runtime_checkable

from robot.pick_cycle import PickPlan


class Outcome(IntEnum):
    """Values match ``crmsort_msgs/PickResult.OUTCOME_*``."""

    PICKED = 0
    MISSED = 1  # tool arrived, object not gripped
    DROPPED = 2
    UNREACHABLE = 3
    ABORTED = 4  # fault, E-stop or re-plan


class ArmState(IntEnum):
    IDLE = 0
    MOVING = 1
    BRAKING = 2  # E-stop tripped, joints decelerating
    ESTOPPED = 3  # stopped and latched until reset
    FAULT = 4  # controller alarm / driver error


@dataclass(frozen=True)
class PickOutcome:
    """Result of one pick. ``verified`` is True when a sensor (vacuum pressure) confirmed it;
    ``vacuum_kpa`` is the gauge pressure at verification (NaN without a sensor);
    ``t_s`` is when the outcome became known (line clock, s)."""

    outcome: Outcome
    arm: str
    bin_name: str
    object_id: int
    message: str
    cycle_time_s: float
    t_s: float
    verified: bool = False
    vacuum_kpa: float = math.nan

    @property
    def success(self) -> bool:
        return self.outcome == Outcome.PICKED


@runtime_checkable
class ArmDriver(Protocol):
    """One arm, whatever its hardware."""

    name: str

    @property
    def state(self) -> ArmState: ...

    def execute(self, plan: PickPlan) -> PickOutcome:
        """Run a whole plan (blocking or simulated to its end) and report the outcome; raises
        a typed :class:`robot.errors.RobotError` before sending anything when not allowed."""
        ...

    def estop(self, reason: str = "E-stop") -> None:
        """Latch this arm's E-stop and stop motion within the braking time."""
        ...

    def reset(self) -> None:
        """Clear this arm's E-stop latch / fault after the cause is gone."""
        ...
