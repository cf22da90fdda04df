"""Conversions between library types (numpy arrays, dataclasses) and ROS 2 messages.

This is the only place where perception/calibration types meet messages, so
nodes stay three lines long: convert in, call the library, convert out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from sorting.errors import SortingError
from sorting.msgs.typestore import new

_NS = 1_000_000_000
FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


def stamp(t_ns: int) -> Any:
    """builtin_interfaces/Time from integer nanoseconds."""
    sec, nanosec = divmod(int(t_ns), _NS)
    return new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def stamp_ns(msg_stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(msg_stamp.sec) * _NS + int(msg_stamp.nanosec)


def header(t_ns: int, frame_id: str) -> Any:
    return new("std_msgs/msg/Header", stamp=stamp(t_ns), frame_id=frame_id)


def image_msg(rgb: NDArray[np.uint8], t_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image (``rgb8``) from an H×W×3 uint8 array (no copy when contiguous)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise SortingError(
            f"image_msg: expected H×W×3 uint8, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    h, w, _ = rgb.shape
    data = np.ascontiguousarray(rgb).reshape(-1)
    return new(
        "sensor_msgs/msg/Image",
        header=header(t_ns, frame_id),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=data,
    )


def image_array(msg: Any) -> NDArray[np.uint8]:
    """H×W×3 uint8 view of an ``rgb8``/``bgr8`` sensor_msgs/Image (converted to RGB)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise SortingError(f"image_array: unsupported encoding {msg.encoding!r} (rgb8, bgr8)")
    arr = np.asarray(msg.data, dtype=np.uint8)
    rows = arr.reshape(msg.height, msg.step)[:, : msg.width * 3]
    img = rows.reshape(msg.height, msg.width, 3)
    return img[:, :, ::-1] if msg.encoding == "bgr8" else img


def camera_info_msg(camera: PinholeCamera, t_ns: int, frame_id: str) -> Any:
    """sensor_msgs/CameraInfo (plumb_bob) of a pinhole camera model."""
    fields = camera.to_camera_info_fields()
    return new(
        "sensor_msgs/msg/CameraInfo",
        header=header(t_ns, frame_id),
        height=camera.height,
        width=camera.width,
        distortion_model="plumb_bob",
        d=np.asarray(fields.d, dtype=np.float64),
        k=np.asarray(fields.k, dtype=np.float64),
        r=np.asarray(fields.r, dtype=np.float64),
        p=np.asarray(fields.p, dtype=np.float64),
    )


def pointcloud_msg(points: NDArray[np.float32], t_ns: int, frame_id: str) -> Any:
    """sensor_msgs/PointCloud2 with float32 x, y, z from N×3 or H×W×3 points (NaN = no return)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.shape[-1] != 3 or pts.ndim not in (2, 3):
        raise SortingError(f"pointcloud_msg: expected N×3 or H×W×3 points, got shape {pts.shape}")
    height, width = (1, pts.shape[0]) if pts.ndim == 2 else (pts.shape[0], pts.shape[1])
    fields = [
        new("sensor_msgs/msg/PointField", name=n, offset=4 * i, datatype=FLOAT32, count=1)
        for i, n in enumerate("xyz")
    ]
    data = np.ascontiguousarray(pts).reshape(-1).view(np.uint8)
    return new(
        "sensor_msgs/msg/PointCloud2",
        header=header(t_ns, frame_id),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=False,
        point_step=12,
        row_step=12 * width,
        data=data,
        is_dense=bool(np.isfinite(pts).all()),
    )


def pointcloud_array(msg: Any) -> NDArray[np.float32]:
    """H×W×3 (organized) or N×3 float32 x, y, z of a PointCloud2 with float32 x/y/z fields."""
    offsets = {f.name: f.offset for f in msg.fields if f.datatype == FLOAT32}
    if not all(k in offsets for k in "xyz"):
        raise SortingError(
            f"pointcloud_array: need float32 x, y, z fields, got {[f.name for f in msg.fields]}"
        )
    raw = np.asarray(msg.data, dtype=np.uint8)
    n = msg.width * msg.height
    rec = raw.reshape(n, msg.point_step)
    xyz = np.empty((n, 3), dtype=np.float32)
    for i, k in enumerate("xyz"):
        xyz[:, i] = rec[:, offsets[k] : offsets[k] + 4].copy().view(np.float32)[:, 0]
    return xyz.reshape(msg.height, msg.width, 3) if msg.height > 1 else xyz


def belt_joint_state(t_ns: int, position_m: float, velocity_mps: float, joint: str = "belt") -> Any:
    """sensor_msgs/JointState of the belt: the belt is a prismatic joint (m, m/s)."""
    return new(
        "sensor_msgs/msg/JointState",
        header=header(t_ns, "belt"),
        name=[joint],
        position=np.array([position_m]),
        velocity=np.array([velocity_mps]),
        effort=np.zeros(0),
    )


def transform_msg(
    t_ns: int, parent: str, child: str, translation: Iterable[float], quat_xyzw: Sequence[float]
) -> Any:
    """geometry_msgs/TransformStamped ``parent`` → ``child``."""
    tx, ty, tz = (float(v) for v in translation)
    qx, qy, qz, qw = (float(v) for v in quat_xyzw)
    return new(
        "geometry_msgs/msg/TransformStamped",
        header=header(t_ns, parent),
        child_frame_id=child,
        transform=new(
            "geometry_msgs/msg/Transform",
            translation=new("geometry_msgs/msg/Vector3", x=tx, y=ty, z=tz),
            rotation=new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw),
        ),
    )


def new_tf(transforms: Sequence[Any]) -> Any:
    """tf2_msgs/TFMessage holding ``transforms``."""
    return new("tf2_msgs/msg/TFMessage", transforms=list(transforms))
