"""Serve a :class:`Dp5Emulator` on a pseudo-terminal, so a driver opens it as a real port.

``os.openpty()`` gives a master/slave pair; a daemon thread reads request bytes from the
master, feeds the emulator and writes its replies back.  The slave side's path (``/dev/pts/N``)
is what ``serial.Serial(path)`` opens.  POSIX only.

Example::

    with PtyBridge(Dp5Emulator()) as path:
        drv = Dp5Driver(serial.Serial(path, timeout=0.2))
        drv.status()
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty

from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.errors import XrfDeviceError


class PtyBridge:
    """Run ``emulator`` behind a pty until :meth:`stop`; :attr:`path` is the slave device.

    The emulator's ``write``/``read`` are only called from the bridge thread, so tests should
    read emulator state after :meth:`stop` or accept a benign race.  Raises ``XrfDeviceError``
    if no pty can be made.
    """

    def __init__(self, emulator: Dp5Emulator, *, poll_s: float = 0.02) -> None:
        self.emulator = emulator
        self.poll_s = poll_s
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:  # pragma: no cover - platform without ptys
            raise XrfDeviceError(f"cannot open a pseudo-terminal: {exc}") from exc
        tty.setraw(self._slave)  # no echo, no CR/LF translation: bytes pass as they are
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dp5-pty", daemon=True)
        self.error: BaseException | None = None
        """An exception that ended the serving thread, if any (tests assert it is None)."""

    def start(self) -> str:
        """Start serving; returns the slave path."""
        self._thread.start()
        return self.path

    def _serve(self) -> None:
        pending = b""
        try:
            while not self._stop.is_set():
                wlist = [self._master] if pending else []
                r, w, _ = select.select([self._master], wlist, [], self.poll_s)
                if r:
                    try:
                        data = os.read(self._master, 65536)
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    if data:
                        self.emulator.write(data)
                        pending += self.emulator.read()
                if w and pending:
                    try:
                        n = os.write(self._master, pending[:4096])
                    except (BlockingIOError, InterruptedError):
                        n = 0
                    pending = pending[n:]
        except Exception as exc:  # reported through .error: the thread must not die silently
            self.error = exc

    def stop(self) -> None:
        """Stop the thread and close both pty ends."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
