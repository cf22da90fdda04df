"""DP5 packet meanings: request/reply PIDs, ACK codes, status block, spectrum, text config.

Layouts follow the public Amptek DP5 Programmer's Guide and the status decoder of Amptek's
public SDK (``DP5Status.cpp``).  Status block (64 bytes, multi-byte fields little-endian
unless noted):

====== ============================================================================
bytes  field
====== ============================================================================
0–3    fast count (events seen by the fast shaping channel)
4–7    slow count (events binned in the MCA)
8–11   general-purpose counter
12     accumulation time, 1 ms units (0–99)
13–15  accumulation time, 100 ms units
16–19  live time, 1 ms units (DP5 firmware sets it for MCA8000D; the emulator fills it)
20–23  real time, 1 ms units
24     firmware version (nibbles major.minor); 25 FPGA version
26–29  serial number
30–31  high voltage, signed, **big-endian**, 0.5 V units
32–33  detector temperature, 12 bits **big-endian**, 0.1 K units
34     board temperature, signed, °C
35     flags: D7 preset real/accumulation time done, D5 MCA enabled, D4 preset count
       reached, D1 configured
36     flags (not decoded); 37 low nibble firmware build; 39 device id (0 DP5, 1 PX5,
       2 DP5G, 3 MCA8000D, 4 TB5, 5 DP5-X)
====== ============================================================================

Spectrum replies carry ``channels × 3`` bytes, each count 24-bit little-endian, followed by
the 64-byte status when the PID2 is the "with status" (even) variant.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.sensors.xrf.errors import Dp5ConfigError, Dp5ProtocolError

STATUS_LEN = 64
MAX_COUNT = 0xFFFFFF  # 24-bit channel counter


class Request(enum.Enum):
    """Request PID pairs ``(pid1, pid2)`` (host → device)."""

    STATUS = (0x01, 0x01)
    SPECTRUM = (0x02, 0x01)
    SPECTRUM_CLEAR = (0x02, 0x02)
    SPECTRUM_STATUS = (0x02, 0x03)
    SPECTRUM_STATUS_CLEAR = (0x02, 0x04)
    CONFIG_SET = (0x20, 0x02)
    CONFIG_READ = (0x20, 0x03)
    MCA_CLEAR = (0xF0, 0x01)
    MCA_ENABLE = (0xF0, 0x02)
    MCA_DISABLE = (0xF0, 0x03)
    ECHO = (0xF1, 0x7F)

    @property
    def pids(self) -> tuple[int, int]:
        """The ``(pid1, pid2)`` pair."""
        value: tuple[int, int] = self.value
        return value


PID1_STATUS = 0x80
PID1_SPECTRUM = 0x81
PID1_TEXT = 0x82
PID1_ECHO = 0x8F
PID1_ACK = 0xFF
STATUS_REPLY = (0x80, 0x01)
CONFIG_READBACK_REPLY = (0x82, 0x07)
ECHO_REPLY = (0x8F, 0x7F)


class AckCode(enum.IntEnum):
    """ACK PID2 values (reply PID1 ``0xFF``)."""

    OK = 0x00
    SYNC_ERROR = 0x01
    PID_ERROR = 0x02
    LEN_ERROR = 0x03
    CHECKSUM_ERROR = 0x04
    BAD_PARAMETER = 0x05
    BAD_HEX_RECORD = 0x06
    UNRECOGNIZED_COMMAND = 0x07
    FPGA_ERROR = 0x08
    CP2201_NOT_FOUND = 0x09
    SCOPE_DATA_NOT_AVAILABLE = 0x0A
    PC5_NOT_PRESENT = 0x0B
    OK_SHARING_REQUEST = 0x0C
    BUSY = 0x0D
    I2C_ERROR = 0x0E
    OK_FPGA_UPLOAD_ADDRESS = 0x0F
    FEATURE_NOT_SUPPORTED = 0x10
    CALIBRATION_DATA_NOT_PRESENT = 0x11


ACK_SUCCESS = frozenset({AckCode.OK, AckCode.OK_SHARING_REQUEST, AckCode.OK_FPGA_UPLOAD_ADDRESS})
"""ACK codes that mean the request was carried out."""
ACK_RETRYABLE = frozenset({AckCode.SYNC_ERROR, AckCode.PID_ERROR, AckCode.LEN_ERROR,
                           AckCode.CHECKSUM_ERROR, AckCode.BUSY})
"""ACK codes after which resending the same request may succeed (link noise, busy device)."""

CHANNEL_COUNTS = (256, 512, 1024, 2048, 4096, 8192)


def spectrum_pid2(channels: int, with_status: bool) -> int:
    """Reply PID2 for a spectrum: 256→1, 512→3, …, 8192→0x0B; +1 when a status follows."""
    if channels not in CHANNEL_COUNTS:
        raise Dp5ProtocolError(f"channel count {channels} is not one of {CHANNEL_COUNTS}")
    return 2 * CHANNEL_COUNTS.index(channels) + 1 + int(with_status)


def spectrum_layout(pid2: int) -> tuple[int, bool]:
    """Inverse of :func:`spectrum_pid2`: ``(channels, with_status)``; raises Dp5ProtocolError."""
    if not 1 <= pid2 <= 2 * len(CHANNEL_COUNTS):
        raise Dp5ProtocolError(f"spectrum PID2 {pid2:#04x} is outside 0x01..0x0C")
    return CHANNEL_COUNTS[(pid2 - 1) // 2], pid2 % 2 == 0


def _response_rules() -> dict[tuple[int, int], int | None]:
    rules: dict[tuple[int, int], int | None] = {
        STATUS_REPLY: STATUS_LEN, CONFIG_READBACK_REPLY: None, ECHO_REPLY: None,
    }
    for ch in CHANNEL_COUNTS:
        rules[(PID1_SPECTRUM, spectrum_pid2(ch, False))] = 3 * ch
        rules[(PID1_SPECTRUM, spectrum_pid2(ch, True))] = 3 * ch + STATUS_LEN
    for code in AckCode:
        rules[(PID1_ACK, int(code))] = None
    return rules


RESPONSE_RULES: dict[tuple[int, int], int | None] = _response_rules()
"""PID pairs a host accepts from a DP5, with their exact LEN (``None``: variable)."""
REQUEST_RULES: dict[tuple[int, int], int | None] = {
    r.pids: (None if r in (Request.CONFIG_SET, Request.CONFIG_READ, Request.ECHO) else 0)
    for r in Request
}
"""PID pairs a DP5 accepts from a host (LEN 0 except text config and echo)."""
MAX_RESPONSE_LEN = 3 * CHANNEL_COUNTS[-1] + STATUS_LEN


@dataclass(frozen=True, slots=True)
class Dp5Status:
    """Decoded 64-byte status block.  Times in s, ``hv_v`` in V, temperatures as named."""

    fast_count: int = 0
    slow_count: int = 0
    gp_count: int = 0
    accumulation_time_s: float = 0.0
    live_time_s: float = 0.0
    real_time_s: float = 0.0
    firmware: int = 0x68
    fpga: int = 0x91
    serial_number: int = 0
    hv_v: float = 0.0
    detector_temp_k: float = 0.0
    board_temp_c: int = 0
    preset_time_done: bool = False
    mca_enabled: bool = False
    preset_count_reached: bool = False
    configured: bool = True
    device_id: int = 0

    @property
    def dead_time_fraction(self) -> float:
        """``1 − slow/fast`` (0 when the fast count is 0), the DP5's dead-time estimate."""
        return 0.0 if self.fast_count <= 0 else max(0.0, 1.0 - self.slow_count / self.fast_count)

    def encode(self) -> bytes:
        """The 64-byte status block; raises ``Dp5ProtocolError`` when a field overflows."""
        b = bytearray(STATUS_LEN)
        try:
            struct.pack_into("<III", b, 0, self.fast_count, self.slow_count, self.gp_count)
            acc_ms = round(self.accumulation_time_s * 1000.0)
            b[12] = acc_ms % 100
            b[13:16] = (acc_ms // 100).to_bytes(3, "little")
            struct.pack_into("<II", b, 16, round(self.live_time_s * 1000.0),
                             round(self.real_time_s * 1000.0))
            b[24], b[25] = self.firmware, self.fpga
            struct.pack_into("<I", b, 26, self.serial_number)
            struct.pack_into(">h", b, 30, round(self.hv_v / 0.5))
            struct.pack_into(">H", b, 32, round(self.detector_temp_k / 0.1) & 0x0FFF)
            struct.pack_into("<b", b, 34, self.board_temp_c)
        except (struct.error, OverflowError, ValueError) as exc:
            raise Dp5ProtocolError(f"status field out of range: {exc}") from exc
        b[35] = ((0x80 if self.preset_time_done else 0) | (0x20 if self.mca_enabled else 0)
                 | (0x10 if self.preset_count_reached else 0) | (0x02 if self.configured else 0))
        b[39] = self.device_id & 0xFF
        return bytes(b)

    @classmethod
    def decode(cls, raw: bytes) -> Dp5Status:
        """Decode a 64-byte status block; raises ``Dp5ProtocolError`` on another length."""
        if len(raw) != STATUS_LEN:
            raise Dp5ProtocolError(f"status block is {len(raw)} bytes, expected {STATUS_LEN}")
        fast, slow, gp = struct.unpack_from("<III", raw, 0)
        acc_s = raw[12] * 1e-3 + int.from_bytes(raw[13:16], "little") * 0.1
        live_ms, real_ms = struct.unpack_from("<II", raw, 16)
        (serial,) = struct.unpack_from("<I", raw, 26)
        (hv,) = struct.unpack_from(">h", raw, 30)
        det = ((raw[32] & 0x0F) << 8 | raw[33]) * 0.1
        (board,) = struct.unpack_from("<b", raw, 34)
        f = raw[35]
        return cls(
            fast_count=fast, slow_count=slow, gp_count=gp, accumulation_time_s=acc_s,
            live_time_s=live_ms * 1e-3, real_time_s=real_ms * 1e-3, firmware=raw[24],
            fpga=raw[25], serial_number=serial, hv_v=hv * 0.5, detector_temp_k=det,
            board_temp_c=board, preset_time_done=bool(f & 0x80), mca_enabled=bool(f & 0x20),
            preset_count_reached=bool(f & 0x10), configured=bool(f & 0x02), device_id=raw[39],
        )


def encode_spectrum(counts: NDArray[np.int64]) -> bytes:
    """Counts (shape (channels,)) → 3-byte little-endian words; saturates at 2**24 − 1.

    Raises ``Dp5ProtocolError`` for a channel count outside 256…8192 or negative counts.
    """
    c = np.asarray(counts)
    if c.ndim != 1 or c.shape[0] not in CHANNEL_COUNTS:
        raise Dp5ProtocolError(
            f"spectrum shape {c.shape}; expected (n,) with n in {CHANNEL_COUNTS}")
    if c.size and int(c.min()) < 0:
        raise Dp5ProtocolError("spectrum has negative counts")
    le = np.minimum(c, MAX_COUNT).astype("<u4").view(np.uint8).reshape(-1, 4)
    return le[:, :3].tobytes()


def decode_spectrum(data: bytes, channels: int) -> NDArray[np.int64]:
    """3-byte little-endian counts → int64 array of shape (channels,); checks the length."""
    if len(data) != 3 * channels:
        raise Dp5ProtocolError(
            f"spectrum payload is {len(data)} bytes; {channels} channels need {3 * channels}")
    b = np.frombuffer(data, dtype=np.uint8).reshape(channels, 3).astype(np.int64)
    out: NDArray[np.int64] = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return out


def parse_config(text: str) -> dict[str, str]:
    """``"MCAC=2048;PRET=1;"`` → ``{"MCAC": "2048", "PRET": "1"}`` (keys upper-cased).

    A readback request (``"MCAC;PRET=?;"``) gives empty values.  Raises ``Dp5ConfigError``
    for a key that is not 4 ASCII letters/digits or for characters outside printable ASCII.
    """
    if any(not (32 <= ord(ch) < 127) for ch in text):
        raise Dp5ConfigError(f"configuration text {text!r} has non-printable characters")
    out: dict[str, str] = {}
    for pos, item in enumerate(p.strip() for p in text.split(";")):
        if not item:
            continue
        key, _, value = item.partition("=")
        key = key.strip().upper()
        if len(key) != 4 or not key.isalnum():
            raise Dp5ConfigError(f"configuration item {pos} {item!r}: key must be 4 "
                                 "letters/digits like MCAC")
        out[key] = "" if value.strip() == "?" else value.strip()
    return out


def format_config(settings: dict[str, str]) -> str:
    """``{"MCAC": "2048"}`` → ``"MCAC=2048;"``; an empty value gives readback ``"MCAC=?;"``."""
    return "".join(f"{k.upper()}={v if v != '' else '?'};" for k, v in settings.items())
