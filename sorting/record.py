"""Recording a running line: a runtime tap that writes every (or chosen) topic to a bag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sorting.bags import BagWriter
from sorting.errors import UnknownTopicError
from sorting.msgs import serialize


@dataclass
class TopicStats:
    msg_type: str
    count: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def rate_hz(self) -> float:
        if (
            self.count < 2
            or self.first_ns is None
            or self.last_ns is None
            or self.last_ns == self.first_ns
        ):
            return 0.0
        return (self.count - 1) / ((self.last_ns - self.first_ns) * 1e-9)


@dataclass
class Recorder:
    """Serializes each published message once and writes it to ``path`` (a new rosbag2 MCAP dir).

    ``topics=None`` records everything; otherwise only the named (fully
    resolved) topics. Call :meth:`check_topics` once the line is built to turn
    a typo into an :class:`UnknownTopicError` before any time passes.
    """

    path: Path
    topics: set[str] | None = None
    chunk_size: int = 4 * 1024 * 1024
    compression: Literal["zstd", "lz4"] | None = None
    stats: dict[str, TopicStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.writer = BagWriter(self.path, chunk_size=self.chunk_size, compression=self.compression)
        self._closed = False

    def check_topics(self, available: Iterable[str]) -> None:
        if self.topics is None:
            return
        known = set(available)
        unknown = sorted(self.topics - known)
        if unknown:
            raise UnknownTopicError(
                f"cannot record {unknown}: no such topic on this line; topics are {sorted(known)}"
            )

    def __call__(self, topic: str, msg_type: str, t_ns: int, msg: Any) -> None:
        if self.topics is not None and topic not in self.topics:
            return
        st = self.stats.get(topic)
        if st is None:
            st = self.stats[topic] = TopicStats(msg_type)
            self.writer.add_topic(topic, msg_type)
        raw = serialize(msg, msg_type)
        self.writer.write(topic, t_ns, raw)
        st.count += 1
        st.bytes += len(raw)
        st.first_ns = t_ns if st.first_ns is None else st.first_ns
        st.last_ns = t_ns

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.writer.close()
