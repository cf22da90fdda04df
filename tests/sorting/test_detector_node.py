"""Detector node: image encodings (incl. Bayer), rejected frames, belt coordinates vs the
simulator's own projection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from calibration.camera import PinholeCamera
from perception.detector.errors import FrameError
from perception.detector.onnx_detector import Detections, belt_points
from perception.sensors.camera import CameraSimConfig, RgbCameraSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.msgs import new
from sorting.msgs.convert import camera_info_msg, header, image_msg
from sorting.nodes.detector_node import DetectorNode
from sorting.nodes.image_decode import image_to_rgb
from sorting.runtime import InProcessExecutor, SimClock

CAMERA = PinholeCamera.looking_down(x_m=1.2, y_m=0.0, height_m=1.0, width_px=640, height_px=480,
                                    hfov_deg=46.0)


def _smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(xx / 9.0)
    g = 128 + 100 * np.cos(yy / 7.0)
    b = 128 + 80 * np.sin((xx + yy) / 11.0)
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def _msg(data: np.ndarray, encoding: str, h: int, w: int, step: int, big: int = 0) -> Any:
    return new("sensor_msgs/msg/Image", header=header(0, "camera_optical_frame"), height=h,
               width=w, encoding=encoding, is_bigendian=big, step=step,
               data=np.ascontiguousarray(data).reshape(-1).view(np.uint8))


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Bayer mosaic with the 2 x 2 tile ``pattern`` (ROS naming: from the top-left pixel)."""
    ch = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for k, c in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, ch[c]]
    return out


def test_rgb_bgr_mono_decode_exactly() -> None:
    rgb = _smooth_rgb()
    h, w = rgb.shape[:2]
    assert np.array_equal(image_to_rgb(_msg(rgb, "rgb8", h, w, w * 3)), rgb)
    assert np.array_equal(image_to_rgb(_msg(rgb[..., ::-1], "bgr8", h, w, w * 3)), rgb)
    padded = np.zeros((h, w * 3 + 8), dtype=np.uint8)  # row padding: step > width * 3
    padded[:, : w * 3] = rgb.reshape(h, -1)
    assert np.array_equal(image_to_rgb(_msg(padded, "rgb8", h, w, w * 3 + 8)), rgb)
    mono = image_to_rgb(_msg(rgb[..., 1], "mono8", h, w, w))
    assert mono.shape == (h, w, 3) and np.array_equal(mono[..., 2], rgb[..., 1])


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_demosaics_to_the_right_colours(pattern: str) -> None:
    rgb = _smooth_rgb()
    h, w = rgb.shape[:2]
    out = image_to_rgb(_msg(_mosaic(rgb, pattern), f"bayer_{pattern}8", h, w, w))
    err = np.abs(out[4:-4, 4:-4].astype(int) - rgb[4:-4, 4:-4].astype(int)).mean(axis=(0, 1))
    # smooth test image: bilinear demosaicing is within a few DN per channel; a swapped
    # pattern (R <-> B) would be off by tens of DN
    assert np.all(err < 6), err
    wide = _mosaic(rgb.astype(np.uint16) * 257, pattern).astype(">u2")
    out16 = image_to_rgb(_msg(wide, f"bayer_{pattern}16", h, w, w * 2, big=1))
    assert np.abs(out16.astype(int) - out.astype(int)).max() <= 1  # same after 16 -> 8 bit


@pytest.mark.parametrize(
    ("encoding", "h", "w", "step", "size", "match"),
    [
        ("yuv422", 4, 4, 8, 32, "not supported"),
        ("rgb16", 4, 4, 24, 96, "not supported"),
        ("rgb8", 0, 0, 0, 0, "empty"),
        ("rgb8", 4, 4, 12, 40, "expected step"),  # data shorter than step x height
        ("rgb8", 4, 4, 10, 40, "step"),  # step shorter than a row
        ("bayer_rggb8", 1, 1, 1, 1, "2 x 2"),
    ],
)
def test_bad_frames_raise_frame_error(
    encoding: str, h: int, w: int, step: int, size: int, match: str
) -> None:
    with pytest.raises(FrameError, match=match):
        image_to_rgb(_msg(np.zeros(size, dtype=np.uint8), encoding, h, w, step))


def _scene() -> tuple[SceneObject, np.ndarray, tuple[int, int, int, int]]:
    obj = SceneObject(
        object_id=7, class_name="tablet", stream="weee", shape=ShapeKind.BOX,
        size_m=(0.2, 0.12, 0.005), x_m=1.38, y_m=-0.11, yaw_rad=0.4, material="glass",
        density_kg_m3=2000.0, composition={}, appearance=Appearance(base_rgb=(0.2, 0.2, 0.25)),
    )
    sim = RgbCameraSim(CAMERA, np.random.default_rng(0), CameraSimConfig(full_well_e=None))
    frame = sim.render_frame([obj], belt_position_m=0.0)
    (label,) = frame.labels
    return obj, frame.image, label.bbox_xyxy


def test_belt_points_agree_with_the_simulator_projection() -> None:
    obj, _, box = _scene()
    dets = Detections(np.asarray([box], dtype=np.float32), np.ones(1, np.float32),
                      np.asarray([2]), names=["a", "b", "tablet"])
    xyz = belt_points(dets, CAMERA, z_m=0.0)[0]
    # the truth box is the visible top face (5 mm up, 0.2 m off axis: 1 mm parallax) to
    # within a pixel at each edge (1.3 mm/px): 3 mm covers both
    assert abs(xyz[0] - obj.x_m) < 3e-3 and abs(xyz[1] - obj.y_m) < 3e-3
    assert xyz[2] == pytest.approx(0.0)


class _Out:
    def __init__(self) -> None:
        self.msgs: list[Any] = []

    def __call__(self, topic: str, _type: str, _t: int, msg: Any) -> None:
        if topic.endswith("camera/detections"):
            self.msgs.append(msg)


def test_node_publishes_belt_positions_and_survives_bad_frames() -> None:
    obj, image, box = _scene()
    ex = InProcessExecutor(SimClock())
    # the pose comes from the line description; intrinsics arrive on camera_info
    posed = PinholeCamera.looking_down(1.2, 0.0, 1.0, 64, 48, 30.0)
    node = ex.add_node(lambda ctx: DetectorNode(ctx, camera=posed), "detector")
    truth = Detections(np.asarray([box], dtype=np.float32), np.asarray([0.9], np.float32),
                       np.asarray([2]), names=node.detector.names)
    seen: list[np.ndarray] = []

    def fake_detect(rgb: np.ndarray) -> Detections:  # the network's quality is not under test
        seen.append(rgb)
        return truth

    node.detector.detect = fake_detect  # type: ignore[method-assign]
    out = _Out()
    ex.add_tap(out)
    ex.inject("/line1/camera/camera_info", "sensor_msgs/msg/CameraInfo",
              camera_info_msg(CAMERA, 0, "camera_optical_frame"))
    ex.inject("/line1/camera/image_raw", "sensor_msgs/msg/Image",
              _msg(np.zeros(32, np.uint8), "yuv422", 4, 4, 8))
    ex.inject("/line1/camera/image_raw", "sensor_msgs/msg/Image",
              image_msg(image, 5, "camera_optical_frame"))
    ex.drain()
    assert node.rejected_frames == 1 and "yuv422" in (node.last_error or "")
    assert len(out.msgs) == 1 and node.frames == 1
    assert np.array_equal(seen[0], image)
    (d,) = out.msgs[0].detections
    assert d.results[0].hypothesis.class_id == node.detector.names[2]
    assert d.results[0].hypothesis.score == pytest.approx(0.9)
    assert d.bbox.size_x == pytest.approx(box[2] - box[0])
    p = d.results[0].pose.pose.position
    assert abs(p.x - obj.x_m) < 3e-3 and abs(p.y - obj.y_m) < 3e-3  # as in the test above
    assert node.detections_per_class[node.detector.names[2]] == 1


def test_node_runs_the_real_model_on_a_frame() -> None:
    _, image, _ = _scene()
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: DetectorNode(ctx, camera=CAMERA), "detector",
                       parameters={"conf": 0.01, "grey_world": True})
    assert node.detector.grey_world  # the line YAML's nodes.detector.grey_world reaches it
    out = _Out()
    ex.add_tap(out)
    ex.inject("/line1/camera/image_raw", "sensor_msgs/msg/Image",
              image_msg(image, 5, "camera_optical_frame"))
    ex.drain()
    assert len(out.msgs) == 1 and node.rejected_frames == 0
    for d in out.msgs[0].detections:
        assert d.results[0].hypothesis.class_id in node.detector.names
        assert 0.01 < d.results[0].hypothesis.score <= 1.0


def test_camera_pose_from_parameters_matches_the_line_camera() -> None:
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(DetectorNode, "detector", parameters={
        "x_m": 1.2, "y_m": 0.0, "height_m": 1.0, "width_px": 640, "height_px": 480,
        "hfov_deg": 46.0})
    assert node.camera is not None and not node.detector.grey_world  # off by default
    assert node.camera.T_belt_camera.allclose(CAMERA.T_belt_camera)
    assert node.camera.fx == pytest.approx(CAMERA.fx)
    bare = ex.add_node(DetectorNode, "bare")
    assert bare.camera is None  # no pose: detections carry no belt coordinates
