"""``crmsort run LINE.yaml --processes``: one process per node group over DDS, one shared clock.

:class:`Supervisor` starts a :mod:`sorting.deploy.group` process per group of
the line's deployment plan, publishes ``/clock`` in lockstep with them (it
publishes T+1 only once every live group reported T; see
:mod:`sorting.deploy.group`), records every ROS topic it discovers to one
rosbag2 bag, and aggregates ``/diagnostics``. A group that stops reporting
(killed, hung) is dropped from the lockstep after ``report_timeout_s`` (at once
when its process has exited) and reported STALE; when it says ready again
(restarted) it takes part again from the next clock value.

A group dropped after a network cut keeps running on its own machine; when the
link heals, DDS discovery finds it again (the participants announce themselves
to their peers every second, see :func:`~sorting.deploy.dds.network_config_xml`),
its reports reach the supervisor and it takes part again — no restart.
``report_timeout_s`` must exceed the DDS lease (2 s; checked): the line then only
moves on once the unreachable readers are forgotten, so no writer blocks on them
and nothing the reachable processes publish is lost from the bag. Until then the
whole line waits (the clock is shared).

``launch_prefix`` puts command words before a group's command, as a ROS 2 launch
``prefix`` does: ``ip netns exec NS`` (tests: a group in another network
namespace), ``ssh host``, ``taskset -c 2``, ``nice``.

Children run in process groups of their own, so a terminal's Ctrl-C reaches only
the supervisor, which shuts them down in order. :meth:`Supervisor.request_stop`
(what :func:`run_processes` calls on SIGINT/SIGTERM; async-signal safe: it only
sets a flag) ends :meth:`~Supervisor.start` and :meth:`~Supervisor.advance` at
the next clock step. :meth:`Supervisor.stop` runs flush rounds (the last clock
value again until no group sends anything, so what was in flight at the end is
processed, as in the in-process run), sends SIGTERM to every child, waits for
them (SIGKILL after ``kill_after_s``), closes the bag and the DDS participant.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sorting.bags import BagWriter
from sorting.config.line import LineConfig
from sorting.deploy.bridge import CLOCK_TOPIC, CONTROL_PREFIX
from sorting.deploy.config import DeployConfig
from sorting.deploy.dds import LEASE_S, DataWait, RawReader, RawWriter
from sorting.deploy.errors import DeployConfigError, DeployError
from sorting.deploy.group import (
    CLOCK_TYPE,
    CONTROL_QOS,
    STEP_TOPIC,
    STEP_TYPE,
    clock_msg_raw,
    parse_report,
    participant_for,
)
from sorting.deploy.health import (
    DIAGNOSTICS_TOPIC,
    DIAGNOSTICS_TYPE,
    OK,
    STALE,
    DiagnosticsMonitor,
    status_msg,
)
from sorting.deploy.plan import ProcessPlan, plan_processes
from sorting.deploy.signals import stop_on_signals
from sorting.msgs import deserialize, new, serialize
from sorting.msgs.convert import header
from sorting.runtime import QoSProfile

_log = logging.getLogger("crmsort.deploy.processes")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GroupState:
    name: str
    members: list[str]
    proc: subprocess.Popen[bytes] | None = None
    live: bool = False
    last_report_s: float = 0.0
    reason: str = "not started"
    restarts: int = 0


@dataclass
class SupervisorResult:
    """What a multi-process run did: sim seconds, per-topic counts and bytes, the bag."""

    sim_duration_s: float
    wall_s: float
    counts: dict[str, int]
    bytes: dict[str, int]
    types: dict[str, str]
    bag_path: Path | None
    steps: int
    lost_groups: list[str] = field(default_factory=list)
    stop_reason: str = ""


class Supervisor:
    """Runs ``line`` as one process per group (see the module docstring).

    ``line_path`` is the YAML the children load; ``deploy`` overrides its deploy
    section (tests pass a private domain id). ``rate`` paces the clock at that
    multiple of real time (None: as fast as the slowest process allows).
    ``launch_prefix`` maps a group to the command words put before its command.
    ``report_timeout_s`` (wall s) is how long a silent group holds up the clock before
    it is dropped. Raises DeployConfigError for a prefix of an unknown group or a
    report timeout not above the DDS lease, DeployError when a group does not come up
    within ``startup_timeout_s``.
    """

    def __init__(self, line_path: str | Path, line: LineConfig, deploy: DeployConfig, *,
                 bag_path: str | Path | None = None, rate: float | None = None,
                 report_timeout_s: float = 10.0, startup_timeout_s: float = 120.0,
                 settle_s: float = 0.3, kill_after_s: float = 5.0,
                 stderr: Any = None,
                 launch_prefix: Mapping[str, Sequence[str]] | None = None) -> None:
        self.line_path = Path(line_path)
        self.line = line
        self.deploy = deploy
        self.plan: ProcessPlan = plan_processes(line, deploy, str(line_path))
        if not report_timeout_s > LEASE_S:
            raise DeployConfigError(
                f"report timeout {report_timeout_s} s: must exceed the DDS lease ({LEASE_S} s), "
                f"or the line would go on while writers still wait for an unreachable reader")
        self.launch_prefix = {g: list(words) for g, words in (launch_prefix or {}).items()}
        for g in self.launch_prefix:
            if g not in self.plan.groups:
                raise DeployConfigError(
                    f"launch prefix for group {g!r}: no such group; groups are "
                    f"{sorted(self.plan.groups)}")
        self.bag_path = Path(bag_path) if bag_path is not None else None
        self.rate = rate
        self.report_timeout_s = report_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.settle_s = settle_s
        self.kill_after_s = kill_after_s
        self.stderr = stderr
        self.step_ns = round(deploy.step_s * 1e9)
        self.groups = {g: GroupState(g, m) for g, m in self.plan.groups.items()}
        self.monitor = DiagnosticsMonitor(stale_after_s=deploy.stale_after_s)
        self.counts: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.types: dict[str, str] = {}
        self.t_ns = 0
        self.steps = 0
        self._readers: dict[str, RawReader] = {}
        self._bag: BagWriter | None = None
        self._started = False
        self._closed = False
        self._wall0 = 0.0
        self._diag_due = 0.0
        self._clock_w: RawWriter | None = None
        self._diag_w: RawWriter | None = None
        self._t_start: int | None = None
        self.stop_reason: str | None = None

    # ----------------------------------------------------------------- processes
    def child_command(self, group: str) -> list[str]:
        """The command line that starts ``group`` (what :meth:`restart` runs), with the
        group's launch prefix in front."""
        return [*self.launch_prefix.get(group, []),
                sys.executable, "-m", "sorting.deploy.group", str(self.line_path),
                "--group", group, "--deploy-json", json.dumps(self.deploy.model_dump())]

    def _spawn(self, group: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        st = self.groups[group]
        # a process group of its own: a terminal's Ctrl-C goes to the supervisor alone,
        # which stops the children in order (see stop)
        st.proc = subprocess.Popen(self.child_command(group), env=env, cwd=str(REPO_ROOT),
                                   stdin=subprocess.DEVNULL, stderr=self.stderr,
                                   process_group=0)
        st.reason = "starting"

    def request_stop(self, reason: str) -> None:
        """Ask :meth:`start`/:meth:`advance` to return at the next clock step (the first
        reason is kept). Only sets a flag: safe from a signal handler."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def all_exited(self) -> bool:
        """True when every group's process has exited (nothing left to run)."""
        return all(st.proc is not None and st.proc.poll() is not None
                   for st in self.groups.values())

    def start(self) -> None:
        """Start DDS, the children, wait until all are ready and discovered."""
        self.participant = participant_for(self.deploy)
        self._clock_w = self.participant.writer(CLOCK_TOPIC, CLOCK_TYPE, CONTROL_QOS)
        self._diag_w = self.participant.writer(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, QoSProfile())
        self._step_r = self.participant.reader(STEP_TOPIC, STEP_TYPE, CONTROL_QOS, depth=100_000)
        self._step_wait = DataWait(self.participant, [self._step_r])
        if self.bag_path is not None:
            self._bag = BagWriter(self.bag_path)
        self._started = True
        try:
            self._start_children()
        except BaseException:
            self.stop(flush=False)
            raise

    def _start_children(self) -> None:
        for g in self.groups:
            self._spawn(g)
        deadline = time.monotonic() + self.startup_timeout_s
        while not all(st.live for st in self.groups.values()):
            self._read_reports(wait_s=0.2)
            if self.stop_reason is not None:
                return
            for st in self.groups.values():
                if st.proc is not None and st.proc.poll() is not None and not st.live:
                    raise DeployError(
                        f"group {st.name!r} ({', '.join(st.members)}) exited with code "
                        f"{st.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                late = [g for g, st in self.groups.items() if not st.live]
                raise DeployError(f"groups {late} not ready after {self.startup_timeout_s} s")
        self._discover()
        time.sleep(self.settle_s)
        self._wall0 = time.monotonic()

    def kill(self, group: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to ``group``'s process (tests: simulate a crash)."""
        st = self.groups[group]
        if st.proc is not None and st.proc.poll() is None:
            st.proc.send_signal(sig)
            st.proc.wait(timeout=10)

    def restart(self, group: str, timeout_s: float = 60.0) -> None:
        """Start ``group`` again and wait until it is back in the lockstep."""
        self.kill(group)
        st = self.groups[group]
        st.live = False
        st.restarts += 1
        self._spawn(group)
        deadline = time.monotonic() + timeout_s
        while not st.live:
            self._read_reports(wait_s=0.2)
            if time.monotonic() > deadline:
                raise DeployError(f"group {group!r} did not come back within {timeout_s} s")
        self._discover()
        time.sleep(self.settle_s)

    # -------------------------------------------------------------------- reports
    def _read_reports(self, wait_s: float) -> list[tuple[str, str, int, int]]:
        self._step_wait.wait(wait_s)
        out = []
        now = time.monotonic()
        for raw, _ts in self._step_r.take(100_000):
            g, kind, t, n = parse_report(raw)
            st = self.groups.get(g)
            if st is None:
                continue
            st.last_report_s = now
            if kind in ("ready", "step"):
                if not st.live:
                    _log.info("group %s is %s", g, "back" if st.restarts else "ready")
                st.live, st.reason = True, "ok"
            elif kind == "bye":
                st.live, st.reason = False, "said bye"
            out.append((g, kind, t, n))
        return out

    def _drop_dead(self, waiting: set[str]) -> None:
        now = time.monotonic()
        for g in list(waiting):
            st = self.groups[g]
            code = st.proc.poll() if st.proc is not None else None
            if code is not None:
                st.live, st.reason = False, f"process exited with code {code}"
            elif now - st.last_report_s > self.report_timeout_s:
                st.live, st.reason = False, f"no report for {now - st.last_report_s:.1f} s"
            if not st.live:
                _log.warning("group %s dropped from the clock: %s", g, st.reason)
                waiting.discard(g)

    def _clock_step(self, t_ns: int) -> int:
        """Publish clock ``t_ns`` and wait for every live group; return samples they sent."""
        assert self._clock_w is not None
        if self.rate is not None:
            due = self._wall0 + (t_ns - (self._t_start or 0)) * 1e-9 / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        waiting = {g for g, st in self.groups.items() if st.live}
        for g in waiting:
            self.groups[g].last_report_s = time.monotonic()
        self._clock_w.write(clock_msg_raw(t_ns), t_ns)
        sent = 0
        while waiting and self.stop_reason is None:
            for g, kind, t, n in self._read_reports(wait_s=0.05):
                if kind == "step" and t == t_ns:
                    waiting.discard(g)
                    sent += n
                elif kind == "ready":
                    time.sleep(self.settle_s)  # a group came back: let discovery settle
            self._drop_dead(waiting)
        self.t_ns = t_ns
        self.steps += 1
        self._record()
        if self.steps % 100 == 0:
            self._discover()
        self._publish_diagnostics()
        return sent

    def advance(self, seconds: float) -> None:
        """Run the line for ``seconds`` of line time (lockstep clock steps)."""
        if not self._started:
            self.start()
        if self._t_start is None:
            self._t_start = self.t_ns
        end = self.t_ns + round(seconds * 1e9)
        while self.t_ns < end and self.stop_reason is None:
            self._clock_step(min(self.t_ns + self.step_ns, end))

    def flush(self, max_rounds: int = 10) -> None:
        """Repeat the last clock value until no group sends anything (in-flight work done)."""
        for _ in range(max_rounds):
            if self._clock_step(self.t_ns) == 0:
                break
        time.sleep(0.05)
        self._record()

    # ------------------------------------------------------------------ recording
    def _discover(self) -> None:
        for ep in self.participant.publications():
            topic, typ = ep.topic, ep.msg_type
            if topic is None or typ is None or topic in self._readers:
                continue
            if topic == CLOCK_TOPIC or topic.startswith(CONTROL_PREFIX):
                continue
            try:
                self._readers[topic] = self.participant.reader(
                    topic, typ, QoSProfile(reliable=True, transient_local=ep.transient_local),
                    depth=100_000)
            except Exception as e:  # a type we do not know: skip it, say so once
                _log.warning("not recording %s (%s): %s", topic, typ, e)
                self._readers[topic] = None  # type: ignore[assignment]

    def _record(self) -> None:
        for topic, r in self._readers.items():
            if r is None:
                continue
            for raw, t_ns in r.take(100_000):
                self.counts[topic] = self.counts.get(topic, 0) + 1
                self.bytes[topic] = self.bytes.get(topic, 0) + len(raw)
                self.types[topic] = r.msg_type
                if self._bag is not None:
                    self._bag.add_topic(topic, r.msg_type)
                    self._bag.write(topic, t_ns, raw)
                if topic == DIAGNOSTICS_TOPIC:
                    self.monitor.update(deserialize(raw, DIAGNOSTICS_TYPE))

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        if now < self._diag_due or self._diag_w is None:
            return
        self._diag_due = now + self.deploy.diagnostics_period_s
        ns = self.line.namespace
        sts = [
            status_msg(OK if st.live else STALE, f"{ns}/process/{g}", st.reason, g,
                       {"members": ",".join(st.members), "restarts": st.restarts,
                        "pid": st.proc.pid if st.proc else -1})
            for g, st in self.groups.items()
        ]
        msg = new(DIAGNOSTICS_TYPE, header=header(self.t_ns, ""), status=sts)
        self.monitor.update(msg)
        self._diag_w.write(serialize(msg, DIAGNOSTICS_TYPE), self.t_ns)

    # ------------------------------------------------------------------- shutdown
    def stop(self, flush: bool = True) -> SupervisorResult:
        """Flush, stop every child (SIGTERM, then SIGKILL), close the bag and DDS. Idempotent."""
        wall = time.monotonic() - self._wall0 if self._wall0 else 0.0
        lost = [g for g, st in self.groups.items() if not st.live]
        if self._closed:
            return self._result(wall, lost)
        self._closed = True
        try:
            if flush and self._started and any(st.live for st in self.groups.values()):
                self.flush()
        finally:
            try:
                self._terminate_children()
                if self._started:
                    self._record()  # what the children sent while shutting down
            finally:
                if self._bag is not None:
                    self._bag.close()
                if self._started:
                    self.participant.close()
        return self._result(wall, lost)

    def _terminate_children(self) -> None:
        procs = [st.proc for st in self.groups.values() if st.proc is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.kill_after_s
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _log.warning("pid %d ignored SIGTERM; killing it", p.pid)
                p.kill()
                p.wait()

    def _result(self, wall: float, lost: list[str]) -> SupervisorResult:
        return SupervisorResult(self.t_ns * 1e-9, wall, dict(sorted(self.counts.items())),
                                dict(self.bytes), dict(self.types), self.bag_path, self.steps,
                                lost, self.stop_reason or "")

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(flush=exc[0] is None)


#: SupervisorResult.stop_reason when every group process exited on its own.
ALL_EXITED = "every group process exited"


def run_processes(line_path: str | Path, line: LineConfig, deploy: DeployConfig,
                  duration_s: float | None, bag_path: str | Path | None = None,
                  rate: float | None = 1.0,
                  launch_prefix: Mapping[str, Sequence[str]] | None = None,
                  stderr: Any = None, report_timeout_s: float = 10.0) -> SupervisorResult:
    """Run the line as processes for ``duration_s`` (None: until Ctrl-C/SIGTERM).

    A signal ends the run at the next clock step: every child gets SIGTERM and is
    waited for, the bag is closed, and the result (``stop_reason`` = the signal's
    name, e.g. ``SIGTERM``) comes back as from a run that reached its duration
    (``stop_reason`` ``"duration"``). When every child has exited on its own the run
    ends with ``stop_reason`` :data:`ALL_EXITED`. Raises DeployError when a group
    cannot start.
    """
    sup = Supervisor(line_path, line, deploy, bag_path=bag_path, rate=rate,
                     launch_prefix=launch_prefix, stderr=stderr,
                     report_timeout_s=report_timeout_s)

    def _hurry() -> None:  # a second Ctrl-C: no grace time for the children
        sup.kill_after_s = 0.0

    with stop_on_signals(sup.request_stop, _hurry):
        try:
            sup.start()
            if duration_s is None:
                while sup.stop_reason is None:
                    sup.advance(1.0)
                    if sup.all_exited():
                        sup.request_stop(ALL_EXITED)
            else:
                sup.advance(duration_s)
        except KeyboardInterrupt:  # only where no handler could be installed
            sup.request_stop("KeyboardInterrupt")
        finally:
            # flush (process what is in flight) only after a run that reached its end:
            # a stop request also ends the flush rounds' waiting
            reason = sup.stop_reason or "duration"
            result = sup.stop(flush=sup.stop_reason is None)
    result.stop_reason = reason
    return result
