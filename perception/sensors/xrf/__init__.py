"""XRF spectrometer: Amptek DP5 packet protocol driver, byte-level emulator, transports.

* :mod:`.protocol` — frames (``F5 FA | PID1 | PID2 | LEN | data | checksum``) and the
  streaming :class:`~.protocol.FrameParser`;
* :mod:`.packets` — PIDs, ACK codes, status block, spectrum and text-config codecs;
* :mod:`.driver` — :class:`~.driver.Dp5Driver` over any ``serial.Serial``-like port;
* :mod:`.emulator` — :class:`~.emulator.Dp5Emulator` answering the same bytes, with faults;
* :mod:`.url_handler` — ``serial.serial_for_url("dp5sim://…")``; :mod:`.pty_bridge` — the
  emulator on a pseudo-terminal;
* :mod:`.synthetic` — a placeholder spectrum source (Gaussian peaks on a continuum).

Importing this package registers the ``dp5sim://`` URL handler with pyserial.
"""

from __future__ import annotations

from perception.sensors.xrf.url_handler import register_url_handler

register_url_handler()

__all__ = ["register_url_handler"]
