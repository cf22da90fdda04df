"""One node group in its own process: its nodes, a health node and a DDS bridge, on a shared clock.

Started by the supervisor (:mod:`sorting.deploy.processes`) as
``python -m sorting.deploy.group LINE.yaml --group NAME --deploy-json JSON``.

Clock (as ROS 2 ``use_sim_time``): the process follows ``/clock``
(``rosgraph_msgs/Clock``) published by the supervisor. For each clock value T it

1. takes what other processes sent and injects the samples stamped at or
   before the previous clock value (they are all there: see below), in
   (source time, topic, arrival) order;
2. runs its executor up to T (timers, callbacks; local publishes go out);
3. waits until the reliable readers acknowledged what it wrote, then reports
   ``step T`` on ``/crmsort/deploy/step``.

The supervisor publishes T+1 only after every live group reported T, so what a
group injects at a step never depends on thread timing: a multi-process run is
as deterministic as the in-process one, with one clock step of latency per
process hop. A process that joins late (restarted) moves its clock to the first
T it sees and takes part from there on.

A process that misses clock values — the supervisor dropped it after a network
cut longer than its report timeout, or it stalled — does the same when the clock
reaches it again: it moves to the new T without firing the timers of the time it
missed (a burst of stale output would help nobody), says so in the log and, for
``stale_after_s`` of line time, in its ``<ns>/<group>/clock`` diagnostics status,
and goes on. Nothing is restarted.

Signals: SIGTERM or SIGINT end the clock loop after the current step; the nodes
shut down, the process says ``bye`` and exits 0. A signal that comes while the
process is still starting up ends it at once, also with 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from sorting.config.line import LineConfig
from sorting.deploy.bridge import CLOCK_TOPIC, CONTROL_PREFIX, DdsBridge
from sorting.deploy.config import DeployConfig, load_deployment, parse_deploy
from sorting.deploy.dds import DataWait, DdsParticipant, network_config_xml, wait_matched
from sorting.deploy.health import OK, WARN, HealthNode, status_msg
from sorting.deploy.plan import GroupExecutor, build_line, plan_processes
from sorting.msgs import deserialize, new, serialize
from sorting.msgs.convert import stamp_ns
from sorting.runtime import InProcessExecutor, QoSProfile, SimClock

_log = logging.getLogger("crmsort.deploy.group")

STEP_TOPIC = CONTROL_PREFIX + "step"
STEP_TYPE = "diagnostic_msgs/msg/DiagnosticStatus"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
CONTROL_QOS = QoSProfile(depth=1000, reliable=True)


def participant_for(deploy: DeployConfig) -> DdsParticipant:
    """A participant on the deployment's domain with its network settings (loopback default)."""
    net = deploy.network
    return DdsParticipant(
        deploy.domain_id, network_config_xml(net.interfaces, net.peers, multicast=net.multicast)
    )


def step_report(group: str, kind: str, t_ns: int, exported: int) -> bytes:
    """CDR of a step report (``kind``: ready, step, bye)."""
    return serialize(status_msg(0, group, kind, socket.gethostname(),
                                {"t_ns": t_ns, "exported": exported}), STEP_TYPE)


def parse_report(raw: bytes) -> tuple[str, str, int, int]:
    """(group, kind, t_ns, exported) of a step report."""
    st = deserialize(raw, STEP_TYPE)
    values = {kv.key: kv.value for kv in st.values}
    return st.name, st.message, int(values.get("t_ns", -1)), int(values.get("exported", 0))


def clock_msg_raw(t_ns: int) -> bytes:
    sec, nsec = divmod(t_ns, 1_000_000_000)
    return serialize(new(CLOCK_TYPE, clock=new("builtin_interfaces/msg/Time", sec=sec,
                                               nanosec=nsec)), CLOCK_TYPE)


class GroupProcess:
    """The nodes of ``group`` of ``line`` in one executor, bridged to DDS (see module doc)."""

    def __init__(self, line: LineConfig, deploy: DeployConfig, group: str,
                 participant: DdsParticipant | None = None) -> None:
        plan = plan_processes(line, deploy)
        if group not in plan.groups:
            from sorting.deploy.errors import DeployConfigError

            raise DeployConfigError(f"no group {group!r}; groups are {sorted(plan.groups)}")
        self.group = group
        self.deploy = deploy
        self.step_ns = round(deploy.step_s * 1e9)
        self.participant = participant or participant_for(deploy)
        self.executor = InProcessExecutor(SimClock(), on_error="log")
        self.proxy = GroupExecutor(self.executor, set(plan.groups[group]))
        build_line(line, self.proxy)
        hw = f"{socket.gethostname()}:{group}"
        ns = line.namespace
        self.bridge = DdsBridge(self.executor, self.participant,
                                name=f"{ns}/{group}/dds_bridge", hardware_id=hw)
        self.clock_name = f"{ns}/{group}/clock"
        self.hardware_id = hw
        self.health = self.executor.add_node(
            lambda ctx: HealthNode(ctx, self.executor, extra=self._extra_statuses),
            f"health_{group}", namespace=ns,
            parameters={"period_s": deploy.diagnostics_period_s,
                        "stale_after_s": deploy.stale_after_s, "hardware_id": hw},
        )
        self.bridge.attach()
        self.clock_reader = self.participant.reader(CLOCK_TOPIC, CLOCK_TYPE, CONTROL_QOS,
                                                    depth=100_000)
        self.step_writer = self.participant.writer(STEP_TOPIC, STEP_TYPE, CONTROL_QOS)
        self._wait = DataWait(self.participant, [self.clock_reader])
        self.t_prev: int | None = None
        self.steps = 0
        self.rejoins = 0
        self.last_gap: tuple[int, int] | None = None  # (last T before, first T after) ns

    def report(self, kind: str, t_ns: int, exported: int = 0) -> None:
        self.step_writer.write(step_report(self.group, kind, t_ns, exported))

    def ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the supervisor (clock and report topics matched), then say ready."""
        wait_matched([self.clock_reader, self.step_writer], timeout_s)
        self.report("ready", -1)

    def step(self, t_ns: int) -> int:
        """Process clock value ``t_ns`` (see the module doc); return how many samples went out."""
        ex = self.executor
        if self.t_prev is None:
            if t_ns > self.step_ns:  # joining a running line: start the timers from here
                ex.reset_time(t_ns - self.step_ns)
            self.t_prev = ex.now_ns()
        elif t_ns - self.t_prev > self.step_ns:
            self._rejoin(t_ns)
        self.bridge.poll()
        self.bridge.deliver(self.t_prev)
        before = self.bridge.exported
        ex.spin_until(max(t_ns, ex.now_ns()))
        out = self.bridge.exported - before
        if out:
            self.bridge.wait_for_acks(1.0)
        self.steps += 1
        if self.steps % 50 == 1:
            self.bridge.check_types()
        self.t_prev = t_ns
        return out

    def _rejoin(self, t_ns: int) -> None:
        """Clock values were missed (dropped from the lockstep): move to ``t_ns`` without
        running the timers of the gap."""
        assert self.t_prev is not None
        gap_s = (t_ns - self.t_prev) * 1e-9
        _log.warning("group %s: no clock from t=%.3f s to t=%.3f s (%.2f s of line time; "
                     "network cut or stall): rejoining without replaying the gap",
                     self.group, self.t_prev * 1e-9, t_ns * 1e-9, gap_s)
        self.last_gap = (self.t_prev, t_ns)
        self.rejoins += 1
        self.executor.reset_time(t_ns - self.step_ns)
        self.t_prev = t_ns - self.step_ns

    def clock_status(self, now_ns: int) -> Any:
        """DiagnosticStatus of this process's place in the lockstep clock: WARN for
        ``stale_after_s`` of line time after a rejoin (naming the gap), else OK."""
        values: dict[str, Any] = {"steps": self.steps, "rejoins": self.rejoins}
        level, message = OK, "in step with the line clock"
        if self.last_gap is not None:
            before, after = self.last_gap
            values["last_gap_s"] = (after - before) * 1e-9
            if now_ns - after <= self.deploy.stale_after_s * 1e9:
                level = WARN
                message = (f"rejoined the line clock at t={after * 1e-9:.3f} s after missing "
                           f"{(after - before) * 1e-9:.2f} s of it (no clock from the "
                           f"supervisor: network cut or this process stalled)")
        return status_msg(level, self.clock_name, message, self.hardware_id, values)

    def _extra_statuses(self, now_ns: int) -> list[Any]:
        return [*self.bridge.diagnostics(now_ns), self.clock_status(now_ns)]

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Follow ``/clock`` until ``should_stop()``; report each step."""
        while not should_stop():
            if not self._wait.wait(0.1):
                continue
            for raw, _ts in self.clock_reader.take(100_000):
                t = stamp_ns(deserialize(raw, CLOCK_TYPE).clock)
                out = self.step(t)
                self.report("step", t, out)

    def close(self) -> None:
        try:
            self.executor.shutdown()  # nodes may publish while shutting down (flushes)
            self.bridge.wait_for_acks(2.0)
            self.report("bye", self.t_prev or -1)
        finally:
            self.participant.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sorting.deploy.group")
    ap.add_argument("line")
    ap.add_argument("--group", required=True)
    ap.add_argument("--deploy-json", default=None,
                    help="deploy section (JSON) overriding the YAML's")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s [{args.group}] %(name)s: "
                        "%(message)s")
    state = {"stop": False, "running": False}

    def _on_signal(signum: int, _frame: Any) -> None:
        state["stop"] = True
        if not state["running"]:  # still starting (loading models, discovery): leave now
            raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    proc: GroupProcess | None = None
    try:
        line, deploy = load_deployment(args.line)
        if args.deploy_json:
            import json

            deploy = parse_deploy(json.loads(args.deploy_json), "--deploy-json")
        proc = GroupProcess(line, deploy, args.group)
        proc.ready()
        state["running"] = True
        proc.run(lambda: state["stop"])
    except KeyboardInterrupt:
        _log.info("group %s: stopped by a signal while starting", args.group)
    finally:
        state["running"] = True  # a second signal must not interrupt the shutdown
        if proc is not None:
            proc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
