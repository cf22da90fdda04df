"""Calibration-target renders agree with the camera model; touch-point noise is as stated."""

from __future__ import annotations

import numpy as np

from calibration.camera import PinholeCamera
from calibration.detection import detect_charuco
from calibration.targets import CharucoTarget
from calibration.transforms import RigidTransform
from perception.sensors.camera.targets_sim import (
    PlacedTarget,
    TargetRenderer,
    TargetSimConfig,
    on_belt_pose,
    touch_points,
)

CAMERA = PinholeCamera.looking_down(0.0, 0.0, 0.8, 480, 360, 50.0, yaw_rad=0.2,
                                    distortion=(-0.1, 0.03, 0.0, 0.0, 0.0))


def test_board_corners_land_where_the_model_projects_them() -> None:
    board = CharucoTarget(7, 5, 0.05, 0.037)
    pose = on_belt_pose(board, 0.02, -0.01, 0.3)
    img = TargetRenderer(CAMERA, np.random.default_rng(0)).render([PlacedTarget(board, pose)])
    det = detect_charuco(img, board)
    uv, _ = CAMERA.project(pose.apply(det.object_points))
    err = np.linalg.norm(uv - det.image_points, axis=1)
    # sub-pixel detection on a blurred, noisy render: within 0.3 px everywhere
    assert det.n == board.n_corners
    assert err.max() < 0.3


def test_noise_free_render_is_deterministic() -> None:
    board = CharucoTarget(5, 4, 0.05, 0.037)
    cfg = TargetSimConfig(full_well_e=None)
    placed = [PlacedTarget(board, on_belt_pose(board, 0.0, 0.0))]
    a = TargetRenderer(CAMERA, np.random.default_rng(1), cfg).render(placed)
    b = TargetRenderer(CAMERA, np.random.default_rng(1), cfg).render(placed)
    assert np.array_equal(a, b) and a.shape == (360, 480, 3)
    # the printed white is brighter than the belt, the black darker
    assert a.max() > 200 and a.min() < 60


def test_touch_noise_statistics() -> None:
    rng = np.random.default_rng(3)
    t = RigidTransform.from_rpy(0.0, 0.0, 0.5, (1.0, 2.0, 0.0))
    p = rng.uniform(-1, 1, (4000, 3))
    q = touch_points(t, p, rng, noise_m=0.5e-3)
    d = q - t.apply(p)
    # 4000 x 3 samples: std within 3 % of 0.5 mm
    assert abs(d.std() / 0.5e-3 - 1) < 0.03
