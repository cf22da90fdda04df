"""The arm model the scheduler plans with, and a table-driven implementation of it.

:class:`ArmModel` is the contract between the scheduler and whatever knows an
arm's kinematics: the ``robot`` package derives one from a delta picker's
S-curve trajectory timing; :class:`TableArmModel` is a reach box plus
constant-or-linear cycle times, read from a stream file (JSON/CSV) and used in
tests, so the scheduler does not depend on ``robot``.

Frames and units: the belt frame (x downstream along the belt, y across it, z up
from the belt surface), metres and seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from robot.cycle import ArmModel
from robot.errors import RobotError
from sorting.scheduling.errors import NonFiniteError, OutOfReachError, UnknownBinError

Xyz = tuple[float, float, float]


def _check_xyz(xyz: Xyz, what: str) -> None:
    if len(xyz) != 3 or not all(math.isfinite(float(c)) for c in xyz):
        raise NonFiniteError(f"{what}: expected 3 finite coordinates in m, got {xyz!r}")


@dataclass
class TableArmModel:
    """An arm as a reach box and linear timing tables (all SI: m, s).

    Reach: the tool reaches ``x_min_m ≤ x ≤ x_max_m`` for ``y_min_m ≤ y ≤ y_max_m`` and
    ``z ≤ z_max_m`` (a rectangle over the belt, the usual approximation of a delta
    picker's cylindrical workspace cut by the belt width).
    Timing: ``approach = approach_base_s + approach_per_m_s · |to − from|`` (from = standby
    when None) and ``cycle = cycle_base_s + cycle_per_m_s · (|bin − pick| + |standby − bin|)``,
    distances in the horizontal plane. ``per_m_s = 0`` gives a constant-time arm.
    ``bins`` maps a bin name to its drop point; a bin not in it raises
    :class:`UnknownBinError`, a pick outside the reach box raises :class:`OutOfReachError`.
    """

    name: str
    x_min_m: float
    x_max_m: float
    y_min_m: float
    y_max_m: float
    bins: Mapping[str, Xyz]
    standby_xyz_m: Xyz = (math.nan, math.nan, 0.3)
    z_max_m: float = 0.5
    approach_base_s: float = 0.2
    approach_per_m_s: float = 0.0
    cycle_base_s: float = 0.8
    cycle_per_m_s: float = 0.0
    reach_tolerance_m: float = field(default=1e-6, repr=False)

    def __post_init__(self) -> None:
        for k in ("x_min_m", "x_max_m", "y_min_m", "y_max_m", "z_max_m", "approach_base_s",
                  "approach_per_m_s", "cycle_base_s", "cycle_per_m_s"):
            if not math.isfinite(float(getattr(self, k))):
                raise NonFiniteError(f"arm {self.name!r}: {k} must be finite")
        if not (self.x_min_m < self.x_max_m and self.y_min_m < self.y_max_m):
            raise OutOfReachError(f"arm {self.name!r}: empty reach box")
        if min(self.approach_base_s, self.approach_per_m_s,
               self.cycle_base_s, self.cycle_per_m_s) < 0 or self.cycle_base_s <= 0:
            raise NonFiniteError(f"arm {self.name!r}: times must be ≥ 0 (cycle_base_s > 0)")
        sx, sy, sz = self.standby_xyz_m
        if math.isnan(sx) or math.isnan(sy):
            # default standby: above the middle of the reach box
            self.standby_xyz_m = (0.5 * (self.x_min_m + self.x_max_m),
                                  0.5 * (self.y_min_m + self.y_max_m), sz)
        _check_xyz(self.standby_xyz_m, f"arm {self.name!r}: standby_xyz_m")
        for b, p in self.bins.items():
            _check_xyz(p, f"arm {self.name!r}: bins[{b!r}]")

    def reach_x_range_m(self, y_m: float, z_m: float = 0.0) -> tuple[float, float] | None:
        if not (math.isfinite(y_m) and math.isfinite(z_m)):
            raise NonFiniteError(f"arm {self.name!r}: reach query y={y_m}, z={z_m} not finite")
        tol = self.reach_tolerance_m
        if y_m < self.y_min_m - tol or y_m > self.y_max_m + tol or z_m > self.z_max_m + tol:
            return None
        return (self.x_min_m, self.x_max_m)

    def _check_reach(self, xyz: Xyz) -> None:
        _check_xyz(xyz, f"arm {self.name!r}: pick point")
        rng = self.reach_x_range_m(xyz[1], xyz[2])
        tol = self.reach_tolerance_m
        if rng is None or not (rng[0] - tol <= xyz[0] <= rng[1] + tol):
            raise OutOfReachError(
                f"arm {self.name!r}: pick point ({xyz[0]:.3f}, {xyz[1]:.3f}, {xyz[2]:.3f}) m is "
                f"outside the reach box x∈[{self.x_min_m}, {self.x_max_m}], "
                f"y∈[{self.y_min_m}, {self.y_max_m}], z≤{self.z_max_m}"
            )

    def cycle_time_s(self, pick_xyz: Xyz, bin_name: str) -> float:
        self._check_reach(pick_xyz)
        if bin_name not in self.bins:
            raise UnknownBinError(
                f"arm {self.name!r}: unknown bin {bin_name!r} (has {sorted(self.bins)})"
            )
        if self.cycle_per_m_s == 0.0:
            return self.cycle_base_s
        bx, by, _ = self.bins[bin_name]
        sx, sy, _ = self.standby_xyz_m
        dist = math.hypot(bx - pick_xyz[0], by - pick_xyz[1]) + math.hypot(sx - bx, sy - by)
        return self.cycle_base_s + self.cycle_per_m_s * dist

    def approach_time_s(self, from_xyz: Xyz | None, to_xyz: Xyz) -> float:
        self._check_reach(to_xyz)
        if self.approach_per_m_s == 0.0:
            return self.approach_base_s
        src = self.standby_xyz_m if from_xyz is None else from_xyz
        _check_xyz(src, f"arm {self.name!r}: approach start")
        dist = math.hypot(to_xyz[0] - src[0], to_xyz[1] - src[1])
        return self.approach_base_s + self.approach_per_m_s * dist

    def kinematic_limit_per_min(self) -> float:
        """Picks/min at the standby point's nominal cycle (approach + cycle, first bin)."""
        x, y, _ = self.standby_xyz_m
        b = next(iter(self.bins)) if self.bins else ""
        p = (x, y, 0.0)
        return 60.0 / (self.approach_time_s(None, p) + self.cycle_time_s(p, b))


class CachedArmModel:
    """Memoizes an :class:`ArmModel` on a ``grid_m`` lattice of its arguments.

    The first call in a lattice cell computes with its exact arguments; later calls
    in the same cell reuse that answer. Refusals (outside the arm's workspace) are
    raised as :class:`OutOfReachError` and not cached.

    A kinematic arm model (IK + S-curve timing) costs about a millisecond a call,
    while the planner asks thousands of times a cycle; rounding positions to
    ``grid_m`` (default 5 mm: an object moves 5 mm in 10 ms at 0.5 m/s) keeps the
    answers within the arm's timing resolution and makes repeated calls free.
    """

    def __init__(self, model: ArmModel, grid_m: float = 0.005, max_entries: int = 200_000) -> None:
        self.model = model
        self.name = model.name
        self.grid_m = grid_m
        self.max_entries = max_entries
        self._cache: dict[tuple[object, ...], object] = {}

    def __getattr__(self, attr: str) -> object:
        return getattr(self.model, attr)

    def _q(self, v: float) -> float:
        return round(v / self.grid_m) * self.grid_m

    def _get(self, key: tuple[object, ...], fn: Callable[[], object]) -> object:
        if key not in self._cache:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            try:
                self._cache[key] = fn()
            except RobotError as exc:
                # the arm's own refusal (outside its workspace, unknown bin) is a scheduling
                # fact: this arm cannot do that move. Not cached: a neighbour on the lattice
                # may still be inside.
                raise OutOfReachError(f"{self.name}: {exc}") from exc
        return self._cache[key]

    def reach_x_range_m(self, y_m: float, z_m: float = 0.0) -> tuple[float, float] | None:
        # exact, not on the lattice (a neighbour's window can reach past this point's edge),
        # and 1 mm inside the edges so that points on them stay plannable
        key = ("r", y_m, z_m)
        if key not in self._cache:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            rng = self.model.reach_x_range_m(y_m, z_m)
            self._cache[key] = None if rng is None or rng[1] - rng[0] <= 0.002 else (
                rng[0] + 0.001, rng[1] - 0.001)
        return self._cache[key]  # type: ignore[return-value]

    def cycle_time_s(self, pick_xyz: tuple[float, float, float], bin_name: str) -> float:
        p = (self._q(pick_xyz[0]), self._q(pick_xyz[1]), self._q(pick_xyz[2]))
        return self._get(("c", p, bin_name),  # type: ignore[return-value]
                         lambda: self.model.cycle_time_s(pick_xyz, bin_name))

    def approach_time_s(self, from_xyz: tuple[float, float, float] | None,
                        to_xyz: tuple[float, float, float]) -> float:
        f = None if from_xyz is None else (self._q(from_xyz[0]), self._q(from_xyz[1]),
                                           self._q(from_xyz[2]))
        t = (self._q(to_xyz[0]), self._q(to_xyz[1]), self._q(to_xyz[2]))
        return self._get(("a", f, t),  # type: ignore[return-value]
                         lambda: self.model.approach_time_s(from_xyz, to_xyz))


__all__ = ["ArmModel", "CachedArmModel", "TableArmModel"]
