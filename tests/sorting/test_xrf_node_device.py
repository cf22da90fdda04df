"""The XRF acquisition node on a device that counts in real time (the DP5 emulator behind a
pseudo-terminal, its presets paced by the wall clock): the acquisition runs on a worker
thread, the node keeps taking the belt's ticks meanwhile, the spectrum is published once it
is read, stamped where it started, and a trigger while the head counts is refused."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.pty_bridge import PtyBridge
from sorting.config.line import load_line
from sorting.msgs import new
from sorting.nodes.xrf_node import XrfAcquisitionNode
from sorting.runtime import InProcessExecutor, SimClock

LIVE_S = 0.4


def _obj(oid: int, x: float, y: float) -> Any:
    return new("crmsort_msgs/msg/SortObject", id=oid, belt_x_m=x, y_m=y, mass_kg=1.0,
               elements=["Cu"], mass_fraction=np.array([0.1], dtype=np.float32),
               mass_fraction_u=np.array([0.01], dtype=np.float32))


def test_a_device_acquires_on_a_worker_and_the_node_keeps_up() -> None:
    line = load_line(None)
    emu = Dp5Emulator(lambda t, ch: np.full(ch, max(int(100 * t), 1), dtype=np.int64),
                      np.random.default_rng(0), channels=line.sensors.xrf.channels,
                      clock=time.monotonic)
    with PtyBridge(emu, poll_s=0.005) as path:
        # busy_s 0: the trigger does not know the head's cycle, so it fires again too soon
        xrf = line.sensors.xrf.model_copy(update={"port": path, "live_time_s": LIVE_S,
                                                  "busy_s": 0.0, "timeout_s": 0.5})
        line = line.model_copy(update={"sensors": line.sensors.model_copy(update={"xrf": xrf})})
        ex = InProcessExecutor(SimClock())
        node = ex.add_node(lambda ctx: XrfAcquisitionNode(ctx, line), "xrf",
                           namespace="/line1")
        assert node._worker is not None
        spectra: list[Any] = []
        ex.add_tap(lambda topic, _t, _n, msg: spectra.append(msg)
                   if topic.endswith("xrf/spectrum") else None)
        x_head = xrf.x_m
        ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
                  new("crmsort_msgs/msg/SortObjectArray", belt_position_m=0.0,
                      objects=[_obj(1, x_head - 0.04, 0.1), _obj(2, x_head - 0.2, -0.1)]))
        ex.drain()
        slowest, started_at = 0.0, None
        for k in range(60):
            p = 0.005 * k
            t0 = time.monotonic()
            ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
                      new("sensor_msgs/msg/JointState", position=[p]))
            ex.drain()
            slowest = max(slowest, time.monotonic() - t0)
            if node._pending is not None and started_at is None:
                started_at = p
                # the tracker's next update: the head is aimed at the second object
                ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
                          new("crmsort_msgs/msg/SortObjectArray", belt_position_m=p,
                              objects=[_obj(2, x_head - 0.1 + p, -0.1)]))
                ex.drain()
        deadline = time.monotonic() + 10 * LIVE_S + 5.0
        while not spectra and time.monotonic() < deadline:
            time.sleep(0.05)
            ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
                      new("sensor_msgs/msg/JointState", position=[0.3]))
            ex.drain()
        node.shutdown()
        ex.drain()
    assert started_at == pytest.approx(0.04, abs=0.006)   # the first object under the head
    # no tick waited for the head's 0.4 s of counting
    assert slowest < LIVE_S / 2, slowest
    assert len(spectra) == 1 and node.acquisitions == 1 and node.failures == 0
    s = spectra[0]
    assert float(s.spot_y_m) == pytest.approx(0.1)
    assert float(s.belt_position_m) == pytest.approx(started_at)
    assert float(s.live_time_s) == pytest.approx(LIVE_S, abs=0.01)
    assert int(np.asarray(s.counts).sum()) > 0
    # the second object came under the head while it counted: refused, not queued
    assert node.busy_refused == 1
