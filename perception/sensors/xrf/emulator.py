"""Byte-level Amptek DP5 emulator: a state machine that answers DP5 request frames.

The emulator eats request bytes (:meth:`Dp5Emulator.write`) and queues reply bytes
(:meth:`Dp5Emulator.read`), exactly as a DP5 on a serial line would, so the real driver runs
against it unchanged (through the ``dp5sim://`` URL handler or a pseudo-terminal).

Counting model (non-paralyzable dead time ``τ = 2 × TPEA``, peaking time in µs).  The source
is asked for the counts a dead-time-free detector would bin in an exposure ``dt``.  Spending
live time ``dt_live`` (presets ``PRET``): those ``n`` counts are binned, real time grows by
``dt_live + n τ`` and the fast count by ``n`` plus the events lost while dead (Poisson with
mean ``(n / dt_live) · n τ``).  Letting real time ``dt`` pass (:meth:`advance`, ``PRER``): each
arriving event is kept with probability ``1 / (1 + r τ)``, ``r`` the arrival rate, and live
time grows by ``dt`` times that.  Either way ``1 − slow/fast ≈ 1 − live/real``.  Time passes:

* with ``clock=None`` ("instant" mode): a pending preset (``PRET`` live seconds, ``PRER``
  real seconds) completes at the next request, so the host sees a finished acquisition
  without waiting; :meth:`advance` moves time explicitly (e.g. from a simulation clock);
* with a ``clock`` callable (seconds): each request first advances by the clock's elapsed time.

Faults (:class:`~perception.sensors.xrf.faults.FaultConfig`) corrupt or replace replies.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable

import numpy as np
from numpy.typing import NDArray

from perception.sensors.xrf.errors import ChecksumError, HeaderError, SyncError, XrfDeviceError
from perception.sensors.xrf.faults import Fault, FaultConfig, ScriptItem
from perception.sensors.xrf.packets import (
    CHANNEL_COUNTS,
    CONFIG_READBACK_REPLY,
    ECHO_REPLY,
    PID1_ACK,
    PID1_SPECTRUM,
    STATUS_REPLY,
    AckCode,
    Dp5Status,
    Request,
    encode_spectrum,
    parse_config,
    spectrum_pid2,
)
from perception.sensors.xrf.protocol import Frame, FrameParser, build_frame
from perception.sensors.xrf.synthetic import SpectrumSource, SyntheticSource

MAX_REQUEST_LEN = 512
_REQUESTS = {r.pids: r for r in Request}
_REQUEST_PID1 = {p1 for p1, _ in _REQUESTS}
_DEFAULTS = {"MCAC": "1024", "PRET": "OFF", "PRER": "OFF", "PREC": "OFF", "TPEA": "1.0",
             "GAIN": "10.0", "THSL": "0.5", "THFA": "20.0"}


def _check_value(key: str, value: str) -> str:
    """Canonical stored value for ``key=value``; raises ``XrfDeviceError`` if invalid."""
    v = value.strip().upper()
    if key == "MCAC":
        if not v.isdigit() or int(v) not in CHANNEL_COUNTS:
            raise XrfDeviceError(f"MCAC={value}: expected one of {CHANNEL_COUNTS}")
        return str(int(v))
    if key in ("PRET", "PRER", "PREC") and v in ("OFF", "0"):
        return "OFF"
    try:
        x = float(v)
    except ValueError as exc:
        raise XrfDeviceError(f"{key}={value}: expected a number") from exc
    if not np.isfinite(x) or x < 0 or (key in ("TPEA", "GAIN") and x == 0):
        raise XrfDeviceError(f"{key}={value}: out of range")
    return v


class Dp5Emulator:
    """Emulated DP5: answers request frames with reply frames, accumulating a spectrum.

    Args:
        source: :data:`~perception.sensors.xrf.synthetic.SpectrumSource`
            ``(live_time_s, channels) -> int64 counts``; default a :class:`SyntheticSource`.
        rng: generator for dead-time losses and faults (default seeded 0).
        faults: fault settings (default none).
        channels: initial ``MCAC`` (256…8192).
        clock: optional wall/sim clock in seconds; ``None`` = instant presets (see module doc).
        serial_number: reported in the status block.

    Raises ``XrfDeviceError`` for an invalid ``channels``.
    """

    def __init__(
        self,
        source: SpectrumSource | None = None,
        rng: np.random.Generator | None = None,
        faults: FaultConfig | None = None,
        *,
        channels: int = 1024,
        clock: Callable[[], float] | None = None,
        serial_number: int = 123456,
    ) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.source: SpectrumSource = source if source is not None else SyntheticSource(
            rng=self.rng)
        self.faults = faults if faults is not None else FaultConfig()
        self._script: deque[ScriptItem] = deque(self.faults.script)
        self.config: dict[str, str] = dict(_DEFAULTS)
        self.config["MCAC"] = _check_value("MCAC", str(channels))
        self.serial_number = serial_number
        self.clock = clock
        self._last_clock = clock() if clock is not None else 0.0
        self._parser = FrameParser(None, max_data_len=MAX_REQUEST_LEN)
        self._out = bytearray()
        self.stats: Counter[str] = Counter()
        """Requests served (``"req:STATUS"``…), frame errors and faults injected, by name."""
        self.enabled = False
        self._reset_mca()

    # ---- host side of the wire -------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Receive request bytes; replies to complete requests are queued for :meth:`read`."""
        for ev in self._parser.feed(data):
            self._handle_event(ev)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """Pop up to ``size`` queued reply bytes (all if ``size < 0``); never blocks."""
        n = len(self._out) if size < 0 else min(size, len(self._out))
        out = bytes(self._out[:n])
        del self._out[:n]
        return out

    @property
    def in_waiting(self) -> int:
        """Reply bytes queued and not yet read."""
        return len(self._out)

    def discard_output(self) -> None:
        """Drop queued reply bytes (a host flushing its input buffer)."""
        self._out.clear()

    def script(self, items: Iterable[ScriptItem]) -> None:
        """Append fault/ACK items to the script (one per future reply)."""
        self._script.extend(items)

    # ---- MCA state -------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Current channel count (``MCAC``)."""
        return int(self.config["MCAC"])

    @property
    def counts(self) -> NDArray[np.int64]:
        """Copy of the accumulated spectrum (int64, shape (channels,))."""
        return self._counts.copy()

    def _reset_mca(self) -> None:
        self._counts = np.zeros(self.channels, dtype=np.int64)
        self.live_s = self.real_s = 0.0
        self.fast = self.slow = 0

    def _preset(self, key: str) -> float:
        v = self.config[key]
        return 0.0 if v == "OFF" else float(v)

    def preset_done(self) -> bool:
        """True when a set ``PRET`` (live s) or ``PRER`` (real s) has been reached."""
        pret, prer = self._preset("PRET"), self._preset("PRER")
        return bool((pret > 0 and self.live_s >= pret - 5e-4)
                    or (prer > 0 and self.real_s >= prer - 5e-4))

    @property
    def tau_s(self) -> float:
        """Dead time per binned event, s (2 × peaking time ``TPEA``)."""
        return 2e-6 * float(self.config["TPEA"])

    def _sample(self, dt_s: float) -> NDArray[np.int64]:
        counts = np.asarray(self.source(dt_s, self.channels), dtype=np.int64)
        if counts.shape != (self.channels,) or (counts.size and int(counts.min()) < 0):
            raise XrfDeviceError(f"spectrum source returned shape {counts.shape} with min "
                                 f"{counts.min() if counts.size else 0}; expected "
                                 f"({self.channels},) non-negative counts")
        return counts

    def _accumulate_live(self, dt_live: float) -> None:
        """Spend ``dt_live`` s of live time; real time grows by it plus the dead time."""
        if dt_live <= 0:
            return
        counts = self._sample(dt_live)
        n = int(counts.sum())
        dead = n * self.tau_s
        lost = int(self.rng.poisson(n / dt_live * dead)) if n else 0
        self._counts += counts
        self.slow += n
        self.fast += n + lost
        self.live_s += dt_live
        self.real_s += dt_live + dead

    def advance(self, dt_real_s: float) -> None:
        """Let ``dt_real_s`` s of real time pass (counting only while enabled, up to presets).

        The source is asked for the events arriving in ``dt_real_s``; each is kept with the
        non-paralyzable probability ``1 / (1 + r τ)`` (``r`` their rate), which is also the
        live share of the interval.  If that would overrun ``PRET``, the remaining live time
        is spent instead.
        """
        if not (dt_real_s >= 0 and np.isfinite(dt_real_s)):
            raise XrfDeviceError(f"advance needs a finite dt_real_s ≥ 0, got {dt_real_s}")
        if not self.enabled or self.preset_done():
            return
        prer, pret = self._preset("PRER"), self._preset("PRET")
        dt = min(dt_real_s, prer - self.real_s) if prer > 0 else dt_real_s
        if dt <= 0:
            return
        incoming = self._sample(dt)
        n_in = int(incoming.sum())
        keep = 1.0 / (1.0 + n_in / dt * self.tau_s)
        if pret > 0 and self.live_s + dt * keep > pret:
            self._accumulate_live(pret - self.live_s)
            return
        kept = self.rng.binomial(incoming, keep).astype(np.int64)
        self._counts += kept
        self.slow += int(kept.sum())
        self.fast += n_in
        self.live_s += dt * keep
        self.real_s += dt

    def _tick(self) -> None:
        if self.clock is not None:
            now = self.clock()
            self.advance(max(0.0, now - self._last_clock))
            self._last_clock = now
        elif self.enabled and not self.preset_done():
            pret, prer = self._preset("PRET"), self._preset("PRER")
            if pret > 0:
                self._accumulate_live(pret - self.live_s)
            elif prer > 0:
                self.advance(prer - self.real_s)

    def status(self) -> Dp5Status:
        """The current status block (counters, times, flags)."""
        return Dp5Status(
            fast_count=min(self.fast, 0xFFFFFFFF), slow_count=min(self.slow, 0xFFFFFFFF),
            accumulation_time_s=self.live_s, live_time_s=self.live_s, real_time_s=self.real_s,
            serial_number=self.serial_number, hv_v=-110.0, detector_temp_k=220.0,
            board_temp_c=35, preset_time_done=self.preset_done(), mca_enabled=self.enabled,
            configured=True, device_id=0,
        )

    # ---- request handling ------------------------------------------------------------------
    def _handle_event(self, ev: Frame | Exception) -> None:
        if isinstance(ev, Frame):
            self._serve(ev)
            return
        self.stats[type(ev).__name__] += 1
        if isinstance(ev, ChecksumError):
            self._reply(build_frame(PID1_ACK, AckCode.CHECKSUM_ERROR))
        elif isinstance(ev, HeaderError):
            self._reply(build_frame(PID1_ACK, AckCode.LEN_ERROR))
        elif isinstance(ev, SyncError):
            self._reply(build_frame(PID1_ACK, AckCode.SYNC_ERROR))

    def _next_fault(self) -> ScriptItem:
        if self._script:
            return self._script.popleft()
        u = float(self.rng.random())
        for fault, p in self.faults.probabilities():
            if u < p:
                return fault
            u -= p
        return Fault.NONE

    def _serve(self, req: Frame) -> None:
        self._tick()
        fault = self._next_fault()
        if fault is not Fault.NONE:
            self.stats[f"fault:{fault.name}"] += 1
        if isinstance(fault, AckCode):
            self._reply(build_frame(PID1_ACK, fault))
            return
        if fault is Fault.BUSY:
            self._reply(build_frame(PID1_ACK, AckCode.BUSY))
            return
        if fault is Fault.SILENCE:
            return
        reply = self._execute(req)
        if fault is Fault.BAD_CHECKSUM:
            reply = reply[:-1] + bytes(((reply[-1] + 1 + int(self.rng.integers(0, 254))) & 0xFF,))
        elif fault is Fault.TRUNCATE:
            reply = reply[: int(self.rng.integers(1, len(reply)))]
        elif fault is Fault.GARBAGE:
            n = int(self.rng.integers(1, self.faults.garbage_max_bytes + 1))
            reply = self.rng.integers(0, 256, n, dtype=np.uint8).tobytes() + reply
        self._reply(reply)

    def _reply(self, raw: bytes) -> None:
        self._out += raw

    def _execute(self, req: Frame) -> bytes:
        if req.pid1 not in _REQUEST_PID1:
            return build_frame(PID1_ACK, AckCode.PID_ERROR)
        kind = _REQUESTS.get(req.pids)
        if kind is None:
            return build_frame(PID1_ACK, AckCode.UNRECOGNIZED_COMMAND)
        self.stats[f"req:{kind.name}"] += 1
        text_req = kind in (Request.CONFIG_SET, Request.CONFIG_READ, Request.ECHO)
        if not text_req and req.data:
            return build_frame(PID1_ACK, AckCode.LEN_ERROR)
        if kind is Request.STATUS:
            return build_frame(*STATUS_REPLY, self.status().encode())
        if kind in (Request.SPECTRUM, Request.SPECTRUM_CLEAR, Request.SPECTRUM_STATUS,
                    Request.SPECTRUM_STATUS_CLEAR):
            with_status = kind in (Request.SPECTRUM_STATUS, Request.SPECTRUM_STATUS_CLEAR)
            data = encode_spectrum(self._counts)
            if with_status:
                data += self.status().encode()
            if kind in (Request.SPECTRUM_CLEAR, Request.SPECTRUM_STATUS_CLEAR):
                self._reset_mca()
            return build_frame(PID1_SPECTRUM, spectrum_pid2(self.channels, with_status), data)
        if kind is Request.CONFIG_SET:
            return self._config_set(req.data)
        if kind is Request.CONFIG_READ:
            return self._config_read(req.data)
        if kind is Request.MCA_CLEAR:
            self._reset_mca()
        elif kind is Request.MCA_ENABLE:
            self.enabled = True
        elif kind is Request.MCA_DISABLE:
            self.enabled = False
        elif kind is Request.ECHO:
            return build_frame(*ECHO_REPLY, req.data)
        return build_frame(PID1_ACK, AckCode.OK)

    def _parse_text(self, data: bytes) -> dict[str, str] | bytes:
        try:
            return parse_config(data.decode("ascii"))
        except (UnicodeDecodeError, XrfDeviceError):
            return build_frame(PID1_ACK, AckCode.BAD_PARAMETER, data[:64])

    def _config_set(self, data: bytes) -> bytes:
        items = self._parse_text(data)
        if isinstance(items, bytes):
            return items
        new: dict[str, str] = {}
        for key, value in items.items():
            try:
                if key not in self.config:
                    raise XrfDeviceError(f"unknown command {key}")
                new[key] = _check_value(key, value)
            except XrfDeviceError:
                return build_frame(PID1_ACK, AckCode.BAD_PARAMETER, f"{key}={value};".encode())
        old_channels = self.channels
        self.config.update(new)
        if self.channels != old_channels:
            self._reset_mca()
        return build_frame(PID1_ACK, AckCode.OK)

    def _config_read(self, data: bytes) -> bytes:
        items = self._parse_text(data)
        if isinstance(items, bytes):
            return items
        unknown = [k for k in items if k not in self.config]
        if unknown:
            return build_frame(PID1_ACK, AckCode.BAD_PARAMETER, f"{unknown[0]};".encode())
        text = "".join(f"{k}={self.config[k]};" for k in items)
        return build_frame(*CONFIG_READBACK_REPLY, text.encode("ascii"))
