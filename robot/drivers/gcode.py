"""Serial delta arm speaking G-code (Marlin/GRBL-style controllers) over pyserial.

Framing: every command goes out as ``N<line> <command>*<checksum>\\n`` (Marlin; checksum =
XOR of the bytes before ``*``) and waits for ``ok``. Answers handled:

- ``ok`` → next command; ``echo:``, ``start``, ``busy:`` and report lines are collected;
- ``Error:checksum mismatch…`` / ``Error:Line Number…`` then ``Resend: <n>`` and ``ok`` →
  the line is sent again (at most ``max_resends`` times, else :class:`ProtocolError`);
- ``error:<…>`` (any other error) → :class:`ProtocolError` naming the line and command;
- ``ALARM:<…>`` → :class:`ControllerAlarm`, the driver goes to FAULT until :meth:`reset`
  (``M999``);
- nothing within ``timeout_s`` → :class:`DriverTimeout`.

Motion: the controller does its own delta kinematics, so moves are Cartesian in the arm frame
(mm): ``G0`` for free moves, ``G1`` for descend/lift, feed ``F`` (mm/min) = path length /
the phase's planned duration; ``M400`` waits for the planner to drain before the vacuum
switches; the vacuum is the fan output: ``M106 S255`` on, ``M107`` off; dwells are ``G4 P<ms>``.
``M112`` is the emergency stop. The whole program is built and checked against the
:class:`robot.safety.SafetyGuard` (plan and every target) before the first byte is written.
Pick outcomes are *unverified* (no vacuum sensor on this bus).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import serial

from robot.drivers.base import ArmState, Outcome, PickOutcome
from robot.drivers.gcode_emulator import checksum
from robot.errors import ControllerAlarm, DriverError, DriverTimeout, ProtocolError
from robot.pick_cycle import DeltaPickCycle, PickPlan
from robot.safety import SafetyGuard


def frame_line(line_number: int, command: str) -> bytes:
    """``N<line> <command>*<checksum>\\n`` as bytes."""
    body = f"N{line_number} {command}"
    return f"{body}*{checksum(body)}\n".encode("ascii")


class GCodeArmDriver:
    """A delta arm behind a G-code controller on ``port`` (any pyserial port, e.g.
    ``serial_for_url("gcodesim://arm1")`` or ``serial.Serial("/dev/ttyACM0", 250000)``)."""

    def __init__(
        self,
        cycle: DeltaPickCycle,
        guard: SafetyGuard,
        port: serial.SerialBase,
        timeout_s: float = 2.0,
        max_resends: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cycle = cycle
        self.arm = cycle.arm
        self.name = cycle.name
        self.guard = guard
        self.port = port
        self.timeout_s = timeout_s
        self.max_resends = max_resends
        self.clock = clock
        self.belt_speed_mps = 0.0
        self.line_number = 0
        self.resends = 0
        self.info: list[str] = []
        self._state = ArmState.IDLE
        self._q = self.arm.standby_q.copy()

    @property
    def state(self) -> ArmState:
        if self._state == ArmState.IDLE and self.guard.estopped:
            return ArmState.ESTOPPED
        return self._state

    # -- transport ------------------------------------------------------------------------------
    def _readline(self, what: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        buf = bytearray()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.port.timeout = left
            chunk = self.port.read_until(b"\n")
            if not chunk:
                break
            buf.extend(chunk)
        if not buf.endswith(b"\n"):
            self._state = ArmState.FAULT
            raise DriverTimeout(f"{self.name}: no answer to {what} within {self.timeout_s} s")
        return buf.decode("ascii", errors="replace").strip()

    def send(self, command: str) -> list[str]:
        """Send one numbered command and wait for its ``ok``; returns the lines before it."""
        if self._state == ArmState.FAULT:
            raise DriverError(f"{self.name}: driver in FAULT; reset() first")
        n = self.line_number + 1
        what = f"line {n} ({command!r})"
        frame = frame_line(n, command)
        self.port.write(frame)
        attempts = 0
        resend_pending = False
        lines: list[str] = []
        while True:
            line = self._readline(what)
            if not line:
                continue
            if line.startswith("ok"):
                if resend_pending:
                    resend_pending = False
                    self.port.write(frame)
                    continue
                self.line_number = n
                return lines
            if line.startswith("Resend:") or line.startswith("rs "):
                want = int(line.split()[-1].strip(":"))
                if want != n:
                    raise ProtocolError(
                        f"{self.name}: controller asks to resend line {want}, sent {n}"
                    )
                attempts += 1
                self.resends += 1
                if attempts > self.max_resends:
                    raise ProtocolError(f"{self.name}: {what} rejected {attempts} times (resend)")
                resend_pending = True
                continue
            if line.startswith("Error:") and ("checksum" in line or "Line Number" in line):
                continue  # the Resend follows
            if line.upper().startswith("ALARM:"):
                self._state = ArmState.FAULT
                raise ControllerAlarm(f"{self.name}: controller alarm on {what}: {line}")
            if line.lower().startswith("error:"):
                self._state = ArmState.FAULT
                raise ProtocolError(f"{self.name}: controller error on {what}: {line}")
            if line.startswith("busy:"):
                continue
            lines.append(line)
            self.info.append(line)

    def connect(self) -> None:
        """Handshake: drain the banner (``start``/``echo:``), reset the line number with
        ``M110 N0`` and wait for ``ok``. Raises :class:`DriverTimeout` / :class:`ProtocolError`."""
        self.port.timeout = 0.05
        while True:
            chunk = self.port.read_until(b"\n")
            if not chunk:
                break
            self.info.append(chunk.decode("ascii", errors="replace").strip())
        self.line_number = -1  # M110 N0 goes out as line 0
        self.send("M110 N0")
        self.line_number = 0

    # -- program --------------------------------------------------------------------------------
    def _xyz_mm(self, tcp_belt: tuple[float, float, float]) -> str:
        self.guard.check_tcp(np.asarray(tcp_belt), "G-code target")
        p = self.arm.to_arm(tcp_belt) * 1000.0
        return f"X{p[0]:.3f} Y{p[1]:.3f} Z{p[2]:.3f}"

    def program(self, plan: PickPlan) -> list[str]:
        """The G-code for ``plan`` (validated targets; nothing is sent)."""
        out: list[str] = []
        prev = self.arm.fk(plan.phases[0].q_start)
        for ph in plan.phases:
            ms = max(0, round(ph.duration_s * 1000.0))
            if ph.name == "grip":
                out += ["M400", "M106 S255", f"G4 P{ms}"]
            elif ph.name == "release":
                out += ["M400", "M107", f"G4 P{ms}"]
            elif ph.name == "wait":
                if ms > 0:
                    out.append(f"G4 P{ms}")
            elif ph.move is not None and ph.duration_s > 0:
                dist_mm = float(np.linalg.norm(np.asarray(ph.tcp_end) - prev)) * 1000.0
                feed = max(dist_mm / ph.duration_s * 60.0, 1.0)
                g = "G1" if ph.name in ("descend", "lift") else "G0"
                out.append(f"{g} {self._xyz_mm(ph.tcp_end)} F{feed:.0f}")
            prev = np.asarray(ph.tcp_end)
        out.append("M400")
        return out

    def execute(self, plan: PickPlan) -> PickOutcome:
        """Check everything, then stream the program. Raises a typed error before sending
        when the guard refuses, or a :class:`DriverError` from the controller."""
        t0 = self.clock()
        self.guard.authorize(plan, t0, self.belt_speed_mps, self._q)
        commands = self.program(plan)
        self._state = ArmState.MOVING
        for cmd in commands:
            if self.guard.estopped:
                self.estop("E-stop latched during the program")
                return PickOutcome(
                    Outcome.ABORTED,
                    self.name,
                    plan.bin_name,
                    plan.object_id,
                    "E-stop",
                    self.clock() - t0,
                    self.clock(),
                )
            self.send(cmd)
        self._state = ArmState.IDLE
        self._q = plan.phases[-1].q_end.copy()
        return PickOutcome(
            Outcome.PICKED,
            self.name,
            plan.bin_name,
            plan.object_id,
            "program acknowledged (unverified)",
            plan.cycle_s,
            self.clock(),
            verified=False,
            vacuum_kpa=math.nan,
        )

    def estop(self, reason: str = "E-stop") -> None:
        """Latch the E-stop and send ``M112`` unnumbered (the controller halts and alarms)."""
        self.guard.arm_estop.trip(reason, self.clock())
        try:
            self.port.write(b"M112\n")
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"{self.name}: could not send M112: {exc}") from exc
        self._state = ArmState.ESTOPPED

    def reset(self) -> None:
        """Clear the latch and the controller alarm (``M999``), then re-handshake."""
        self.guard.arm_estop.reset()
        self.port.reset_input_buffer()
        self.port.write(b"M999\n")
        self._state = ArmState.IDLE
        self._readline("M999")
        self.connect()
