"""Intrinsic calibration from ChArUco views rendered with a known, distorted camera."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.camera import PinholeCamera
from calibration.detection import BoardDetection, detect_charuco
from calibration.intrinsics import assess_views, calibrate_intrinsics
from calibration.procedure_errors import (
    DegenerateGeometryError,
    TargetNotFoundError,
    TooFewViewsError,
)
from calibration.targets import CharucoTarget
from calibration.transforms import RigidTransform
from perception.sensors.camera.targets_sim import PlacedTarget, TargetRenderer, held_poses

BOARD = CharucoTarget(9, 6, 0.04, 0.03)
_BASE = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0)
# truth: non-square pixels, principal point off centre, barrel distortion + tangential terms
TRUE = PinholeCamera(
    640, 480, _BASE.fx * 1.004, _BASE.fx, 323.4, 236.1, (-0.12, 0.06, 0.001, -0.0005, 0.0),
    _BASE.T_belt_camera,
)


def _views(n: int, seed: int, fronto: bool = False) -> list[BoardDetection]:
    rng = np.random.default_rng(seed)
    renderer = TargetRenderer(TRUE, rng)
    poses = held_poses(TRUE, BOARD, n, rng, distance_m=(0.45, 0.8), fronto_parallel=fronto)
    return [
        detect_charuco(renderer.render([PlacedTarget(BOARD, p)]), BOARD, f"v{i}")
        for i, p in enumerate(poses)
    ]


@pytest.fixture(scope="module")
def detections() -> list[BoardDetection]:
    return _views(14, seed=11)


def test_recovers_focal_and_principal_point(detections: list[BoardDetection]) -> None:
    res = calibrate_intrinsics(detections)
    c = res.camera
    # issue 5: focal length within 0.5 %, principal point within 2 px
    assert abs(c.fx / TRUE.fx - 1) < 0.005
    assert abs(c.fy / TRUE.fy - 1) < 0.005
    assert abs(c.cx - TRUE.cx) < 2.0
    assert abs(c.cy - TRUE.cy) < 2.0
    # k1 of -0.12 found to within 0.02 (sensor noise + 0.7 px blur)
    assert abs(c.distortion[0] - TRUE.distortion[0]) < 0.02
    # sub-pixel corners: RMS well under the 0.5 px quality limit
    assert res.rms_px < 0.3
    assert res.n_views == 14 and not res.rejected
    assert set(res.per_view_rms_px) == {d.view_id for d in detections}


def test_rejects_a_bad_view(detections: list[BoardDetection]) -> None:
    d = detections[3]
    rng = np.random.default_rng(0)
    wobbled = BoardDetection(
        "torn", d.ids, d.image_points + rng.normal(0, 2.0, d.image_points.shape),
        d.object_points, d.image_size,
    )
    res = calibrate_intrinsics([*detections, wobbled])
    assert [r.view_id for r in res.rejected] == ["torn"]
    assert "torn" not in res.per_view_rms_px
    assert abs(res.camera.fx / TRUE.fx - 1) < 0.005


def test_too_few_views_says_how_many_more(detections: list[BoardDetection]) -> None:
    with pytest.raises(TooFewViewsError, match="capture 6 more views"):
        calibrate_intrinsics(detections[:4])


def test_board_not_found_on_empty_belt() -> None:
    img = TargetRenderer(TRUE, np.random.default_rng(1)).render([])
    with pytest.raises(TargetNotFoundError, match="found 0 ChArUco corners"):
        detect_charuco(img, BOARD, "empty")


def test_all_views_parallel_is_degenerate() -> None:
    dets = _views(10, seed=5, fronto=True)
    with pytest.raises(DegenerateGeometryError, match="tilt the board"):
        calibrate_intrinsics(dets)


def test_guidance_names_empty_regions(detections: list[BoardDetection]) -> None:
    # only views whose corners stay in the left half of the image
    left = [d for d in detections if d.image_points[:, 0].max() < 320]
    g = assess_views(left or detections[:1], (640, 480), target_views=20)
    assert g.views_needed == 20 - len(left or detections[:1])
    assert not g.done
    assert any("more views needed" in m for m in g.messages)
    assert g.coverage < 1.0


def test_identity_pose_of_result(detections: list[BoardDetection]) -> None:
    res = calibrate_intrinsics(detections)
    assert res.camera.T_belt_camera.allclose(RigidTransform.identity())
