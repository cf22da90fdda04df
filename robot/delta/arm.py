"""A delta arm placed on the line: belt-frame kinematics, checked IK and joint-move timing.

:class:`DeltaArm` wraps an :class:`robot.config.ArmConfig`: it converts between the belt
frame and the arm frame (base pose: translation + yaw), solves checked IK (workspace and
joint limits), and times synchronized S-curve joint moves between belt-frame points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from robot.config import ArmConfig
from robot.delta.kinematics import (
    JOINT_NAMES,
    DeltaGeometry,
    Workspace,
    check_joints,
    forward,
    inverse_checked,
)
from robot.errors import InvalidInputError, RobotError, UnreachableError
from robot.motion.scurve import JointMove, SCurve, plan_joint_move

FloatArray = NDArray[np.float64]
Xyz = tuple[float, float, float]


def finite_xyz(p: Sequence[float] | FloatArray, what: str) -> Xyz:
    """``p`` as a 3-tuple of floats; :class:`InvalidInputError` if not 3 finite numbers."""
    arr = np.asarray(p, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise InvalidInputError(
            f"{what}: expected 3 finite coordinates (m), got {np.asarray(p).tolist()}"
        )
    return float(arr[0]), float(arr[1]), float(arr[2])


class DeltaArm:
    """Kinematics and timing of one delta arm in belt coordinates (m, rad, s)."""

    def __init__(self, config: ArmConfig) -> None:
        self.config = config
        self.name = config.name
        g = config.geometry
        self.geometry = DeltaGeometry(
            g.base_radius_m, g.effector_radius_m, g.upper_arm_m, g.forearm_m, g.tool_length_m
        )
        b, ws = config.base, config.workspace
        self.workspace = Workspace(ws.radius_m, ws.z_low_m - b.z_m, ws.z_high_m - b.z_m)
        self._base = np.array([b.x_m, b.y_m, b.z_m])
        c, s = math.cos(b.yaw_rad), math.sin(b.yaw_rad)
        self._rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # arm → belt
        j = config.joints
        self.q_min, self.q_max = j.min_rad, j.max_rad
        self.v_max = np.full(3, j.max_velocity_rps)
        self.a_max = np.full(3, j.max_acceleration_rps2)
        self.j_max = np.full(3, j.max_jerk_rps3)
        self.joint_names = tuple(f"{self.name}_{n}" for n in JOINT_NAMES)
        self.standby_xyz: Xyz = config.standby
        self.standby_q = self.ik(self.standby_xyz)

    # -- frames -------------------------------------------------------------------------------
    def to_arm(self, p_belt: Sequence[float] | FloatArray) -> FloatArray:
        """Belt-frame point → arm frame (m)."""
        return np.asarray(self._rot.T @ (np.asarray(p_belt, dtype=np.float64) - self._base))

    def to_belt(self, p_arm: Sequence[float] | FloatArray) -> FloatArray:
        """Arm-frame point → belt frame (m)."""
        return np.asarray(self._rot @ np.asarray(p_arm, dtype=np.float64) + self._base)

    # -- kinematics ---------------------------------------------------------------------------
    def ik(self, p_belt: Sequence[float] | FloatArray, what: str = "target") -> FloatArray:
        """Joint angles (rad) for a belt-frame TCP point; raises :class:`InvalidInputError`
        (NaN), :class:`UnreachableError` (outside the workspace) or :class:`LimitViolation`."""
        p = finite_xyz(p_belt, what)
        try:
            return inverse_checked(
                self.geometry, self.workspace, self.q_min, self.q_max, self.to_arm(p)
            )
        except UnreachableError as exc:
            raise UnreachableError(f"{self.name}: {what} {p} (belt frame): {exc}") from None

    def fk(self, q: Sequence[float] | FloatArray) -> FloatArray:
        """Belt-frame TCP point (m) for joint angles ``q`` (rad)."""
        return self.to_belt(forward(self.geometry, q))

    def check_joints(self, q: Sequence[float] | FloatArray, what: str = "joints") -> FloatArray:
        return check_joints(q, self.q_min, self.q_max, f"{self.name}: {what}")

    def reachable(self, p_belt: Sequence[float] | FloatArray) -> bool:
        """True when the belt-frame point is in the workspace (and IK solves within limits)."""
        try:
            self.ik(p_belt)
        except RobotError:
            return False
        return True

    def reach_x_range_m(self, y_m: float, z_m: float = 0.0) -> tuple[float, float] | None:
        """Belt-frame x interval the TCP reaches at lateral ``y_m`` and height ``z_m`` (m);
        None if out of reach. The workspace is a cylinder about the (vertical) base axis."""
        if not (math.isfinite(y_m) and math.isfinite(z_m)):
            return None
        ws = self.config.workspace
        if not ws.z_low_m <= z_m <= ws.z_high_m:
            return None
        dy = y_m - float(self._base[1])
        if abs(dy) > ws.radius_m:
            return None
        half = math.sqrt(ws.radius_m**2 - dy * dy)
        return float(self._base[0]) - half, float(self._base[0]) + half

    # -- timing -------------------------------------------------------------------------------
    def move(self, q0: FloatArray, q1: FloatArray) -> JointMove:
        """Synchronized minimum-time S-curve between two joint vectors (rad)."""
        return plan_joint_move(q0, q1, self.v_max, self.a_max, self.j_max)

    def move_duration_s(self, q0: FloatArray, q1: FloatArray) -> float:
        """Duration (s) of :meth:`move` without building the profile (fast path)."""
        dq = [abs(float(b) - float(a)) for a, b in zip(q0, q1, strict=True)]
        big = max(dq)
        if big == 0.0:
            return 0.0
        # identical per-joint limits (one JointLimitsConfig): the largest step sets the pace
        v, a, j = float(self.v_max[0]) / big, float(self.a_max[0]) / big, float(self.j_max[0]) / big
        return SCurve.plan(1.0, v, a, j).duration_s

    def move_time_s(self, p0_belt: Sequence[float], p1_belt: Sequence[float]) -> float:
        """Duration (s) of the joint move between two belt-frame TCP points."""
        return self.move_duration_s(self.ik(p0_belt, "start"), self.ik(p1_belt, "goal"))
