"""Segmentation of the height map: touching objects split by height steps, necks and RGB edges."""

from __future__ import annotations

import numpy as np

from calibration import PinholeCamera
from perception.sensors.depth import DepthSensorSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from perception.volume import SegmentConfig, VolumeEstimator, segment_heightmap

CELL_M = 0.004


def _box(oid: int, x: float, y: float, size: tuple[float, float, float],
         yaw: float = 0.0) -> SceneObject:
    return SceneObject(
        object_id=oid, class_name="box", stream="weee", shape=ShapeKind.BOX, size_m=size,
        x_m=x, y_m=y, yaw_rad=yaw, material="abs", density_kg_m3=1100, composition={},
        appearance=Appearance(base_rgb=(0.5, 0.5, 0.5), specular=0.1),
    )


def test_two_boxes_of_different_height_touching_are_split() -> None:
    h = np.zeros((60, 60))
    h[10:40, 10:30] = 0.03
    h[10:40, 30:50] = 0.012  # shares the wall at column 30
    labels = segment_heightmap(h, CELL_M)
    assert labels.max() == 2
    assert len(np.unique(labels[10:40, 11:29])) == 1
    assert len(np.unique(labels[10:40, 31:49])) == 1
    assert labels[20, 15] != labels[20, 45]


def test_two_domes_touching_are_split_at_the_valley() -> None:
    ii, jj = np.mgrid[0:60, 0:80]
    d1 = np.hypot(ii - 30, jj - 25) * CELL_M
    d2 = np.hypot(ii - 30, jj - 52) * CELL_M
    h = np.maximum(np.clip(0.04 - 0.5 * d1**2 / 0.05, 0, None),
                   np.clip(0.04 - 0.5 * d2**2 / 0.05, 0, None))
    labels = segment_heightmap(h, CELL_M)
    assert labels.max() == 2
    assert labels[30, 25] != labels[30, 52] and labels[30, 25] > 0 and labels[30, 52] > 0


def test_same_height_boxes_need_the_rgb_edge() -> None:
    h = np.zeros((60, 60))
    h[10:40, 10:50] = 0.02  # two 20-cell boxes side by side at the same height
    assert segment_heightmap(h, CELL_M).max() == 1  # no height cue: one blob
    edge = np.zeros_like(h, dtype=bool)
    edge[:, 30] = True  # the outline the RGB camera sees between them
    labels = segment_heightmap(h, CELL_M, edge_mask=edge)
    assert labels.max() == 2 and labels[20, 15] != labels[20, 45]


def test_small_blobs_dropped_and_flat_map_is_empty() -> None:
    h = np.zeros((40, 40))
    assert segment_heightmap(h, CELL_M).max() == 0
    h[5:7, 5:7] = 0.01  # 4 cells = 0.64 cm^2 < min_area 1 cm^2
    h[20:30, 20:30] = 0.01
    labels = segment_heightmap(h, CELL_M, SegmentConfig(min_area_m2=1e-4))
    assert labels.max() == 1 and labels[6, 6] == 0 and labels[25, 25] == 1


def test_touching_boxes_in_a_rendered_cloud() -> None:
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 240, hfov_deg=52.0)
    tall = _box(1, 1.95, 0.0, (0.10, 0.06, 0.04), yaw=0.2)
    # a flat one whose side lies against the tall box's side
    c, s = np.cos(0.2), np.sin(0.2)
    flat = _box(2, 1.95 - 0.06 * s, 0.0 + 0.06 * c, (0.10, 0.06, 0.012), yaw=0.2)
    frame = DepthSensorSim(cam, np.random.default_rng(0)).render_frame([tall, flat], 0.0)
    res = VolumeEstimator(cam).process_frame(frame.points_optical)
    assert len(res.objects) == 2
    vols = sorted(o.volume_m3 for o in res.objects)
    truth = sorted(o.volume_m3() for o in (tall, flat))
    # each within 15 %: the shared wall is one cell wide (2.8 mm of 60 mm = 5 % of the flat
    # box's width either way) plus the edge noise of a single frame
    np.testing.assert_allclose(vols, truth, rtol=0.15)


def test_a_thin_cable_cut_by_noise_is_one_object_and_stays_apart_from_others() -> None:
    cell = 0.003
    h = np.zeros((60, 120), np.float32)
    h[20:22, 5:110] = 0.005            # a 6 mm cable, 5 mm high, along the belt
    h[20:22, 40:43] = 0.002            # depth noise dips it under the 3 mm threshold twice
    h[20:22, 75:77] = 0.0022
    h[40:41, 5:60] = 0.004             # a second wire, 6 cm away: bare belt between
    h[45:58, 70:100] = 0.03            # a box
    labels = segment_heightmap(h, cell)
    cable = set(np.unique(labels[20:22, 5:110])) - {0}
    assert len(cable) == 1             # one cable, not three pieces
    wire = set(np.unique(labels[40, 5:60])) - {0}
    box = set(np.unique(labels[45:58, 70:100])) - {0}
    assert len(wire) == 1 and len(box) == 1
    assert len(cable | wire | box) == 3
    # without the bridge the cable falls apart: the check above is not vacuous
    cfg = SegmentConfig(bridge_ratio=1.0)
    assert len(set(np.unique(segment_heightmap(h, cell, cfg)[20:22, 5:110])) - {0}) == 3
