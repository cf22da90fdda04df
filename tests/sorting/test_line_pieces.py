"""Pieces of the line's wiring: cached arm model, XRF spot simulator, measured camera."""

from __future__ import annotations

import numpy as np
import pytest

from perception.catalog import load_catalog
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from robot.pick_cycle import DeltaPickCycle
from sorting.config import load_line
from sorting.config.cameras import measured_rgb_camera, rgb_camera
from sorting.scheduling.arm_model import CachedArmModel
from sorting.scheduling.errors import OutOfReachError
from sorting.sim.spawner import ObjectSpawner
from sorting.sim.xrf_sensor import XrfSpotSim, bulk_composition


def test_cached_arm_model_matches_the_model_within_its_lattice() -> None:
    line = load_line()
    model = DeltaPickCycle(line.arms[0])
    cached = CachedArmModel(model, grid_m=0.005)
    x0 = line.arms[0].base.x_m
    for dx, dy in ((0.0, 0.0), (0.1, -0.2), (-0.2, 0.15)):
        p = (x0 + dx, dy, 0.02)
        exact = model.cycle_time_s(p, "pcb")
        # 5 mm moves a delta's cycle by far less than 10 ms (tens of m/s² of acceleration)
        assert abs(cached.cycle_time_s(p, "pcb") - exact) < 0.01
        assert cached.cycle_time_s(p, "pcb") == cached.cycle_time_s(p, "pcb")
    lo, hi = cached.reach_x_range_m(0.2, 0.02) or (np.nan, np.nan)
    lo_m, hi_m = model.reach_x_range_m(0.2, 0.02) or (np.nan, np.nan)
    assert lo_m < lo < hi < hi_m  # 1 mm inside the arm's own edges
    with pytest.raises(OutOfReachError):
        cached.approach_time_s(None, (x0 + 2.0, 0.0, 0.0))


def _plate(oid: int, x: float, comp: dict[str, float]) -> SceneObject:
    return SceneObject(
        object_id=oid, class_name="copper_scrap", stream="scrap", shape=ShapeKind.BOX,
        size_m=(0.1, 0.1, 0.005), x_m=x, y_m=0.0, yaw_rad=0.0, material="copper",
        density_kg_m3=8900.0, composition=comp, appearance=Appearance(base_rgb=(0.7, 0.4, 0.2)),
    )


def test_xrf_spot_counts_what_lies_under_it() -> None:
    objs = [_plate(1, 2.6, {"Cu": 0.99}), _plate(2, 2.9, {"Fe": 0.7, "Cr": 0.18, "Ni": 0.08})]
    spot = XrfSpotSim(2.6, 0.012, lambda: objs, None, np.random.default_rng(0))
    assert spot.coverage() == pytest.approx({1: 1.0})
    on_cu = spot(1.0, 2048).astype(float)
    spot.aim(0.3)  # off the belt centre line: bare belt
    assert spot.coverage() == {}
    on_belt = spot(1.0, 2048).astype(float)
    # Cu K-alpha 8.05 keV at 20 eV/channel: a peak on copper, nothing of it on rubber
    cu = slice(395, 410)
    assert on_cu[cu].sum() > 50 * max(on_belt[cu].sum(), 1.0)


def test_bulk_composition_adds_a_balance_by_material_family() -> None:
    cat = load_catalog()
    spawner = ObjectSpawner(cat, np.random.default_rng(2))
    for name in ("ld_slag_lump", "pcb_high_grade", "copper_scrap"):
        obj = spawner.spawn(1, 0.0, 0.0, class_name=name)
        comp = bulk_composition(obj)
        assert sum(comp.values()) == pytest.approx(1.0)
        for e, f in obj.composition.items():
            assert comp[e] <= f + 1e-12  # visible elements keep their share or shrink
    slag = spawner.spawn(2, 0.0, 0.0, class_name="ld_slag_lump")
    rest = 1.0 - sum(slag.composition.values())
    assert bulk_composition(slag).get("O", 0.0) == pytest.approx(rest)  # oxides: the rest is O


def test_perception_uses_the_measured_camera_not_the_nominal_one() -> None:
    line = load_line()
    measured, nominal = measured_rgb_camera(line), rgb_camera(line)
    assert (measured.width, measured.height) == (nominal.width, nominal.height)
    assert measured.fx != nominal.fx  # it came from launch/line1.calibration.yaml
    assert measured.fx == pytest.approx(nominal.fx, rel=0.005)  # and is a good calibration
