"""The line's command path: the state machine, the belt drive, and a simulated line that
honours START, STOP, ESTOP and RESET."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

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
