"""Conveyor interception: when and where the tool meets an object moving with the belt.

The object moves along belt x at ``belt_speed_mps`` (``MovingTarget.at(t)``). The arm, free
from ``t_start_s``, needs ``time_to_reach(p)`` seconds to bring the tool to a point ``p``
(move + descend; it may arrive early and wait at the hover point). We look for the earliest
meeting time ``t`` with

    g(t) = t_start_s + time_to_reach(target.at(t + lead_s)) − t ≤ 0

inside the window where ``target.at(t + lead_s)`` lies in the arm's reach interval
``[x_min, x_max]``. ``lead_s`` shifts the object's reference instant after the tool's arrival
(the pick cycle puts the object centre under the cup half-way through the vacuum dwell).
We iterate ``t ← t + g(t)`` from the window's start (a fixed-point iteration that converges
in a few steps because the arm is much faster than the belt); if it does not settle, a
coarse scan finds the first sign change of ``g`` and bisection narrows it to ``tol_s``
(the tool meets the target within ``belt_speed × tol_s``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from robot.errors import InterceptError, InvalidInputError, RobotError

Xyz = tuple[float, float, float]

MAX_WAIT_S = 30.0  # s: the longest an arm plans ahead to meet an object


@dataclass(frozen=True)
class MovingTarget:
    """An object on the belt: belt-frame (x, y, z) (m) at time ``t_ref_s``, moving along +x at
    ``belt_speed_mps`` (z is the pick height: the object's top)."""

    x_m: float
    y_m: float
    z_m: float
    t_ref_s: float
    belt_speed_mps: float

    def __post_init__(self) -> None:
        for name in ("x_m", "y_m", "z_m", "t_ref_s", "belt_speed_mps"):
            if not math.isfinite(getattr(self, name)):
                raise InvalidInputError(
                    f"MovingTarget.{name}: must be finite, got {getattr(self, name)}"
                )
        if self.belt_speed_mps < 0:
            raise InvalidInputError(
                f"MovingTarget.belt_speed_mps: must be >= 0, got {self.belt_speed_mps}"
            )

    def at(self, t_s: float) -> Xyz:
        """Belt-frame position (m) at time ``t_s``."""
        return (self.x_m + self.belt_speed_mps * (t_s - self.t_ref_s), self.y_m, self.z_m)


@dataclass(frozen=True)
class Intercept:
    """The tool reaches ``point`` (belt frame, m) at ``t_meet_s``; ``wait_s`` is idle time
    spent at the hover point before descending (0 when the arm is just in time)."""

    t_meet_s: float
    point: Xyz
    wait_s: float


def solve_intercept(
    target: MovingTarget,
    t_start_s: float,
    time_to_reach: Callable[[Xyz], float],
    x_range_m: tuple[float, float] | None,
    lead_s: float = 0.0,
    tol_s: float = 1e-6,
    scan_step_s: float = 0.02,
) -> Intercept:
    """Earliest interception (see the module docstring).

    Raises :class:`InterceptError` when the target is never in reach (``x_range_m`` None or
    already past) or leaves it before the arm can get there; :class:`InvalidInputError` for
    non-finite times.
    """
    if not (math.isfinite(t_start_s) and math.isfinite(lead_s)):
        raise InvalidInputError(f"intercept: t_start_s={t_start_s}, lead_s={lead_s} must be finite")
    if x_range_m is None:
        raise InterceptError(f"intercept: lateral position y={target.y_m:.3f} m is out of reach")
    x_min, x_max = x_range_m
    v = target.belt_speed_mps
    if v > 0:
        t_in = target.t_ref_s + (x_min - target.x_m) / v - lead_s
        t_out = target.t_ref_s + (x_max - target.x_m) / v - lead_s
    elif x_min <= target.x_m <= x_max:
        t_in, t_out = -math.inf, math.inf
    else:
        raise InterceptError(
            f"intercept: stationary target at x={target.x_m:.3f} m is out of reach"
        )
    lo = max(t_start_s, t_in)
    if lo > t_out:
        raise InterceptError(
            f"intercept: target leaves the reach window at t={t_out:.3f} s, before the arm is "
            f"free at t={t_start_s:.3f} s"
        )

    def g(t: float) -> float:
        try:
            return t_start_s + time_to_reach(target.at(t + lead_s)) - t
        except RobotError:
            return math.inf  # e.g. a joint limit at this point: not a meeting point

    g_lo = g(lo)
    # a meeting more than MAX_WAIT_S away is no pick (a crawling belt would otherwise make
    # the scan below walk through days of 10 ms steps)
    horizon = lo + (g_lo if math.isfinite(g_lo) and g_lo > 0 else 0.0) + MAX_WAIT_S
    hi = min(t_out, horizon) if math.isfinite(t_out) else horizon
    t_meet = lo if g_lo <= 0 else _fixed_point(g, lo, hi, tol_s)
    if t_meet is None:
        t_meet = _scan_bisect(g, lo, hi, scan_step_s, tol_s)
    if t_meet is None:
        raise InterceptError(
            f"intercept: the arm cannot reach the target before it leaves the window "
            f"(x in [{x_min:.3f}, {x_max:.3f}] m, t_out={t_out:.3f} s)"
        )
    point = target.at(t_meet + lead_s)
    wait = max(0.0, t_meet - (t_start_s + time_to_reach(point)))
    return Intercept(t_meet, point, wait)


def _fixed_point(g: Callable[[float], float], lo: float, hi: float, tol_s: float) -> float | None:
    """Iterate t ← t + g(t) from ``lo`` (g(lo) > 0). When a step overshoots (g < 0: the arm
    would be early), bisect back between the last late and the first early time. None when
    it does not settle inside [lo, hi] within 50 steps."""
    late, t = lo, lo
    for _ in range(50):
        step = g(t)
        if not math.isfinite(step):
            return None
        if -tol_s <= step <= 0:
            return t
        if step < 0:  # overshoot: the root lies in (late, t]
            return _bisect(g, late, t, tol_s)
        late = t
        t += max(step, tol_s / 2)
        if t > hi:
            return None
    return None


def _scan_bisect(
    g: Callable[[float], float], lo: float, hi: float, step_s: float, tol_s: float
) -> float | None:
    """First t in [lo, hi] with g(t) <= 0: coarse scan, then bisection to ``tol_s``."""
    prev, t = lo, lo
    while t < hi:
        t = min(t + step_s, hi)
        if g(t) <= 0:
            return _bisect(g, prev, t, tol_s)
        prev = t
    return None


def _bisect(g: Callable[[float], float], a: float, b: float, tol_s: float) -> float:
    """Earliest t in (a, b] with g(t) <= 0 to within ``tol_s``, given g(a) > 0 >= g(b)."""
    while b - a > tol_s:
        mid = 0.5 * (a + b)
        if g(mid) <= 0:
            b = mid
        else:
            a = mid
    return b
