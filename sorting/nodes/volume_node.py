"""Volume node: ``depth/points`` (PointCloud2, organized, optical frame) -> ``depth/volumes``.

Subscribes ``depth/points``, ``/tf_static`` (the sensor pose ``belt`` ->
``frame_id``) and ``belt/joint_states`` (the encoder); publishes
``depth/volumes`` (crmsort_msgs/ObjectVolumeArray) for every cloud, stamped
like the cloud, with ``belt_position_m`` the encoder position interpolated at
that stamp. Until ``/tf_static`` names the sensor, the pose comes from the
parameters (``x_m``, ``y_m``, ``height_m``: looking straight down).

A cloud the node cannot use (no finite point, wrong size or field layout, a
``frame_id`` other than ``frame_id``, no belt plane) is logged and answered
with an empty array whose ``flags`` say why; the node keeps running. Frames it
can use but distrusts carry the estimator's flags (``LOW_VALID_FRACTION``, ...).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any

from calibration.camera import PinholeCamera
from calibration.transforms import RigidTransform
from perception.volume import ObjectVolumeEstimate, VolumeConfig, VolumeEstimator
from perception.volume.errors import BadCloudError, PlaneNotFoundError
from perception.volume.plane import PlaneFitConfig
from sorting.errors import SortingError
from sorting.msgs import new
from sorting.msgs.convert import header, pointcloud_array, stamp_ns
from sorting.runtime.context import LATCHED_QOS, Node, NodeContext, QoSProfile

FLAG_WRONG_FRAME = "WRONG_FRAME"
FLAG_BAD_CLOUD = "BAD_CLOUD"
FLAG_NO_PLANE = "NO_PLANE"
FLAG_NO_ENCODER = "NO_ENCODER"


class VolumeNode(Node):
    """Per-frame object volumes from the 3D sensor (see the module docstring).

    Parameters: ``frame_id``, ``width_px``, ``height_px``, ``hfov_deg``, ``x_m``,
    ``y_m``, ``height_m``, ``yaw_deg`` (the sensor, as in the line YAML's ``sensors.depth``);
    ``plane_mode`` (``fit`` or ``prior``); ``cell_m`` (0 = automatic); ``seed``.
    """

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        p = ctx.declare_parameter
        self.frame_id = str(p("frame_id", "depth_optical_frame").value)
        self.width = int(p("width_px", 160).value)
        self.height = int(p("height_px", 120).value)
        self.hfov_deg = float(p("hfov_deg", 52.0).value)
        x_m = float(p("x_m", 2.0).value)
        y_m = float(p("y_m", 0.0).value)
        h_m = float(p("height_m", 0.9).value)
        yaw = math.radians(float(p("yaw_deg", 0.0).value))
        mode = str(p("plane_mode", "fit").value)
        if mode not in ("fit", "prior"):
            raise SortingError(
                f"{ctx.get_name()}: plane_mode must be 'fit' or 'prior', got {mode!r}"
            )
        cell = float(p("cell_m", 0.0).value)
        self.config = VolumeConfig(
            plane_mode="fit" if mode == "fit" else "prior",
            plane=PlaneFitConfig(),
            cell_m=cell if cell > 0 else None,
            seed=int(p("seed", 0).value),
        )
        self.camera = PinholeCamera.looking_down(x_m, y_m, h_m, self.width, self.height,
                                                 self.hfov_deg, yaw_rad=yaw)
        self.estimator = VolumeEstimator(self.camera, self.config)
        self.pose_from_tf = False
        self._enc_t: deque[int] = deque(maxlen=2000)
        self._enc_p: deque[float] = deque(maxlen=2000)
        self.frames = 0
        self.bad_frames: dict[str, int] = {}
        self.last_timings_s: dict[str, float] = {}
        self.pub = ctx.create_publisher("crmsort_msgs/msg/ObjectVolumeArray", "depth/volumes", 10)
        ctx.create_subscription(
            "sensor_msgs/msg/JointState", "belt/joint_states", self._on_belt, 50
        )
        ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", self._on_tf, LATCHED_QOS)
        # best effort, as sensor drivers publish (a reliable reader would not match in ROS 2)
        ctx.create_subscription("sensor_msgs/msg/PointCloud2", "depth/points", self._on_points,
                                QoSProfile(depth=2, reliable=False))

    # -- inputs ---------------------------------------------------------------------------------
    def _on_belt(self, msg: Any) -> None:
        if len(msg.position) == 0:
            return
        t = stamp_ns(msg.header.stamp)
        if self._enc_t and t <= self._enc_t[-1]:
            return
        self._enc_t.append(t)
        self._enc_p.append(float(msg.position[0]))

    def _on_tf(self, msg: Any) -> None:
        for tr in msg.transforms:
            if tr.child_frame_id != self.frame_id or tr.header.frame_id != "belt":
                continue
            q, t = tr.transform.rotation, tr.transform.translation
            pose = RigidTransform.from_quaternion((q.x, q.y, q.z, q.w), (t.x, t.y, t.z))
            self.camera = self.camera.with_pose(pose)
            self.estimator = VolumeEstimator(self.camera, self.config)
            self.pose_from_tf = True

    def encoder_at(self, t_ns: int) -> float | None:
        """Encoder position (m) at ``t_ns``, interpolated (extrapolated by at most 0.2 s)."""
        ts, ps = self._enc_t, self._enc_p
        if not ts:
            return None
        if len(ts) == 1:
            return ps[0] if abs(t_ns - ts[0]) < 200_000_000 else None
        k = bisect.bisect_left(ts, t_ns)
        k = min(max(k, 1), len(ts) - 1)
        t0, t1 = ts[k - 1], ts[k]
        if t_ns - ts[-1] > 200_000_000 or ts[0] - t_ns > 200_000_000:
            return None
        a = (t_ns - t0) / (t1 - t0)
        return ps[k - 1] + a * (ps[k] - ps[k - 1])

    # -- the frame ------------------------------------------------------------------------------
    def _on_points(self, msg: Any) -> None:
        t_ns = stamp_ns(msg.header.stamp)
        belt_pos = self.encoder_at(t_ns)
        flags: list[str] = [] if belt_pos is not None else [FLAG_NO_ENCODER]
        self.frames += 1
        objects: list[ObjectVolumeEstimate] = []
        if msg.header.frame_id != self.frame_id:
            self._bad(FLAG_WRONG_FRAME, f"cloud in frame {msg.header.frame_id!r}, expected "
                                        f"{self.frame_id!r}", flags)
        else:
            try:
                pts = pointcloud_array(msg)
                frame = self.estimator.process_frame(pts)
                objects = frame.objects
                flags.extend(frame.flags)
                self.last_timings_s = frame.timings_s
            except (BadCloudError, SortingError) as e:
                self._bad(FLAG_BAD_CLOUD, str(e), flags)
            except PlaneNotFoundError as e:
                self._bad(FLAG_NO_PLANE, str(e), flags)
        self.pub.publish(self._message(t_ns, belt_pos, objects, flags))

    def _bad(self, flag: str, why: str, flags: list[str]) -> None:
        self.bad_frames[flag] = self.bad_frames.get(flag, 0) + 1
        flags.append(flag)
        self.ctx.get_logger().warning(f"depth/points: {flag}: {why}")

    def _message(self, t_ns: int, belt_pos: float | None, objects: list[ObjectVolumeEstimate],
                 flags: list[str]) -> Any:
        vols = [_volume_msg(i, o) for i, o in enumerate(objects, start=1)]
        return new(
            "crmsort_msgs/msg/ObjectVolumeArray",
            header=header(t_ns, "belt"),
            belt_position_m=float("nan") if belt_pos is None else belt_pos,
            volumes=vols,
            flags=flags,
        )


def _volume_msg(idx: int, o: ObjectVolumeEstimate) -> Any:
    yaw = o.box_yaw_rad
    return new(
        "crmsort_msgs/msg/ObjectVolume",
        id=idx,
        belt_x_m=o.x_m,
        y_m=o.y_m,
        volume_m3=o.volume_m3,
        volume_u_m3=o.volume_u_m3,
        footprint_m2=o.footprint_m2,
        height_m=o.height_m,
        box_pose=new(
            "geometry_msgs/msg/Pose",
            position=new("geometry_msgs/msg/Point", x=o.box_center[0], y=o.box_center[1],
                         z=o.box_center[2]),
            orientation=new("geometry_msgs/msg/Quaternion", x=0.0, y=0.0,
                            z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
        ),
        box_size_m=new("geometry_msgs/msg/Vector3", x=o.box_size[0], y=o.box_size[1],
                       z=o.box_size[2]),
        grasp_point=new("geometry_msgs/msg/Point", x=o.grasp_point[0], y=o.grasp_point[1],
                        z=o.grasp_point[2]),
        grasp_normal=new("geometry_msgs/msg/Vector3", x=o.grasp_normal[0], y=o.grasp_normal[1],
                         z=o.grasp_normal[2]),
        shape=int(o.shape),
        truncated=o.truncated,
    )
