"""Errors of the XRF spectrometer driver and emulator (``perception.sensors.xrf``).

Two families:

* :class:`FrameError` and subclasses describe something wrong in a byte stream.  The
  :class:`~perception.sensors.xrf.protocol.FrameParser` never raises them; it *returns* them as
  events next to the frames it finds, so a caller can count them and carry on.
* :class:`Dp5Error` and subclasses are raised by the driver when a request could not be
  completed after all retries (timeouts, corrupt replies, error ACKs) or got a reply it
  cannot use, and by the packet codecs on malformed payloads.
"""

from __future__ import annotations

from perception.errors import SensorError


class XrfDeviceError(SensorError):
    """Base class of every error of the XRF spectrometer driver, protocol and emulator."""


class FrameError(XrfDeviceError):
    """A defect in a byte stream found by the frame parser.

    ``offset`` is the stream offset (bytes fed to the parser since it was created) where the
    defect starts; ``count`` the number of bytes it concerns.
    """

    def __init__(self, message: str, *, offset: int = 0, count: int = 0) -> None:
        super().__init__(message)
        self.offset = offset
        self.count = count


class SyncError(FrameError):
    """Bytes that do not start with the sync word ``F5 FA`` were skipped (garbage)."""


class HeaderError(FrameError):
    """A header had a PID pair or a LEN the parser does not accept; resynchronized past it."""


class ChecksumError(FrameError):
    """A complete frame whose byte sum plus checksum word is not 0 mod 2**16."""


class TruncatedFrameError(FrameError):
    """A frame started but the stream ended (or went silent) before its last byte."""


class Dp5Error(XrfDeviceError):
    """The DP5 driver could not complete a request; the message says which and why."""


class Dp5TimeoutError(Dp5Error):
    """No complete, valid reply arrived within the timeout after every retry."""


class Dp5ProtocolError(Dp5Error):
    """A reply was malformed or not the one expected (wrong PID, bad payload, bad checksum)."""


class Dp5AckError(Dp5Error):
    """The device answered with an error ACK (PID1 ``0xFF``); ``code`` is the ACK PID2."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class Dp5BusyError(Dp5AckError):
    """The device kept answering "busy" (ACK ``0x0D``) after every retry."""


class Dp5ConfigError(Dp5Error):
    """A text configuration (``KEY=VALUE;``) is malformed or has a value out of range."""
