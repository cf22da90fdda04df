"""Sampled joint trajectories in a plain dataclass (``sorting`` turns it into
``trajectory_msgs/JointTrajectory``; ``robot`` knows no messages).

Units: positions rad, velocities rad/s, accelerations rad/s², ``time_from_start_s`` s
from ``start_time_s`` (the absolute time the first point is due, s on the line clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from robot.errors import InvalidInputError


@dataclass(frozen=True)
class JointTrajectoryPointData:
    positions: tuple[float, ...]
    velocities: tuple[float, ...]
    accelerations: tuple[float, ...]
    time_from_start_s: float


@dataclass(frozen=True)
class JointTrajectoryData:
    """Joint names and time-ordered points (the fields of ``trajectory_msgs/JointTrajectory``);
    ``frame_id`` is the arm's base link."""

    joint_names: tuple[str, ...]
    points: tuple[JointTrajectoryPointData, ...]
    start_time_s: float = 0.0
    frame_id: str = ""
    vacuum_on_s: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        last = -math.inf
        for k, p in enumerate(self.points):
            if not (len(p.positions) == len(p.velocities) == len(p.accelerations) == n):
                raise InvalidInputError(
                    f"JointTrajectoryData.points[{k}]: expected {n} values per field"
                )
            if not p.time_from_start_s > last:
                raise InvalidInputError(
                    f"JointTrajectoryData.points[{k}].time_from_start_s: must increase, "
                    f"got {p.time_from_start_s} after {last}"
                )
            last = p.time_from_start_s
            if not all(math.isfinite(v) for v in (*p.positions, *p.velocities, *p.accelerations)):
                raise InvalidInputError(f"JointTrajectoryData.points[{k}]: non-finite value")

    @property
    def duration_s(self) -> float:
        return self.points[-1].time_from_start_s if self.points else 0.0
