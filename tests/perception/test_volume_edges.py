"""Flying pixels at depth edges, shadows behind tall objects, and broken ridges.

These are the three causes of the tall-box over-estimate (+7-15 % before) and of lying
cylinders split in two: flying pixels fill the shadow wedge behind a tall object, the
object's own far edge is lost and must not be filled as shadow, and a one-cell ridge breaks
into several seeds.
"""

from __future__ import annotations

import math

import numpy as np

from calibration import PinholeCamera
from perception.sensors.depth import DepthSensorSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from perception.volume import VolumeConfig, VolumeEstimator, segment_heightmap
from perception.volume.cloud import repair_depth_edges
from perception.volume.heightmap import HeightMapConfig
from perception.volume.measure import ShapeClass


def _step_cloud(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 40 x 40 organized cloud looking at a step: range 1.00 m left, 1.05 m right, with the
    two columns at the step turned into flying pixels (random range between)."""
    h, w = 40, 40
    vv, uu = np.mgrid[0:h, 0:w]
    d = np.stack([(uu - 20) / 400.0, (vv - 20) / 400.0, np.ones((h, w))], axis=-1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    r_true = np.where(uu < 20, 1.0, 1.05) + rng.normal(0, 5e-4, (h, w))
    r = r_true.copy()
    band = (uu == 19) | (uu == 20)
    fly = band & (rng.random((h, w)) < 0.6)
    r[fly] = 1.0 + 0.05 * rng.random(int(fly.sum()))
    return (d * r[..., None]).astype(np.float32), d.astype(np.float32), r_true


def test_flying_pixels_go_back_to_their_side_of_the_edge() -> None:
    pts, rays, _ = _step_cloud(np.random.default_rng(0))
    out, moved = repair_depth_edges(pts, rays)
    r = np.linalg.norm(out, axis=-1)
    band = r[:, 19:21]
    # the band is back on the two surfaces (noise 0.5 mm, 2 mm allowed); a flying pixel that
    # agrees with two neighbours within 4 mm stays (60 % flying over a 50 mm jump)
    near = np.abs(band - 1.0) < 0.002
    far = np.abs(band - 1.05) < 0.002
    assert (near | far).mean() >= 0.9  # measured 92.5 %
    r_before = np.linalg.norm(pts, axis=-1)[:, 19:21]
    assert ((np.abs(r_before - 1.0) < 0.002) | (np.abs(r_before - 1.05) < 0.002)).mean() < 0.6
    # and on its own side: the neighbour vote puts most of each column right (88-90 %)
    assert near[:, 0].mean() >= 0.8 and far[:, 1].mean() >= 0.8
    assert moved.sum() > 0
    # pixels away from the edge are untouched
    np.testing.assert_array_equal(out[:, :18], pts[:, :18])
    np.testing.assert_array_equal(out[:, 22:], pts[:, 22:])


def test_smooth_slope_is_left_alone() -> None:
    h, w = 30, 30
    vv, uu = np.mgrid[0:h, 0:w]
    d = np.stack([(uu - 15) / 400.0, (vv - 15) / 400.0, np.ones((h, w))], axis=-1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    r = 1.0 + 0.003 * uu  # 3 mm per pixel: 6 mm over a 3 x 3, below the 8 mm edge jump
    pts = (d * r[..., None]).astype(np.float32)
    out, moved = repair_depth_edges(pts, d.astype(np.float32))
    assert not moved.any()
    np.testing.assert_array_equal(out, pts)


def _box(x: float, y: float, size: tuple[float, float, float], yaw: float) -> SceneObject:
    return SceneObject(
        object_id=1, class_name="box", stream="scrap", shape=ShapeKind.BOX, size_m=size,
        x_m=x, y_m=y, yaw_rad=yaw, material="al", density_kg_m3=2700, composition={},
        appearance=Appearance(base_rgb=(0.5, 0.5, 0.5), specular=0.1),
    )


def test_tall_boxes_off_the_nadir_are_not_over_estimated() -> None:
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 240, hfov_deg=52.0)
    est = VolumeEstimator(cam)
    sim = DepthSensorSim(cam, np.random.default_rng(3))
    errs = []
    for k, (x, y) in enumerate([(1.85, -0.2), (2.15, -0.1), (1.9, 0.12), (2.1, 0.2),
                                (1.8, 0.25), (2.2, -0.25)]):
        box = _box(x, y, (0.09, 0.045, 0.04 + 0.004 * k), 0.3 * k)
        res = est.process_frame(sim.render_frame([box], 0.0).points_optical)
        assert len(res.objects) == 1
        errs.append(res.objects[0].volume_m3 / box.volume_m3() - 1.0)
    e = np.asarray(errs)
    # before the edge repair and shadow fill these were +7-15 %; the box target is 3 %
    assert float(np.median(np.abs(e))) <= 0.03, e
    assert float(np.max(np.abs(e))) <= 0.08, e


def test_a_broken_ridge_stays_one_object() -> None:
    cell = 0.0035
    ii, jj = np.mgrid[0:40, 0:20]
    r = 0.009
    v = (jj - 10) * cell
    h = np.where((np.abs(v) < r) & (ii > 5) & (ii < 34),
                 r + np.sqrt(np.maximum(r * r - v * v, 0.0)), 0.0)
    h[19:21, 9:12] -= 0.004  # a dip in the ridge: two seeds, but no step and no valley
    labels = segment_heightmap(h, cell)
    assert labels.max() == 1


def test_a_lumps_far_flank_in_the_shadow_is_not_taken_for_belt() -> None:
    """Slag lumps 0.3 m off the 3D sensor's axis: their far flank is hidden behind the top.
    Filled as belt (the rule for the shadow behind a box) they lost 9-10 % of their volume;
    under a curved top the hidden surface gets the middle between the belt and the grazing
    line of sight (measured: mean error -10.4 % → -7.8 %, median -9.5 % → -8.2 % over these
    16 lumps; the volume bench: lumps 8.3 → 7.4 %, p90 27.4 → 20.2 %, boxes 1.1 → 1.2 %).
    Those are the grazed flanks alone (``flank_fill=0``); the flanks behind a flat-looking
    top are the next test's."""
    graze = _lump_errors(HeightMapConfig(flank_fill=0.0))
    belt = _lump_errors(HeightMapConfig(graze_ratio=math.inf, flank_fill=0.0))
    assert belt.mean() < -0.07  # the loss this fixes is there
    assert graze.mean() > belt.mean() + 0.015
    assert abs(np.median(graze)) <= 0.10  # the bound for lumps


def test_an_irregular_objects_hidden_flanks_are_added_up_to_the_line_of_sight() -> None:
    """The same lumps: much of the far flank lies behind a top that looks flat or bumpy up to
    its edge, so the grazed rule does not fire and the shadow stays belt (mean -6.4 %, median
    -6.9 %). Added to the irregular object, filled up to the grazing line of sight, the flanks
    bring that to mean -0.9 %, median -1.3 % (measured, these 16 lumps)."""
    without = _lump_errors(HeightMapConfig(flank_fill=0.0))
    flanks = _lump_errors(HeightMapConfig())
    assert flanks.mean() > without.mean() + 0.04
    assert abs(np.median(flanks)) <= 0.03
    # a convex flank lies under its grazing line of sight: the fill is an upper bound, so no
    # lump may come out much above its true volume
    assert flanks.max() < 0.06


def test_hidden_flanks_leave_a_box_as_it_is() -> None:
    """A box's wall is vertical: its shadow is belt. The hidden flanks are recorded behind it
    too (the height map cannot yet tell a box from a lump) but a prismatic object's volume
    does not take them."""
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 320, hfov_deg=52.0,
                                     yaw_rad=math.pi / 2)
    box = _box(2.0, 0.3, (0.12, 0.08, 0.05), 0.4)
    fr = DepthSensorSim(cam, np.random.default_rng(0)).render_frame([box], 0.0)
    with_f = VolumeEstimator(cam, VolumeConfig()).process_frame(fr.points_optical)
    without = VolumeEstimator(cam, VolumeConfig(heightmap=HeightMapConfig(flank_fill=0.0))
                              ).process_frame(fr.points_optical)
    assert with_f.heightmap.flanks.rows.size > 0  # its shadow was recorded
    (a,), (b,) = with_f.objects, without.objects
    assert a.shape == ShapeClass.PRISMATIC
    assert a.volume_m3 == b.volume_m3


def _lump_errors(hm_cfg: HeightMapConfig) -> np.ndarray:
    """Relative volume errors of 16 slag lumps 0.3 m off the 3D sensor's axis."""
    from perception.catalog import load_catalog
    from sorting.sim.spawner import ObjectSpawner

    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 320, hfov_deg=52.0,
                                     yaw_rad=math.pi / 2)
    spawner = ObjectSpawner(load_catalog(), np.random.default_rng(3))
    lumps = [spawner.spawn(i, 2.0, 0.3, class_name=c) for i in range(8)
             for c in ("ld_slag_lump", "bf_slag_lump")]
    frames = [DepthSensorSim(cam, np.random.default_rng(i)).render_frame([o], 0.0)
              for i, o in enumerate(lumps)]

    est = VolumeEstimator(cam, VolumeConfig(heightmap=hm_cfg))
    out = []
    for o, fr in zip(lumps, frames, strict=True):
        res = est.process_frame(fr.points_optical)
        v = max(x.volume_m3 for x in res.objects)
        out.append(v / o.volume_m3() - 1)
    return np.array(out)
