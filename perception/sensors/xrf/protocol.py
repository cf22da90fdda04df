"""Amptek DP5 packet framing: build frames, checksum, and a streaming frame parser.

Every DP5 packet, request or reply, has the layout::

    F5 FA | PID1 | PID2 | LEN_HI LEN_LO | DATA (LEN bytes) | CHK_HI CHK_LO

LEN and the checksum are big-endian.  The checksum is the two's complement of the 16-bit sum
of every byte before it, so that sum + checksum (as a 16-bit word) is 0 mod 2**16.  Example:
``F5 FA 01 01 00 00`` sums to ``0x01F1``, so the checksum is ``0xFE0F`` (bytes ``FE 0F``).

Transport is separate from framing (see CONVENTIONS.md): :class:`FrameParser` eats bytes from
any source and returns :class:`Frame` objects and :class:`~perception.sensors.xrf.errors.FrameError`
events, never raising; what a PID pair means lives in :mod:`perception.sensors.xrf.packets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from perception.sensors.xrf.errors import (
    ChecksumError,
    FrameError,
    HeaderError,
    SyncError,
    TruncatedFrameError,
    XrfDeviceError,
)

SYNC = b"\xf5\xfa"
HEADER_LEN = 6
CHECKSUM_LEN = 2
OVERHEAD = HEADER_LEN + CHECKSUM_LEN
MAX_DATA_LEN = 0xFFFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One packet: ``pid1``, ``pid2`` (0–255) and its ``data`` payload (≤ 65535 bytes)."""

    pid1: int
    pid2: int
    data: bytes = b""

    @property
    def pids(self) -> tuple[int, int]:
        """The PID pair ``(pid1, pid2)``."""
        return (self.pid1, self.pid2)

    def encode(self) -> bytes:
        """The frame's bytes on the wire (see :func:`build_frame`)."""
        return build_frame(self.pid1, self.pid2, self.data)


def checksum(body: bytes | bytearray | memoryview) -> int:
    """The 16-bit checksum for ``body`` (sync … data): ``(-sum(body)) mod 2**16``."""
    return (-sum(body)) & 0xFFFF


def build_frame(pid1: int, pid2: int, data: bytes = b"") -> bytes:
    """Encode one DP5 frame; raises ``XrfDeviceError`` if a PID is not a byte or data > 65535 B."""
    if not (0 <= pid1 <= 0xFF and 0 <= pid2 <= 0xFF):
        raise XrfDeviceError(f"PIDs must be bytes 0..255, got PID1={pid1} PID2={pid2}")
    if len(data) > MAX_DATA_LEN:
        raise XrfDeviceError(f"frame data is {len(data)} bytes; LEN allows at most {MAX_DATA_LEN}")
    body = SYNC + bytes((pid1, pid2, len(data) >> 8, len(data) & 0xFF)) + bytes(data)
    chk = checksum(body)
    return body + bytes((chk >> 8, chk & 0xFF))


def frame_sum(raw: bytes | bytearray | memoryview) -> int:
    """Sum of the bytes before the checksum plus the checksum word, mod 2**16 (0 when valid)."""
    return (sum(raw[:-CHECKSUM_LEN]) + (raw[-2] << 8 | raw[-1])) & 0xFFFF


LengthRules = Mapping[tuple[int, int], int | None]
"""Accepted PID pairs → exact LEN (``int``) or ``None`` for any LEN up to ``max_data_len``."""


class FrameParser:
    """Streaming parser: :meth:`feed` bytes in any chunking, get frames and errors out in order.

    The parser never raises on input bytes and never waits: each call consumes what it can
    and keeps an incomplete tail for the next call.  Bytes before a sync word are reported as
    one :class:`SyncError` per run.  A header whose PID pair is not in ``rules`` (when given),
    or whose LEN differs from the exact length the rule demands, or exceeds ``max_data_len``,
    gives a :class:`HeaderError`; a complete frame whose checksum does not match a
    :class:`ChecksumError`.  After either, the parser resynchronizes by dropping *one* byte
    and scanning again for ``F5 FA``, so a valid frame hidden inside a corrupt one is still
    found.  :meth:`flush` ends the stream: a pending partial frame becomes a
    :class:`TruncatedFrameError` and the bytes after its start are scanned again.

    Args:
        rules: accepted PID pairs and their lengths (``packets.RESPONSE_RULES`` for a host,
            ``packets.REQUEST_RULES`` for a device); ``None`` accepts every PID pair.
        max_data_len: largest LEN accepted, bytes (0…65535).
    """

    def __init__(self, rules: LengthRules | None = None, max_data_len: int = MAX_DATA_LEN) -> None:
        if not 0 <= max_data_len <= MAX_DATA_LEN:
            raise XrfDeviceError(f"max_data_len must be in 0..{MAX_DATA_LEN}, got {max_data_len}")
        self._rules = dict(rules) if rules is not None else None
        self._max = max_data_len
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    @property
    def offset(self) -> int:
        """Stream offset of the next byte to be fed."""
        return self._base + len(self._buf)

    def reset(self) -> None:
        """Forget any pending bytes (the stream offset keeps counting)."""
        self._base += len(self._buf)
        self._buf.clear()

    def _drop(self, n: int) -> None:
        del self._buf[:n]
        self._base += n

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        """Add ``data`` to the stream; return the frames and errors completed by it, in order."""
        self._buf += data
        out: list[Frame | FrameError] = []
        buf = self._buf
        while buf:
            i = buf.find(SYNC)
            if i < 0:
                # a trailing F5 may be the first half of a sync word split across chunks
                keep = 1 if buf[-1] == 0xF5 else 0
                n = len(buf) - keep
                if n:
                    out.append(SyncError(f"skipped {n} bytes without sync word at offset "
                                         f"{self._base}", offset=self._base, count=n))
                    self._drop(n)
                break
            if i:
                out.append(SyncError(f"skipped {i} bytes before sync word at offset {self._base}",
                                     offset=self._base, count=i))
                self._drop(i)
            if len(buf) < HEADER_LEN:
                break
            pid1, pid2, length = buf[2], buf[3], (buf[4] << 8) | buf[5]
            problem = self._check_header(pid1, pid2, length)
            if problem:
                out.append(HeaderError(f"{problem} in header at offset {self._base}",
                                       offset=self._base, count=HEADER_LEN))
                self._drop(1)
                continue
            total = length + OVERHEAD
            if len(buf) < total:
                break
            raw = bytes(buf[:total])
            bad = frame_sum(raw)
            if bad:
                out.append(ChecksumError(
                    f"checksum mismatch in {total}-byte frame PID {pid1:02X}/{pid2:02X} at "
                    f"offset {self._base}: sum with checksum is {bad:#06x}, expected 0",
                    offset=self._base, count=total))
                self._drop(1)
                continue
            out.append(Frame(pid1, pid2, raw[HEADER_LEN:-CHECKSUM_LEN]))
            self._drop(total)
        return out

    def _check_header(self, pid1: int, pid2: int, length: int) -> str:
        if length > self._max:
            return f"LEN {length} exceeds the maximum {self._max}"
        if self._rules is None:
            return ""
        if (pid1, pid2) not in self._rules:
            return f"unexpected PID {pid1:02X}/{pid2:02X}"
        want = self._rules[(pid1, pid2)]
        if want is not None and want != length:
            return f"LEN {length} for PID {pid1:02X}/{pid2:02X}, expected {want}"
        return ""

    def flush(self) -> list[Frame | FrameError]:
        """End of stream (or silence): report the pending partial frame, rescan what follows it.

        Returns the events this produces; afterwards :attr:`pending` is 0.
        """
        out = self.feed(b"")
        while self._buf:
            if self._buf.startswith(SYNC):
                n = len(self._buf)
                out.append(TruncatedFrameError(
                    f"stream ended {n} bytes into a frame at offset {self._base}",
                    offset=self._base, count=n))
                self._drop(1)
            else:
                n = len(self._buf)
                out.append(SyncError(f"skipped {n} trailing bytes at offset {self._base}",
                                     offset=self._base, count=n))
                self._drop(n)
            out.extend(self.feed(b""))
        return out
