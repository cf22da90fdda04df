"""The pick cycle of a delta picker: approach, descend, vacuum on + dwell, lift, move to bin,
release, return — each phase a synchronized S-curve joint move or a dwell.

Timing model (all moves rest-to-rest in joint space; see ``robot.motion.scurve``):

====  ===========  =====================================================================
 #    phase        motion
====  ===========  =====================================================================
 0    rise         only from a start other than standby (an arm braked by an E-stop):
                   straight up to the workspace top (:meth:`DeltaPickCycle.rise_xyz`)
 1    approach     start (standby or the rise point) → hover, ``approach_height_m``
                   above the pick point
 2    wait         at the hover point until the object is due (0 when just in time)
 3    descend      hover → pick point (the object's top)
 4    grip         vacuum on, dwell ``vacuum_dwell_s``; the cup rests while the object
                   centre passes under it at mid-dwell (no belt tracking: the contact is
                   smeared by ±v·dwell/2, 1.25 cm at 0.5 m/s and 50 ms)
 5    lift         pick point → hover, raised where the transfer would otherwise sag
                   below the belt (:meth:`DeltaPickCycle.clear_hover`)
 6    transfer     hover → the bin's release point
 7    release      vacuum off, dwell ``release_s``
 8    return       release point → standby
====  ===========  =====================================================================

``approach_time_s`` = 1 + 3 + 4; ``cycle_time_s`` = 5 + 6 + 7 + 8 (protocol
:class:`robot.cycle.ArmModel`). :meth:`DeltaPickCycle.plan_pick` solves the conveyor
interception and returns a :class:`PickPlan` with absolute phase times that the drivers
execute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robot.config import ArmConfig
from robot.delta.arm import DeltaArm, Xyz, finite_xyz
from robot.errors import InvalidInputError, UnknownBinError
from robot.motion.intercept import MovingTarget, solve_intercept
from robot.motion.scurve import JointMove
from robot.motion.trajectory import JointTrajectoryData, JointTrajectoryPointData

FloatArray = NDArray[np.float64]

#: lowest a transfer's path may come above the workspace floor (the belt), m
TRANSFER_CLEARANCE_M = 0.01
#: how far the lift point rises per try, m
LIFT_STEP_M = 0.01
#: where along a joint move (0: start, 1: end) its height is checked: evenly, and closer
#: near the ends, where a move from a low point can dip before it rises
PATH_STEPS = tuple(sorted({*np.linspace(0.0, 1.0, 17)[1:-1].tolist(),
                           0.005, 0.01, 0.02, 0.03, 0.97, 0.98, 0.99, 0.995}))


@dataclass(frozen=True)
class Phase:
    """One phase: a joint move (or a dwell at ``q_start`` when ``move`` is None) from
    ``t_start_s`` for ``duration_s``; ``vacuum`` is the vacuum state during the phase."""

    name: str
    t_start_s: float
    duration_s: float
    q_start: FloatArray
    q_end: FloatArray
    tcp_end: Xyz
    vacuum: bool
    move: JointMove | None = None

    @property
    def t_end_s(self) -> float:
        return self.t_start_s + self.duration_s


@dataclass(frozen=True)
class PickPlan:
    """A planned pick: phases with absolute times (s, line clock), the pick point (belt frame),
    the bin, and when the tool touches (``t_contact_s``) and the grip is established
    (``t_grip_s``); ``payload_kg`` is the planner's estimate of the object's mass (what the
    safety guard checks against the payload limit)."""

    arm: str
    bin_name: str
    pick_xyz: Xyz
    phases: tuple[Phase, ...]
    t_contact_s: float
    t_grip_s: float
    object_id: int = 0
    payload_kg: float = 0.0

    @property
    def t_start_s(self) -> float:
        return self.phases[0].t_start_s

    @property
    def t_end_s(self) -> float:
        return self.phases[-1].t_end_s

    @property
    def cycle_s(self) -> float:
        return self.t_end_s - self.t_start_s

    def phase_at(self, t_s: float) -> Phase:
        for ph in self.phases:
            if t_s < ph.t_end_s:
                return ph
        return self.phases[-1]

    def state_at(self, t_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Joint positions, velocities, accelerations (rad, rad/s, rad/s²) at ``t_s``."""
        if t_s <= self.t_start_s:
            return self.phases[0].q_start.copy(), np.zeros(3), np.zeros(3)
        ph = self.phase_at(t_s)
        if ph.move is None or t_s >= ph.t_end_s:
            q = ph.q_start if ph.move is None else ph.q_end
            return q.copy(), np.zeros(3), np.zeros(3)
        q, qd, qdd, _ = ph.move.sample(np.array([t_s - ph.t_start_s]))
        return q[0], qd[0], qdd[0]

    def vacuum_at(self, t_s: float) -> bool:
        return self.t_start_s <= t_s < self.t_end_s and self.phase_at(t_s).vacuum

    def to_trajectory(
        self, joint_names: tuple[str, ...], dt_s: float = 0.01, frame_id: str = ""
    ) -> JointTrajectoryData:
        """Sample every phase (each phase's end included) into :class:`JointTrajectoryData`."""
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise InvalidInputError(f"to_trajectory: dt_s must be > 0, got {dt_s}")
        times: list[float] = [self.t_start_s]
        for ph in self.phases:
            if ph.duration_s <= 0:
                continue
            n = max(1, math.ceil(ph.duration_s / dt_s))
            times.extend(ph.t_start_s + ph.duration_s * (k + 1) / n for k in range(n))
        points = []
        last = -math.inf
        for t in times:
            rel = t - self.t_start_s
            if rel <= last:
                continue
            q, qd, qdd = self.state_at(t)
            points.append(JointTrajectoryPointData(tuple(q), tuple(qd), tuple(qdd), rel))
            last = rel
        vac: list[tuple[float, float]] = []
        for ph in self.phases:
            if not (ph.vacuum and ph.duration_s > 0):
                continue
            t0, t1 = ph.t_start_s - self.t_start_s, ph.t_end_s - self.t_start_s
            if vac and abs(vac[-1][1] - t0) < 1e-12:
                vac[-1] = (vac[-1][0], t1)  # one interval per vacuum-on stretch
            else:
                vac.append((t0, t1))
        return JointTrajectoryData(joint_names, tuple(points), self.t_start_s, frame_id, tuple(vac))


class DeltaPickCycle:
    """Pick-cycle timing and planning for one delta arm (implements
    :class:`robot.cycle.ArmModel`)."""

    def __init__(self, config: ArmConfig | DeltaArm) -> None:
        self.arm = config if isinstance(config, DeltaArm) else DeltaArm(config)
        self.config = self.arm.config
        self.name = self.arm.name
        self.dwell_s = self.config.gripper.vacuum_dwell_s
        self.release_s = self.config.gripper.release_s
        self.hover_m = self.config.motion.approach_height_m

    # -- geometry helpers -----------------------------------------------------------------------
    def hover(self, p: Xyz) -> Xyz:
        """Hover point above ``p``, capped at the workspace top."""
        return (p[0], p[1], min(p[2] + self.hover_m, self.config.workspace.z_high_m))

    def clear_hover(self, p: Xyz, b: Xyz) -> Xyz:
        """Where the lift from pick point ``p`` ends, for the transfer to the bin at ``b``: the
        hover point, raised (``LIFT_STEP_M`` at a time, up to the workspace top) until the
        transfer's joint move stays ``TRANSFER_CLEARANCE_M`` above the workspace floor along
        its whole path. A joint-space move of a delta arm sags between its ends: from a hover
        point low on the belt's near side to a bin at the far edge of the reach it would run
        below the belt (the safety guard refuses such a plan)."""
        h = self.hover(p)
        a = self.arm
        q_b = a.ik(b, "bin")
        floor = a.workspace.z_min_m + TRANSFER_CLEARANCE_M
        top = self.config.workspace.z_high_m
        z = h[2]
        while True:
            lift = (h[0], h[1], z)
            q_l = a.ik(lift, "lift point")
            # a synchronized joint move runs along the straight line between its ends in
            # joint space, whatever its time profile: its path is q0 + s (q1 − q0), 0 ≤ s ≤ 1
            if z >= top or all(float(a.to_arm(a.fk(q_l + k * (q_b - q_l)))[2]) >= floor
                               for k in PATH_STEPS):
                return lift
            z = min(z + LIFT_STEP_M, top)

    def bin_xyz(self, bin_name: str) -> Xyz:
        try:
            return self.config.bins[bin_name]
        except KeyError:
            raise UnknownBinError(
                f"{self.name}: unknown bin {bin_name!r} (this arm has {sorted(self.config.bins)})"
            ) from None

    # -- ArmModel -------------------------------------------------------------------------------
    def reach_x_range_m(self, y_m: float, z_m: float = 0.0) -> tuple[float, float] | None:
        return self.arm.reach_x_range_m(y_m, z_m)

    def approach_time_s(self, from_xyz: Xyz | None, to_xyz: Xyz) -> float:
        start = self.arm.standby_xyz if from_xyz is None else finite_xyz(from_xyz, "from_xyz")
        p = finite_xyz(to_xyz, "to_xyz")
        return self._time_to_contact(start, p) + self.dwell_s

    def cycle_time_s(self, pick_xyz: Xyz, bin_name: str) -> float:
        p = finite_xyz(pick_xyz, "pick_xyz")
        b = self.bin_xyz(bin_name)
        h = self.clear_hover(p, b)
        a = self.arm
        return (
            a.move_time_s(p, h)
            + a.move_time_s(h, b)
            + self.release_s
            + a.move_time_s(b, a.standby_xyz)
        )

    def rise_xyz(self, start: Xyz) -> Xyz | None:
        """Where a pick from ``start`` first rises to: straight above it at the workspace top
        when ``start`` is not the standby pose, else None (no rise). From a low pose (an arm
        braked near the belt by an E-stop) a joint move across the reach sags below the belt
        whatever its end's height; from the top it runs clear like one from standby (the
        reach's survey in ``tests/robot/test_pick_cycle.py`` checks both)."""
        if np.allclose(start, self.arm.standby_xyz, atol=1e-9):
            return None
        top = self.config.workspace.z_high_m
        return None if start[2] >= top - 1e-9 else (start[0], start[1], top)

    def _time_to_contact(self, start: Xyz, p: Xyz) -> float:
        h = self.hover(p)
        rise = self.rise_xyz(start)
        a = self.arm
        t_rise = 0.0
        if rise is not None:
            t_rise, start = a.move_time_s(start, rise), rise
        return t_rise + a.move_time_s(start, h) + a.move_time_s(h, p)

    # -- planning -------------------------------------------------------------------------------
    def plan_pick(
        self,
        target: MovingTarget,
        bin_name: str,
        t_start_s: float,
        from_xyz: Sequence[float] | FloatArray | None = None,
        object_id: int = 0,
        payload_kg: float = 0.0,
    ) -> PickPlan:
        """Intercept ``target`` (predicted belt-frame position at ``t_ref_s``, belt speed) with
        the arm free at ``t_start_s`` at ``from_xyz`` (None = standby), then drop into
        ``bin_name``. Raises :class:`UnknownBinError`, :class:`InterceptError` (cannot meet it
        in the reach window), :class:`UnreachableError`, :class:`InvalidInputError` (NaN)."""
        b = self.bin_xyz(bin_name)
        start = self.arm.standby_xyz if from_xyz is None else finite_xyz(from_xyz, "from_xyz")
        x_range = self.reach_x_range_m(target.y_m, target.z_m)
        icp = solve_intercept(
            target,
            t_start_s,
            lambda p: self._time_to_contact(start, p),
            x_range,
            lead_s=self.dwell_s / 2.0,
        )
        return self.plan_fixed(
            icp.point, bin_name, t_start_s, icp.t_meet_s, start, b, object_id, payload_kg
        )

    def plan_fixed(
        self,
        pick_xyz: Xyz,
        bin_name: str,
        t_start_s: float,
        t_contact_s: float | None = None,
        from_xyz: Sequence[float] | FloatArray | None = None,
        bin_xyz: Xyz | None = None,
        object_id: int = 0,
        payload_kg: float = 0.0,
    ) -> PickPlan:
        """Plan a pick at a fixed belt-frame point, touching at ``t_contact_s`` (None = as
        early as possible). Raises like :meth:`plan_pick`."""
        p = finite_xyz(pick_xyz, "pick_xyz")
        b = bin_xyz if bin_xyz is not None else self.bin_xyz(bin_name)
        start = self.arm.standby_xyz if from_xyz is None else finite_xyz(from_xyz, "from_xyz")
        if not math.isfinite(t_start_s):
            raise InvalidInputError(f"plan: t_start_s must be finite, got {t_start_s}")
        a = self.arm
        h = self.hover(p)
        rise = self.rise_xyz(start)
        spec: list[tuple[str, float, FloatArray, FloatArray, Xyz, bool, JointMove | None]] = []
        q_start = a.ik(start, "start")
        if rise is not None:
            q_rise = a.ik(rise, "rise point")
            m_rise = a.move(q_start, q_rise)
            spec.append(("rise", m_rise.duration_s, q_start, q_rise, rise, False, m_rise))
            q_start = q_rise
        q_h, q_p = a.ik(h, "hover point"), a.ik(p, "pick point")
        q_b, q_s = a.ik(b, f"bin {bin_name!r}"), a.standby_q
        m_app, m_desc = a.move(q_start, q_h), a.move(q_h, q_p)
        earliest = (t_start_s + sum(d for _, d, *_ in spec) + m_app.duration_s
                    + m_desc.duration_s)
        t_c = earliest if t_contact_s is None else float(t_contact_s)
        if not math.isfinite(t_c) or t_c < earliest - 1e-9:
            raise InvalidInputError(
                f"plan: contact at t={t_c} s is earlier than the arm can be there "
                f"({earliest:.4f} s)"
            )
        wait = max(0.0, t_c - earliest)
        spec += [
            ("approach", m_app.duration_s, q_start, q_h, h, False, m_app),
            ("wait", wait, q_h, q_h, h, False, None),
            ("descend", m_desc.duration_s, q_h, q_p, p, False, m_desc),
            ("grip", self.dwell_s, q_p, q_p, p, True, None),
        ]
        lift = self.clear_hover(p, b)
        q_l = q_h if lift == h else a.ik(lift, "lift point")
        m_lift, m_tr, m_ret = a.move(q_p, q_l), a.move(q_l, q_b), a.move(q_b, q_s)
        spec += [
            ("lift", m_lift.duration_s, q_p, q_l, lift, True, m_lift),
            ("transfer", m_tr.duration_s, q_l, q_b, b, True, m_tr),
            ("release", self.release_s, q_b, q_b, b, False, None),
            ("return", m_ret.duration_s, q_b, q_s, a.standby_xyz, False, m_ret),
        ]
        phases = []
        t = float(t_start_s)
        for name, dur, q0, q1, tcp, vac, mv in spec:
            phases.append(Phase(name, t, dur, q0, q1, tcp, vac, mv))
            t += dur
        return PickPlan(
            self.name, bin_name, p, tuple(phases), t_c, t_c + self.dwell_s, object_id, payload_kg
        )

    def tcp_at(self, plan: PickPlan, t_s: float) -> FloatArray:
        """Belt-frame TCP position (m) along ``plan`` at ``t_s``."""
        return self.arm.fk(plan.state_at(t_s)[0])
