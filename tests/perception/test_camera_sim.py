"""RgbCameraSim: geometry, perspective, motion blur, labels, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration import PinholeCamera
from perception.errors import SensorError
from perception.sensors.camera import (
    CameraSimConfig,
    Lighting,
    RgbCameraSim,
    motion_blur_kernel,
    srgb_to_linear,
)
from perception.sensors.scene import Appearance, SceneObject, ShapeKind

CAM_HEIGHT_M = 1.0
CAM = PinholeCamera.looking_down(1.0, 0.0, CAM_HEIGHT_M, 320, 240, hfov_deg=50.0)
CLEAN = CameraSimConfig(full_well_e=None, vignetting=0.0, shadow_strength=0.0)


def _box(
    oid: int, x: float, y: float, size: tuple[float, float, float], *, yaw: float = 0.0,
    pattern: str = "pcb", rgb: tuple[float, float, float] = (0.1, 0.4, 0.15), z: float = 0.0,
    shape: ShapeKind = ShapeKind.BOX,
) -> SceneObject:
    return SceneObject(
        object_id=oid, class_name="pcb", stream="weee", shape=shape, size_m=size,
        x_m=x, y_m=y, yaw_rad=yaw, material="fr4", density_kg_m3=1850,
        composition={"Cu": 0.2}, appearance=Appearance(base_rgb=rgb, pattern=pattern,
                                                       texture_seed=oid), z_m=z,
    )


def _scene() -> list[SceneObject]:
    return [
        _box(1, 0.95, 0.05, (0.1, 0.08, 0.002), yaw=0.4),
        _box(2, 1.05, -0.05, (0.12, 0.06, 0.03), yaw=-0.2, pattern="keys"),
        _box(3, 1.08, 0.07, (0.15, 0.02, 0.02), yaw=1.0, pattern="cable",
             shape=ShapeKind.CYLINDER),
        _box(4, 0.9, -0.08, (0.07, 0.07, 0.01), pattern="metal", rgb=(0.6, 0.6, 0.62)),
    ]


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    a = RgbCameraSim(CAM, np.random.default_rng(11))
    b = RgbCameraSim(CAM, np.random.default_rng(11))
    c = RgbCameraSim(CAM, np.random.default_rng(12))
    for pos in (0.0, 0.37):
        ia = a.render(_scene(), pos, 0.5, 0.002, Lighting())
        ib = b.render(_scene(), pos, 0.5, 0.002, Lighting())
        np.testing.assert_array_equal(ia, ib)
    assert ia.shape == (240, 320, 3) and ia.dtype == np.uint8
    assert np.any(c.render(_scene(), 0.37, 0.5, 0.002) != ia)


def test_flat_box_appears_where_the_camera_model_projects_it() -> None:
    sim = RgbCameraSim(CAM, np.random.default_rng(0), CLEAN)
    box = _box(7, 1.12, -0.06, (0.1, 0.08, 0.002), yaw=0.5, rgb=(0.7, 0.7, 0.7), pattern="plain")
    frame = sim.render_frame([box], 0.0)
    mask = frame.instance_ids == 7
    rows, cols = np.nonzero(mask)
    uv, _ = CAM.project(np.array([[box.x_m, box.y_m, box.height_m]]))
    # 2 px: the brief's tolerance for a flat box (centroid of a rasterised rectangle)
    assert abs(cols.mean() - uv[0, 0]) < 2.0 and abs(rows.mean() - uv[0, 1]) < 2.0
    # and it is the object that is bright there, not the belt
    lin = srgb_to_linear(frame.image)
    assert lin[mask].mean() > 5 * lin[~mask].mean()
    # area: 0.1 x 0.08 m seen from 0.998 m with fx px per m at 1 m (perspective area law)
    expected = 0.1 * 0.08 * (CAM.fx / (CAM_HEIGHT_M - 0.002)) ** 2
    assert abs(mask.sum() / expected - 1.0) < 0.03  # 3 %: pixel-edge rasterisation


def test_tall_box_top_projects_larger_than_its_footprint() -> None:
    sim = RgbCameraSim(CAM, np.random.default_rng(0), CLEAN)
    flat = sim.render_frame([_box(1, 1.0, 0.0, (0.1, 0.08, 0.001))], 0.0)
    tall = sim.render_frame([_box(1, 1.0, 0.0, (0.1, 0.08, 0.3))], 0.0)
    for frame, top in ((flat, 0.001), (tall, 0.3)):
        rows, cols = np.nonzero(frame.instance_ids == 1)
        # centred under the camera no wall is seen: the top's image is L * fx / (Z - h) px
        # long; 1 px: rasterisation of each edge at pixel centres (+-0.5 px)
        assert abs(cols.max() - cols.min() + 1 - 0.1 * CAM.fx / (CAM_HEIGHT_M - top)) <= 1.0
        assert abs(rows.max() - rows.min() + 1 - 0.08 * CAM.fy / (CAM_HEIGHT_M - top)) <= 1.0
    assert (tall.instance_ids == 1).sum() > 1.9 * (flat.instance_ids == 1).sum()
    # off-axis, a tall box also shows a wall and shifts away from the image centre
    off_flat = sim.render_frame([_box(1, 1.15, 0.0, (0.1, 0.08, 0.001))], 0.0)
    off_tall = sim.render_frame([_box(1, 1.15, 0.0, (0.1, 0.08, 0.15))], 0.0)
    c_flat = np.nonzero(off_flat.instance_ids == 1)[1].mean()
    c_tall = np.nonzero(off_tall.instance_ids == 1)[1].mean()
    assert c_tall > c_flat + 5.0


def _box_filter(profile: np.ndarray, length: float) -> np.ndarray:
    half = length / 2
    n = math.ceil(half)
    offs = np.arange(-n, n + 1)
    w = np.clip(np.minimum(half + 0.5 - np.abs(offs), 1.0), 0.0, None)
    w /= w.sum()
    padded = np.pad(profile, n, mode="edge")
    return np.convolve(padded, w, mode="valid")


def test_motion_blur_length_matches_speed_times_exposure() -> None:
    speed, exposure = 1.0, 0.03
    cfg = CameraSimConfig(full_well_e=None, vignetting=0.0, shadow_strength=0.0,
                          reference_exposure_s=exposure)  # long exposure, same brightness
    sim = RgbCameraSim(CAM, np.random.default_rng(0), cfg)
    box = _box(1, 1.0, 0.0, (0.1, 0.2, 0.002), rgb=(0.8, 0.8, 0.8), pattern="plain")
    sharp = srgb_to_linear(sim.render([box], 0.0, 0.0, exposure)).mean(axis=2)
    blurred = srgb_to_linear(sim.render([box], 0.0, speed, exposure)).mean(axis=2)
    rows = slice(100, 140)  # inside the box across the belt
    p_sharp, p_blur = sharp[rows].mean(axis=0), blurred[rows].mean(axis=0)
    expected = speed * exposure / CAM.pixel_size_m(CAM_HEIGHT_M)
    lengths = np.arange(0.0, 30.0, 0.05)
    sse = [np.sum((_box_filter(p_sharp, n)[40:280] - p_blur[40:280]) ** 2) for n in lengths]
    fitted = lengths[int(np.argmin(sse))]
    assert expected > 8.0  # the test means something only if the blur is long
    assert abs(fitted - expected) < 1.0  # the brief's 1 px tolerance
    # blur runs along the travel direction only: the box's edges across it stay sharp
    cols = slice(150, 170)
    q_sharp, q_blur = sharp[:, cols].mean(axis=1), blurred[:, cols].mean(axis=1)
    sse_v = [np.sum((_box_filter(q_sharp, n)[40:200] - q_blur[40:200]) ** 2) for n in lengths]
    assert lengths[int(np.argmin(sse_v))] < 1.0


def test_motion_blur_kernel_is_normalised_and_centred() -> None:
    k = motion_blur_kernel(7.3, 0.0)
    assert k.shape[0] == 1 and k.shape[1] % 2 == 1
    np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-6)
    centre = k.shape[1] // 2
    np.testing.assert_allclose(k[0], k[0, ::-1], atol=1e-6)  # symmetric about mid-exposure
    assert k[0, centre] > 0


def test_labels_match_the_instance_map() -> None:
    sim = RgbCameraSim(CAM, np.random.default_rng(0))
    scene = [*_scene(), _box(5, 0.93, 0.06, (0.12, 0.1, 0.004), z=0.002)]  # lies on box 1
    frame = sim.render_frame(scene, 0.2, 0.3, 0.001)
    assert {lab.object_id for lab in frame.labels} == set(np.unique(frame.instance_ids)) - {-1}
    for lab in frame.labels:
        rows, cols = np.nonzero(frame.instance_ids == lab.object_id)
        assert lab.bbox_xyxy == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert lab.visible_pixels == rows.size
        alone = sim.render_frame([o for o in scene if o.object_id == lab.object_id], 0.2)
        n_alone = int((alone.instance_ids == lab.object_id).sum())
        assert lab.alone_pixels == n_alone
        assert lab.visible_fraction == pytest.approx(rows.size / n_alone)
    by_id = {lab.object_id: lab for lab in frame.labels}
    assert by_id[1].visible_fraction < 0.9  # box 5 covers part of box 1
    assert by_id[5].visible_fraction == 1.0


def test_empty_belt_renders_only_belt_texture() -> None:
    a = RgbCameraSim(CAM, np.random.default_rng(4))
    b = RgbCameraSim(CAM, np.random.default_rng(4))
    empty = a.render_frame([], 0.5)
    far = b.render_frame([_box(1, 25.0, 0.0, (0.1, 0.1, 0.05))], 0.5)  # out of view
    assert empty.labels == [] and far.labels == []
    assert (empty.instance_ids == -1).all()
    np.testing.assert_array_equal(empty.image, far.image)
    lin = srgb_to_linear(empty.image)
    assert 0.01 < lin.mean() < 0.06  # dark rubber (albedo ~0.045) under the default light
    assert lin.std() > 0.002  # but textured, not flat


def test_belt_texture_travels_with_the_belt() -> None:
    sim = RgbCameraSim(CAM, np.random.default_rng(4), CLEAN)
    shift_px = 12
    step_m = shift_px * CAM.pixel_size_m(CAM_HEIGHT_M)
    i0 = sim.render([], 0.3).astype(int)
    i1 = sim.render([], 0.3 + step_m).astype(int)
    # moved right by exactly 12 px: sampled at the same belt points, equal to 1 code
    assert np.abs(i1[:, shift_px:] - i0[:, :-shift_px]).max() <= 1
    assert np.abs(i1 - i0).mean() > 1.0  # and not just a constant image


def test_unknown_pattern_raises() -> None:
    sim = RgbCameraSim(CAM, np.random.default_rng(0))
    with pytest.raises(SensorError, match="pattern"):
        sim.render([_box(1, 1.0, 0.0, (0.1, 0.1, 0.01), pattern="zebra")], 0.0)


def test_jpeg_artefacts_keep_shape_and_stay_close() -> None:
    cfg = CameraSimConfig(jpeg_quality=70)
    img = RgbCameraSim(CAM, np.random.default_rng(0), cfg).render(_scene(), 0.0)
    ref = RgbCameraSim(CAM, np.random.default_rng(0)).render(_scene(), 0.0)
    assert img.shape == ref.shape and img.dtype == np.uint8
    diff = np.abs(img.astype(int) - ref.astype(int))
    assert 0 < diff.mean() < 6  # artefacts present but small at quality 70
