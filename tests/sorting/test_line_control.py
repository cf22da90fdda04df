"""The line's command path: the state machine, the belt drive, and a simulated line that
honours START, STOP, ESTOP and RESET."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml

from sorting.control import Command, LineController, LineState, parse_command
from sorting.errors import CommandError, ConfigError

NOMINAL = 0.5


def _ctl(**kw: Any) -> LineController:
    return LineController(NOMINAL, **kw)


def test_autostart_runs_and_a_manual_line_waits_stopped() -> None:
    assert _ctl().state == LineState.RUNNING and _ctl().belt_run and _ctl().picks_allowed
    c = _ctl(autostart=False)
    assert c.state == LineState.STOPPED and not c.belt_run and not c.picks_allowed


def test_start_ramps_then_runs_on_the_encoders_word() -> None:
    c = _ctl(autostart=False)
    c.observe_belt(0.0, 0.0)
    out = c.command(Command.START, 1.0, "hmi", "shift start")
    assert out.accepted and (out.before, out.after) == (LineState.STOPPED, LineState.STARTING)
    assert c.belt_run and not c.picks_allowed          # no picks while the belt ramps up
    assert c.observe_belt(0.3, 1.5) is None and c.state == LineState.STARTING
    # 0.95 x 0.5 m/s is where STARTING becomes RUNNING
    assert c.observe_belt(0.476, 2.0) == LineState.RUNNING and c.picks_allowed
    assert c.reason == "START from hmi: shift start"


def test_stop_waits_for_standstill_and_the_picks_in_flight() -> None:
    c = _ctl()
    c.observe_belt(0.5, 0.0)
    c.pick_sent("arm1", 7, 0.5)
    out = c.command(Command.STOP, 1.0, "cli", "")
    assert out.accepted and c.state == LineState.STOPPING
    assert not c.belt_run and not c.picks_allowed
    assert "1 in flight finish" in out.message
    assert c.observe_belt(0.0, 2.0) is None            # still: but arm1's pick is out
    assert c.state == LineState.STOPPING
    assert c.pick_answered("arm1", 7, 2.1) == LineState.STOPPED


def test_stop_is_not_held_forever_by_a_pick_never_answered() -> None:
    c = _ctl(drain_timeout_s=3.0)
    c.pick_sent("arm2", 1, 0.0)
    c.command(Command.STOP, 0.5)
    c.observe_belt(0.0, 1.0)
    assert c.tick(2.9) is None and c.state == LineState.STOPPING
    assert c.tick(3.1) == LineState.STOPPED


def test_estop_from_any_state_and_reset_only_to_stopped() -> None:
    for start in (True, False):
        c = _ctl(autostart=start)
        out = c.command(Command.ESTOP, 2.0, "hmi", "hand in the chute")
        assert out.accepted and c.state == LineState.ESTOP and c.estop_latched
        assert not c.belt_run and not c.picks_allowed
    c = _ctl()
    c.pick_sent("arm1", 1, 0.0)
    c.command(Command.ESTOP, 1.0, "hmi", "first")
    again = c.command(Command.ESTOP, 1.5, "cli", "second")
    assert again.accepted and "already latched since t=1.000 s" in again.message
    assert c.reason == "ESTOP from hmi: first"        # the first cause is the one that matters
    assert not c.in_flight                             # the arms abort what they were doing
    refused = c.command(Command.START, 2.0, "cli", "try")
    assert not refused.accepted and c.state == LineState.ESTOP
    assert "RESET first" in refused.message and refused.log_line().startswith(
        "START from 'cli' (try) REFUSED: E-stop latched")
    c.observe_belt(0.2, 2.1)                           # still braking
    moving = c.command(Command.RESET, 2.1, "hmi")
    assert not moving.accepted and "still moves at 0.200 m/s" in moving.message
    c.observe_belt(0.0, 2.5)
    out = c.command(Command.RESET, 2.5, "hmi", "chute clear")
    assert out.accepted and c.state == LineState.STOPPED and not c.estop_latched
    assert not c.belt_run                              # never straight back to running


@pytest.mark.parametrize(("autostart", "cmd", "state", "why"), [
    (True, Command.START, LineState.RUNNING, "already RUNNING"),
    (False, Command.STOP, LineState.STOPPED, "already STOPPED"),
    (True, Command.RESET, LineState.RUNNING, "nothing to reset"),
    (False, Command.RESET, LineState.STOPPED, "nothing to reset"),
])
def test_commands_that_make_no_sense_are_refused_with_a_reason(
        autostart: bool, cmd: Command, state: LineState, why: str) -> None:
    c = _ctl(autostart=autostart)
    out = c.command(cmd, 1.0, "cli", "")
    assert not out.accepted and c.state == state and why in out.message
    assert c.last is out


def test_start_while_stopping_is_refused() -> None:
    c = _ctl()
    c.observe_belt(0.5, 0.0)
    c.command(Command.STOP, 1.0)
    out = c.command(Command.START, 1.2)
    assert not out.accepted and "STOPPING" in out.message and c.state == LineState.STOPPING


def test_command_names_parse_and_unknown_ones_are_named() -> None:
    assert parse_command("start") == Command.START
    assert parse_command(" E-Stop ") == Command.ESTOP
    assert parse_command("RESET") == Command.RESET
    with pytest.raises(CommandError, match=r"unknown line command 'halt': expected one of "
                                           r"start, stop, estop, reset"):
        parse_command("halt")
    with pytest.raises(ConfigError, match="nominal_speed_mps must be > 0"):
        LineController(0.0)


# -- the belt drive ----------------------------------------------------------------------------

def _world(ramp_s: float = 1.0, running: bool = True) -> Any:
    from sorting.config.line import BeltConfig, FeedConfig
    from sorting.sim.world import BeltWorld

    def spawn(oid: int, x: float, y: float) -> Any:
        from perception.sensors.scene import Appearance, SceneObject, ShapeKind

        return SceneObject(object_id=oid, class_name="box", stream="weee",
                           shape=ShapeKind.BOX, size_m=(0.05, 0.05, 0.02), x_m=x, y_m=y,
                           yaw_rad=0.0, material="abs", density_kg_m3=1000.0, composition={},
                           appearance=Appearance(base_rgb=(0.5, 0.5, 0.5)))

    return BeltWorld(BeltConfig(ramp_s=ramp_s), FeedConfig(objects_per_m=0.5), spawn,
                     np.random.default_rng(1), running=running)


def test_the_belt_ramps_down_to_standstill_and_back() -> None:
    w = _world()
    w.advance_to(3.0)
    v0 = w.speed_mps
    assert v0 == pytest.approx(0.5, rel=0.05)
    w.set_drive(False, 3.0)
    w.advance_to(3.5)
    assert 0 < w.speed_mps < v0                       # ramping down (1 s for a full ramp)
    w.advance_to(4.0 + 1e-9)
    assert w.speed_mps == 0.0
    x = w.belt_position_m
    w.advance_to(6.0)
    assert w.belt_position_m == x                      # the encoder shows a still belt
    w.set_drive(True, 6.0)
    w.advance_to(8.0)
    assert w.speed_mps == pytest.approx(0.5, rel=0.05) and w.belt_position_m > x + 0.5
    w.set_drive(False, 8.0, ramp_s=0.2)               # an E-stop brakes faster
    w.advance_to(8.2 + 1e-9)
    assert w.speed_mps == 0.0


def test_a_belt_built_stopped_stands_still() -> None:
    w = _world(running=False)
    w.advance_to(5.0)
    assert w.belt_position_m == 0.0 and not w.drive_on


def test_an_untouched_drive_keeps_the_start_up_ramp_bit_for_bit() -> None:
    """No command: the speed is the very expression the belt always had (seeded runs stay)."""
    w = _world(ramp_s=1.0)
    for t in (0.0, 0.25, 0.731, 1.0, 2.5):
        wob = sum(math.sin(2 * math.pi * f * t + ph) for f, ph in w._wobble) * math.sqrt(2 / 3)
        ramp = min(1.0, max(0.0, t / 1.0))
        assert w.speed_at(t) == 0.5 * ramp * (1.0 + w.belt.speed_jitter * wob)


# -- a simulated line under command ------------------------------------------------------------

class _Line:
    """A simulated line (no HSI, XRF, XRT: quicker, still picking) on a simulated clock, with
    every pick task/result, control state, status and encoder sample it publishes."""

    def __init__(self) -> None:
        from sorting.config.line import DEFAULT_LINE, parse_line
        from sorting.line import build_sim_line
        from sorting.runtime import InProcessExecutor, SimClock

        data = yaml.safe_load(DEFAULT_LINE.read_text())
        for sensor in ("hsi", "xrf", "xrt"):
            data["sensors"].setdefault(sensor, {})["enabled"] = False
        self.line = parse_line(data, "small.yaml")
        self.ex = InProcessExecutor(SimClock())
        self.built = build_sim_line(self.line, self.ex)
        self.events: list[tuple[float, str, Any]] = []
        self.ex.add_tap(self._tap)

    def _tap(self, topic: str, _type: str, t_ns: int, msg: Any) -> None:
        name = topic.removeprefix("/line1/")
        if name in ("control/state", "status", "belt/joint_states") or "/pick_" in name:
            self.events.append((t_ns * 1e-9, name, msg))

    @property
    def now(self) -> float:
        return self.ex.clock.now_ns() * 1e-9

    def spin(self, seconds: float) -> None:
        self.ex.spin_until(self.ex.clock.now_ns() + round(seconds * 1e9))

    def spin_until(self, what: str, limit_s: float, after: float | None = None) -> Any:
        """Spin in 50 ms steps until a message on a topic ending in ``what`` comes (after
        ``after``), at most ``limit_s``; return (t, topic, msg) or fail."""
        t0 = self.now if after is None else after
        end = self.now + limit_s
        while self.now < end:
            got = self.of(what, after=t0)
            if got:
                return got[0]
            self.spin(0.05)
        raise AssertionError(f"no {what} within {limit_s} s after t={t0:.2f} s")

    def of(self, what: str, after: float = -1.0) -> list[tuple[float, str, Any]]:
        return [e for e in self.events if e[1].endswith(what) and e[0] > after]

    def command(self, cmd: str, reason: str = "") -> None:
        from sorting.msgs import new
        from sorting.msgs.convert import header

        self.ex.inject("/line1/control/command", "crmsort_msgs/msg/LineCommand",
                       new("crmsort_msgs/msg/LineCommand", header=header(self.ex.clock.now_ns(),
                                                                         ""),
                           command=int(parse_command(cmd)), source="test", reason=reason))
        self.spin(0.0)  # deliver it

    def states(self, after: float) -> list[tuple[float, LineState]]:
        """The controller's state changes after ``after`` (heartbeats repeating one left out)."""
        out: list[tuple[float, LineState]] = []
        for t, _n, m in self.of("control/state", after=after):
            if not out or out[-1][1] != m.state:
                out.append((t, LineState(m.state)))
        return out

    def encoder_still_since(self, t: float) -> bool:
        pos = [float(m.position[0]) for tt, _n, m in self.of("belt/joint_states", after=t)]
        return len(pos) > 10 and max(pos) == min(pos)


@pytest.mark.slow
def test_a_simulated_line_stops_estops_resets_and_picks_again() -> None:
    """One run: STOP lets the pick in flight finish and holds STOPPED until it has; START
    runs the line again; an ESTOP with a pick in flight aborts it, stops the belt (the
    encoder stands still), leaves both arms ESTOPPED and the status ESTOP, and no PickTask
    goes out; START is refused until RESET, which brings the line to STOPPED only; after
    START the arms pick again."""
    from robot.drivers.base import ArmState
    from robot.drivers.base import Outcome as PickOutcome

    ln = _Line()
    # 1. the first pick goes out; STOP while it is in flight
    t_task, topic, task = ln.spin_until("pick_task", 30.0)
    arm = topic.split("/")[1]
    ln.spin(0.1)
    t_stop = ln.now
    ln.command("stop", "end of shift")
    ln.spin(4.0)
    (t_res, _, res), = [e for e in ln.of(f"{arm}/pick_result", after=t_task)
                        if e[2].task_id == task.task_id]
    assert t_res > t_stop and res.outcome != PickOutcome.ABORTED     # it was let finish
    assert not ln.of("pick_task", after=t_stop)                       # nothing new
    changes = ln.states(after=t_stop - 1e-9)
    assert [s for _t, s in changes] == [LineState.STOPPING, LineState.STOPPED]
    assert changes[1][0] >= t_res                  # STOPPED only once the pick was answered
    assert ln.encoder_still_since(ln.now - 1.0)
    ln.spin(1.0)
    assert ln.of("status")[-1][2].state == LineState.STOPPED
    assert "BELT_STOPPED" not in ln.of("status")[-1][2].active_alarms   # stopped on purpose

    # 2. START: the belt ramps up, the line runs and picks again
    t_start = ln.now
    ln.command("start")
    t_task2, topic2, task2 = ln.spin_until("pick_task", 30.0, after=t_start)
    (t_run, _), = [c for c in ln.states(after=t_start) if c[1] == LineState.RUNNING]
    assert t_run < t_task2                          # no pick while STARTING
    v = ln.of("belt/joint_states")[-1][2].velocity[0]
    assert v == pytest.approx(NOMINAL, rel=0.05)

    # 3. ESTOP while that pick is in flight
    arm2 = topic2.split("/")[1]
    ln.spin(0.3)
    t_estop = ln.now
    ln.command("estop", "hand in the chute")
    ln.spin(2.0)
    aborted = [e[2] for e in ln.of(f"{arm2}/pick_result", after=t_task2)
               if e[2].task_id == task2.task_id]
    assert [r.outcome for r in aborted] == [PickOutcome.ABORTED] and "E-stop" in aborted[0].message
    assert not ln.of("pick_task", after=t_estop)
    # the belt brakes in control.estop_stop_s (0.2 s): still from then on
    assert ln.encoder_still_since(t_estop + ln.line.control.estop_stop_s + 0.02)
    assert all(a.hw.driver.state == ArmState.ESTOPPED for a in ln.built.arms)
    assert ln.of("status")[-1][2].state == LineState.ESTOP
    assert ln.of("control/state")[-1][2].estop

    # 4. START is refused while the E-stop is latched; RESET brings STOPPED, never RUNNING
    ln.command("start", "try")
    last = ln.of("control/state")[-1][2]
    assert (last.state, last.last_accepted) == (LineState.ESTOP, False)
    assert "RESET first" in last.last_message
    ln.command("reset", "chute clear")
    ln.spin(1.5)
    assert ln.of("control/state")[-1][2].state == LineState.STOPPED
    assert ln.encoder_still_since(t_estop + 0.5)
    assert all(a.hw.driver.state == ArmState.IDLE for a in ln.built.arms)
    assert not ln.of("pick_task", after=t_estop)

    # 5. START: the line picks again; the arm that braked mid-pick too, from where it stood
    t_again = ln.now
    ln.command("start", "resume")
    picked = None
    end = ln.now + 40.0
    while picked is None and ln.now < end:
        ln.spin(0.5)
        picked = next((e for e in ln.of(f"{arm2}/pick_result", after=t_again)
                       if e[2].outcome == PickOutcome.PICKED), None)
    assert picked is not None, [e[2].message for e in ln.of("pick_result", after=t_again)]
    ln.ex.shutdown()


# -- the CLI over DDS --------------------------------------------------------------------------

def test_crmsort_line_commands_a_line_over_dds(capsys: pytest.CaptureFixture[str]) -> None:
    """A line controller and monitor on a DDS domain of their own, bridged as ``crmsort run``
    bridges them: ``crmsort line estop`` is accepted and the next status says ESTOP;
    ``crmsort line start`` is refused (exit 1) with the line's reason; on a domain where
    no line runs, the command fails with exit 3 and says so."""
    import os
    import threading

    from sorting.cli.main import main
    from sorting.deploy.bridge import DdsBridge
    from sorting.deploy.dds import DdsParticipant
    from sorting.deploy.inprocess_run import CommandInlet
    from sorting.nodes.line_control import LineControlNode
    from sorting.nodes.line_monitor import LineMonitorNode
    from sorting.runtime import InProcessExecutor, WallClock

    domain = 100 + (os.getpid() * 19 + 29) % 120
    ex = InProcessExecutor(WallClock(rate=1.0), on_error="log")
    ctl = ex.add_node(LineControlNode, "line_control", namespace="/line1",
                      parameters={"rate_hz": 2.0})
    ex.add_node(LineMonitorNode, "line_monitor", namespace="/line1",
                parameters={"rate_hz": 4.0})
    part = DdsParticipant(domain)
    bridge = DdsBridge(ex, part, name="/line1/dds_bridge",
                       topics={"/line1/status", "/line1/control/state",
                               "/line1/control/command"})
    ex.add_node(lambda ctx: CommandInlet(ctx, None, bridge), "command_inlet",
                namespace="/line1")
    bridge.attach()
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ex.spin_for(0.05)

    th = threading.Thread(target=spin, daemon=True)
    th.start()
    try:
        code = main(["line", "estop", "--domain", str(domain), "--reason", "test stop",
                     "--timeout", "10"])
        out = " ".join(capsys.readouterr().out.split())
        assert code == 0, out
        assert "ESTOP accepted: E-stop latched" in out and "line1: ESTOP, belt" in out
        assert ctl.controller.reason.startswith("ESTOP from cli@")
        assert ctl.controller.reason.endswith(": test stop")
        code = main(["line", "start", "--domain", str(domain), "--timeout", "10"])
        out = " ".join(capsys.readouterr().out.split())
        assert code == 1, out
        assert "START REFUSED: E-stop latched: RESET first" in out
    finally:
        stop.set()
        th.join()
        ex.shutdown()
        part.close()
    nobody = 100 + (os.getpid() * 23 + 7) % 120
    if nobody == domain:
        nobody = 100 + (nobody - 99) % 120
    code = main(["line", "stop", "--domain", str(nobody), "--timeout", "1"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 3 and "no line listens on /line1/control/command" in out


def test_a_line_configured_without_autostart_waits_stopped_for_a_start() -> None:
    """``control: {autostart: false}``: the belt stands still and the status says STOPPED
    (no BELT_STOPPED alarm: it is stopped on purpose) until a START; then it runs. The line
    scanners (HSI, X-ray) take no lines of a belt standing still: one line, then none until
    the belt moves (timed, they had scanned the same strip hundreds of times a second)."""
    from sorting.config.line import DEFAULT_LINE, parse_line
    from sorting.line import build_sim_line
    from sorting.msgs import new
    from sorting.runtime import InProcessExecutor, SimClock

    data = yaml.safe_load(DEFAULT_LINE.read_text())
    data["control"] = {"autostart": False}
    line = parse_line(data, "manual.yaml")
    ex = InProcessExecutor(SimClock())
    built = build_sim_line(line, ex, perception=False)
    seen: list[tuple[str, Any]] = []
    ex.add_tap(lambda topic, _t, _ns, msg: seen.append((topic, msg)))
    ex.spin_until(round(4.5e9))
    enc = [float(m.position[0]) for t, m in seen if t == "/line1/belt/joint_states"]
    assert len(enc) > 400 and max(enc) == min(enc)
    statuses = [m for t, m in seen if t == "/line1/status"]
    assert statuses and all(s.state == LineState.STOPPED for s in statuses)
    assert all("BELT_STOPPED" not in s.active_alarms for s in statuses)
    scanners = ("/line1/hsi/line", "/line1/xrt/line")
    assert [sum(t == s for t, _m in seen) for s in scanners] == [1, 1]
    ex.inject("/line1/control/command", "crmsort_msgs/msg/LineCommand",
              new("crmsort_msgs/msg/LineCommand", command=int(Command.START), source="test"))
    seen.clear()
    ex.spin_until(round(8.5e9))
    assert built.control is not None and built.control.controller.state == LineState.RUNNING
    assert built.sim.world.speed_mps == pytest.approx(NOMINAL, rel=0.05)
    assert [m for t, m in seen if t == "/line1/status"][-1].state == LineState.RUNNING
    # running, a line per pixel pitch of travel: about 4 s x 0.5 m/s / (0.8 m / 48 or 256 px)
    hsi, xrt = ([m for t, m in seen if t == s] for s in scanners)
    assert 80 < len(hsi) < 130 and 450 < len(xrt) < 700, (len(hsi), len(xrt))
    ex.shutdown()
