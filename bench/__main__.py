"""Benchmark runner: the simulated line, recording and replay, each beside its peer.

Figures (same process, same bag, same machine):

- ``sim line``: belt seconds simulated per wall second (real-time factor),
  including rendering and recording;
- ``bare rosbags read``: the peer — ``rosbags.rosbag2.Reader.messages()``
  over the whole bag, raw bytes only;
- ``crmsort read``: our reader over the same bag;
- ``crmsort replay``: read + CDR decode + in-process runtime at max speed;
- ``crmsort replay+record``: the above, re-serialized into a new bag;
- ``bare rosbags write``: the peer of recording — rosbags' MCAP writer
  writing the same raw messages.

The ratio column is peer time / our time (below 1 = we are slower).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from sorting.bags import read_messages
from sorting.cli.output import console
from sorting.config import load_line
from sorting.line import run_sim_line
from sorting.record import Recorder
from sorting.runtime import InProcessExecutor, SimClock
from sorting.runtime.replay import replay


def _timed(fn: Callable[[], tuple[int, int]], repeat: int) -> tuple[float, int, int]:
    best = float("inf")
    n = nbytes = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n, nbytes = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n, nbytes


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--duration", type=float, default=60.0, help="belt seconds of the demo bag")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the read/replay figures")
    args = ap.parse_args()
    con = console()
    work = Path(tempfile.mkdtemp(prefix="crmsort-bench-"))
    try:
        line = load_line()
        bag = work / "demo"
        t0 = time.perf_counter()
        result = run_sim_line(line, args.duration, bag)
        sim_wall = time.perf_counter() - t0
        mcap = next(bag.glob("*.mcap"))
        size = mcap.stat().st_size

        def bare_read() -> tuple[int, int]:
            from rosbags.rosbag2 import Reader

            n = nbytes = 0
            with Reader(bag) as reader:
                for _conn, _t, raw in reader.messages():
                    n += 1
                    nbytes += len(raw)
            return n, nbytes

        def our_read() -> tuple[int, int]:
            n = nbytes = 0
            for _topic, _type, _t, raw in read_messages(bag):
                n += 1
                nbytes += len(raw)
            return n, nbytes

        def our_replay() -> tuple[int, int]:
            ex = InProcessExecutor(SimClock())
            stats = replay(ex, read_messages(bag), speed=None)
            ex.shutdown()
            return stats.messages, size

        counter = [0]

        def our_replay_record() -> tuple[int, int]:
            counter[0] += 1
            out = work / f"rerec{counter[0]}"
            ex = InProcessExecutor(SimClock())
            rec = Recorder(out)
            ex.add_tap(rec)
            stats = replay(ex, read_messages(bag), speed=None)
            ex.shutdown()
            rec.close()
            shutil.rmtree(out)
            return stats.messages, size

        def our_write() -> tuple[int, int]:
            from sorting.bags import BagWriter

            counter[0] += 1
            out = work / f"ow{counter[0]}"
            n = nbytes = 0
            with BagWriter(out) as writer:
                seen: set[str] = set()
                for topic, typename, t, raw in read_messages(bag):
                    if topic not in seen:
                        seen.add(topic)
                        writer.add_topic(topic, typename)
                    writer.write(topic, t, raw)
                    n += 1
                    nbytes += len(raw)
            shutil.rmtree(out)
            return n, nbytes

        def bare_write() -> tuple[int, int]:
            from rosbags.rosbag2 import Reader, StoragePlugin, Writer

            from sorting.msgs import typestore

            counter[0] += 1
            out = work / f"rbw{counter[0]}"
            n = nbytes = 0
            with (
                Reader(bag) as reader,
                Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer,
            ):
                conns = {
                    c.id: writer.add_connection(c.topic, c.msgtype, typestore=typestore())
                    for c in reader.connections
                }
                for conn, t, raw in reader.messages():
                    writer.write(conns[conn.id], t, raw)
                    n += 1
                    nbytes += len(raw)
            shutil.rmtree(out)
            return n, nbytes

        rows = []
        peer_read = _timed(bare_read, args.repeat)
        peer_write = _timed(bare_write, args.repeat)
        cases: list[tuple[str, Callable[[], tuple[int, int]] | None, tuple[float, int, int] | None]]
        cases = [
            ("rosbags read (peer)", None, None),
            ("crmsort read", our_read, peer_read),
            ("crmsort replay: read + decode + runtime", our_replay, peer_read),
            ("rosbags read + MCAP write (peer)", None, None),
            ("crmsort read + write raw (BagWriter)", our_write, peer_write),
            ("crmsort replay + record (re-encode)", our_replay_record, peer_write),
        ]
        for name, fn, peer in cases:
            if fn is None:
                timing = peer_write if "write" in name else peer_read
            else:
                timing = _timed(fn, args.repeat)
            secs, n, _ = timing
            ratio = f"{peer[0] / secs:.2f}" if peer is not None else "—"
            rows.append(
                (name, f"{n / secs:,.0f}", f"{size / secs / 1e6:,.1f}", f"{secs:.2f}", ratio)
            )

        table = Table(
            title=f"crmsort bench — {args.duration:g} s demo bag, {size / 1e6:.0f} MB, "
            "peer/ours > 1: faster than the peer",
            title_justify="left",
        )
        for col in ("what", "msg/s", "MB/s", "best s", "peer/ours"):
            table.add_column(col, justify="left" if col == "what" else "right")
        for r in rows:
            table.add_row(*r)
        con.print(table)
        con.print(
            f"simulated line: {args.duration:g} s of belt in {sim_wall:.1f} s wall "
            f"(real-time factor {args.duration / sim_wall:.1f}×, recording included); "
            f"{sum(s.count for s in result.topics.values())} messages"
        )
        con.print(
            f"machine: {platform.processor() or platform.machine()}, "
            f"{platform.python_implementation()} {platform.python_version()}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
