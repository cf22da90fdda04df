"""DepthSensorSim: true geometry, noise level, occlusion, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import PinholeCamera
from perception.errors import SensorError
from perception.sensors.depth import DepthSensorSim, DepthSimConfig
from perception.sensors.scene import Appearance, SceneObject, ShapeKind

SENSOR_HEIGHT_M = 1.0
CAM = PinholeCamera.looking_down(2.0, 0.0, SENSOR_HEIGHT_M, 240, 180, hfov_deg=55.0)
SIGMA_1M = 0.001


def _box(oid: int, x: float, y: float, size: tuple[float, float, float], *,
         z: float = 0.0, specular: float = 0.1, yaw: float = 0.0) -> SceneObject:
    return SceneObject(
        object_id=oid, class_name="pcb", stream="weee", shape=ShapeKind.BOX, size_m=size,
        x_m=x, y_m=y, yaw_rad=yaw, material="fr4", density_kg_m3=1850,
        composition={"Cu": 0.2},
        appearance=Appearance(base_rgb=(0.3, 0.4, 0.3), pattern="pcb", specular=specular),
        z_m=z,
    )


def _inside(pts: np.ndarray, obj: SceneObject, margin: float) -> np.ndarray:
    u, v = obj.to_object_frame(pts[:, 0].astype(float), pts[:, 1].astype(float))
    return (np.abs(u) < obj.size_m[0] / 2 - margin) & (np.abs(v) < obj.size_m[1] / 2 - margin)


def test_box_top_at_its_height_within_three_sigma() -> None:
    sim = DepthSensorSim(CAM, np.random.default_rng(0), DepthSimConfig(sigma_at_1m_m=SIGMA_1M))
    box = _box(1, 2.03, -0.02, (0.12, 0.09, 0.06), yaw=0.3)
    pts = sim.render([box], 0.0, frame="belt")
    top = pts[_inside(pts, box, 0.01)]  # 1 cm in from the edges: no flying pixels
    assert len(top) > 200
    # range noise sigma = 1 mm * r^2 with r <= ~0.96 m here, along near-vertical rays
    sigma = SIGMA_1M * (SENSOR_HEIGHT_M - 0.06) ** 2
    assert np.all(np.abs(top[:, 2] - 0.06) < 5 * sigma)  # 5 sigma over a few hundred points
    assert np.mean(np.abs(top[:, 2] - 0.06) < 3 * sigma) > 0.99
    assert abs(top[:, 2].mean() - 0.06) < 3 * sigma / np.sqrt(len(top))
    assert 0.5 * sigma < top[:, 2].std() < 1.5 * sigma  # noise is there, at its level


def test_belt_plane_recovered_at_zero() -> None:
    sim = DepthSensorSim(CAM, np.random.default_rng(1))
    box = _box(1, 2.0, 0.0, (0.1, 0.1, 0.05))
    pts = sim.render([box], 0.0, frame="belt").astype(np.float64)
    belt = pts[~_inside(pts, box, -0.03)]  # 3 cm clear of the box: no walls, no edges
    # least-squares plane z = a x + b y + c
    a_mat = np.column_stack([belt[:, 0], belt[:, 1], np.ones(len(belt))])
    coef, *_ = np.linalg.lstsq(a_mat, belt[:, 2], rcond=None)
    assert abs(coef[2] + 2.0 * coef[0]) < 2e-4  # height under the sensor: 0 within 0.2 mm
    assert np.all(np.abs(coef[:2]) < 1e-3)  # tilt below 1 mm per m
    assert np.abs(belt[:, 2]).max() < 6e-3  # sigma at the corners ~1.3 mm; 4.5 sigma
    frac = len(pts) / (CAM.width * CAM.height)
    assert 0.95 < frac <= 1.0  # small dropout on the belt only


def test_occluded_object_is_not_seen() -> None:
    sim = DepthSensorSim(CAM, np.random.default_rng(2))
    small = _box(1, 2.0, 0.0, (0.04, 0.04, 0.01))
    cover = _box(2, 2.0, 0.0, (0.15, 0.12, 0.005), z=0.01)  # plate lying on top of it
    frame = sim.render_frame([small, cover], 0.0)
    assert not (frame.object_index == 0).any()
    pts = sim.render([small, cover], 0.0, frame="belt")
    over_small = pts[_inside(pts, small, 0.0)]
    assert len(over_small) > 20
    np.testing.assert_allclose(over_small[:, 2], 0.015, atol=0.006)  # the plate, not 0.01
    # a tall box hides the flat one behind it from an off-axis sensor
    tall = _box(3, 2.22, 0.0, (0.05, 0.2, 0.25))
    hidden = _box(4, 2.29, 0.0, (0.06, 0.06, 0.003))
    assert (sim.render_frame([hidden], 0.0).object_index == 0).any()
    frame = sim.render_frame([tall, hidden], 0.0)
    assert not (frame.object_index == 1).any()


def test_same_seed_same_cloud() -> None:
    scene = [_box(1, 2.0, 0.05, (0.1, 0.08, 0.03), yaw=0.5), _box(2, 1.9, -0.1, (0.05, 0.05, 0.2))]
    a = DepthSensorSim(CAM, np.random.default_rng(9)).render(scene, 0.0)
    b = DepthSensorSim(CAM, np.random.default_rng(9)).render(scene, 0.0)
    c = DepthSensorSim(CAM, np.random.default_rng(10)).render(scene, 0.0)
    assert a.dtype == np.float32 and a.shape[1] == 3
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_optical_frame_points_are_in_front_and_map_to_belt() -> None:
    sim = DepthSensorSim(CAM, np.random.default_rng(3), DepthSimConfig(sigma_at_1m_m=0.0))
    scene = [_box(1, 2.0, 0.0, (0.1, 0.1, 0.05))]
    frame = sim.render_frame(scene, 0.0)
    pts = frame.points_optical[frame.valid]
    assert np.all(pts[:, 2] > 0.9) and np.all(pts[:, 2] < 1.0 / np.cos(np.radians(40)))
    belt = CAM.T_belt_camera.apply(pts.astype(np.float64))
    top = belt[np.abs(belt[:, 2] - 0.05) < 1e-4]
    uv, _ = CAM.project(top)
    assert len(top) > 100 and np.all(np.isfinite(uv))
    assert np.isnan(frame.points_optical[~frame.valid]).all()


def test_specular_surfaces_drop_points() -> None:
    cfg = DepthSimConfig(specular_dropout=0.8)
    matte = _box(1, 2.0, 0.0, (0.1, 0.1, 0.02), specular=0.0)
    shiny = _box(1, 2.0, 0.0, (0.1, 0.1, 0.02), specular=1.0)
    n_matte = (DepthSensorSim(CAM, np.random.default_rng(0), cfg)
               .render_frame([matte], 0.0).valid.sum())
    n_shiny = (DepthSensorSim(CAM, np.random.default_rng(0), cfg)
               .render_frame([shiny], 0.0).valid.sum())
    top_px = ((0.1 * CAM.fx / 0.98) ** 2)
    # 80 % of the ~top_px top pixels go missing (binomial spread is a few %)
    assert 0.6 * top_px < n_matte - n_shiny < 0.95 * top_px


def test_bad_frame_raises() -> None:
    sim = DepthSensorSim(CAM, np.random.default_rng(0))
    with pytest.raises(SensorError, match="frame"):
        sim.render([], 0.0, frame="world")  # type: ignore[arg-type]
