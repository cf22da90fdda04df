"""The simulated arm as the line's hardware: the robot package's arm model plus the world's physics.

:class:`SimArmHardware` wraps :class:`robot.drivers.sim.SimArmDriver` (time-accurate
motion, grasp model, vacuum signal) and connects it to :class:`BeltWorld`: when
a plan starts, the object the cup will meet is the topmost true object whose footprint
holds the plan's pick point at grip time (one lying on another is met first), else the
nearest one within ``CAPTURE_RADIUS_M`` (or none: a miss); when the driver reports a
successful pick, the object leaves the belt into the bin. This is the
simulator's side of the arm — the arm node only sends plans and reads outcomes.
"""

from __future__ import annotations

import math
from typing import Any

from perception.sensors.scene import SceneObject, ShapeKind
from robot.drivers.base import Outcome, PickOutcome
from robot.drivers.sim import GraspTarget, SimArmDriver
from robot.pick_cycle import PickPlan
from sorting.sim.world import BeltWorld, ObjectState

CAPTURE_RADIUS_M = 0.08  # beyond this from the pick point nothing is under the cup


def _flatness(obj: SceneObject) -> tuple[float, float]:
    """(flatness 0-1, smallest extent of the top face m) as a suction cup sees the top."""
    length, width, _h = obj.size_m
    if obj.shape == ShapeKind.BOX:
        return 0.95, min(length, width)
    if obj.shape == ShapeKind.CYLINDER:
        return 0.55, width
    return 0.6, 0.5 * min(length, width)


class SimArmHardware:
    """Simulated arm hardware on the simulated belt (see the module docstring)."""

    def __init__(self, driver: SimArmDriver, world: BeltWorld) -> None:
        self.driver = driver
        self.world = world
        self.name = driver.name
        self._true_id: int | None = None
        self._bin = ""
        self.picked_true: list[int] = []

    @property
    def busy_until_s(self) -> float:
        return float(self.driver.busy_until_s)

    def _target(self, plan: PickPlan, t_now_s: float) -> GraspTarget | None:
        v = self.world.speed_mps
        px, py = plan.pick_xyz[0], plan.pick_xyz[1]
        best: tuple[tuple[bool, float], int] | None = None
        for oid, w in self.world.objects.items():
            if w.state != ObjectState.ON_BELT:
                continue
            x_grip = self.world.x_of(w) + v * (plan.t_grip_s - t_now_s)
            dx, dy = px - x_grip, py - w.obj.y_m
            d = math.hypot(dx, dy)
            c, s = math.cos(w.obj.yaw_rad), math.sin(w.obj.yaw_rad)
            length, width, height = w.obj.size_m
            under = (abs(c * dx + s * dy) <= length / 2 and abs(-s * dx + c * dy) <= width / 2)
            # the cup meets the highest object under it first; else the nearest one
            key = (not under, -(w.obj.z_m + height) if under else d)
            if (under or d <= CAPTURE_RADIUS_M) and (best is None or key < best[0]):
                best = (key, oid)
        if best is None:
            return None
        w = self.world.objects[best[1]]
        flat, top_min = _flatness(w.obj)
        self._true_id = best[1]
        # the driver decides the grasp when the plan starts, so the object's position at grip
        # time is predicted from now at the belt's current speed (the drive's wobble over the
        # ~0.3 s to the grip is well under a millimetre)
        return GraspTarget(
            x_m=self.world.x_of(w), y_m=w.obj.y_m, t_ref_s=t_now_s, belt_speed_mps=v,
            top_z_m=w.obj.z_m + w.obj.height_m, mass_kg=w.obj.mass_kg(), flatness=flat,
            top_min_size_m=top_min, object_id=best[1],
        )

    def begin(self, plan: PickPlan, t_s: float) -> None:
        """Start ``plan``; raises the robot package's typed errors when the guard refuses."""
        self._true_id = None
        self._bin = plan.bin_name
        self.driver.begin(plan, self._target(plan, t_s), t_s)

    def tcp_xyz(self) -> Any:
        """Belt-frame TCP position now (m): where a plan after an E-stop starts."""
        return self.driver.tcp_xyz()

    def reset(self) -> None:
        """Clear the arm's E-stop state once the latches are clear (see
        :meth:`SimArmDriver.reset`)."""
        self.driver.reset()

    def advance(self, t_s: float) -> PickOutcome | None:
        out = self.driver.advance(t_s)
        if out is not None and out.outcome == Outcome.PICKED and self._true_id is not None:
            w = self.world.objects.get(self._true_id)
            if w is not None and w.state == ObjectState.ON_BELT:
                self.world.pick(self._true_id, self._bin)
                self.picked_true.append(self._true_id)
        return out
