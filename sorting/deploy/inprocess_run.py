"""``crmsort run LINE.yaml`` without ``--processes``: the whole line in one process, with health.

The line builder's nodes plus a :class:`~sorting.deploy.health.HealthNode` run in
one :class:`~sorting.runtime.InProcessExecutor` on the wall clock (``rate`` times
real time) or as fast as possible (``rate=None``); a recorder tap writes the bag;
a DDS bridge limited to ``/diagnostics`` and the operator's topics (``status``,
``sorting/balance``, ``control/state``, ``control/command``) lets ``crmsort status``
and ``crmsort hmi`` watch the run and ``crmsort line start|stop|estop|reset`` (or an
HMI over DDS) command it; a ``tap`` (e.g. :meth:`sorting.hmi.HmiState.tap`) sees every
message; ``commands`` (:class:`~sorting.hmi.commands.QueueSink`: the in-process HMI's
buttons) are published on ``control/command``. Both inlets are drained on the executor's
thread every :data:`INLET_PERIOD_S` by a small node, ``command_inlet``.
Ctrl-C / SIGTERM stop the executor at the next callback
(:func:`~sorting.deploy.signals.stop_on_signals`, never an exception in the
middle of a bag write); nodes are shut down and the bag is closed in every case.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sorting.config.line import LineConfig
from sorting.deploy.bridge import DdsBridge, deliver_all
from sorting.deploy.config import DeployConfig
from sorting.deploy.group import participant_for
from sorting.deploy.health import DIAGNOSTICS_TOPIC, HealthNode
from sorting.deploy.plan import build_line
from sorting.deploy.signals import stop_on_signals
from sorting.nodes.line_control import COMMAND_TYPE, CONTROL_COMMAND_TOPIC
from sorting.record import Recorder
from sorting.runtime import InProcessExecutor, SimClock, WallClock
from sorting.runtime.context import Node, NodeContext
from sorting.runtime.inprocess import Tap

#: how often operator commands (DDS, the in-process HMI) are taken into the line, s
INLET_PERIOD_S = 0.05


class CommandInlet(Node):
    """Takes what came from outside the executor's thread into the line, on its thread:
    commands queued by an in-process HMI (published on ``control/command``) and the
    samples the DDS bridge imported (``crmsort line …`` commands)."""

    def __init__(self, ctx: NodeContext, commands: Any = None,
                 bridge: DdsBridge | None = None) -> None:
        super().__init__(ctx)
        self.commands = commands
        self.bridge = bridge
        self.pub = ctx.create_publisher(COMMAND_TYPE, CONTROL_COMMAND_TOPIC, 10)
        ctx.create_timer(INLET_PERIOD_S, self._drain)

    def _drain(self) -> None:
        if self.commands is not None:
            for msg in self.commands.take():
                self.pub.publish(msg)
        if self.bridge is not None:
            deliver_all(self.bridge)


@dataclass
class InProcessResult:
    sim_duration_s: float
    wall_s: float
    counts: dict[str, int]
    bag_path: Path | None
    interrupted: bool
    stop_reason: str = ""  # "duration", or the signal's name (SIGINT, SIGTERM)


def run_in_process(line: LineConfig, deploy: DeployConfig, duration_s: float | None,
                   bag_path: str | Path | None = None, *, rate: float | None = 1.0,
                   dds: bool = True, tap: Tap | None = None,
                   commands: Any = None) -> InProcessResult:
    """Run ``line`` in this process for ``duration_s`` of line time (None: until Ctrl-C)."""
    clock = SimClock() if rate is None else WallClock(rate=rate)
    ex = InProcessExecutor(clock, on_error="log")
    recorder: Recorder | None = None
    participant = None
    why = ""
    wall0 = time.perf_counter()
    start = clock.now_ns()

    def _stop(signame: str) -> None:
        nonlocal why
        why = why or signame
        ex.stop()  # the one executor call that is safe from a signal handler

    try:
        with stop_on_signals(_stop):
            build_line(line, ex)
            bridge: DdsBridge | None = None
            if dds:
                participant = participant_for(deploy)
                bridge = DdsBridge(ex, participant, name=f"{line.namespace}/dds_bridge",
                                   topics={DIAGNOSTICS_TOPIC, f"{line.namespace}/status",
                                           f"{line.namespace}/sorting/balance",
                                           f"{line.namespace}/control/state",
                                           f"{line.namespace}/control/command"})
            ex.add_node(
                lambda ctx: HealthNode(ctx, ex, extra=bridge.diagnostics if bridge else None),
                "health", namespace=line.namespace,
                parameters={"period_s": deploy.diagnostics_period_s,
                            "stale_after_s": deploy.stale_after_s, "hardware_id": "inprocess"})
            if bridge is not None or commands is not None:
                ex.add_node(lambda ctx: CommandInlet(ctx, commands, bridge), "command_inlet",
                            namespace=line.namespace)
            if bridge is not None:
                bridge.attach()
            if bag_path is not None:
                recorder = Recorder(Path(bag_path))
                ex.add_tap(recorder)
            if tap is not None:
                ex.add_tap(tap)
            end = None if duration_s is None else start + round(duration_s * 1e9)
            t = start
            while (end is None or t < end) and not why:
                t = t + 1_000_000_000 if end is None else min(t + 1_000_000_000, end)
                if not ex.spin_until(t):
                    break
    except KeyboardInterrupt:  # only where no signal handler could be installed
        why = why or "KeyboardInterrupt"
    finally:
        try:
            ex.shutdown()
        finally:
            if recorder is not None:
                recorder.close()
            if participant is not None:
                participant.close()
    counts = {topic: n for topic, _type, n in ex.topics() if n}
    why = why or "duration"
    return InProcessResult((clock.now_ns() - start) * 1e-9, time.perf_counter() - wall0, counts,
                           Path(bag_path) if bag_path is not None else None,
                           why != "duration", why)
