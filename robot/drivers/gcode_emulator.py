"""Byte-level emulator of a Marlin/GRBL-style delta controller (the peer of ``gcode.py``).

It eats the bytes a host writes and produces the bytes a controller answers:

- on open: ``start`` (Marlin's banner after reset), unless ``banner=False``;
- numbered lines ``N<n> <command>*<checksum>`` (checksum = XOR of every byte before ``*``);
  a bad checksum answers ``Error:checksum mismatch, Last Line: <n-1>`` / ``Resend: <n>`` /
  ``ok``, a line number out of sequence ``Error:Line Number is not Last Line Number+1, ...``
  with the same resend; ``M110 N<k>`` sets the line number; unnumbered lines are accepted;
- ``G0/G1 X Y Z F`` (mm, mm/min, the controller's own Cartesian frame = the arm frame),
  ``G4 P<ms>``, ``G28``, ``M400``, ``M114``, ``M115``, vacuum ``M106 [S<0-255>]`` on /
  ``M107`` off (the part-cooling-fan output drives the vacuum valve, as on most Marlin delta
  pickers); each is answered ``ok``;
- a move outside the envelope (cylinder ``radius_mm``, ``z_min_mm``..``z_max_mm``) raises
  ``ALARM:2 soft limit``; after an alarm every command gets ``error:9 alarm lock`` until
  ``M999``; ``M112`` (emergency stop) raises ``ALARM:10 emergency stop``;
- an unknown command answers ``error:20 unsupported command <cmd>``.

Fault injection (:class:`Faults`, by line number, each once): a checksum error (→ resend),
an ``error:`` line, an ``ALARM:``, or silence from a line on (no answer at all → the host
times out). :func:`serve_pty` runs an emulator behind a pseudo-terminal (``os.openpty``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import threading
from dataclasses import dataclass, field

_NUMBERED = re.compile(r"^N(-?\d+)\s+(.*?)\*(\d+)\s*$")
_WORD = re.compile(r"([A-Z])\s*(-?\d+(?:\.\d*)?|-?\.\d+)")


def checksum(text: str) -> int:
    """Marlin line checksum: XOR of the bytes of ``text`` (everything before ``*``)."""
    cs = 0
    for b in text.encode("ascii"):
        cs ^= b
    return cs


@dataclass
class Faults:
    """Faults to inject, by line number (each fires once; ``silent_from`` is permanent)."""

    checksum_error_at: set[int] = field(default_factory=set)
    error_at: set[int] = field(default_factory=set)
    alarm_at: set[int] = field(default_factory=set)
    silent_from: int | None = None


class GCodeControllerEmulator:
    """The controller state machine. :meth:`receive` bytes in, :meth:`take_output` bytes out."""

    def __init__(
        self,
        faults: Faults | None = None,
        radius_mm: float = 500.0,
        z_min_mm: float = -1100.0,
        z_max_mm: float = -900.0,
        banner: bool = True,
    ) -> None:
        self.faults = faults or Faults()
        self.radius_mm, self.z_min_mm, self.z_max_mm = radius_mm, z_min_mm, z_max_mm
        self.position = [0.0, 0.0, z_max_mm]
        self.vacuum_on = False
        self.alarm: str | None = None
        self.last_line = 0
        self.silent = False
        self.received = bytearray()  # every byte the host wrote
        self.executed: list[str] = []  # commands carried out (moves, vacuum, dwells)
        self.motion_time_s = 0.0  # nominal time of the executed moves and dwells
        self._inbuf = bytearray()
        self._out = bytearray()
        self._lock = threading.Lock()
        if banner:
            self._emit("start")

    # -- byte interface -------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        with self._lock:
            self.received.extend(data)
            self._inbuf.extend(data)
            while True:
                idx = self._inbuf.find(b"\n")
                if idx < 0:
                    break
                raw = bytes(self._inbuf[:idx]).replace(b"\r", b"")
                del self._inbuf[: idx + 1]
                self._line(raw.decode("ascii", errors="replace"))

    def take_output(self, size: int | None = None) -> bytes:
        with self._lock:
            n = len(self._out) if size is None else min(size, len(self._out))
            out = bytes(self._out[:n])
            del self._out[:n]
            return out

    @property
    def pending_output(self) -> int:
        return len(self._out)

    # -- protocol -------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if not self.silent:
            self._out.extend(text.encode("ascii") + b"\n")

    def _resend(self, reason: str) -> None:
        self._emit(f"Error:{reason}, Last Line: {self.last_line}")
        self._emit(f"Resend: {self.last_line + 1}")
        self._emit("ok")

    def _line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if line.startswith("N"):
            m = _NUMBERED.match(line)
            if m is None:
                self._resend("No Checksum with line number")
                return
            n, cmd, cs = int(m.group(1)), m.group(2).strip(), int(m.group(3))
            f = self.faults
            if f.silent_from is not None and n >= f.silent_from:
                self.silent = True
                return
            if n in f.checksum_error_at:
                f.checksum_error_at.discard(n)
                cs ^= 0xFF  # as if a byte was corrupted on the wire
            if cs != checksum(line[: line.rindex("*")]):
                self._resend("checksum mismatch")
                return
            if cmd.upper().startswith("M110"):
                words = dict(_WORD.findall(cmd.upper()[4:]))
                self.last_line = int(float(words.get("N", n)))
                self._emit("ok")
                return
            if n != self.last_line + 1:
                self._resend("Line Number is not Last Line Number+1")
                return
            self.last_line = n
            if n in f.error_at:
                f.error_at.discard(n)
                self._emit(f"error:24 injected fault on line {n}")
                return
            if n in f.alarm_at:
                f.alarm_at.discard(n)
                self.alarm = "ALARM:1 injected fault"
                self._emit(self.alarm)
                return
            self._command(cmd)
        else:
            self._command(line)

    def _command(self, cmd: str) -> None:
        upper = cmd.upper().split(";")[0].strip()
        code = upper.split()[0] if upper else ""
        if code == "M112":
            self.alarm = "ALARM:10 emergency stop"
            self.vacuum_on = False
            self._emit(self.alarm)
            return
        if self.alarm is not None:
            if code == "M999":
                self.alarm = None
                self._emit("ok")
            else:
                self._emit("error:9 alarm lock")
            return
        words = {k: float(v) for k, v in _WORD.findall(upper[len(code) :])}
        if code in ("G0", "G1"):
            target = [words.get(ax, self.position[k]) for k, ax in enumerate("XYZ")]
            if not all(math.isfinite(v) for v in target) or not self._inside(target):
                self.alarm = "ALARM:2 soft limit"
                self._emit(self.alarm)
                return
            feed = words.get("F", 6000.0)
            dist = math.dist(target, self.position)
            self.motion_time_s += dist / max(feed, 1e-9) * 60.0
            self.position = target
        elif code == "G4":
            self.motion_time_s += words.get("P", 0.0) / 1000.0 + words.get("S", 0.0)
        elif code == "G28":
            self.position = [0.0, 0.0, self.z_max_mm]
        elif code == "M106":
            self.vacuum_on = words.get("S", 255.0) > 0
        elif code == "M107":
            self.vacuum_on = False
        elif code == "M114":
            x, y, z = self.position
            self._emit(f"X:{x:.3f} Y:{y:.3f} Z:{z:.3f}")
        elif code == "M115":
            self._emit("FIRMWARE_NAME:crmsort-gcodesim PROTOCOL_VERSION:1.0 MACHINE_TYPE:Delta")
        elif code in ("M400", "M999"):
            pass
        else:
            self._emit(f"error:20 unsupported command {code}")
            return
        self.executed.append(upper)
        self._emit("ok")

    def _inside(self, p: list[float]) -> bool:
        return math.hypot(p[0], p[1]) <= self.radius_mm + 1e-6 and (
            self.z_min_mm - 1e-6 <= p[2] <= self.z_max_mm + 1e-6
        )


class PtyServer:
    """An emulator behind a pseudo-terminal: open :attr:`port` with ``serial.Serial``."""

    def __init__(self, emulator: GCodeControllerEmulator) -> None:
        import tty

        self.emulator = emulator
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gcodesim-pty", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            out = self.emulator.take_output()
            if out:
                os.write(self._master, out)
            ready, _, _ = select.select([self._master], [], [], 0.01)
            if ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    break
                self.emulator.receive(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PtyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_pty(emulator: GCodeControllerEmulator | None = None) -> PtyServer:
    """Start an emulator (default: no faults) on a new pty; close the returned server after use."""
    return PtyServer(emulator or GCodeControllerEmulator())


def register_url_handler() -> None:
    """Make ``serial.serial_for_url("gcodesim://...")`` find ``robot.drivers.urlhandler``."""
    import serial

    if "robot.drivers.urlhandler" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("robot.drivers.urlhandler")
