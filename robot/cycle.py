"""The per-arm model the pick scheduler plans with.

Positions are belt-frame (m); the arm's base pose on the belt comes from its config.
:class:`robot.pick_cycle.DeltaPickCycle` implements :class:`ArmModel` for delta pickers.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ArmModel(Protocol):
    """Reach window and cycle timing of one arm, from the arm's own trajectory timing."""

    name: str

    def reach_x_range_m(self, y_m: float, z_m: float = 0.0) -> tuple[float, float] | None:
        """Belt-frame x interval [x_min, x_max] the tool can reach at lateral position y and
        height z above the belt (None if y is out of reach)."""
        ...

    def cycle_time_s(self, pick_xyz: tuple[float, float, float], bin_name: str) -> float:
        """Time from the tool at the pick point (object gripped) to back at the standby pose
        after dropping into bin_name (pick → bin → release → standby), from the arm's own
        trajectory timing."""
        ...

    def approach_time_s(
        self, from_xyz: tuple[float, float, float] | None, to_xyz: tuple[float, float, float]
    ) -> float:
        """Time to move from from_xyz (None = standby pose) to hover/descend onto to_xyz,
        including descend and vacuum dwell, excluding waiting for the object."""
        ...
