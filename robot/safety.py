"""Motion safety: the checks every driver command passes through.

- **Limits** (:meth:`SafetyGuard.validate_plan`): joint positions, velocities, accelerations
  and jerks of every phase against the arm's limits (exact, from the S-curve parameters:
  a synchronized joint-space line is monotone per joint, so its end points bound the
  positions); the TCP stays in the workspace cylinder (sampled, 2 mm slack for the joint-space
  curve between in-workspace end points) and under ``max_tcp_speed_mps``; phases are
  continuous; the payload is within ``max_payload_kg``.
- **E-stop** (:class:`EStopLatch`): per arm and one for the whole line. Tripped, it stays
  latched until :meth:`EStopLatch.reset`; a moving arm brakes every joint at constant
  deceleration ``v_max / braking_time_s`` (:class:`BrakingProfile`), so it stands still
  within ``braking_time_s`` from any speed up to ``v_max``.
- **Watchdog** (:class:`Watchdog`): ``feed(t, source)`` on every tracking/encoder update;
  ``check(t)`` raises :class:`WatchdogStale` when a source is older than the timeout, and
  the arms hold.
- **Belt**: no pick starts while the belt is slower than ``min_belt_speed_mps``.

Anything that fails raises a typed :class:`robot.errors.RobotError` *before* a driver sends a
byte (drivers call :meth:`SafetyGuard.authorize` first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robot.delta.arm import DeltaArm
from robot.delta.kinematics import JOINT_NAMES
from robot.errors import (
    BeltStopped,
    EStopActive,
    InvalidInputError,
    LimitViolation,
    PayloadViolation,
    WatchdogStale,
    WorkspaceViolation,
)
from robot.motion.trajectory import JointTrajectoryData
from robot.pick_cycle import PickPlan

FloatArray = NDArray[np.float64]
WORKSPACE_SLACK_M = 0.002
REL_TOL = 1e-9


class EStopLatch:
    """A latched emergency stop: :meth:`trip` sets it, only :meth:`reset` clears it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latched = False
        self.reason = ""
        self.t_trip_s = math.nan

    def trip(self, reason: str, t_s: float = math.nan) -> None:
        if not self.latched:  # the first cause and time are the ones that matter
            self.latched, self.reason, self.t_trip_s = True, reason, t_s

    def reset(self) -> None:
        self.latched, self.reason, self.t_trip_s = False, "", math.nan

    def check(self) -> None:
        if self.latched:
            raise EStopActive(
                f"E-stop {self.name!r} latched since t={self.t_trip_s:.3f} s: {self.reason}"
            )


class Watchdog:
    """Holds the arms when a data source (``tracking``, ``encoder`` …) is older than
    ``timeout_s``. A source never fed counts as stale."""

    def __init__(self, timeout_s: float, sources: Iterable[str] = ("tracking", "encoder")) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise InvalidInputError(f"Watchdog.timeout_s: must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._last: dict[str, float] = {s: -math.inf for s in sources}

    def feed(self, t_s: float, source: str = "tracking") -> None:
        if source not in self._last:
            raise InvalidInputError(
                f"Watchdog.feed: unknown source {source!r} ({sorted(self._last)})"
            )
        if math.isfinite(t_s):
            self._last[source] = max(self._last[source], t_s)

    def stale_sources(self, t_s: float) -> list[str]:
        return [s for s, last in self._last.items() if not t_s - last <= self.timeout_s]

    def hold_reason(self, t_s: float) -> str | None:
        """Why the arms hold at ``t_s`` (s) — which sources are how old — or None while every
        source is fresh. The text :meth:`check` raises and diagnostics show."""
        stale = self.stale_sources(t_s)
        if not stale:
            return None
        ages = ", ".join(f"{s} {t_s - self._last[s]:.3f} s old" for s in stale)
        return f"watchdog: stale data ({ages}; timeout {self.timeout_s} s): arms hold"

    def check(self, t_s: float) -> None:
        reason = self.hold_reason(t_s)
        if reason is not None:
            raise WatchdogStale(reason)


@dataclass(frozen=True)
class BrakingProfile:
    """Constant-deceleration stop of every joint from ``(q0, qd0)`` at ``t0_s``."""

    t0_s: float
    q0: FloatArray
    qd0: FloatArray
    decel: FloatArray

    @property
    def stop_time_s(self) -> float:
        return float(np.max(np.abs(self.qd0) / self.decel)) if self.qd0.size else 0.0

    def state_at(self, t_s: float) -> tuple[FloatArray, FloatArray]:
        """Joint positions and velocities at ``t_s`` (≥ t0)."""
        tau_stop = np.abs(self.qd0) / self.decel
        tau = np.minimum(max(t_s - self.t0_s, 0.0), tau_stop)
        sign = np.sign(self.qd0)
        q = self.q0 + self.qd0 * tau - sign * self.decel * tau**2 / 2
        qd = self.qd0 - sign * self.decel * tau
        qd[tau >= tau_stop] = 0.0
        return q, qd


class SafetyGuard:
    """The gate every command of one arm passes through (see the module docstring)."""

    def __init__(
        self, arm: DeltaArm, line_estop: EStopLatch | None = None, watchdog: Watchdog | None = None
    ) -> None:
        self.arm = arm
        s = arm.config.safety
        self.limits = s
        self.arm_estop = EStopLatch(arm.name)
        self.line_estop = line_estop if line_estop is not None else EStopLatch("line")
        self.watchdog = watchdog

    # -- state ----------------------------------------------------------------------------------
    @property
    def estopped(self) -> bool:
        return self.arm_estop.latched or self.line_estop.latched

    def braking(self, t_s: float, q: FloatArray, qd: FloatArray) -> BrakingProfile:
        decel = self.arm.v_max / self.limits.braking_time_s
        return BrakingProfile(t_s, q.copy(), qd.copy(), decel)

    def check_motion_allowed(self, t_s: float, belt_speed_mps: float) -> None:
        """Raise :class:`EStopActive`, :class:`WatchdogStale` or :class:`BeltStopped`."""
        self.arm_estop.check()
        self.line_estop.check()
        if not math.isfinite(t_s):
            raise InvalidInputError(f"{self.arm.name}: time must be finite, got {t_s}")
        if self.watchdog is not None:
            self.watchdog.check(t_s)
        if not (math.isfinite(belt_speed_mps) and belt_speed_mps >= self.limits.min_belt_speed_mps):
            raise BeltStopped(
                f"{self.arm.name}: belt speed {belt_speed_mps} m/s below "
                f"{self.limits.min_belt_speed_mps} m/s: no picks while the belt is stopped"
            )

    # -- limits ---------------------------------------------------------------------------------
    def check_payload(self, payload_kg: float) -> None:
        if not (math.isfinite(payload_kg) and payload_kg >= 0):
            raise InvalidInputError(
                f"{self.arm.name}: payload must be finite and >= 0 kg, got {payload_kg}"
            )
        if payload_kg > self.limits.max_payload_kg:
            raise PayloadViolation(
                f"{self.arm.name}: payload {payload_kg:.3f} kg exceeds "
                f"{self.limits.max_payload_kg} kg"
            )

    def check_tcp(self, p_belt: FloatArray | tuple[float, float, float], what: str = "tcp") -> None:
        """Raise :class:`WorkspaceViolation` unless the belt-frame point is in the workspace."""
        p = np.asarray(p_belt, dtype=np.float64)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise InvalidInputError(
                f"{self.arm.name}: {what}: expected 3 finite coordinates, got {p.tolist()}"
            )
        ws = self.arm.workspace
        a = self.arm.to_arm(p)
        r = math.hypot(float(a[0]), float(a[1]))
        if r > ws.radius_m + WORKSPACE_SLACK_M or not (
            ws.z_min_m - WORKSPACE_SLACK_M <= a[2] <= ws.z_max_m + WORKSPACE_SLACK_M
        ):
            raise WorkspaceViolation(
                f"{self.arm.name}: {what} {p.round(4).tolist()} (belt) is outside the workspace"
            )

    def _check_peak(self, value: FloatArray, limit: FloatArray, what: str, phase: str) -> None:
        for k in range(value.size):
            if abs(value[k]) > limit[k] * (1 + REL_TOL):
                raise LimitViolation(
                    f"{self.arm.name}: phase {phase!r}: {JOINT_NAMES[k]} {what} "
                    f"{abs(value[k]):.4g} "
                    f"exceeds {limit[k]:.4g}"
                )

    def validate_plan(self, plan: PickPlan) -> None:
        """Raise a :class:`LimitViolation` (or subclass) / :class:`InvalidInputError` unless the
        whole plan keeps every limit."""
        a = self.arm
        if plan.arm != a.name:
            raise InvalidInputError(f"{a.name}: plan is for arm {plan.arm!r}")
        self.check_payload(plan.payload_kg)
        prev_end: FloatArray | None = None
        prev_t: float | None = None
        for ph in plan.phases:
            if not (
                math.isfinite(ph.t_start_s) and math.isfinite(ph.duration_s) and ph.duration_s >= 0
            ):
                raise InvalidInputError(
                    f"{a.name}: phase {ph.name!r}: bad time {ph.t_start_s}+{ph.duration_s}"
                )
            a.check_joints(ph.q_start, f"phase {ph.name!r} start")
            a.check_joints(ph.q_end, f"phase {ph.name!r} end")
            if prev_end is not None and (
                not np.allclose(prev_end, ph.q_start, atol=1e-9)
                or abs(ph.t_start_s - (prev_t or 0.0)) > 1e-9
            ):
                raise LimitViolation(
                    f"{a.name}: phase {ph.name!r} does not continue the previous one"
                )
            prev_end, prev_t = ph.q_end, ph.t_end_s
            if ph.move is None:
                if not np.allclose(ph.q_start, ph.q_end, atol=1e-12):
                    raise LimitViolation(f"{a.name}: dwell phase {ph.name!r} moves")
                self.check_tcp(a.fk(ph.q_start), f"phase {ph.name!r}")
                continue
            mv = ph.move
            if not (
                np.allclose(mv.q0, ph.q_start, atol=1e-12)
                and np.allclose(mv.q1, ph.q_end, atol=1e-12)
            ):
                raise LimitViolation(
                    f"{a.name}: phase {ph.name!r}: move does not match its end points"
                )
            if abs(mv.duration_s - ph.duration_s) > 1e-9:
                raise LimitViolation(
                    f"{a.name}: phase {ph.name!r}: duration differs from its profile"
                )
            dq = mv.q1 - mv.q0
            prof = mv.profile
            self._check_peak(prof.peak_velocity * dq, a.v_max, "velocity (rad/s)", ph.name)
            self._check_peak(prof.peak_acceleration * dq, a.a_max, "acceleration (rad/s²)", ph.name)
            self._check_peak(prof.j * dq, a.j_max, "jerk (rad/s³)", ph.name)
            if mv.duration_s > 0:
                ts = np.linspace(0.0, mv.duration_s, 17)
                qs = mv.sample(ts)[0]
                tcp = np.array([a.fk(q) for q in qs])
                for p in tcp:
                    self.check_tcp(p, f"phase {ph.name!r} path point")
                speed = np.linalg.norm(np.diff(tcp, axis=0), axis=1) / np.diff(ts)
                if float(np.max(speed)) > self.limits.max_tcp_speed_mps:
                    raise LimitViolation(
                        f"{a.name}: phase {ph.name!r}: TCP speed "
                        f"{float(np.max(speed)):.2f} m/s exceeds "
                        f"{self.limits.max_tcp_speed_mps} m/s"
                    )

    def validate_trajectory(self, traj: JointTrajectoryData) -> None:
        """Positions, velocities and accelerations of every sampled point within limits."""
        for k, p in enumerate(traj.points):
            self.arm.check_joints(np.array(p.positions), f"trajectory point {k}")
            self._check_peak(
                np.array(p.velocities), self.arm.v_max, "velocity (rad/s)", f"point {k}"
            )
            self._check_peak(
                np.array(p.accelerations), self.arm.a_max, "acceleration (rad/s²)", f"point {k}"
            )

    def authorize(
        self,
        plan: PickPlan,
        t_s: float,
        belt_speed_mps: float,
        q_now: FloatArray | None = None,
    ) -> None:
        """Everything at once, before a driver sends anything: E-stop, watchdog, belt, limits,
        payload (``plan.payload_kg``), and that the plan starts where the arm is (``q_now``)."""
        self.check_motion_allowed(t_s, belt_speed_mps)
        self.validate_plan(plan)
        if q_now is not None and not np.allclose(q_now, plan.phases[0].q_start, atol=1e-6):
            raise LimitViolation(
                f"{self.arm.name}: plan starts at "
                f"{plan.phases[0].q_start.round(4).tolist()} rad but the "
                f"arm is at {np.asarray(q_now).round(4).tolist()} rad"
            )
