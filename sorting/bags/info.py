"""``crmsort bag info``: what a bag holds, per topic, and what is wrong with it.

:func:`bag_info` reads every message (checking chunk CRCs) without copying
payloads, so the counts are what a reader will actually get, also for a
truncated or corrupted bag: the problems are listed, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sorting.bags.reader import BagReader


@dataclass(frozen=True)
class TopicInfo:
    """One topic: readable message count, first/last log time (ns), payload bytes."""

    name: str
    typename: str
    count: int
    first_ns: int
    last_ns: int
    bytes: int
    serialization_format: str = "cdr"

    @property
    def rate_hz(self) -> float:
        """Mean message rate, (count - 1) / (last - first) in Hz; 0.0 with < 2 messages."""
        span = self.last_ns - self.first_ns
        return (self.count - 1) / (span * 1e-9) if self.count > 1 and span > 0 else 0.0


@dataclass
class BagInfo:
    """Summary of a bag (times in ns since the epoch, sizes in bytes).

    ``problems`` holds one line per defect (``truncated at byte N after M messages: ...``);
    an empty list means every file was complete and every chunk checked out.
    """

    path: Path
    storage: str
    files: list[Path]
    size_bytes: int
    compression: str
    chunk_count: int
    message_count: int
    start_ns: int
    end_ns: int
    topics: list[TopicInfo]
    complete: bool
    problems: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Log time from the first to the last message, in s (0.0 when empty)."""
        return (self.end_ns - self.start_ns) * 1e-9 if self.message_count else 0.0

    def topic(self, name: str) -> TopicInfo:
        """The entry of topic ``name`` (KeyError if absent)."""
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)


def bag_info(path: Path | str) -> BagInfo:
    """Read the whole bag at ``path`` and summarise it (see :class:`BagInfo`).

    Raises BagError only when ``path`` is not a bag at all; damage is reported in
    ``BagInfo.problems`` together with what was readable.
    """
    reader = BagReader(path, strict=False)
    declared = reader.topics
    stats: dict[str, list[int]] = {}  # name -> [count, first, last, bytes]
    for topic, _typename, t, data in reader.raw_messages():
        s = stats.get(topic)
        if s is None:
            stats[topic] = [1, t, t, len(data)]
        else:
            s[0] += 1
            s[1] = min(s[1], t)
            s[2] = max(s[2], t)
            s[3] += len(data)
    declared = {**declared, **reader.topics}  # channels found inside chunks while reading
    topics = []
    for name in sorted(declared):
        decl = declared[name]
        count, first, last, nbytes = stats.get(name, [0, 0, 0, 0])
        topics.append(
            TopicInfo(name, decl.typename, count, first, last, nbytes, decl.serialization_format)
        )
    problems = list(reader.problems)
    total = sum(t.count for t in topics)
    meta = reader.metadata
    if meta is not None and meta.message_count != total:
        problems.append(
            f"{reader.path / 'metadata.yaml'}: lists {meta.message_count} messages, "
            f"{total} are readable"
        )
    compressions = sorted(
        {s.compression or "none" for m in reader.mcap_files() for s in m.segments if s.is_chunk}
    )
    counted = [t for t in topics if t.count]
    return BagInfo(
        path=reader.path,
        storage=reader.storage,
        files=list(reader.files),
        size_bytes=sum(f.stat().st_size for f in reader.files),
        compression="+".join(compressions) if compressions else "none",
        chunk_count=sum(sum(s.is_chunk for s in m.segments) for m in reader.mcap_files()),
        message_count=total,
        start_ns=min((t.first_ns for t in counted), default=0),
        end_ns=max((t.last_ns for t in counted), default=0),
        topics=topics,
        complete=reader.complete and not reader.problems,
        problems=problems,
    )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def format_info(info: BagInfo) -> str:
    """Render :class:`BagInfo` as plain text, ``ros2 bag info`` style, with a topic table."""
    lines = [
        f"Bag:          {info.path}",
        f"Storage:      {info.storage} ({len(info.files)} file(s), {_size(info.size_bytes)}, "
        f"{info.chunk_count} chunks, compression {info.compression})",
        f"Duration:     {info.duration_s:.3f} s",
        f"Start/end:    {info.start_ns} / {info.end_ns} ns",
        f"Messages:     {info.message_count}",
        f"Status:       {'complete' if info.complete else 'INCOMPLETE'}",
    ]
    headers = ("topic", "type", "count", "rate Hz", "size")
    rows = [
        (t.name, t.typename, str(t.count), f"{t.rate_hz:.2f}", _size(t.bytes)) for t in info.topics
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines += ["", fmt(headers), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)]
    if info.problems:
        lines += ["", "Problems:", *(f"  - {p}" for p in info.problems)]
    return "\n".join(lines)
