"""Simulated delta arm: time-accurate S-curve motion, a suction-grasp model and a vacuum sensor.

The simulator that owns the world passes the object's *truth* as a :class:`GraspTarget`
(where its centre is over time, the height of its top, its mass and how flat its top is);
the plan carries only what the planner predicted. The grasp is decided at mid-dwell, when the
cup rests on the predicted pick point:

- contact: the cup must come down to within ``CONTACT_GAP_M`` of the real top;
- position error ``e`` = distance between cup centre and object centre at mid-dwell; the cup
  (diameter ``d``) seals with probability
  ``0.99 · σ((m + d/4 − e) / (0.08 d)) · √flatness`` where
  ``m = top_min_size/2 − d/2`` is how far the cup can slide and still sit on the top face,
  σ the logistic function;
- vacuum: sealed → ``seal_pressure · (0.7 + 0.3 · flatness)``; leaking → 10 % of it; plus
  N(0, 1.5 kPa) noise. The pick counts as *verified* when the pressure at the end of the dwell
  is below ``grip_threshold_kpa`` (a MISSED pick is reported then);
- holding: the cup holds ``vacuum_capacity_kg × pressure / seal_pressure``; a heavier object
  tears off during the lift (DROPPED, reported at the end of the lift).

E-stop (this arm's or the line's latch) or a stale watchdog mid-move brakes every joint with
:class:`robot.safety.BrakingProfile`; the pick is ABORTED. Same rng seed, same outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robot.drivers.base import ArmState, Outcome, PickOutcome
from robot.errors import InvalidInputError
from robot.pick_cycle import DeltaPickCycle, PickPlan
from robot.safety import BrakingProfile, SafetyGuard

FloatArray = NDArray[np.float64]
CONTACT_GAP_M = 0.005
NOISE_KPA = 1.5


@dataclass(frozen=True)
class GraspTarget:
    """Truth of the object to pick (from the simulator): belt-frame centre ``(x_m, y_m)`` at
    ``t_ref_s`` moving at ``belt_speed_mps`` along x (or ``position_at(t) -> (x, y)`` when
    given, e.g. from the encoder-driven world), top height ``top_z_m``, ``mass_kg``,
    ``flatness`` 0–1 (share of a cup-sized patch that seals) and ``top_min_size_m`` (the
    smallest extent of its top face)."""

    x_m: float
    y_m: float
    t_ref_s: float
    belt_speed_mps: float
    top_z_m: float
    mass_kg: float
    flatness: float = 1.0
    top_min_size_m: float = 0.1
    object_id: int = 0
    position_at: Callable[[float], tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        for name in (
            "x_m",
            "y_m",
            "t_ref_s",
            "belt_speed_mps",
            "top_z_m",
            "mass_kg",
            "top_min_size_m",
        ):
            if not math.isfinite(getattr(self, name)):
                raise InvalidInputError(
                    f"GraspTarget.{name}: must be finite, got {getattr(self, name)}"
                )
        if not 0.0 <= self.flatness <= 1.0:
            raise InvalidInputError(f"GraspTarget.flatness: must be in [0, 1], got {self.flatness}")
        if self.mass_kg < 0 or self.top_min_size_m <= 0:
            raise InvalidInputError("GraspTarget: mass_kg must be >= 0 and top_min_size_m > 0")

    def at(self, t_s: float) -> tuple[float, float]:
        if self.position_at is not None:
            return self.position_at(t_s)
        return (self.x_m + self.belt_speed_mps * (t_s - self.t_ref_s), self.y_m)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass(frozen=True)
class _Decision:
    outcome: Outcome
    t_report_s: float
    pressure_kpa: float
    message: str
    position_error_m: float


class SimArmDriver:
    """A simulated delta arm on the line clock. Use :meth:`begin` + :meth:`advance` from a
    node's timer, or :meth:`execute` to run one plan to its end."""

    def __init__(self, cycle: DeltaPickCycle, guard: SafetyGuard, rng: np.random.Generator) -> None:
        self.cycle = cycle
        self.arm = cycle.arm
        self.name = cycle.name
        self.guard = guard
        self._rng = rng
        self.t_s = 0.0
        self.belt_speed_mps = 0.0
        self._q = self.arm.standby_q.copy()
        self._state = ArmState.IDLE
        self._plan: PickPlan | None = None
        self._target: GraspTarget | None = None
        self._decision: _Decision | None = None
        self._reported = False
        self._braking: BrakingProfile | None = None
        self.last_position_error_m = math.nan
        self.commands_accepted = 0  # plans that passed the guard (what "sent" means here)

    # -- state ----------------------------------------------------------------------------------
    @property
    def state(self) -> ArmState:
        if self._state == ArmState.IDLE and self.guard.estopped:
            return ArmState.ESTOPPED
        return self._state

    @property
    def busy_until_s(self) -> float:
        return self._plan.t_end_s if self._plan is not None else self.t_s

    def joint_state(self, t_s: float) -> tuple[FloatArray, FloatArray]:
        """Joint positions (rad) and velocities (rad/s) at ``t_s`` (≥ the last advance)."""
        if self._braking is not None:
            return self._braking.state_at(t_s)
        if self._plan is not None:
            q, qd, _ = self._plan.state_at(t_s)
            return q, qd
        return self._q.copy(), np.zeros(3)

    def tcp_xyz(self, t_s: float | None = None) -> FloatArray:
        """Belt-frame TCP position (m)."""
        return self.arm.fk(self.joint_state(self.t_s if t_s is None else t_s)[0])

    def vacuum_kpa(self, t_s: float) -> float:
        """Gauge pressure at the cup (kPa, ≤ 0): ramps up during the dwell (τ = dwell/4)."""
        plan, d = self._plan, self._decision
        if plan is None or d is None or self._braking is not None or not plan.vacuum_at(t_s):
            return 0.0
        if d.outcome == Outcome.DROPPED and t_s >= d.t_report_s:
            return 0.1 * self.arm.config.gripper.seal_pressure_kpa
        tau = max(self.cycle.dwell_s / 4.0, 1e-3)
        return d.pressure_kpa * (1.0 - math.exp(-(t_s - plan.t_contact_s) / tau))

    # -- commands -------------------------------------------------------------------------------
    def begin(
        self,
        plan: PickPlan,
        target: GraspTarget | None,
        t_s: float,
    ) -> None:
        """Start ``plan`` at ``t_s`` (≤ plan start). The guard runs first: E-stop, watchdog,
        belt moving (``target.belt_speed_mps`` or :attr:`belt_speed_mps`), limits, the
        planned payload (``plan.payload_kg``) and that the plan starts where the arm is; on any
        error nothing moves."""
        if self._state in (ArmState.MOVING, ArmState.BRAKING):
            raise InvalidInputError(f"{self.name}: busy until t={self.busy_until_s:.3f} s")
        if target is not None:
            self.belt_speed_mps = target.belt_speed_mps
        self.advance(t_s)
        self.guard.authorize(plan, t_s, self.belt_speed_mps, self._q)
        self.commands_accepted += 1
        self._plan, self._target, self._reported = plan, target, False
        self._decision = self._decide(plan, target)
        self.last_position_error_m = self._decision.position_error_m
        self._state = ArmState.MOVING

    def advance(self, t_s: float) -> PickOutcome | None:
        """Move the simulation to ``t_s``; returns the pick's outcome once, when it is known."""
        if not math.isfinite(t_s):
            raise InvalidInputError(f"{self.name}: advance time must be finite, got {t_s}")
        t_s = max(t_s, self.t_s)
        out: PickOutcome | None = None
        plan = self._plan
        if plan is not None and self._state == ArmState.MOVING:
            t_stop = self._stop_time(plan, t_s)
            if t_stop is not None:
                q, qd, _ = plan.state_at(t_stop)
                self._braking = self.guard.braking(t_stop, q, qd)
                self._state = ArmState.BRAKING
                why = "E-stop" if self.guard.estopped else "watchdog: stale data"
                out = self._outcome(Outcome.ABORTED, t_stop, why, math.nan)
            else:
                d = self._decision
                if d is not None and not self._reported and t_s >= d.t_report_s:
                    out = self._outcome(d.outcome, d.t_report_s, d.message, d.pressure_kpa)
                if t_s >= plan.t_end_s:
                    self._q = plan.phases[-1].q_end.copy()
                    self._plan, self._state = None, ArmState.IDLE
        if self._braking is not None:
            self._q = self._braking.state_at(t_s)[0]
            if t_s >= self._braking.t0_s + self._braking.stop_time_s:
                self._state = ArmState.ESTOPPED if self.guard.estopped else ArmState.IDLE
                if self._state == ArmState.IDLE:
                    self._braking, self._plan = None, None
        self.t_s = t_s
        return out

    def execute(self, plan: PickPlan, target: GraspTarget | None = None) -> PickOutcome:
        """Run ``plan`` from its start to its end (simulated time) and return the outcome."""
        self.begin(plan, target, plan.t_start_s)
        outcome: PickOutcome | None = None
        for t in (plan.t_grip_s, plan.t_end_s):
            got = self.advance(t)
            outcome = outcome or got
        assert outcome is not None
        return outcome

    def estop(self, reason: str = "E-stop", t_s: float | None = None) -> None:
        """Latch this arm's E-stop at ``t_s`` (default: the current simulated time)."""
        t = self.t_s if t_s is None else t_s
        self.guard.arm_estop.trip(reason, t)

    def reset(self) -> None:
        """Clear this arm's latch. The arm stays where it stopped (plan from :meth:`tcp_xyz`);
        it remains ESTOPPED while the line's latch is set."""
        self.guard.arm_estop.reset()
        if self._state in (ArmState.ESTOPPED, ArmState.FAULT) and not self.guard.estopped:
            if self._braking is not None:
                self._q = self._braking.state_at(self.t_s)[0]
            self._braking, self._plan, self._state = None, None, ArmState.IDLE

    # -- internals ------------------------------------------------------------------------------
    def _stop_time(self, plan: PickPlan, t_s: float) -> float | None:
        times = []
        for latch in (self.guard.arm_estop, self.guard.line_estop):
            if latch.latched:
                t_trip = latch.t_trip_s if math.isfinite(latch.t_trip_s) else self.t_s
                times.append(min(max(t_trip, self.t_s), t_s))
        wd = self.guard.watchdog
        if wd is not None and wd.stale_sources(t_s):
            times.append(t_s)
        return min(times) if times else None

    def _outcome(self, kind: Outcome, t: float, msg: str, kpa: float) -> PickOutcome:
        self._reported = True
        plan = self._plan
        assert plan is not None
        return PickOutcome(
            kind,
            self.name,
            plan.bin_name,
            plan.object_id,
            msg,
            t - plan.t_start_s,
            t,
            verified=not math.isnan(kpa),
            vacuum_kpa=kpa,
        )

    def _decide(self, plan: PickPlan, target: GraspTarget | None) -> _Decision:
        g = self.arm.config.gripper
        noise = float(self._rng.normal(0.0, NOISE_KPA))
        u = float(self._rng.random())
        if target is None:
            return _Decision(
                Outcome.MISSED,
                plan.t_grip_s,
                min(0.0, 0.05 * g.seal_pressure_kpa + noise),
                "no object under the cup",
                math.nan,
            )
        t_mid = plan.t_contact_s + self.cycle.dwell_s / 2.0
        ox, oy = target.at(t_mid)
        px, py, pz = plan.pick_xyz
        err = math.hypot(px - ox, py - oy)
        gap = pz - target.top_z_m
        leak = min(0.0, 0.1 * g.seal_pressure_kpa + noise)
        if gap > CONTACT_GAP_M:
            return _Decision(
                Outcome.MISSED,
                plan.t_grip_s,
                leak,
                f"no contact: cup {gap * 1000:.1f} mm above the object",
                err,
            )
        d = g.cup_diameter_m
        margin = target.top_min_size_m / 2.0 - d / 2.0
        overlap = _sigmoid((margin + d / 4.0 - err) / (0.08 * d))
        p_seal = 0.99 * overlap * math.sqrt(target.flatness)
        if u >= p_seal:
            return _Decision(
                Outcome.MISSED,
                plan.t_grip_s,
                leak,
                f"no seal (position error {err * 1000:.1f} mm, flatness {target.flatness:.2f})",
                err,
            )
        pressure = min(0.0, g.seal_pressure_kpa * (0.7 + 0.3 * target.flatness) + noise)
        if pressure > g.grip_threshold_kpa:
            return _Decision(
                Outcome.MISSED,
                plan.t_grip_s,
                pressure,
                f"vacuum {pressure:.1f} kPa above threshold {g.grip_threshold_kpa} kPa",
                err,
            )
        hold_kg = g.vacuum_capacity_kg * pressure / g.seal_pressure_kpa
        if target.mass_kg > hold_kg:
            t_lift = next(ph.t_end_s for ph in plan.phases if ph.name == "lift")
            return _Decision(
                Outcome.DROPPED,
                t_lift,
                pressure,
                f"object {target.mass_kg:.2f} kg tore off the cup (holds {hold_kg:.2f} kg)",
                err,
            )
        return _Decision(
            Outcome.PICKED, plan.t_end_s, pressure, f"picked into {plan.bin_name}", err
        )
