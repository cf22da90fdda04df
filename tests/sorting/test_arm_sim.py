"""The simulated arm hardware: which true object the cup meets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from robot.pick_cycle import PickPlan
from sorting.sim.arm_sim import SimArmHardware
from sorting.sim.world import WorldObject


def _box(oid: int, x: float, size: tuple[float, float, float], z: float = 0.0) -> SceneObject:
    return SceneObject(oid, "widget", "weee", ShapeKind.BOX, size, x, 0.0, 0.0, "abs", 1000.0,
                       {}, Appearance((0.5, 0.5, 0.5)), z_m=z)


def _hardware(objects: list[SceneObject]) -> SimArmHardware:
    world: Any = SimpleNamespace(
        speed_mps=0.0, belt_position_m=0.0,
        objects={o.object_id: WorldObject(o, o.x_m) for o in objects},
        x_of=lambda w: w.s_m)
    return SimArmHardware(SimpleNamespace(name="arm1"), world)  # type: ignore[arg-type]


def _plan(x: float) -> PickPlan:
    return PickPlan("arm1", "pcb", (x, 0.0, 0.05), (), t_contact_s=0.0, t_grip_s=0.0)


def test_the_cup_meets_the_object_lying_on_top_not_the_one_whose_centre_is_nearest() -> None:
    laptop = _box(1, 0.0, (0.34, 0.22, 0.02))
    pcb_on_top = _box(2, 0.06, (0.10, 0.08, 0.002), z=0.02)
    cell = _box(3, 1.0, (0.04, 0.02, 0.02))
    hw = _hardware([laptop, pcb_on_top, cell])
    # a pick 2 cm from the laptop's centre, on the PCB lying on it
    target = hw._target(_plan(0.02), 0.0)
    assert target is not None and target.object_id == 2
    assert abs(target.top_z_m - 0.022) < 1e-9
    # a pick on the laptop's bare part meets the laptop
    target = hw._target(_plan(-0.10), 0.0)
    assert target is not None and target.object_id == 1
    # beside an object, within the capture radius: that one; beyond it: nothing
    assert (t := hw._target(_plan(1.05), 0.0)) is not None and t.object_id == 3
    assert hw._target(_plan(0.40), 0.0) is None
