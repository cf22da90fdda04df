"""Camera -> belt extrinsics from a board and from markers lying on the belt (rendered)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.camera import PinholeCamera
from calibration.detection import detect_charuco, detect_markers
from calibration.extrinsics import (
    board_observation,
    calibrate_extrinsics,
    marker_observations,
    rotation_angle_deg,
)
from calibration.procedure_errors import PoorFitError, TooFewViewsError
from calibration.targets import CharucoTarget, MarkerTarget
from calibration.transforms import RigidTransform
from perception.sensors.camera.targets_sim import PlacedTarget, TargetRenderer, on_belt_pose

_BASE = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0)
# truth: 1 m above the belt, tilted by a few degrees and shifted by cm from the nominal mount
POSE = _BASE.T_belt_camera @ RigidTransform.from_rpy(0.03, -0.02, 0.05, (0.01, -0.02, 0.005))
TRUE = PinholeCamera(
    640, 480, _BASE.fx * 1.004, _BASE.fx, 323.4, 236.1, (-0.12, 0.06, 0.001, -0.0005, 0.0), POSE
)
INTRINSICS = TRUE.with_pose(RigidTransform.identity())
BOARD = CharucoTarget(9, 6, 0.06, 0.045, thickness_m=0.003)


@pytest.fixture(scope="module")
def renderer() -> TargetRenderer:
    return TargetRenderer(TRUE, np.random.default_rng(21))


def test_board_on_belt_recovers_pose(renderer: TargetRenderer) -> None:
    obs = []
    for i, x in enumerate((1.08, 1.2, 1.32)):
        pose = on_belt_pose(BOARD, x, 0.02, 0.03)
        det = detect_charuco(renderer.render([PlacedTarget(BOARD, pose)]), BOARD, f"b{i}")
        obs.append(board_observation(det, pose))
    res = calibrate_extrinsics(INTRINSICS, obs)
    # issue 5: translation within 2 mm at 1 m, rotation within 0.2 degrees
    assert np.linalg.norm(res.T_belt_camera.translation - POSE.translation) < 2e-3
    assert rotation_angle_deg(res.T_belt_camera, POSE) < 0.2
    assert res.rms_px < 0.5
    assert res.belt_rms_m < 1e-3
    assert res.camera.T_belt_camera is res.T_belt_camera


def test_markers_on_belt_recover_pose(renderer: TargetRenderer) -> None:
    placed = {}
    targets = []
    for mid, (x, y) in enumerate([(1.05, -0.15), (1.35, -0.15), (1.05, 0.15), (1.35, 0.12)]):
        m = MarkerTarget(marker_id=mid, size_m=0.1, margin_m=0.01)
        pose = on_belt_pose(m, x, y, 0.1 * mid)
        placed[mid] = (m, pose)
        targets.append(PlacedTarget(m, pose))
    found = detect_markers(renderer.render(targets))
    assert sorted(found) == [0, 1, 2, 3]
    res = calibrate_extrinsics(INTRINSICS, marker_observations(found, placed, "m"))
    # 16 corners only: same 2 mm / 0.2 degree bar as the board
    assert np.linalg.norm(res.T_belt_camera.translation - POSE.translation) < 2e-3
    assert rotation_angle_deg(res.T_belt_camera, POSE) < 0.2


def test_wrong_board_position_is_a_poor_fit(renderer: TargetRenderer) -> None:
    obs = []
    for i, x in enumerate((1.08, 1.32)):
        pose = on_belt_pose(BOARD, x, 0.0, 0.0)
        det = detect_charuco(renderer.render([PlacedTarget(BOARD, pose)]), BOARD, f"b{i}")
        # the second view's belt travel is entered 5 cm short
        told = pose if i == 0 else on_belt_pose(BOARD, x - 0.05, 0.0, 0.0)
        obs.append(board_observation(det, told))
    with pytest.raises(PoorFitError, match="position on the belt"):
        calibrate_extrinsics(INTRINSICS, obs)


def test_no_observations() -> None:
    with pytest.raises(TooFewViewsError, match="lay the board"):
        calibrate_extrinsics(INTRINSICS, [])
