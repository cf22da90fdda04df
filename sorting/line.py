"""Assemble and run a line in-process: the simulated world, the line's nodes and a recorder.

``run_sim_line`` is what ``crmsort demo`` and ``crmsort record`` call: it builds
an :class:`~sorting.runtime.InProcessExecutor` on a simulated clock (or a wall
clock scaled by ``speed``), starts :class:`~sorting.sim.line_node.SimLineNode`
and the line nodes, records to a bag, and returns what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot.drivers.sim import SimArmDriver
from robot.pick_cycle import DeltaPickCycle
from robot.safety import EStopLatch, SafetyGuard, Watchdog
from sorting.config.cameras import calibration_path
from sorting.config.line import LineConfig
from sorting.nodes.arm_node import ArmNode
from sorting.nodes.detector_node import DetectorNode
from sorting.nodes.hsi_node import HsiClassifierNode
from sorting.nodes.line_control import LineControlNode
from sorting.nodes.line_monitor import LineMonitorNode
from sorting.nodes.scheduler_node import SchedulerNode
from sorting.nodes.tracker_node import TrackerNode
from sorting.nodes.volume_node import VolumeNode
from sorting.nodes.xrf_node import XrfAcquisitionNode, XrfQuantNode
from sorting.nodes.xrt_node import XrtNode
from sorting.record import Recorder, TopicStats
from sorting.runtime import InProcessExecutor, NodeContext, SimClock, WallClock
from sorting.scheduling.arm_model import CachedArmModel
from sorting.sim.arm_sim import SimArmHardware
from sorting.sim.line_node import SimLineNode

ProgressFn = Callable[[float, float], None]


@dataclass
class RunResult:
    """What a run did: durations, per-topic statistics, the simulated feed, the last line status."""

    line: LineConfig
    sim_duration_s: float
    wall_s: float
    bag_path: Path | None
    topics: dict[str, TopicStats]
    fed_by_class: dict[str, int]
    stream_of_class: dict[str, str]
    last_status: Any = None
    drops: dict[str, int] = field(default_factory=dict)
    built: SimLine | None = None

    @property
    def real_time_factor(self) -> float:
        return self.sim_duration_s / self.wall_s if self.wall_s > 0 else float("inf")


@dataclass
class SimLine:
    executor: InProcessExecutor
    sim: SimLineNode
    monitor: LineMonitorNode
    control: LineControlNode | None = None
    detector: DetectorNode | None = None
    tracker: TrackerNode | None = None
    volume: VolumeNode | None = None
    xrf: XrfAcquisitionNode | None = None
    xrf_quant: XrfQuantNode | None = None
    xrt: XrtNode | None = None
    scheduler: SchedulerNode | None = None
    arms: list[ArmNode] = field(default_factory=list)


def build_sim_line(
    line: LineConfig, executor: InProcessExecutor, *, perception: bool = True
) -> SimLine:
    """Add the simulated line, the line monitor and (``perception``) the line's processing
    nodes — 3D volumes, tracker/fusion — to ``executor``."""
    ns = line.namespace
    sim = executor.add_node(lambda ctx: SimLineNode(ctx, line), "sim_line", namespace=ns)
    watch_topics, watch_types, watch_rates = [], [], []
    if line.sensors.camera.enabled:
        watch_topics.append("camera/image_raw")
        watch_types.append("sensor_msgs/msg/Image")
        watch_rates.append(line.sensors.camera.rate_hz)
    if line.sensors.depth.enabled:
        watch_topics.append("depth/points")
        watch_types.append("sensor_msgs/msg/PointCloud2")
        watch_rates.append(line.sensors.depth.rate_hz)
    # the line scanners: one line per pixel pitch of belt travel
    for topic, typ, cfg in (("hsi/line", "crmsort_msgs/msg/HyperspectralLine", line.sensors.hsi),
                            ("xrt/line", "crmsort_msgs/msg/XrtLine", line.sensors.xrt)):
        if cfg.enabled:
            watch_topics.append(topic)
            watch_types.append(typ)
            watch_rates.append(line.belt.speed_mps * cfg.width_px / line.belt.width_m)
    params: dict[str, Any] = {
        "rate_hz": line.sim.status_rate_hz,
        "watch_topics": watch_topics,
        "watch_types": watch_types,
        "watch_rates_hz": watch_rates,
    }
    params.update(line.nodes.get("line_monitor", {}))
    monitor = executor.add_node(LineMonitorNode, "line_monitor", namespace=ns, parameters=params)
    ctl = line.control
    cparams: dict[str, Any] = {
        "nominal_speed_mps": line.belt.speed_mps, "autostart": ctl.autostart,
        "start_speed_fraction": ctl.start_speed_fraction,
        "stopped_speed_mps": ctl.stopped_speed_mps, "drain_timeout_s": ctl.drain_timeout_s,
        "rate_hz": ctl.state_rate_hz, "arms": [a.name for a in line.arms],
    }
    cparams.update(line.nodes.get("line_control", {}))
    control = executor.add_node(LineControlNode, "line_control", namespace=ns,
                                parameters=cparams)
    built = SimLine(executor=executor, sim=sim, monitor=monitor, control=control)
    if not perception:
        return built
    if line.sensors.camera.enabled:
        c = line.sensors.camera
        dparams: dict[str, Any] = {
            "x_m": c.x_m, "y_m": c.y_m, "height_m": c.height_m, "width_px": c.width_px,
            "height_px": c.height_px, "hfov_deg": c.hfov_deg, "yaw_deg": c.yaw_deg,
        }
        dparams.update(line.nodes.get("detector", {}))
        built.detector = executor.add_node(DetectorNode, "detector", namespace=ns,
                                           parameters=dparams)
    if line.sensors.depth.enabled:
        d = line.sensors.depth
        vparams: dict[str, Any] = {
            "frame_id": d.frame_id, "width_px": d.width_px, "height_px": d.height_px,
            "hfov_deg": d.hfov_deg, "x_m": d.x_m, "y_m": d.y_m, "height_m": d.height_m,
            "yaw_deg": d.yaw_deg,
        }
        vparams.update(line.nodes.get("volume", {}))
        built.volume = executor.add_node(VolumeNode, "volume", namespace=ns, parameters=vparams)
    if line.sensors.hsi.enabled:
        hparams: dict[str, Any] = {"frame_id": "belt"}
        if line.sensors.hsi.model:
            hparams["model"] = line.sensors.hsi.model
        hparams.update(line.nodes.get("hsi", {}))
        executor.add_node(HsiClassifierNode, "hsi", namespace=ns, parameters=hparams)
    if line.sensors.xrt.enabled:
        xparams: dict[str, Any] = {"frame_id": "belt", "x_m": line.sensors.xrt.x_m,
                                   "tube_kv": line.sensors.xrt.tube_kv,
                                   "store": str(calibration_path(line))}
        xparams.update(line.nodes.get("xrt", {}))
        built.xrt = executor.add_node(XrtNode, "xrt", namespace=ns, parameters=xparams)
    arm_names = [a.name for a in line.arms]
    built.tracker = executor.add_node(
        lambda ctx: TrackerNode(ctx, line, arms=arm_names), "tracker", namespace=ns)
    if line.sensors.xrf.enabled:
        built.xrf = executor.add_node(lambda ctx: XrfAcquisitionNode(ctx, line), "xrf_driver",
                                      namespace=ns)
        built.xrf_quant = executor.add_node(lambda ctx: XrfQuantNode(ctx, line), "xrf_quant",
                                            namespace=ns)
    if line.arms:
        _add_arms(line, executor, built)
    return built


def _arm_factory(cycle: DeltaPickCycle, hardware: SimArmHardware, watchdog: Watchdog,
                 line_estop: EStopLatch) -> Callable[[NodeContext], ArmNode]:
    return lambda ctx: ArmNode(ctx, cycle, hardware, watchdog, line_estop)


def _add_arms(line: LineConfig, executor: InProcessExecutor, built: SimLine) -> None:
    """The simulated delta arms (hardware on the simulated belt), their nodes and the scheduler.

    The arms share one line E-stop latch; their nodes trip and reset it as the line
    controller's ``control/state`` says."""
    ns = line.namespace
    line_estop = EStopLatch("line")
    cycles = []
    for k, cfg in enumerate(line.arms):
        cycle = DeltaPickCycle(cfg)
        watchdog = Watchdog(0.5)
        driver = SimArmDriver(cycle, SafetyGuard(cycle.arm, line_estop, watchdog),
                              np.random.default_rng([line.seed, 100 + k]))
        hardware = SimArmHardware(driver, built.sim.world)
        built.arms.append(executor.add_node(_arm_factory(cycle, hardware, watchdog, line_estop),
                                            cfg.name, namespace=ns))
        cycles.append(cycle)
    sparams: dict[str, Any] = {
        "belt_speed_mps": line.belt.speed_mps, "rate_hz": 20.0,
        "max_payload_kg": min((a.gripper.vacuum_capacity_kg for a in line.arms), default=0.0)}
    sparams.update(line.nodes.get("scheduler", {}))
    built.scheduler = executor.add_node(
        lambda ctx: SchedulerNode(ctx, arm_models=[CachedArmModel(c) for c in cycles]),
        "scheduler", namespace=ns, parameters=sparams)


def run_sim_line(
    line: LineConfig,
    duration_s: float,
    bag_path: Path | None,
    *,
    topics: list[str] | None = None,
    speed: float | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run the simulated line for ``duration_s`` of belt time, recording to ``bag_path`` if given.

    ``speed=None`` runs as fast as the CPU allows (simulated clock); a number
    runs on the wall clock at that multiple of real time. ``topics`` limits
    the recording (fully resolved names); an unknown one raises
    :class:`~sorting.errors.UnknownTopicError` before the line starts.
    """
    clock = SimClock() if speed is None else WallClock(rate=speed)
    executor = InProcessExecutor(clock)
    recorder = None
    try:
        built = build_sim_line(line, executor)
        if bag_path is not None:
            chosen = (
                set(topics)
                if topics
                else (None if line.record.topics == "all" else set(line.record.topics))
            )
            recorder = Recorder(
                Path(bag_path),
                topics=chosen,
                chunk_size=int(line.record.chunk_size_mib * 1024 * 1024),
                compression=None if line.record.compression == "none" else line.record.compression,
            )
            recorder.check_topics(t for t, _type, _n in executor.topics())
            executor.add_tap(recorder)
        start_ns = clock.now().nanoseconds
        end_ns = start_ns + round(duration_s * 1e9)
        step_ns = 1_000_000_000
        wall0 = time.perf_counter()
        t = start_ns
        while t < end_ns:
            t = min(t + step_ns, end_ns)
            executor.spin_until(t)
            if progress is not None:
                progress((t - start_ns) * 1e-9, duration_s)
        wall = time.perf_counter() - wall0
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.close()
    stats = recorder.stats if recorder is not None else {}
    catalog = built.sim.catalog
    return RunResult(
        line=line,
        sim_duration_s=duration_s,
        wall_s=wall,
        bag_path=bag_path,
        topics=stats,
        fed_by_class=dict(built.sim.spawned_by_class),
        stream_of_class={c.name: c.stream for c in catalog.classes},
        last_status=built.monitor.last_status,
        drops=executor.drop_counts(),
        built=built,
    )
