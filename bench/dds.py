"""DDS transport vs the in-process bus, per demo topic: messages/s, MB/s, p50/p99 latency.

Messages: the last message of each topic from 1 s of the simulated demo line
(camera image 640x480 rgb8, point cloud, joint states, ground truth, ...).

- ``in-process``: one publisher node, one subscriber node in an InProcessExecutor;
  latency = publish → callback (messages pass by reference, no serialization);
  throughput = a burst of N publishes then one drain.
- ``DDS``: what the bridge does — serialize (rosbags CDR), write (Cyclone, loopback,
  reliable), take and deserialize — against an echo process that writes every sample
  back unchanged. Latency = round trip / 2 (ping-pong, one message in flight);
  throughput = N messages written back-to-back until all N echoes came back and were
  decoded (each message crosses loopback twice, so the one-way figure is higher).

Run: ``nice -n 10 .venv/bin/python -m bench.dds [--n 300]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from sorting.cli.output import console
from sorting.config import load_line
from sorting.deploy.dds import DdsParticipant, wait_matched
from sorting.line import build_sim_line
from sorting.msgs import deserialize, serialize
from sorting.runtime import InProcessExecutor, Node, NodeContext, QoSProfile, SimClock

ECHO = """
import sys, time
from sorting.deploy.dds import DdsParticipant, DataWait
from sorting.runtime import QoSProfile
p = DdsParticipant(int(sys.argv[1]))
pairs = [(p.reader(f"/bench/in{i}", t, QoSProfile(), depth=100000),
          p.writer(f"/bench/out{i}", t, QoSProfile(depth=100000)))
         for i, t in enumerate(sys.argv[2:])]
wait = DataWait(p, [r for r, _ in pairs])
print("ready", flush=True)
end = time.monotonic() + 600
while time.monotonic() < end:
    if wait.wait(0.5):
        for r, w in pairs:
            for raw, ts in r.take(100000):
                w.write(raw, ts)
"""


def demo_messages() -> dict[str, tuple[str, Any]]:
    ex = InProcessExecutor(SimClock())
    build_sim_line(load_line(), ex)
    last: dict[str, tuple[str, Any]] = {}
    ex.add_tap(lambda topic, typ, _t, msg: last.__setitem__(topic, (typ, msg)))
    ex.spin_until(1_000_000_000)
    ex.shutdown()
    return last


class _Pub(Node):
    def __init__(self, ctx: NodeContext, typ: str, n: int) -> None:
        super().__init__(ctx)
        self.pub = ctx.create_publisher(typ, "/bench/t", QoSProfile(depth=n))


class _Sub(Node):
    def __init__(self, ctx: NodeContext, typ: str, n: int) -> None:
        super().__init__(ctx)
        self.got = 0
        self.t_last = 0.0
        ctx.create_subscription(typ, "/bench/t", self._cb, QoSProfile(depth=n))

    def _cb(self, _msg: Any) -> None:
        self.got += 1
        self.t_last = time.perf_counter()


def inprocess(typ: str, msg: Any, n: int) -> tuple[float, float, float]:
    ex = InProcessExecutor(SimClock())
    pub = ex.add_node(lambda c: _Pub(c, typ, n), "p", namespace="/")
    sub = ex.add_node(lambda c: _Sub(c, typ, n), "s", namespace="/")
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        pub.pub.publish(msg)
        ex.drain()
        lat.append(sub.t_last - t0)
    t0 = time.perf_counter()
    for _ in range(n):
        pub.pub.publish(msg)
    ex.drain()
    return n / (time.perf_counter() - t0), float(np.median(lat)), float(np.percentile(lat, 99))


def dds(p: DdsParticipant, i: int, typ: str, msg: Any, n: int) -> tuple[float, float, float]:
    w = p.writer(f"/bench/in{i}", typ, QoSProfile(depth=100000))
    r = p.reader(f"/bench/out{i}", typ, QoSProfile(), depth=100000)
    wait_matched([w, r], 20.0)
    time.sleep(0.2)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        w.write(serialize(msg, typ))
        got: list[Any] = []
        while not got:
            got = r.take(1)
        deserialize(got[0][0], typ)
        lat.append((time.perf_counter() - t0) / 2)
    t0 = time.perf_counter()
    for _ in range(n):
        w.write(serialize(msg, typ))
    back = 0
    while back < n and time.perf_counter() - t0 < 120:
        for raw, _ts in r.take(100000):
            deserialize(raw, typ)
            back += 1
    return back / (time.perf_counter() - t0), float(np.median(lat)), float(np.percentile(lat, 99))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="messages per topic and mode")
    args = ap.parse_args()
    msgs = demo_messages()
    topics = sorted(msgs)
    domain = 100 + os.getpid() % 120
    repo = Path(__file__).resolve().parents[1]
    echo = subprocess.Popen([sys.executable, "-c", ECHO, str(domain),
                             *[msgs[t][0] for t in topics]], cwd=repo, stdout=subprocess.PIPE,
                            text=True)
    assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
    p = DdsParticipant(domain)
    table = Table(title=f"DDS (Cyclone, loopback, 2 processes) vs in-process bus, n={args.n}, "
                  f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    for col in ("topic", "bytes", "in-proc msg/s", "in-proc p50/p99 µs", "DDS msg/s", "DDS MB/s",
                "DDS p50/p99 µs", "msg/s ratio"):
        table.add_column(col, justify="right" if col != "topic" else "left")
    try:
        for i, topic in enumerate(topics):
            typ, msg = msgs[topic]
            size = len(serialize(msg, typ))
            n = max(20, args.n // 10) if size > 100_000 else args.n
            ip = inprocess(typ, msg, n)
            dd = dds(p, i, typ, msg, n)
            table.add_row(topic, f"{size}", f"{ip[0]:.0f}", f"{ip[1]*1e6:.1f}/{ip[2]*1e6:.1f}",
                          f"{dd[0]:.0f}", f"{dd[0] * size / 1e6:.1f}",
                          f"{dd[1]*1e6:.0f}/{dd[2]*1e6:.0f}", f"{dd[0] / ip[0]:.3f}")
    finally:
        echo.terminate()
        try:
            echo.wait(timeout=5)
        except subprocess.TimeoutExpired:
            echo.kill()
        p.close()
    console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
