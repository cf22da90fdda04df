"""Volume node on the simulated line: volumes at the encoder position, bad clouds flagged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sorting.config import load_line
from sorting.line import build_sim_line
from sorting.msgs.convert import pointcloud_msg
from sorting.nodes.volume_node import (
    FLAG_BAD_CLOUD,
    FLAG_NO_PLANE,
    FLAG_WRONG_FRAME,
    VolumeNode,
)
from sorting.runtime import InProcessExecutor, SimClock

NS = "/line1"
RUN_S = 6.0  # belt time before the bad clouds: enough whole views of objects


def _params(line: Any) -> dict[str, Any]:
    d = line.sensors.depth
    return {"frame_id": d.frame_id, "width_px": d.width_px, "height_px": d.height_px,
            "hfov_deg": d.hfov_deg, "x_m": d.x_m, "y_m": d.y_m, "height_m": d.height_m}


@pytest.fixture(scope="module")
def line_run() -> dict[str, Any]:
    line = load_line()
    ex = InProcessExecutor(SimClock())
    built = build_sim_line(line, ex)
    # the line builds its own volume node (from the line YAML); older lines did not
    node = built.volume
    if node is None:
        node = ex.add_node(VolumeNode, "volume", namespace=NS, parameters=_params(line))
    got: dict[str, list[tuple[int, Any]]] = {"vol": [], "truth": []}

    def tap(topic: str, msg_type: str, t_ns: int, msg: Any) -> None:
        if topic == f"{NS}/depth/volumes":
            got["vol"].append((t_ns, msg))
        elif topic == "/sim/ground_truth":
            got["truth"].append((t_ns, msg))

    ex.add_tap(tap)
    ex.spin_until(int(RUN_S * 1e9))
    # bad clouds, injected between the simulator's frames (one at a time: the node keeps
    # only the newest clouds in its queue, as a sensor subscription should)
    d = line.sensors.depth
    rng = np.random.default_rng(0)
    nan_cloud = np.full((d.height_px, d.width_px, 3), np.nan, np.float32)
    junk = rng.uniform(0.2, 2.0, (d.height_px, d.width_px, 3)).astype(np.float32)  # no plane
    bad = [(nan_cloud, d.frame_id), (np.zeros((0, 3), np.float32), d.frame_id),
           (nan_cloud, "camera_optical_frame"), (junk, d.frame_id)]
    for cloud, frame in bad:
        t = ex.now_ns()
        ex.inject(f"{NS}/depth/points", "sensor_msgs/msg/PointCloud2",
                  pointcloud_msg(cloud, t, frame))
        ex.spin_until(t + int(0.05e9))
    ex.spin_until(ex.now_ns() + int(1.0e9))
    return {"node": node, "got": got, "line": line}


def test_every_cloud_answered_and_pose_from_tf(line_run: dict[str, Any]) -> None:
    node = line_run["node"]
    vols = line_run["got"]["vol"]
    assert node.pose_from_tf  # /tf_static named the sensor
    # the line's depth rate over the first RUN_S of belt time, plus the 4 injected clouds
    rate = line_run["line"].sensors.depth.rate_hz
    assert len(vols) >= int(rate * RUN_S) + 4
    assert node.frames == len(vols)


def test_volumes_match_truth_at_the_encoder_position(line_run: dict[str, Any]) -> None:
    vols = line_run["got"]["vol"]
    truth = line_run["got"]["truth"]
    good = [(t, m) for t, m in vols if not m.flags and len(m.volumes) > 0]
    assert len(good) >= 8
    n_close = n_total = 0
    for t, m in good:
        # the truth message closest in time; objects move 0.5 m/s * dt
        tt, tm = min(truth, key=lambda x: abs(x[0] - t))
        dt = (t - tt) * 1e-9
        assert abs(m.belt_position_m - tm.belt_position_m) < 0.5 * abs(dt) + 0.01
        for v in m.volumes:
            if v.truncated:
                continue
            n_total += 1
            # inside some true object's footprint (+1 cm), that object moved on by dt
            for o in tm.objects:
                yaw = 2 * np.arctan2(o.pose.orientation.z, o.pose.orientation.w)
                dx = v.belt_x_m - (o.pose.position.x + 0.5 * dt)
                dy = v.y_m - o.pose.position.y
                u = np.cos(yaw) * dx + np.sin(yaw) * dy
                w = -np.sin(yaw) * dx + np.cos(yaw) * dy
                if (abs(u) <= o.dimensions_m.x / 2 + 0.01
                        and abs(w) <= o.dimensions_m.y / 2 + 0.01):
                    n_close += 1
                    break
    assert n_total > 10
    assert n_close / n_total > 0.9


def test_bad_clouds_are_flagged_and_the_node_keeps_running(line_run: dict[str, Any]) -> None:
    node = line_run["node"]
    vols = line_run["got"]["vol"]
    flags = [f for _, m in vols for f in m.flags]
    assert flags.count(FLAG_BAD_CLOUD) >= 2  # the NaN cloud and the empty one
    assert flags.count(FLAG_WRONG_FRAME) == 1
    assert flags.count(FLAG_NO_PLANE) + flags.count(FLAG_BAD_CLOUD) >= 3
    for _, m in vols:
        if FLAG_BAD_CLOUD in m.flags or FLAG_WRONG_FRAME in m.flags:
            assert len(m.volumes) == 0
    # frames after the bad ones are processed again
    last_t = max(t for t, m in vols if m.flags)
    after = [m for t, m in vols if t > last_t]
    assert after and all(not m.flags for m in after)
    assert sum(node.bad_frames.values()) >= 4
