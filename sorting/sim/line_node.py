"""The simulated line as one node: it owns the world and publishes what the real drivers would.

Topics (relative to the line namespace):

=============================  ==============================  ===========================
topic                          type                            rate
=============================  ==============================  ===========================
``belt/joint_states``          sensor_msgs/JointState          ``belt.encoder_rate_hz``
``camera/image_raw``           sensor_msgs/Image (rgb8)        ``sensors.camera.rate_hz``
``camera/camera_info``         sensor_msgs/CameraInfo          with each image
``depth/points``               sensor_msgs/PointCloud2         ``sensors.depth.rate_hz``
``hsi/line``                   crmsort_msgs/HyperspectralLine  one line per pixel pitch (*)
``xrt/line``                   crmsort_msgs/XrtLine            one line per pixel pitch (*)
``/tf_static``                 tf2_msgs/TFMessage              once, transient local
``/sim/ground_truth``          crmsort_msgs/GroundTruthObjectArray  ``sim.ground_truth_rate_hz``
=============================  ==============================  ===========================

The belt drive follows the line controller (``control/state``,
crmsort_msgs/LineControlState): ``belt_run`` false ramps the belt to standstill in
``belt.ramp_s`` (an E-stop: in ``control.estop_stop_s``), true ramps it back to
speed; with ``control.autostart`` false the belt stands still until a START.

(*) The line scanners are timed for the belt's nominal speed, and like real line-scan
sensors triggered by the encoder they take a line only when the belt has moved at least half
a pixel pitch since the last one: a belt standing still (stopped, E-stop, the start-up ramp)
is not scanned over and over as if new belt passed under them.

Only evaluation code may subscribe to ``/sim/ground_truth``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perception.catalog import load_catalog
from perception.sensors.camera.lighting import Lighting
from perception.sensors.camera.sim import RgbCameraSim
from perception.sensors.depth.sim import DepthSensorSim
from perception.sensors.xrf.url_handler import register_source
from perception.xrf import load_setup
from sorting.config.cameras import depth_camera, measured_rgb_camera, rgb_camera
from sorting.config.line import LineConfig
from sorting.msgs import convert
from sorting.nodes.line_control import STATE_SUB_QOS
from sorting.runtime.context import LATCHED_QOS, SENSOR_QOS, Node, NodeContext
from sorting.sim.hsi_sensor import HsiSensorSim
from sorting.sim.spawner import ObjectSpawner
from sorting.sim.truth import ground_truth_msg
from sorting.sim.world import BeltWorld, ObjectState
from sorting.sim.xrf_sensor import XrfSpotSim
from sorting.sim.xrt_sensor import XrtSensorSim

GROUND_TRUTH_TOPIC = "/sim/ground_truth"


def _period_ns(rate_hz: float) -> int:
    return round(1e9 / rate_hz)


class _TravelTrigger:
    """A line scanner's trigger: fires when the belt has moved at least half of ``pitch_m``
    since the last line (the first call always fires)."""

    def __init__(self, pitch_m: float) -> None:
        self.half_pitch_m = pitch_m / 2
        self.last_m: float | None = None

    def fires(self, encoder_m: float) -> bool:
        if self.last_m is not None and abs(encoder_m - self.last_m) < self.half_pitch_m:
            return False
        self.last_m = encoder_m
        return True


class SimLineNode(Node):
    """Simulated belt, feed, RGB camera and 3D sensor of one line (see the module docstring)."""

    def __init__(self, ctx: NodeContext, line: LineConfig) -> None:
        super().__init__(ctx)
        self.line = line
        seeds = np.random.SeedSequence(line.seed).spawn(6)
        rng_world, rng_spawn, rng_cam, rng_depth, rng_light, rng_xrf = (
            np.random.default_rng(s) for s in seeds
        )
        # plant lighting drifts slowly (daylight through skylights, lamp ageing): two slow
        # sinusoids on the direct and ambient light, phases from the seed
        self._light_phase = rng_light.uniform(0, 2 * np.pi, size=2)
        self.catalog = load_catalog()
        self.spawner = ObjectSpawner(self.catalog, rng_spawn, mix=dict(line.feed.mix))
        self.world = BeltWorld(line.belt, line.feed, self.spawner.spawn, rng_world,
                               running=line.control.autostart)
        self.spawned_by_class: dict[str, int] = {}

        cam = line.sensors.camera
        self.camera = rgb_camera(line)  # truth: what the simulator renders with
        # what the driver reports (CameraInfo) is the line's calibration, as on a real line
        self.camera_reported = measured_rgb_camera(line)
        self.camera_sim = RgbCameraSim(self.camera, rng_cam)
        dep = line.sensors.depth
        self.depth_camera = depth_camera(line)
        self.depth_sim = DepthSensorSim(self.depth_camera, rng_depth)

        self.pub_belt = ctx.create_publisher("sensor_msgs/msg/JointState", "belt/joint_states", 50)
        self.pub_truth = ctx.create_publisher(
            "crmsort_msgs/msg/GroundTruthObjectArray", GROUND_TRUTH_TOPIC, 10
        )
        self.pub_tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf_static", LATCHED_QOS)
        self.pub_image = self.pub_info = self.pub_points = None
        if cam.enabled:
            self.pub_image = ctx.create_publisher(
                "sensor_msgs/msg/Image", "camera/image_raw", SENSOR_QOS
            )
            self.pub_info = ctx.create_publisher(
                "sensor_msgs/msg/CameraInfo", "camera/camera_info", SENSOR_QOS
            )
        if dep.enabled:
            self.pub_points = ctx.create_publisher(
                "sensor_msgs/msg/PointCloud2", "depth/points", SENSOR_QOS
            )

        # creation order = firing order at equal times: the encoder first
        ctx.create_timer(1.0 / line.belt.encoder_rate_hz, self._on_encoder)
        ctx.create_timer(1.0 / line.sim.ground_truth_rate_hz, self._on_truth)
        if cam.enabled:
            ctx.create_timer(1.0 / cam.rate_hz, self._on_camera)
        if dep.enabled:
            ctx.create_timer(1.0 / dep.rate_hz, self._on_depth)
        hsi = line.sensors.hsi
        self.hsi_sim: HsiSensorSim | None = None
        if hsi.enabled:
            self.hsi_sim = HsiSensorSim(x_m=hsi.x_m, width_m=line.belt.width_m,
                                        width_px=hsi.width_px, seed=line.seed + 4)
            self.pub_hsi = ctx.create_publisher(
                "crmsort_msgs/msg/HyperspectralLine", "hsi/line", 50)
            # one line per pixel pitch of belt travel at nominal speed (square pixels)
            pitch = line.belt.width_m / hsi.width_px
            self._hsi_trigger = _TravelTrigger(pitch)
            ctx.create_timer(pitch / line.belt.speed_mps, self._on_hsi)
        xrf = line.sensors.xrf
        self.xrf_spot: XrfSpotSim | None = None
        if xrf.enabled:
            # the spectrometer's "hardware": the DP5 emulator counts what lies under the spot
            self.xrf_spot = XrfSpotSim(
                x_m=xrf.x_m, spot_radius_m=xrf.spot_radius_m, objects=self.world.on_belt,
                setup=load_setup(Path(xrf.setup) if xrf.setup else None), rng=rng_xrf)
            if xrf.emulated():
                register_source(xrf.port.removeprefix("dp5sim://").split("?")[0], self.xrf_spot)
            ctx.create_subscription("std_msgs/msg/Float64", "xrf/aim", self._on_xrf_aim, 10)
        xrt = line.sensors.xrt
        self.xrt_sim: XrtSensorSim | None = None
        if xrt.enabled:
            self.xrt_sim = XrtSensorSim(line, seed=line.seed + 5, catalog=self.catalog)
            self.pub_xrt = ctx.create_publisher("crmsort_msgs/msg/XrtLine", "xrt/line", 50)
            # one line per pixel pitch of belt travel at nominal speed (square pixels)
            self._xrt_trigger = _TravelTrigger(self.xrt_sim.geometry.pixel_pitch_m)
            ctx.create_timer(self.xrt_sim.geometry.pixel_pitch_m / line.belt.speed_mps,
                             self._on_xrt)
        ctx.create_subscription("crmsort_msgs/msg/LineControlState", "control/state",
                                self._on_control, STATE_SUB_QOS)
        self._estop_braking = False
        self._tf_sent = False
        self._seen_ids: set[int] = set()
        # the world's time runs from the line's start: on a wall clock the line's stamps are
        # nanoseconds since 1970, which the world would otherwise step through in 1 ms
        self._t0_ns = self._now_ns()

    # -- helpers ----------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return self.ctx.get_clock().now().nanoseconds

    def _sync(self) -> int:
        t_ns = self._now_ns()
        self.world.advance_to((t_ns - self._t0_ns) * 1e-9)
        for wobj in self.world.objects.values():
            oid = wobj.obj.object_id
            if oid not in self._seen_ids:
                self._seen_ids.add(oid)
                name = wobj.obj.class_name
                self.spawned_by_class[name] = self.spawned_by_class.get(name, 0) + 1
        return t_ns

    def _send_tf(self, t_ns: int) -> None:
        transforms: list[Any] = []
        for cam, frame in (
            (self.camera_reported, self.line.sensors.camera.frame_id),
            (self.depth_camera, self.line.sensors.depth.frame_id),
        ):
            tr = cam.T_belt_camera
            transforms.append(
                convert.transform_msg(t_ns, "belt", frame, tr.translation, tr.as_quaternion())
            )
        self.pub_tf.publish(convert.new_tf(transforms))
        self._tf_sent = True

    def _lighting(self, t_s: float) -> Lighting:
        base = Lighting()
        a, b = self._light_phase
        return Lighting(
            direction=base.direction,
            intensity=base.intensity * (1 + 0.06 * np.sin(2 * np.pi * t_s / 41.0 + a)),
            ambient=base.ambient * (1 + 0.10 * np.sin(2 * np.pi * t_s / 67.0 + b)),
            colour_temperature_k=base.colour_temperature_k,
        )

    # -- timers -----------------------------------------------------------------------------
    def _on_encoder(self) -> None:
        t_ns = self._sync()
        if not self._tf_sent:
            self._send_tf(t_ns)
        self.pub_belt.publish(
            convert.belt_joint_state(t_ns, self.world.encoder_position_m, self.world.speed_mps)
        )

    def _on_truth(self) -> None:
        t_ns = self._sync()
        items = [(o, int(ObjectState.ON_BELT), "") for o in self.world.on_belt()]
        for wobj in self.world.drain_changes():
            items.append((wobj.obj, int(wobj.state), wobj.bin))
        self.pub_truth.publish(ground_truth_msg(items, t_ns, self.world.belt_position_m))

    def _on_camera(self) -> None:
        assert self.pub_image is not None and self.pub_info is not None
        t_ns = self._sync()
        cam = self.line.sensors.camera
        rgb = self.camera_sim.render(
            self.world.on_belt(),
            lighting=self._lighting((t_ns - self._t0_ns) * 1e-9),
            belt_position_m=self.world.belt_position_m,
            belt_speed_mps=self.world.speed_mps,
            exposure_s=cam.exposure_s,
        )
        self.pub_image.publish(convert.image_msg(rgb, t_ns, cam.frame_id))
        self.pub_info.publish(convert.camera_info_msg(self.camera_reported, t_ns, cam.frame_id))

    def _on_hsi(self) -> None:
        assert self.hsi_sim is not None
        t_ns = self._sync()
        if not self._hsi_trigger.fires(self.world.encoder_position_m):
            return
        self.pub_hsi.publish(self.hsi_sim.line_msg(
            self.world.on_belt(), self.world.encoder_position_m, t_ns,
            frame_id=self.line.sensors.hsi.frame_id))

    def _on_xrt(self) -> None:
        assert self.xrt_sim is not None
        t_ns = self._sync()
        if not self._xrt_trigger.fires(self.world.encoder_position_m):
            return
        self.pub_xrt.publish(self.xrt_sim.line_msg(
            self.world.on_belt(), self.world.encoder_position_m, t_ns,
            frame_id=self.line.sensors.xrt.frame_id))

    def _on_control(self, msg: Any) -> None:
        run = bool(msg.belt_run)
        estop = bool(msg.estop) and not run
        if run == self.world.drive_on and estop == self._estop_braking:
            return  # nothing changes: the world is not touched (seeded runs stay as they were)
        self._sync()
        # an E-stop brakes from nominal speed to standstill in estop_stop_s (also a belt
        # that was already ramping down after a STOP)
        ramp_s = self.line.control.estop_stop_s if estop else None
        self.world.set_drive(run, self.world.time_s, ramp_s)
        self._estop_braking = estop

    def _on_xrf_aim(self, msg: Any) -> None:
        assert self.xrf_spot is not None
        self._sync()
        # the traverse is fast next to the belt: modelled as reaching its target at once
        self.xrf_spot.aim(float(np.clip(msg.data, -self.line.belt.width_m / 2,
                                        self.line.belt.width_m / 2)))

    def _on_depth(self) -> None:
        assert self.pub_points is not None
        t_ns = self._sync()
        # organized cloud in the sensor's optical frame, NaN where there is no return
        frame = self.depth_sim.render_frame(
            self.world.on_belt(), belt_position_m=self.world.belt_position_m
        )
        points = frame.points_optical
        self.pub_points.publish(
            convert.pointcloud_msg(points, t_ns, self.line.sensors.depth.frame_id)
        )
