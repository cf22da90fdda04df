"""pyserial URL handler ``dp5sim://`` — a ``serial.Serial``-like port backed by the emulator.

``serial.serial_for_url`` looks for a module ``protocol_<scheme>`` in each package listed in
``serial.protocol_handler_packages``; :func:`register_url_handler` (run on import of
:mod:`perception.sensors.xrf`) appends ``perception.sensors.xrf.urlhandler``, whose
``protocol_dp5sim`` module exports :class:`Dp5SimSerial` as ``Serial``.  URL forms::

    dp5sim://?seed=1&channels=2048&faults=checksum:0.05,busy:0.1&script=busy,none,ack:5
    dp5sim://NAME?...            # spectrum source registered with register_source(NAME, src)
    serial.serial_for_url("dp5sim://", emulator=my_emulator)   # an emulator you built

Query options: ``seed`` (int, emulator + default source RNG), ``channels`` (initial MCAC),
``faults`` and ``script`` (see :meth:`FaultConfig.from_spec`), ``rate`` (counts/s of the
default synthetic source).  Reads never block: when the emulator has nothing to send a read
returns what there is (possibly ``b""``), which is what a real port returns at its timeout.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

import numpy as np
import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.errors import XrfDeviceError
from perception.sensors.xrf.faults import FaultConfig
from perception.sensors.xrf.synthetic import SpectrumSource, SyntheticSource

HANDLER_PACKAGE = "perception.sensors.xrf.urlhandler"
_SOURCES: dict[str, SpectrumSource] = {}
_LOCK = threading.Lock()


def register_url_handler() -> None:
    """Make ``serial.serial_for_url("dp5sim://…")`` work (idempotent)."""
    with _LOCK:
        if HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def register_source(name: str, source: SpectrumSource) -> None:
    """Register ``source`` so that ``dp5sim://NAME`` emulators count from it."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise XrfDeviceError(f"source name {name!r}: use letters, digits, '-' or '_'")
    with _LOCK:
        _SOURCES[name.lower()] = source


def unregister_source(name: str) -> None:
    """Forget a source registered with :func:`register_source` (no error if unknown)."""
    with _LOCK:
        _SOURCES.pop(name.lower(), None)


def emulator_from_url(url: str) -> Dp5Emulator:
    """Build the emulator a ``dp5sim://`` URL describes; raises ``XrfDeviceError`` if malformed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "dp5sim":
        raise XrfDeviceError(f"{url!r}: expected a dp5sim:// URL")
    opts = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, True).items()}
    known = {"seed", "channels", "faults", "script", "rate"}
    if set(opts) - known:
        raise XrfDeviceError(f"{url!r}: unknown option(s) {sorted(set(opts) - known)}; "
                             f"expected {sorted(known)}")
    try:
        seed = int(opts.get("seed", "0"))
        channels = int(opts.get("channels", "1024"))
        rate = float(opts.get("rate", "20000"))
    except ValueError as exc:
        raise XrfDeviceError(f"{url!r}: seed/channels/rate must be numbers") from exc
    rng = np.random.default_rng(seed)
    name = (parts.netloc + parts.path).strip("/").lower()
    if name:
        with _LOCK:
            if name not in _SOURCES:
                raise XrfDeviceError(f"{url!r}: no spectrum source registered as {name!r}; "
                                     "call register_source first")
            source: SpectrumSource = _SOURCES[name]
    else:
        source = SyntheticSource(rate_cps=rate, rng=np.random.default_rng(seed + 1))
    faults = FaultConfig.from_spec(opts.get("faults", ""), opts.get("script", ""))
    return Dp5Emulator(source, rng, faults, channels=channels)


class Dp5SimSerial(SerialBase):  # type: ignore[misc]  # pyserial is untyped
    """A ``serial.Serial`` whose far end is a :class:`Dp5Emulator` (no OS port involved).

    Pass ``emulator=`` to ``serial_for_url`` to use an emulator you built; otherwise the URL
    describes one.  Attribute :attr:`emulator` gives tests access to its state.
    """

    is_open: bool

    def __init__(self, *args: Any, emulator: Dp5Emulator | None = None, **kwargs: Any) -> None:
        self.emulator: Dp5Emulator | None = emulator
        self._given = emulator is not None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Open: build the emulator from the URL unless one was given."""
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if not self._given:
            try:
                self.emulator = emulator_from_url(self._port)
            except XrfDeviceError as exc:
                raise SerialException(str(exc)) from exc
        self.is_open = True

    def close(self) -> None:
        """Close the port (the emulator keeps its state)."""
        self.is_open = False

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Line settings mean nothing to the emulator."""

    def _emu(self) -> Dp5Emulator:
        if not self.is_open or self.emulator is None:
            raise PortNotOpenError()
        return self.emulator

    @property
    def in_waiting(self) -> int:
        """Reply bytes the emulator has queued."""
        return self._emu().in_waiting

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` queued bytes; returns at once (``b""`` when there are none)."""
        return self._emu().read(size)

    def write(self, data: bytes) -> int:
        """Hand request bytes to the emulator; returns the byte count."""
        return self._emu().write(bytes(data))

    def reset_input_buffer(self) -> None:
        """Discard queued reply bytes."""
        self._emu().discard_output()

    def reset_output_buffer(self) -> None:
        """Nothing is ever buffered on the way out."""

    @property
    def out_waiting(self) -> int:
        """Always 0: writes reach the emulator at once."""
        return 0

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        """Always True."""
        return True

    @property
    def dsr(self) -> bool:
        """Always True."""
        return True

    @property
    def ri(self) -> bool:
        """Always False."""
        return False

    @property
    def cd(self) -> bool:
        """Always True."""
        return True
