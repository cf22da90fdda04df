"""Serial G-code driver through the byte-level emulator: ``gcodesim://`` URL and a pty.
Handshake, checksums and resends, ``error:``, timeouts, alarms, E-stop; nothing sent on a
rejected plan."""

from __future__ import annotations

import math

import pytest
import serial

from robot.config import demo_arms
from robot.drivers.base import ArmDriver, ArmState, Outcome
from robot.drivers.gcode import GCodeArmDriver, frame_line
from robot.drivers.gcode_emulator import (
    Faults,
    GCodeControllerEmulator,
    checksum,
    register_url_handler,
    serve_pty,
)
from robot.errors import (
    ControllerAlarm,
    DriverTimeout,
    EStopActive,
    ProtocolError,
    RobotError,
)
from robot.pick_cycle import DeltaPickCycle
from robot.safety import SafetyGuard

CYCLE = DeltaPickCycle(demo_arms()[0])
PLAN = CYCLE.plan_fixed((3.7, 0.1, 0.02), "crm", 0.0)
register_url_handler()


def driver_on(url: str, timeout_s: float = 0.3) -> tuple[GCodeArmDriver, GCodeControllerEmulator]:
    port = serial.serial_for_url(url, timeout=timeout_s)
    drv = GCodeArmDriver(CYCLE, SafetyGuard(CYCLE.arm), port, timeout_s=timeout_s)
    drv.belt_speed_mps = 0.5
    emu = port.emulator
    assert isinstance(emu, GCodeControllerEmulator)
    return drv, emu


def test_framing_matches_marlin() -> None:
    # N3 G1 X10*... : XOR of "N3 G1 X10"
    body = "N3 G1 X10"
    assert frame_line(3, "G1 X10") == f"{body}*{checksum(body)}\n".encode()
    assert (
        checksum("N0 M110 N0")
        == 0x4E ^ 0x30 ^ 0x20 ^ 0x4D ^ 0x31 ^ 0x31 ^ 0x30 ^ 0x20 ^ 0x4E ^ 0x30
    )


def test_handshake_and_full_pick_over_url() -> None:
    drv, emu = driver_on("gcodesim://arm1")
    assert isinstance(drv, ArmDriver)
    drv.connect()
    assert "start" in drv.info  # banner seen
    assert emu.received.startswith(b"N0 M110 N0*")
    out = drv.execute(PLAN)
    assert out.outcome == Outcome.PICKED and not out.verified
    assert emu.executed[0].startswith("G0 ") and "M106 S255" in emu.executed
    assert emu.executed[-1] == "M400" and not emu.vacuum_on
    # the controller's nominal motion time matches the plan's cycle (feeds from phase times)
    assert emu.motion_time_s == pytest.approx(PLAN.cycle_s, abs=2e-3)
    # the arm ends at standby: controller position = standby in the arm frame (mm)
    standby_mm = CYCLE.arm.to_arm(CYCLE.arm.standby_xyz) * 1000
    assert emu.position == pytest.approx(list(standby_mm), abs=1e-3)


def test_checksum_error_is_resent() -> None:
    drv, emu = driver_on("gcodesim://arm1?checksum_error_at=2,5")
    drv.connect()
    drv.execute(PLAN)
    assert drv.resends == 2
    # each command executed exactly once despite the resends
    assert len(emu.executed) == len(drv.program(PLAN))


def test_error_line_raises_protocol_error() -> None:
    drv, _ = driver_on("gcodesim://arm1?error_at=3")
    drv.connect()
    with pytest.raises(ProtocolError, match=r"line 3.*error:24"):
        drv.execute(PLAN)
    assert drv.state == ArmState.FAULT


def test_silent_controller_times_out() -> None:
    drv, _ = driver_on("gcodesim://arm1?silent_from=2", timeout_s=0.15)
    drv.connect()
    with pytest.raises(DriverTimeout, match="line 2"):
        drv.execute(PLAN)
    drv2, _ = driver_on("gcodesim://arm1?silent_from=0&banner=0", timeout_s=0.15)
    with pytest.raises(DriverTimeout):
        drv2.connect()


def test_alarm_faults_until_reset() -> None:
    drv, emu = driver_on("gcodesim://arm1?alarm_at=4")
    drv.connect()
    with pytest.raises(ControllerAlarm, match="ALARM:1"):
        drv.execute(PLAN)
    assert drv.state == ArmState.FAULT and emu.alarm is not None
    with pytest.raises(RobotError, match="FAULT"):
        drv.send("M114")
    drv.reset()  # M999 + handshake
    assert emu.alarm is None and drv.state == ArmState.IDLE


def test_soft_limit_alarm_from_the_controller() -> None:
    # a controller with a smaller envelope than the arm model: it alarms on the first move
    drv, _ = driver_on("gcodesim://arm1?radius_mm=50")
    drv.connect()
    with pytest.raises(ControllerAlarm, match="soft limit"):
        drv.execute(PLAN)


def test_rejected_plan_sends_nothing() -> None:
    drv, emu = driver_on("gcodesim://arm1")
    drv.connect()
    handshake = bytes(emu.received)
    heavy = CYCLE.plan_fixed((3.7, 0.1, 0.02), "crm", 0.0, payload_kg=50.0)
    with pytest.raises(RobotError, match="payload"):
        drv.execute(heavy)
    drv.belt_speed_mps = 0.0
    with pytest.raises(RobotError, match="belt"):
        drv.execute(PLAN)
    drv.belt_speed_mps = math.nan
    with pytest.raises(RobotError):
        drv.execute(PLAN)
    assert bytes(emu.received) == handshake  # not one byte after the handshake


def test_estop_latches_until_reset() -> None:
    drv, emu = driver_on("gcodesim://arm1")
    drv.connect()
    drv.estop("operator")
    assert emu.alarm == "ALARM:10 emergency stop" and drv.state == ArmState.ESTOPPED
    sent = len(emu.received)
    with pytest.raises(EStopActive):
        drv.execute(PLAN)
    assert len(emu.received) == sent
    drv.reset()
    assert drv.state is ArmState.IDLE  # type: ignore[comparison-overlap]
    assert drv.execute(PLAN).outcome == Outcome.PICKED


def test_driver_on_a_pty() -> None:
    emu = GCodeControllerEmulator(Faults(checksum_error_at={3}, error_at={7}))
    with serve_pty(emu) as srv:
        port = serial.Serial(srv.port, 115200, timeout=0.5)
        try:
            drv = GCodeArmDriver(CYCLE, SafetyGuard(CYCLE.arm), port, timeout_s=1.0)
            drv.belt_speed_mps = 0.5
            drv.connect()
            with pytest.raises(ProtocolError, match="line 7"):
                drv.execute(PLAN)
            assert drv.resends == 1
            # lines 1-6 executed once each (line 3 after its resend); line 7 answered error:
            assert emu.executed == drv.program(PLAN)[:6]
        finally:
            port.close()
