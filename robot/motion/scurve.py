r"""Jerk-limited point-to-point timing: the 7-segment S-curve, per joint and synchronized.

A rest-to-rest move of distance :math:`D \ge 0` under limits :math:`v, a, j` (velocity,
acceleration, jerk; all > 0) is time-optimal when it runs, in order, the seven segments
jerk :math:`+j, 0, -j, 0, -j, 0, +j` with durations
:math:`T_j, T_a - 2T_j, T_j, T_v, T_j, T_a - 2T_j, T_j` (Biagiotti & Melchiorri, *Trajectory
Planning for Automatic Machines and Robots*, 2008, §3.4, symmetric case):

- cruise reached: if :math:`vj \ge a^2`, :math:`T_j = a/j,\ T_a = T_j + v/a`, else
  :math:`T_j = \sqrt{v/j},\ T_a = 2T_j`; then :math:`T_v = D/v - T_a` (≥ 0 needed);
- no cruise, :math:`a` reached: :math:`T_j = a/j`,
  :math:`T_a = \big(T_j + \sqrt{T_j^2 + 4D/a}\big)/2` (valid while :math:`T_a \ge 2T_j`);
- neither: :math:`T_j = (D/2j)^{1/3},\ T_a = 2T_j`.

Total time :math:`T = 2T_a + T_v`. With all limits reached it equals the trapezoid's
:math:`D/v + v/a` plus :math:`a/j`.

Several joints are synchronized by moving them along the straight joint-space line
:math:`q(t) = q_0 + s(t)\,\Delta q` with one normalized S-curve :math:`s: 0 \to 1` whose limits
are the tightest of :math:`v_k/|\Delta q_k|`, :math:`a_k/|\Delta q_k|`, :math:`j_k/|\Delta q_k|`,
so every joint starts and stops together and stays within its own limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from robot.errors import InvalidInputError

FloatArray = NDArray[np.float64]


def _positive(value: float, name: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"S-curve: {name} must be finite and > 0, got {value}")
    return float(value)


@dataclass(frozen=True)
class SCurve:
    """A rest-to-rest S-curve of ``distance`` (≥ 0, any unit u) under limits ``v_max``
    (u/s), ``a_max`` (u/s²), ``j_max`` (u/s³). Build with :meth:`plan`."""

    distance: float
    j: float
    t_j: float
    t_a: float
    t_v: float

    @classmethod
    def plan(cls, distance: float, v_max: float, a_max: float, j_max: float) -> SCurve:
        """Minimum-time profile; raises :class:`InvalidInputError` for a negative or non-finite
        distance or a non-positive limit."""
        if not (math.isfinite(distance) and distance >= 0):
            raise InvalidInputError(f"S-curve: distance must be finite and >= 0, got {distance}")
        v = _positive(v_max, "v_max")
        a = _positive(a_max, "a_max")
        j = _positive(j_max, "j_max")
        if distance == 0.0:
            return cls(0.0, j, 0.0, 0.0, 0.0)
        if v * j >= a * a:
            t_j, t_a = a / j, a / j + v / a
        else:
            t_j = math.sqrt(v / j)
            t_a = 2.0 * t_j
        t_v = distance / v - t_a
        if t_v < 0.0:
            t_v = 0.0
            t_j = a / j
            t_a = 0.5 * (t_j + math.sqrt(t_j * t_j + 4.0 * distance / a))
            if t_a < 2.0 * t_j:
                t_j = (distance / (2.0 * j)) ** (1.0 / 3.0)
                t_a = 2.0 * t_j
        return cls(float(distance), j, t_j, t_a, t_v)

    @property
    def duration_s(self) -> float:
        return 2.0 * self.t_a + self.t_v

    @property
    def peak_acceleration(self) -> float:
        return self.j * self.t_j

    @property
    def peak_velocity(self) -> float:
        return self.peak_acceleration * (self.t_a - self.t_j)

    def _segments(self) -> tuple[list[float], list[float]]:
        tc = max(self.t_a - 2.0 * self.t_j, 0.0)
        durations = [self.t_j, tc, self.t_j, self.t_v, self.t_j, tc, self.t_j]
        jerks = [self.j, 0.0, -self.j, 0.0, -self.j, 0.0, self.j]
        return durations, jerks

    def evaluate(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Position, velocity, acceleration, jerk at times ``t`` (s, any shape; clipped to
        [0, duration]). Position is exactly ``distance`` at and after the end."""
        tt = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration_s)
        pos = np.zeros_like(tt)
        vel = np.zeros_like(tt)
        acc = np.zeros_like(tt)
        jerk = np.zeros_like(tt)
        if self.distance == 0.0:
            return pos, vel, acc, jerk
        durations, jerks = self._segments()
        p0 = v0 = a0 = 0.0
        start = 0.0
        for k, (dur, jk) in enumerate(zip(durations, jerks, strict=True)):
            end = start + dur
            mask = (tt >= start) & ((tt < end) if k < 6 else (tt <= end))
            if np.any(mask):
                tau = tt[mask] - start
                pos[mask] = p0 + v0 * tau + a0 * tau**2 / 2 + jk * tau**3 / 6
                vel[mask] = v0 + a0 * tau + jk * tau**2 / 2
                acc[mask] = a0 + jk * tau
                jerk[mask] = jk
            p0, v0, a0 = (
                p0 + v0 * dur + a0 * dur**2 / 2 + jk * dur**3 / 6,
                v0 + a0 * dur + jk * dur**2 / 2,
                a0 + jk * dur,
            )
            start = end
        done = tt >= self.duration_s
        pos[done] = self.distance
        vel[done] = 0.0
        acc[done] = 0.0
        return pos, vel, acc, jerk


def trapezoid_time_s(distance: float, v_max: float, a_max: float) -> float:
    """Minimum time of the acceleration-limited (infinite jerk) rest-to-rest move, s."""
    if distance <= v_max * v_max / a_max:
        return 2.0 * math.sqrt(distance / a_max)
    return distance / v_max + v_max / a_max


@dataclass(frozen=True)
class JointMove:
    """A synchronized rest-to-rest joint move ``q(t) = q0 + s(t) (q1 - q0)`` (rad, s)."""

    q0: FloatArray
    q1: FloatArray
    profile: SCurve

    @property
    def duration_s(self) -> float:
        return self.profile.duration_s

    def sample(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Joint positions, velocities, accelerations, jerks at times ``t`` (s, shape (n,));
        each output has shape (n, n_joints)."""
        s, sd, sdd, sddd = self.profile.evaluate(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        dq = self.q1 - self.q0
        q = self.q0[None, :] + s[:, None] * dq[None, :]
        q[s >= 1.0] = self.q1
        return q, sd[:, None] * dq, sdd[:, None] * dq, sddd[:, None] * dq


def plan_joint_move(
    q0: Sequence[float] | FloatArray,
    q1: Sequence[float] | FloatArray,
    v_max: Sequence[float] | FloatArray | float,
    a_max: Sequence[float] | FloatArray | float,
    j_max: Sequence[float] | FloatArray | float,
) -> JointMove:
    """Synchronized minimum-time S-curve from ``q0`` to ``q1`` (rad) under per-joint limits
    (rad/s, rad/s², rad/s³; a scalar applies to every joint). Raises
    :class:`InvalidInputError` on shape mismatch, non-finite values or non-positive limits."""
    a0 = np.asarray(q0, dtype=np.float64)
    a1 = np.asarray(q1, dtype=np.float64)
    lims = [
        np.broadcast_to(np.asarray(x, dtype=np.float64), a0.shape) for x in (v_max, a_max, j_max)
    ]
    if a0.ndim != 1 or a0.shape != a1.shape:
        raise InvalidInputError(
            f"joint move: q0 {a0.shape} and q1 {a1.shape} must be equal 1-D shapes"
        )
    if not (np.all(np.isfinite(a0)) and np.all(np.isfinite(a1))):
        raise InvalidInputError(
            f"joint move: non-finite joint positions {a0.tolist()} → {a1.tolist()}"
        )
    for name, lim in zip(("v_max", "a_max", "j_max"), lims, strict=True):
        if not np.all(np.isfinite(lim)) or np.any(lim <= 0):
            raise InvalidInputError(
                f"joint move: {name} must be finite and > 0, got {lim.tolist()}"
            )
    dq = np.abs(a1 - a0)
    moving = dq > 0
    if not np.any(moving):
        return JointMove(a0.copy(), a1.copy(), SCurve.plan(0.0, 1.0, 1.0, 1.0))
    v_s, a_s, j_s = (float(np.min(lim[moving] / dq[moving])) for lim in lims)
    return JointMove(a0.copy(), a1.copy(), SCurve.plan(1.0, v_s, a_s, j_s))
