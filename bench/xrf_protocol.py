"""DP5 protocol throughput: frame parser rate and full 2048-channel acquisitions.

Rows (same process, same machine):

- ``parser, 72-B status frames``: frames/s through :class:`FrameParser` (4 KiB chunks);
- ``parser, 6 KiB spectrum frames``: 2048-channel spectrum+status replies, frames/s and MB/s;
- ``acquire over dp5sim://``: complete ``Dp5Driver.acquire(1 s, 2048)`` transactions per second
  (disable, configure, clear, enable, status poll, disable, spectrum) against the emulator;
- ``acquire over pty``: the same through a pseudo-terminal (kernel tty layer + bridge thread),
  the transport a real serial device uses — the peer of the in-process URL handler.

No third-party DP5 implementation is installable offline, so the pty path is the peer.
Run: ``.venv/bin/python -m bench.xrf_protocol [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import serial
from rich.table import Table

import perception.sensors.xrf  # noqa: F401  (registers dp5sim://)
from perception.sensors.xrf.driver import Dp5Driver
from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.packets import RESPONSE_RULES, Dp5Status, encode_spectrum
from perception.sensors.xrf.protocol import FrameParser, build_frame
from sorting.cli.output import console


def _rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (returns items done per call), run for ≥ ``seconds``."""
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds:
        n += fn()
    return n / dt


def _parse_rate(frame: bytes, copies: int, seconds: float) -> float:
    stream = frame * copies
    chunks = [stream[i:i + 4096] for i in range(0, len(stream), 4096)]

    def run() -> int:
        p = FrameParser(RESPONSE_RULES)
        found = 0
        for c in chunks:
            found += len(p.feed(c))
        assert found == copies
        return copies

    return _rate(run, seconds)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.xrf_protocol")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per row, s")
    args = ap.parse_args()
    status = build_frame(0x80, 0x01, Dp5Status(fast_count=12345).encode())
    rng = np.random.default_rng(0)
    spec = build_frame(0x81, 0x08, encode_spectrum(rng.poisson(50.0, 2048).astype(np.int64))
                       + Dp5Status().encode())
    rows: list[tuple[str, float, str]] = []
    r = _parse_rate(status, 2000, args.seconds)
    rows.append(("parser, 72-B status frames", r, f"{r * len(status) / 1e6:.1f} MB/s"))
    r = _parse_rate(spec, 200, args.seconds)
    rows.append(("parser, 6 KiB spectrum frames", r, f"{r * len(spec) / 1e6:.1f} MB/s"))

    def no_sleep(_: float) -> None:
        pass

    emu = Dp5Emulator(rng=np.random.default_rng(1), channels=2048)
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu), sleep=no_sleep)
    url_rate = _rate(lambda: (drv.acquire(1.0, 2048), 1)[1], args.seconds)
    rows.append(("acquire 2048 ch over dp5sim://", url_rate,
                 f"{1e3 / url_rate:.2f} ms, 7 requests"))

    from perception.sensors.xrf.pty_bridge import PtyBridge

    emu2 = Dp5Emulator(rng=np.random.default_rng(1), channels=2048)
    with PtyBridge(emu2, poll_s=0.005) as path:
        drv2 = Dp5Driver(serial.Serial(path, timeout=1.0), timeout_s=1.0, sleep=no_sleep)
        pty_rate = _rate(lambda: (drv2.acquire(1.0, 2048), 1)[1], args.seconds)
        drv2.close()
    rows.append(("acquire 2048 ch over pty (peer)", pty_rate,
                 f"{1e3 / pty_rate:.2f} ms, 7 requests"))

    con = console()
    t = Table(title=f"DP5 protocol — {platform.processor() or platform.machine()}, "
                    f"Python {platform.python_version()}")
    t.add_column("row")
    t.add_column("per second", justify="right")
    t.add_column("note", justify="right")
    for name, rate, note in rows:
        t.add_row(name, f"{rate:,.0f}", note)
    con.print(t)
    con.print(f"dp5sim:// / pty acquisition ratio: {url_rate / pty_rate:.1f}×; driver errors "
              f"{dict(drv.errors)} / {dict(drv2.errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
