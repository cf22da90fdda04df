"""pyserial URL handler ``gcodesim://``: a serial port wired to an in-process
:class:`robot.drivers.gcode_emulator.GCodeControllerEmulator`.

URL: ``gcodesim://[name][?option=value&...]`` with options ``banner=0|1``,
``checksum_error_at=3,7``, ``error_at=5``, ``alarm_at=4``, ``silent_from=6`` (line numbers),
``radius_mm``, ``z_min_mm``, ``z_max_mm``. Register once with
:func:`robot.drivers.gcode_emulator.register_url_handler`, then
``serial.serial_for_url("gcodesim://arm1?error_at=5", timeout=0.5)``. The emulator is
``port.emulator``.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from robot.drivers.gcode_emulator import Faults, GCodeControllerEmulator


def _ints(values: list[str]) -> set[int]:
    return {int(v) for item in values for v in item.split(",") if v.strip()}


class Serial(SerialBase):  # type: ignore[misc]
    """Serial port backed by an emulator; reads honour ``timeout`` (s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.emulator: GCodeControllerEmulator | None = None
        self._cond = threading.Condition()
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if bool(getattr(self, "is_open", False)):
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.emulator = self._from_url(str(self._port))
        self.is_open = True

    def _from_url(self, url: str) -> GCodeControllerEmulator:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "gcodesim":
            raise SerialException(f"expected a URL like gcodesim://name?options, got {url!r}")
        try:
            opts = urllib.parse.parse_qs(parts.query, strict_parsing=bool(parts.query))
            faults = Faults(
                checksum_error_at=_ints(opts.get("checksum_error_at", [])),
                error_at=_ints(opts.get("error_at", [])),
                alarm_at=_ints(opts.get("alarm_at", [])),
                silent_from=int(opts["silent_from"][0]) if "silent_from" in opts else None,
            )
            known = {
                "banner",
                "checksum_error_at",
                "error_at",
                "alarm_at",
                "silent_from",
                "radius_mm",
                "z_min_mm",
                "z_max_mm",
            }
            unknown = set(opts) - known
            if unknown:
                raise ValueError(f"unknown option(s) {sorted(unknown)}")
            return GCodeControllerEmulator(
                faults,
                radius_mm=float(opts.get("radius_mm", ["500"])[0]),
                z_min_mm=float(opts.get("z_min_mm", ["-1100"])[0]),
                z_max_mm=float(opts.get("z_max_mm", ["-900"])[0]),
                banner=opts.get("banner", ["1"])[0] not in ("0", "false"),
            )
        except ValueError as exc:
            raise SerialException(f"{url}: bad gcodesim option: {exc}") from None

    def close(self) -> None:
        self.is_open = False

    def _reconfigure_port(self) -> None:
        pass

    @property
    def in_waiting(self) -> int:
        if not self.is_open or self.emulator is None:
            raise PortNotOpenError()
        return self.emulator.pending_output

    def read(self, size: int = 1) -> bytes:
        if not self.is_open or self.emulator is None:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        data = bytearray()
        while len(data) < size:
            chunk = self.emulator.take_output(size - len(data))
            if chunk:
                data.extend(chunk)
                continue
            if deadline is None:
                with self._cond:
                    self._cond.wait(0.01)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._cond:
                self._cond.wait(min(left, 0.01))
        return bytes(data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if not self.is_open or self.emulator is None:
            raise PortNotOpenError()
        payload = bytes(data)
        self.emulator.receive(payload)
        with self._cond:
            self._cond.notify_all()
        return len(payload)

    def reset_input_buffer(self) -> None:
        if self.emulator is not None:
            self.emulator.take_output()

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    @property
    def cd(self) -> bool:
        return True

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False
