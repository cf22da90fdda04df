"""PinholeCamera and RigidTransform: projections, rays, distortion, CameraInfo fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration import CalibrationError, PinholeCamera, RigidTransform, ray_plane_z


def _tilted_camera(distortion: tuple[float, float, float, float, float]) -> PinholeCamera:
    pose = RigidTransform.from_rpy(math.pi + 0.2, 0.1, 0.4, translation=(0.8, -0.1, 1.2))
    return PinholeCamera(
        width=640, height=480, fx=520.0, fy=515.0, cx=322.3, cy=241.7,
        distortion=distortion, T_belt_camera=pose,
    )


def test_point_on_optical_axis_lands_on_principal_point() -> None:
    cam = _tilted_camera((-0.2, 0.05, 0.001, -0.002, 0.01))
    axis = cam.T_belt_camera.rotation[:, 2]
    pts = cam.position_belt + np.outer([0.5, 1.0, 3.0], axis)
    uv, depth = cam.project(pts)
    # exact up to float rounding: the axis has x = y = 0 in the optical frame
    np.testing.assert_allclose(uv, [[cam.cx, cam.cy]] * 3, atol=1e-9)
    np.testing.assert_allclose(depth, [0.5, 1.0, 3.0], atol=1e-12)


@pytest.mark.parametrize("distortion", [(0.0,) * 5, (-0.25, 0.08, 0.001, -0.0015, -0.01)])
def test_project_unproject_round_trip(
    distortion: tuple[float, float, float, float, float],
) -> None:
    cam = _tilted_camera(distortion)
    rng = np.random.default_rng(3)
    uv = rng.uniform([0, 0], [cam.width - 1, cam.height - 1], size=(500, 2))
    depth = rng.uniform(0.3, 3.0, size=500)
    pts = cam.unproject(uv, depth)
    uv2, depth2 = cam.project(pts)
    # 1e-3 px: the brief's budget for the iterative undistortion
    np.testing.assert_allclose(uv2, uv, atol=1e-3)
    np.testing.assert_allclose(depth2, depth, atol=1e-9)


def test_distortion_round_trip_within_a_thousandth_of_a_pixel() -> None:
    cam = _tilted_camera((-0.3, 0.1, 0.002, -0.001, -0.02))
    uv = cam.pixel_grid()[::97]
    xy_d = np.column_stack([(uv[:, 0] - cam.cx) / cam.fx, (uv[:, 1] - cam.cy) / cam.fy])
    xy = cam.undistort_normalized(xy_d)
    back = cam.distort_normalized(xy)
    err_px = np.abs(back - xy_d) * np.array([cam.fx, cam.fy])
    assert err_px.max() < 1e-3
    # and distortion is not a no-op at the corners (the test would be vacuous otherwise)
    assert np.abs(xy - xy_d).max() * cam.fx > 5.0


def test_distortion_matches_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    cam = _tilted_camera((-0.25, 0.08, 0.001, -0.0015, -0.01))
    rng = np.random.default_rng(1)
    pts = cam.unproject(rng.uniform([0, 0], [639, 479], (50, 2)), rng.uniform(0.5, 2.0, 50))
    uv, _ = cam.project(pts)
    t_cb = cam.T_belt_camera.inverse()
    rvec, _ = cv2.Rodrigues(t_cb.rotation)
    uv_cv, _ = cv2.projectPoints(pts, rvec, t_cb.translation, cam.K, cam.D)
    np.testing.assert_allclose(uv, uv_cv.reshape(-1, 2), atol=1e-6)


def test_looking_down_footprint_and_orientation() -> None:
    cam = PinholeCamera.looking_down(1.5, 0.1, 1.0, 640, 480, hfov_deg=60.0)
    fp = cam.ground_footprint(0.0)
    half_w = math.tan(math.radians(30.0))  # 1 m up, 60 deg across the 640 px edges
    half_h = half_w * 480 / 640
    np.testing.assert_allclose(fp[:, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(fp[:, 0].min(), 1.5 - half_w, atol=1e-9)
    np.testing.assert_allclose(fp[:, 0].max(), 1.5 + half_w, atol=1e-9)
    np.testing.assert_allclose(fp[:, 1].min(), 0.1 - half_h, atol=1e-9)
    np.testing.assert_allclose(fp[:, 1].max(), 0.1 + half_h, atol=1e-9)
    # image u runs downstream (+x), v to the right of the belt (-y)
    uv, depth = cam.project(np.array([[1.6, 0.1, 0.0], [1.5, 0.0, 0.0]]))
    assert uv[0, 0] > cam.cx and abs(uv[0, 1] - cam.cy) < 1e-9
    assert uv[1, 1] > cam.cy and abs(uv[1, 0] - cam.cx) < 1e-9
    np.testing.assert_allclose(depth, 1.0)


def test_pixel_rays_hit_the_belt_where_the_pixels_project() -> None:
    cam = _tilted_camera((-0.2, 0.05, 0.0, 0.0, 0.0))
    uv = cam.pixel_grid()[::131]
    rays = cam.pixel_rays(uv)
    np.testing.assert_allclose(np.linalg.norm(rays.directions, axis=1), 1.0, atol=1e-12)
    hit = ray_plane_z(rays, 0.05)
    np.testing.assert_allclose(hit[:, 2], 0.05, atol=1e-12)
    uv2, _ = cam.project(hit)
    np.testing.assert_allclose(uv2, uv, atol=1e-3)


def test_ray_plane_behind_origin_is_nan() -> None:
    cam = PinholeCamera.looking_down(0.0, 0.0, 1.0, 4, 3, hfov_deg=40.0)
    hit = ray_plane_z(cam.pixel_rays(), 2.0)  # plane above the camera: behind every ray
    assert np.isnan(hit).all()


def test_camera_info_fields() -> None:
    cam = _tilted_camera((-0.2, 0.05, 0.001, 0.002, 0.003))
    info = cam.to_camera_info_fields()
    assert info.distortion_model == "plumb_bob"
    assert (info.width, info.height) == (640, 480)
    np.testing.assert_array_equal(info.d, [-0.2, 0.05, 0.001, 0.002, 0.003])
    np.testing.assert_array_equal(info.k, [520.0, 0, 322.3, 0, 515.0, 241.7, 0, 0, 1])
    np.testing.assert_array_equal(info.r, np.eye(3).ravel())
    np.testing.assert_array_equal(info.p, [520.0, 0, 322.3, 0, 0, 515.0, 241.7, 0, 0, 0, 1, 0])


def test_bad_input_raises() -> None:
    with pytest.raises(CalibrationError, match="fx/fy"):
        PinholeCamera(width=10, height=10, fx=0.0, fy=1.0, cx=5, cy=5)
    cam = PinholeCamera.looking_down(0.0, 0.0, 1.0, 64, 48, hfov_deg=60.0)
    with pytest.raises(CalibrationError, match="N x 3"):
        cam.project(np.zeros((4, 2)))
    with pytest.raises(CalibrationError, match="hfov_deg"):
        PinholeCamera.looking_down(0.0, 0.0, 1.0, 64, 48, hfov_deg=180.0)


def test_transform_compose_inverse_quaternion_rpy() -> None:
    rng = np.random.default_rng(7)
    a = RigidTransform.from_rpy(0.3, -0.4, 2.0, translation=(1.0, 2.0, 3.0))
    b = RigidTransform.from_quaternion((0.1, -0.3, 0.2, 0.9), translation=(-0.5, 0.0, 0.25))
    pts = rng.normal(size=(20, 3))
    np.testing.assert_allclose((a @ b).apply(pts), a.apply(b.apply(pts)), atol=1e-12)
    assert (a @ a.inverse()).allclose(RigidTransform.identity(), atol=1e-12)
    np.testing.assert_allclose(a.as_rpy(), (0.3, -0.4, 2.0), atol=1e-12)
    q = b.as_quaternion()
    q_ref = np.array([0.1, -0.3, 0.2, 0.9]) / np.linalg.norm([0.1, -0.3, 0.2, 0.9])
    np.testing.assert_allclose(q, q_ref, atol=1e-12)
    assert RigidTransform.from_quaternion(a.as_quaternion(), a.translation).allclose(a)
    np.testing.assert_allclose(RigidTransform.from_matrix(a.as_matrix()).as_matrix(), a.as_matrix())
    # yaw of +90 deg turns x into y (ROS convention)
    rz = RigidTransform.from_rpy(0.0, 0.0, math.pi / 2)
    np.testing.assert_allclose(rz.apply(np.array([[1.0, 0.0, 0.0]])), [[0.0, 1.0, 0.0]], atol=1e-12)
    with pytest.raises(CalibrationError, match="rotation"):
        RigidTransform(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
