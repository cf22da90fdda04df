"""A stream compiled for scheduling: per (object, arm) time windows and pick durations.

Object ``i`` lies at ``x0_i`` at ``t_ref`` and rides the belt at ``v`` (m/s), so at time
``t`` it is at ``x_i(t) = x0_i + v·(t − t_ref)``. Arm ``a`` reaches it while
``x_i(t) ∈ [x_min_a(y_i), x_max_a(y_i)]``: the time window ``[r_ia, d_ia]``. A pick of
``i`` by ``a`` at time ``t`` (the tool meets the object) occupies the arm from
``t − approach_ia`` (leaving standby) to ``t + cycle_ia`` (back at standby), so an arm
free at ``f`` picks ``i`` at ``t = max(r_ia, f + approach_ia)`` if ``t ≤ d_ia``.

The exact durations depend on the pick point, i.e. on ``t``; :meth:`Problem.timing`
evaluates the arm model there (that is what the simulator executes), while the
``*_est`` arrays (at the window's middle) serve the planners' fast look-ahead and
the ``*_min`` arrays (minimum over the window) the hindsight optimum's relaxation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sorting.scheduling.arm_model import ArmModel
from sorting.scheduling.errors import OutOfReachError, UnknownBinError
from sorting.scheduling.stream import Stream, StreamObject

#: effective-value bonus that makes a safety-priority object beat any value
PRIORITY_BONUS_EUR = 1.0e6
_N_SAMPLES = 5


@dataclass(frozen=True)
class Timing:
    """One feasible pick: tool meets the object at ``t_pick_s``; arm busy until ``t_free_s``."""

    t_start_s: float
    t_pick_s: float
    t_free_s: float
    pick_xyz: tuple[float, float, float]


class Problem:
    """Time windows (s) and duration estimates (s) of every (object, arm) pair; see module doc.

    Arrays are ``(n_objects, n_arms)``; pairs an arm cannot serve (bin not at that arm, y
    out of its reach, non-positive value) have ``ok = False`` and ``r = +inf``.
    Raises :class:`UnknownBinError` / :class:`OutOfReachError` for a pickable object
    (value > 0, a target bin) that no arm can serve.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.arms: Sequence[ArmModel] = stream.arms
        self.objects: Sequence[StreamObject] = stream.objects
        self.v = stream.belt_speed_mps
        self.t_ref = stream.t_ref_s
        n, na = len(self.objects), len(self.arms)
        self.x0 = np.array([o.x_m for o in self.objects], dtype=float)
        self.value = np.array([o.value_eur for o in self.objects], dtype=float)
        self.priority = np.array([stream.priority_of(o) for o in self.objects], dtype=np.int64)
        self.eff_value = self.value + PRIORITY_BONUS_EUR * (self.priority > 0)
        # time each object passes the vision position (visible to online policies)
        self.visible_t = np.maximum(
            self.t_ref, self.t_ref + (stream.visible_x_m - self.x0) / self.v
        )
        self.r = np.full((n, na), np.inf)
        self.d = np.full((n, na), -np.inf)
        self.ok = np.zeros((n, na), dtype=bool)
        self.appr_est = np.full((n, na), np.nan)
        self.cyc_est = np.full((n, na), np.nan)
        self.appr_min = np.full((n, na), np.nan)
        self.cyc_min = np.full((n, na), np.nan)
        for i, o in enumerate(self.objects):
            if not o.pickable:
                continue
            w = object_windows(self.arms, o, self.v, self.t_ref, where=f"objects[{i}]")
            self.ok[i], self.r[i], self.d[i] = w.ok, w.r, w.d
            self.appr_est[i], self.cyc_est[i] = w.appr_est, w.cyc_est
            self.appr_min[i], self.cyc_min[i] = w.appr_min, w.cyc_min
        self.deadline = np.where(self.ok, self.d, -np.inf).max(axis=1) if na else np.zeros(n)

    @property
    def n(self) -> int:
        return len(self.objects)

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    def x_at(self, i: int, t: float) -> float:
        """Belt-frame x (m) of object ``i`` at time ``t`` (s)."""
        return float(self.x0[i] + self.v * (t - self.t_ref))

    def timing(self, i: int, a: int, free_s: float) -> Timing | None:
        """Exact earliest pick of object ``i`` by arm ``a`` free at ``free_s`` (see
        :func:`pick_timing`); ``None`` if it cannot be caught any more."""
        if not self.ok[i, a]:
            return None
        return pick_timing(self.arms[a], self.objects[i], self.v, self.t_ref,
                           float(self.r[i, a]), float(self.d[i, a]),
                           float(self.appr_est[i, a]), free_s)

    def last_arm_for(self, i: int) -> int | None:
        """Index of the arm whose window closes last for object ``i`` (None if none serves)."""
        if not self.ok[i].any():
            return None
        return int(np.argmax(np.where(self.ok[i], self.d[i], -math.inf)))


@dataclass
class ObjectWindows:
    """Per-arm windows and duration estimates of one object (arrays of length n_arms)."""

    ok: NDArray[np.bool_]
    r: NDArray[np.float64]
    d: NDArray[np.float64]
    appr_est: NDArray[np.float64]
    cyc_est: NDArray[np.float64]
    appr_min: NDArray[np.float64]
    cyc_min: NDArray[np.float64]


def object_windows(
    arms: Sequence[ArmModel], o: StreamObject, v: float, t_ref: float, where: str = "object"
) -> ObjectWindows:
    """Time windows ``[r, d]`` (s) in which each arm reaches ``o`` (at ``x_m`` at ``t_ref``).

    Durations are sampled at 5 points across each window: middle (``*_est``) and minimum
    (``*_min``). Raises :class:`OutOfReachError` when no arm reaches ``o.y_m`` and
    :class:`UnknownBinError` when no arm that reaches it has ``o.target_bin``.
    """
    na = len(arms)
    w = ObjectWindows(np.zeros(na, dtype=bool), np.full(na, np.inf), np.full(na, -np.inf),
                      *(np.full(na, np.nan) for _ in range(4)))
    has_reach = has_bin = False
    for a, arm in enumerate(arms):
        rng = arm.reach_x_range_m(o.y_m, o.z_m)
        if rng is None:
            continue
        has_reach = True
        xs = np.linspace(rng[0], rng[1], _N_SAMPLES)
        try:
            cyc = [arm.cycle_time_s((float(x), o.y_m, o.z_m), o.target_bin) for x in xs]
        except UnknownBinError:
            continue
        has_bin = True
        appr = [arm.approach_time_s(None, (float(x), o.y_m, o.z_m)) for x in xs]
        w.ok[a] = True
        w.r[a] = t_ref + (rng[0] - o.x_m) / v
        w.d[a] = t_ref + (rng[1] - o.x_m) / v
        w.appr_est[a], w.cyc_est[a] = appr[_N_SAMPLES // 2], cyc[_N_SAMPLES // 2]
        w.appr_min[a], w.cyc_min[a] = min(appr), min(cyc)
    if not has_reach:
        raise OutOfReachError(
            f"{where} (id {o.id}): y_m={o.y_m} (z_m={o.z_m}) is outside every arm's reach "
            f"({', '.join(a.name for a in arms)})"
        )
    if not has_bin:
        raise UnknownBinError(
            f"{where} (id {o.id}): target_bin {o.target_bin!r} is not a bin of any arm that "
            f"reaches y_m={o.y_m}"
        )
    return w


def pick_timing(
    arm: ArmModel, o: StreamObject, v: float, t_ref: float, r: float, d: float,
    appr_est: float, free_s: float,
) -> Timing | None:
    """Exact earliest pick of ``o`` (window ``[r, d]`` s) by ``arm`` free at ``free_s``.

    The approach time is evaluated at the pick point it leads to (two fixed-point
    passes); returns ``None`` if the object has left the window by then.
    """
    t = max(r, free_s + appr_est)
    if t > d:
        return None
    appr = 0.0
    for _ in range(2):
        appr = arm.approach_time_s(None, (o.x_m + v * (t - t_ref), o.y_m, o.z_m))
        t = max(r, free_s + appr)
        if t > d + 1e-9:
            return None
    t = min(t, d)
    p = (o.x_m + v * (t - t_ref), o.y_m, o.z_m)
    cyc = arm.cycle_time_s(p, o.target_bin)
    return Timing(t_start_s=t - appr, t_pick_s=t, t_free_s=t + cyc, pick_xyz=p)
