"""Host driver for Amptek DP5-family spectrometers (X-123, DP5, PX5) over any serial port.

The driver works with anything shaped like a ``serial.Serial``: a real port, a
pseudo-terminal opened with ``serial.Serial(path)``, or ``serial.serial_for_url(url)``
(``dp5sim://`` for the emulator, ``loop://``, ``socket://``).  Every request is a
transaction: flush stale input, send the frame, read until an acceptable reply arrives.
Defects on the way (garbage, checksum errors, truncated frames, silence, retryable error
ACKs such as busy) are counted in :attr:`Dp5Driver.errors` and the request is resent; a typed
:class:`~perception.sensors.xrf.errors.Dp5Error` is raised only once retries are exhausted
or the device refuses the request (bad parameter, unknown command).

Example::

    drv = Dp5Driver.open_url("dp5sim://?seed=1&channels=2048")
    acq = drv.acquire(live_time_s=1.0, channels=2048)
    acq.counts.sum(), acq.live_time_s, acq.real_time_s, drv.errors
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from perception.sensors.xrf.errors import (
    ChecksumError,
    Dp5AckError,
    Dp5BusyError,
    Dp5ConfigError,
    Dp5Error,
    Dp5ProtocolError,
    Dp5TimeoutError,
    FrameError,
    HeaderError,
    SyncError,
    TruncatedFrameError,
)
from perception.sensors.xrf.packets import (
    ACK_RETRYABLE,
    ACK_SUCCESS,
    CHANNEL_COUNTS,
    CONFIG_READBACK_REPLY,
    ECHO_REPLY,
    MAX_RESPONSE_LEN,
    PID1_ACK,
    PID1_SPECTRUM,
    RESPONSE_RULES,
    STATUS_LEN,
    STATUS_REPLY,
    AckCode,
    Dp5Status,
    Request,
    decode_spectrum,
    format_config,
    parse_config,
    spectrum_layout,
)
from perception.sensors.xrf.protocol import Frame, FrameParser, build_frame


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the driver uses."""

    timeout: float | None

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class XrfAcquisition:
    """One acquired spectrum: ``counts`` int64 (channels,), times in s, and the final status."""

    counts: NDArray[np.int64]
    live_time_s: float
    real_time_s: float
    status: Dp5Status

    @property
    def channels(self) -> int:
        """Number of MCA channels."""
        return int(self.counts.shape[0])

    @property
    def dead_time_fraction(self) -> float:
        """``1 − live/real`` (0 when real time is 0)."""
        return 0.0 if self.real_time_s <= 0 else max(0.0, 1.0 - self.live_time_s / self.real_time_s)


Accept = Callable[[Frame], bool]
_FRAME_ERROR_KEYS: tuple[tuple[type[FrameError], str], ...] = (
    (SyncError, "sync"), (HeaderError, "header"), (ChecksumError, "checksum"),
    (TruncatedFrameError, "truncated"),
)


def _setting_text(key: str, value: object) -> str:
    if value is None or value is False:
        return "OFF"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Dp5Driver:
    """DP5 protocol driver over a serial-like ``port``.

    Args:
        port: an open ``serial.Serial``-like object (see :class:`SerialPort`).
        timeout_s: how long one read may wait for the next byte before the attempt counts as
            a timeout, s; set on ``port.timeout``.
        retries: resends after the first attempt before giving up.
        busy_backoff_s: pause after a busy ACK before resending, s.
        max_reply_s: hard wall-clock limit of one attempt even while bytes keep arriving, s.
        sleep: the pause function (tests may pass a no-op).
    """

    def __init__(
        self,
        port: SerialPort,
        *,
        timeout_s: float = 0.5,
        retries: int = 3,
        busy_backoff_s: float = 0.01,
        max_reply_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout_s <= 0 or retries < 0:
            raise Dp5ConfigError(f"timeout_s must be > 0 and retries ≥ 0, got {timeout_s}, "
                                 f"{retries}")
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.busy_backoff_s = busy_backoff_s
        self.max_reply_s = max_reply_s
        self._sleep = sleep
        self.errors: Counter[str] = Counter()
        """Every defect seen, by kind: ``timeout``, ``truncated``, ``checksum``, ``sync``
        (garbage runs; ``sync_bytes`` their bytes), ``header``, ``unexpected``, ``ack_<name>``,
        ``retries``, ``port``, ``overflow``."""
        self._parser = FrameParser(RESPONSE_RULES, max_data_len=MAX_RESPONSE_LEN)
        with contextlib.suppress(AttributeError, ValueError):  # port without settable timeout
            port.timeout = timeout_s

    @classmethod
    def open_url(cls, url: str, *, baudrate: int = 115200, **kwargs: Any) -> Dp5Driver:
        """Open ``url`` with ``serial.serial_for_url`` (``dp5sim://…``, a device path, …).

        Keyword arguments go to :class:`Dp5Driver`.  Raises ``Dp5Error`` if it cannot open.
        """
        import serial

        from perception.sensors.xrf.url_handler import register_url_handler

        register_url_handler()
        timeout_s = float(kwargs.get("timeout_s", 0.5))
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise Dp5Error(f"cannot open XRF port {url!r}: {exc}") from exc
        return cls(port, **kwargs)

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    def __enter__(self) -> Dp5Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ----------------------------------------------------------------------
    def _port_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (OSError, ValueError) as exc:  # SerialException derives from OSError
            self.errors["port"] += 1
            raise Dp5Error(f"serial port failed: {exc}") from exc

    def transact(self, request: Request, data: bytes = b"", accept: Accept | None = None,
                 ) -> Frame:
        """Send ``request`` and return the first reply ``accept`` takes (or a success ACK).

        Retries on timeouts, corrupt replies and retryable ACKs.  Raises
        ``Dp5TimeoutError`` / ``Dp5ProtocolError`` / ``Dp5BusyError`` when retries run out and
        ``Dp5AckError`` at once for a refusing ACK (bad parameter, unknown command, …).
        """
        raw = build_frame(*request.pids, data)
        reason, detail = "timeout", "no reply"
        last_code = AckCode.OK
        for attempt in range(self.retries + 1):
            if attempt:
                self.errors["retries"] += 1
            self._parser.reset()
            self._port_call(self.port.reset_input_buffer)
            self._port_call(self.port.write, raw)
            reply = self._await(accept)
            if isinstance(reply, tuple):
                reason, detail = reply
                continue
            if reply.pid1 != PID1_ACK:
                return reply
            code = AckCode(reply.pid2)
            if code in ACK_SUCCESS:
                return reply
            self.errors[f"ack_{code.name.lower()}"] += 1
            last_code = code
            reason, detail = "ack", f"ACK {code.name} ({code:#04x})"
            if code not in ACK_RETRYABLE:
                extra = reply.data.decode("ascii", "replace")
                raise Dp5AckError(f"{request.name}: device answered {detail}"
                                  + (f" for {extra!r}" if extra else ""), code=int(code))
            if code is AckCode.BUSY:
                self._sleep(self.busy_backoff_s)
        msg = f"{request.name}: gave up after {self.retries + 1} attempts, last: {detail}"
        if reason == "ack" and last_code is AckCode.BUSY:
            raise Dp5BusyError(msg, code=int(last_code))
        if reason == "ack":
            raise Dp5AckError(msg, code=int(last_code))
        if reason in ("timeout", "truncated"):
            raise Dp5TimeoutError(msg)
        raise Dp5ProtocolError(msg)

    def _events(self, events: list[Frame | FrameError], accept: Accept | None,
                ) -> Frame | tuple[str, str] | None:
        failure: tuple[str, str] | None = None
        for ev in events:
            if isinstance(ev, FrameError):
                for cls, key in _FRAME_ERROR_KEYS:
                    if isinstance(ev, cls):
                        self.errors[key] += 1
                        if key == "sync":
                            self.errors["sync_bytes"] += ev.count
                        elif key in ("checksum", "truncated"):
                            failure = (key, str(ev))
                continue
            if ev.pid1 == PID1_ACK or (accept is not None and accept(ev)):
                return ev
            self.errors["unexpected"] += 1
        return failure

    def _await(self, accept: Accept | None) -> Frame | tuple[str, str]:
        start = time.monotonic()
        received = 0
        failure: tuple[str, str] | None = None
        while True:
            want = max(1, int(self._port_call(lambda: self.port.in_waiting)))
            chunk: bytes = self._port_call(self.port.read, want)
            if not chunk:
                out = self._events(self._parser.flush(), accept)
                if isinstance(out, Frame):
                    return out
                failure = out or failure
                if failure is None:
                    self.errors["timeout"] += 1
                    return ("timeout", f"no reply within {self.timeout_s} s")
                return failure
            received += len(chunk)
            out = self._events(self._parser.feed(chunk), accept)
            if isinstance(out, Frame):
                return out
            failure = out or failure
            if out is not None and self._parser.pending == 0:
                return out  # a whole corrupt reply arrived and nothing else is pending
            if received > 2 * MAX_RESPONSE_LEN or time.monotonic() - start > self.max_reply_s:
                self.errors["overflow"] += 1
                return ("overflow", f"{received} bytes in {time.monotonic() - start:.2f} s "
                        "without a valid reply")

    # ---- requests --------------------------------------------------------------------------
    def echo(self, data: bytes = b"crmsort") -> bytes:
        """Echo request ``F1/7F``; returns the echoed bytes (checked equal, else protocol error)."""
        reply = self.transact(Request.ECHO, data, lambda f: f.pids == ECHO_REPLY)
        if reply.data != data:
            raise Dp5ProtocolError(f"echo returned {reply.data!r}, sent {data!r}")
        return reply.data

    def status(self) -> Dp5Status:
        """Request the 64-byte status (``01/01`` → ``80/01``) and decode it."""
        reply = self.transact(Request.STATUS, b"", lambda f: f.pids == STATUS_REPLY)
        return Dp5Status.decode(reply.data)

    def configure(self, **settings: object) -> None:
        """Send a text configuration, e.g. ``configure(MCAC=2048, PRET=1.0)``.

        ``None``/``False`` send ``OFF``.  Raises ``Dp5ConfigError`` for a key that is not four
        letters/digits and ``Dp5AckError`` (code ``BAD_PARAMETER``) when the device refuses.
        """
        text = format_config({k.upper(): _setting_text(k, v) for k, v in settings.items()})
        parse_config(text)  # key check before anything is sent
        if len(text) > 512:
            raise Dp5ConfigError(f"configuration text is {len(text)} chars; the DP5 takes ≤ 512")
        self.transact(Request.CONFIG_SET, text.encode("ascii"), None)

    def read_config(self, *keys: str) -> dict[str, str]:
        """Read settings back (``20/03`` → ``82/07``): ``read_config("MCAC", "PRET")``."""
        if not keys:
            raise Dp5ConfigError("read_config needs at least one key, e.g. 'MCAC'")
        text = format_config({k.upper(): "" for k in keys})
        parse_config(text)
        reply = self.transact(Request.CONFIG_READ, text.encode("ascii"),
                              lambda f: f.pids == CONFIG_READBACK_REPLY)
        try:
            return parse_config(reply.data.decode("ascii"))
        except (UnicodeDecodeError, Dp5ConfigError) as exc:
            raise Dp5ProtocolError(f"config readback {reply.data[:64]!r} is malformed") from exc

    def enable_mca(self) -> None:
        """Start accumulating (``F0/02``)."""
        self.transact(Request.MCA_ENABLE)

    def disable_mca(self) -> None:
        """Stop accumulating (``F0/03``)."""
        self.transact(Request.MCA_DISABLE)

    def clear(self) -> None:
        """Clear spectrum, counters and times (``F0/01``)."""
        self.transact(Request.MCA_CLEAR)

    def spectrum(self, *, clear: bool = False) -> tuple[NDArray[np.int64], Dp5Status]:
        """Read spectrum and status (``02/03``, or ``02/04`` with ``clear``).

        A cleared read is not idempotent: if its reply is lost and resent, the counts are gone;
        :meth:`acquire` therefore reads without clearing.
        """
        req = Request.SPECTRUM_STATUS_CLEAR if clear else Request.SPECTRUM_STATUS
        reply = self.transact(req, b"", lambda f: f.pid1 == PID1_SPECTRUM and f.pid2 % 2 == 0)
        channels, _ = spectrum_layout(reply.pid2)
        n = 3 * channels
        return decode_spectrum(reply.data[:n], channels), Dp5Status.decode(
            reply.data[n:n + STATUS_LEN])

    def acquire(self, live_time_s: float, channels: int | None = None, *,
                poll_interval_s: float = 0.05, max_wait_s: float | None = None,
                ) -> XrfAcquisition:
        """Acquire one spectrum of ``live_time_s`` preset time (``PRET``), s.

        Sequence: disable, set ``MCAC`` (if given) and ``PRET``, clear, enable, poll the status
        until the preset is done (every ``poll_interval_s``; at most ``max_wait_s``, default
        ``10 + 3 × live_time_s``), disable, read spectrum + status.  Live time comes from the
        status (bytes 16–19); a device that leaves it 0 gets ``accumulation × slow/fast``.
        Raises ``Dp5ConfigError`` for a bad argument and ``Dp5TimeoutError`` if the preset
        never completes.
        """
        if not (np.isfinite(live_time_s) and live_time_s > 0):
            raise Dp5ConfigError(f"live_time_s must be finite and > 0, got {live_time_s}")
        if channels is not None and channels not in CHANNEL_COUNTS:
            raise Dp5ConfigError(f"channels={channels}: expected one of {CHANNEL_COUNTS}")
        self.disable_mca()
        settings: dict[str, object] = {"PRET": float(live_time_s)}
        if channels is not None:
            settings = {"MCAC": channels, **settings}
        self.configure(**settings)
        self.clear()
        self.enable_mca()
        limit = 10.0 + 3.0 * live_time_s if max_wait_s is None else max_wait_s
        start = time.monotonic()
        while not self.status().preset_time_done:
            if time.monotonic() - start > limit:
                self.errors["preset_timeout"] += 1
                raise Dp5TimeoutError(f"preset time {live_time_s} s not reached within {limit} s")
            self._sleep(poll_interval_s)
        self.disable_mca()
        counts, st = self.spectrum()
        if channels is not None and counts.shape[0] != channels:
            raise Dp5ProtocolError(f"asked for {channels} channels, device sent {counts.shape[0]}")
        live = st.live_time_s if st.live_time_s > 0 else (
            st.accumulation_time_s * (1.0 - st.dead_time_fraction))
        return XrfAcquisition(counts=counts, live_time_s=live, real_time_s=st.real_time_s,
                              status=st)
