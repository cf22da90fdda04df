"""Detector node: camera frames in, ``vision_msgs/Detection2DArray`` out.

Subscribes ``camera/image_raw`` (sensor_msgs/Image: rgb8, bgr8, mono8, bayer_*) and
``camera/camera_info`` (updates the intrinsics of the camera model); publishes
``camera/detections``. Each ``Detection2D`` has the frame's header, ``bbox`` (centre and
size in frame pixels, pixel centres at integer coordinates), one hypothesis with
``class_id`` = the catalog class *name* and ``score``, and -- when the node has a camera
pose -- ``results[0].pose.pose.position`` = the point in the **belt** frame (m) where the
ray through the box centre meets the belt surface (``z = belt_plane_z_m``); ``id`` is the
detection's index in the frame.

A frame that cannot be decoded (unsupported encoding, empty, sizes that do not add up) is
logged and counted in ``rejected_frames``; the node keeps running.

Parameters: ``model`` (ONNX path; default the shipped model), ``conf`` (0.25), ``iou``
(0.6), ``agnostic_nms`` (true: one box per object whatever its class), ``threads`` (0 = ONNX
Runtime's choice), ``grey_world`` (false: colour constancy before the network, see
:mod:`perception.detector.onnx_detector`), ``belt_plane_z_m`` (0.0); the camera pose as
in the line YAML's ``sensors.camera``: ``x_m``, ``y_m``, ``height_m`` (0: no pose, no belt
coordinates), ``width_px``, ``height_px``, ``hfov_deg`` (a camera looking straight down; the
intrinsics are then replaced by those on ``camera_info``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera import PinholeCamera
from perception.detector.errors import DetectorError
from perception.detector.offline import REPO_ROOT
from perception.detector.onnx_detector import Detections, OnnxDetector, belt_points
from sorting.msgs import new
from sorting.nodes.image_decode import image_to_rgb
from sorting.runtime.context import SENSOR_QOS, Node, NodeContext

DEFAULT_MODEL = REPO_ROOT / "datasets" / "models" / "detector" / "crmsort_yolo11n.onnx"


def camera_from_info(msg: Any, pose_from: PinholeCamera) -> PinholeCamera:
    """A camera with the intrinsics of a ``sensor_msgs/CameraInfo`` and the pose of
    ``pose_from`` (CameraInfo carries no pose; it comes from the line description)."""
    k = np.asarray(msg.k, dtype=np.float64)
    d = [float(v) for v in np.asarray(msg.d, dtype=np.float64)[:5]] + [0.0] * 5
    return PinholeCamera(
        width=int(msg.width), height=int(msg.height), fx=float(k[0]), fy=float(k[4]),
        cx=float(k[2]), cy=float(k[5]), distortion=(d[0], d[1], d[2], d[3], d[4]),
        T_belt_camera=pose_from.T_belt_camera,
    )


def detections_msg(dets: Detections, header: Any, belt_xyz: np.ndarray | None) -> Any:
    """``vision_msgs/Detection2DArray`` of one frame (see the module docstring)."""
    items = []
    for i in range(len(dets)):
        x0, y0, x1, y1 = (float(v) for v in dets.boxes_xyxy[i])
        position = new("geometry_msgs/msg/Point")
        if belt_xyz is not None and np.all(np.isfinite(belt_xyz[i])):
            position = new("geometry_msgs/msg/Point", x=float(belt_xyz[i, 0]),
                           y=float(belt_xyz[i, 1]), z=float(belt_xyz[i, 2]))
        hyp = new(
            "vision_msgs/msg/ObjectHypothesisWithPose",
            hypothesis=new("vision_msgs/msg/ObjectHypothesis",
                           class_id=dets.names[int(dets.class_ids[i])],
                           score=float(dets.scores[i])),
            pose=new("geometry_msgs/msg/PoseWithCovariance",
                     pose=new("geometry_msgs/msg/Pose", position=position)),
        )
        bbox = new(
            "vision_msgs/msg/BoundingBox2D",
            center=new("vision_msgs/msg/Pose2D",
                       position=new("vision_msgs/msg/Point2D",
                                     x=(x0 + x1) / 2 - 0.5, y=(y0 + y1) / 2 - 0.5)),
            size_x=x1 - x0,
            size_y=y1 - y0,
        )
        items.append(new("vision_msgs/msg/Detection2D", header=header, results=[hyp],
                         bbox=bbox, id=str(i)))
    return new("vision_msgs/msg/Detection2DArray", header=header, detections=items)


class DetectorNode(Node):
    """Runs the ONNX line detector on each camera frame (see the module docstring).

    ``camera``: the camera model of the line (pose in the belt frame, e.g. built from the
    line YAML); without it detections carry no belt coordinates. Raises
    :class:`ModelFileError` / :class:`ClassMismatchError` at start-up for a bad model.
    """

    def __init__(self, ctx: NodeContext, camera: PinholeCamera | None = None) -> None:
        super().__init__(ctx)
        model = str(ctx.declare_parameter("model", str(DEFAULT_MODEL)).value)
        conf = float(ctx.declare_parameter("conf", 0.25).value)
        iou = float(ctx.declare_parameter("iou", 0.6).value)
        # one box per object: a weak class decision must not leave two boxes of two classes
        agnostic = bool(ctx.declare_parameter("agnostic_nms", True).value)
        threads = int(ctx.declare_parameter("threads", 0).value)
        grey = bool(ctx.declare_parameter("grey_world", False).value)
        self.plane_z = float(ctx.declare_parameter("belt_plane_z_m", 0.0).value)
        self.detector = OnnxDetector(Path(model), conf=conf, iou=iou, agnostic=agnostic,
                                     threads=threads or None, grey_world=grey)
        pose = {k: float(ctx.declare_parameter(k, d).value) for k, d in
                (("x_m", 0.0), ("y_m", 0.0), ("height_m", 0.0), ("width_px", 640.0),
                 ("height_px", 480.0), ("hfov_deg", 46.0), ("yaw_deg", 0.0))}
        if camera is None and pose["height_m"] > 0:
            camera = PinholeCamera.looking_down(
                x_m=pose["x_m"], y_m=pose["y_m"], height_m=pose["height_m"],
                width_px=int(pose["width_px"]), height_px=int(pose["height_px"]),
                hfov_deg=pose["hfov_deg"], yaw_rad=math.radians(pose["yaw_deg"]),
            )
        self.camera = camera
        self.pub = ctx.create_publisher(
            "vision_msgs/msg/Detection2DArray", "camera/detections", 10
        )
        ctx.create_subscription("sensor_msgs/msg/Image", "camera/image_raw", self._on_image,
                                SENSOR_QOS)
        ctx.create_subscription("sensor_msgs/msg/CameraInfo", "camera/camera_info",
                                self._on_info, SENSOR_QOS)
        self.frames = 0
        self.rejected_frames = 0
        self.detections_per_class: Counter[str] = Counter()
        self.last_error: str | None = None

    def _on_info(self, msg: Any) -> None:
        if self.camera is not None:
            self.camera = camera_from_info(msg, self.camera)

    def _on_image(self, msg: Any) -> None:
        try:
            rgb = image_to_rgb(msg)
            dets = self.detector.detect(rgb)
        except DetectorError as exc:
            self.rejected_frames += 1
            self.last_error = str(exc)
            self.ctx.get_logger().warning(f"frame rejected: {exc}")
            return
        belt = None
        if self.camera is not None and len(dets):
            belt = belt_points(dets, self.camera, self.plane_z)
        self.frames += 1
        self.detections_per_class.update(dets.class_names)
        self.pub.publish(detections_msg(dets, msg.header, belt))
