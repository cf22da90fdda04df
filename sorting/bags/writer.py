"""Crash-tolerant, deterministic rosbag2 (MCAP) writer.

Why not ``rosbags.rosbag2.Writer``: its MCAP storage writes chunks with CRC 0
(so a flipped byte goes unnoticed), never flushes a closed chunk to the OS and
keeps ``metadata.yaml`` until ``close()``. Why not ``mcap.writer.Writer``: it
copies each payload three times (record builder, chunk buffer, record again)
and offers no hook to flush a closed chunk. MCAP is a simple format
(:mod:`sorting.bags.records`), so this module writes it directly:

* a message costs one ``struct.pack`` and two list appends; the payload
  ``bytes`` object is kept by reference and handed to ``write``/the compressor
  as is (a ``bytearray``/``memoryview``/numpy buffer is copied exactly once);
* when a chunk holds ``chunk_size`` bytes it is written with its uncompressed
  CRC-32 and its message indexes, flushed to the OS, and ``metadata.yaml`` is
  refreshed (atomically): a recorder killed with SIGKILL leaves a bag whose
  every closed chunk reads back (:mod:`sorting.bags.reader`);
* schemas and channels are written before the first chunk that uses them,
  outside chunks, so a reader of a truncated file knows every topic without
  decompressing anything;
* nothing depends on the clock, the host or chance: the same calls give the
  same bytes, ``metadata.yaml`` included.

The layout is what ``ros2 bag record -s mcap`` writes: ``<dir>/<dir>_0.mcap``
with profile ``ros2``, ``ros2msg`` schemas, ``cdr`` channels whose metadata
holds ``offered_qos_profiles`` and ``topic_type_hash``, a ``rosbag2``
metadata record, a full summary (schemas, channels, statistics, chunk and
metadata indexes, summary offsets) and ``metadata.yaml`` version 9.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

import lz4.frame

from sorting.bags import records as rec
from sorting.bags.errors import BagError, BagExistsError
from sorting.bags.metadata import (
    DEFAULT_QOS,
    BagMetadata,
    TopicRecord,
    dump_info,
    qos_yaml,
    write_metadata,
)
from sorting.errors import UnknownTopicError
from sorting.msgs import message_definition, serialize, typestore

if sys.version_info >= (3, 14):  # pragma: no cover
    from compression import zstd
else:
    from backports import zstd

from rosbags.interfaces import Qos

Compression = Literal["zstd", "lz4"] | None

LIBRARY = "crmsort-bags"
PROFILE = "ros2"
DEFAULT_CHUNK_SIZE = 1 << 20
#: zstd level 1 and lz4 level 0: fastest settings; camera frames dominate the volume.
ZSTD_LEVEL = 1
LZ4_LEVEL = 0
_MAX_U64 = 2**64


class BagWriter:
    """Write a rosbag2 bag directory in MCAP, chunk by chunk, flushing each closed chunk.

    Args:
        path: the bag directory to create (must not exist); the data file is
            ``path/<path.name>_0.mcap``.
        chunk_size: close a chunk once it holds this many uncompressed bytes (>= 1);
            one message larger than that gets a chunk of its own.
        compression: ``None``, ``"zstd"`` or ``"lz4"`` (per-chunk MCAP compression).
        fsync: also ``os.fsync`` after each chunk (survives power loss, not only SIGKILL).
        custom_data: string pairs for ``custom_data`` in ``metadata.yaml``.

    Raises:
        BagExistsError: ``path`` exists.
        BagError: bad ``chunk_size``/``compression``, or the directory cannot be created.

    Example::

        with BagWriter(tmp / "bag", compression="zstd") as bag:
            bag.add_topic("/line1/status", "crmsort_msgs/msg/LineStatus")
            bag.write_msg("/line1/status", 1_000_000_000, new("crmsort_msgs/msg/LineStatus"))
    """

    def __init__(
        self,
        path: Path | str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        compression: Compression = None,
        fsync: bool = False,
        custom_data: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise BagError(f"{self.path}: chunk_size must be an int >= 1 byte, got {chunk_size!r}")
        if compression not in (None, "zstd", "lz4"):
            raise BagError(
                f"{self.path}: compression must be None, 'zstd' or 'lz4', got {compression!r}"
            )
        if self.path.exists():
            raise BagExistsError(f"{self.path} exists already; a bag is never overwritten")
        try:
            self.path.mkdir(parents=True)
        except FileExistsError:
            raise BagExistsError(
                f"{self.path} exists already; a bag is never overwritten"
            ) from None
        except OSError as exc:
            raise BagError(f"{self.path}: cannot create bag directory: {exc.strerror}") from None
        self.chunk_size = chunk_size
        self.compression: Compression = compression
        self.fsync = fsync
        self.custom_data = dict(custom_data) if custom_data else None
        self.storage_path = self.path / f"{self.path.name}_0.mcap"
        self._f: BinaryIO | None = open(self.storage_path, "xb")  # noqa: SIM115 (closed in close())
        head = rec.MAGIC + rec.header(PROFILE, LIBRARY)
        self._f.write(head)
        self._pos = len(head)
        self._topics: dict[str, int] = {}
        self._topic_records: list[TopicRecord] = []
        self._schemas: dict[str, tuple[int, bytes]] = {}  # typename -> (id, record)
        self._channels: list[bytes] = []
        self._seq: list[int] = [0]  # per channel id (index 0 unused)
        self._counts: list[int] = [0]  # messages per channel, all written
        self._flushed: list[int] = [0]  # messages per channel in closed chunks
        self._chunk_indexes: list[bytes] = []
        self._t_min = _MAX_U64
        self._t_max = 0
        self._parts: list[bytes] = []  # open chunk: record prefixes and payloads
        self._index: dict[int, list[tuple[int, int]]] = {}  # channel -> (log_time, offset)
        self._chunk_bytes = 0
        self._chunk_start = _MAX_U64
        self._chunk_end = 0
        self._refresh_metadata()
        self._f.flush()

    # -- public API -------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Messages written so far (closed chunks and the open one)."""
        return sum(self._counts)

    @property
    def chunk_count(self) -> int:
        """Chunks written (closed) so far."""
        return len(self._chunk_indexes)

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type, in the order topics were added."""
        return {t.name: t.typename for t in self._topic_records}

    def add_topic(
        self,
        topic: str,
        typename: str,
        qos: Qos | Sequence[Qos] | None = None,
        *,
        serialization_format: str = "cdr",
    ) -> int:
        """Declare ``topic`` carrying ``typename`` (``pkg/msg/Type``); return its channel id.

        ``qos`` is the offered QoS (one profile or a list, default: reliable, volatile,
        keep last 10) stored as rosbag2 does. Adding a topic again with the same type
        returns the existing id.

        Raises:
            UnknownTypeError: ``typename`` is not in the crmsort typestore.
            BagError: the topic exists with another type, the name is not absolute
                (``/ns/name``), or the writer is closed.
        """
        f = self._require_open()
        if not isinstance(topic, str) or not topic.startswith("/") or len(topic) < 2:
            raise BagError(
                f"{self.path}: topic must be an absolute name like '/line1/x', got {topic!r}"
            )
        if topic in self._topics:
            existing = self._topic_records[self._topics[topic] - 1]
            if existing.typename != typename:
                raise BagError(
                    f"{self.path}: topic {topic} was added with type {existing.typename}, "
                    f"not {typename}"
                )
            return self._topics[topic]
        msgdef = message_definition(typename)  # raises UnknownTypeError
        type_hash = typestore().hash_rihs01(typename)
        profiles = [DEFAULT_QOS] if qos is None else [qos] if isinstance(qos, Qos) else list(qos)
        if typename not in self._schemas:
            schema_id = len(self._schemas) + 1
            record = rec.schema(schema_id, typename, "ros2msg", msgdef.encode())
            self._schemas[typename] = (schema_id, record)
            f.write(record)
            self._pos += len(record)
        schema_id = self._schemas[typename][0]
        channel_id = len(self._topic_records) + 1
        record = rec.channel(
            channel_id,
            schema_id,
            topic,
            serialization_format,
            {"offered_qos_profiles": qos_yaml(profiles), "topic_type_hash": type_hash},
        )
        f.write(record)
        self._pos += len(record)
        self._channels.append(record)
        self._topics[topic] = channel_id
        self._topic_records.append(
            TopicRecord(topic, typename, serialization_format, profiles, type_hash)
        )
        self._seq.append(0)
        self._counts.append(0)
        self._flushed.append(0)
        # a recorder killed before its first chunk still leaves the topics on disk
        f.flush()
        self._refresh_metadata()
        return channel_id

    def write(
        self,
        topic: str,
        t_ns: int,
        rawdata: bytes | bytearray | memoryview,
        *,
        publish_ns: int | None = None,
    ) -> None:
        """Append one serialized (CDR) message received at ``t_ns`` (ns since the epoch).

        ``rawdata`` of type ``bytes`` is kept by reference until its chunk is written
        (no copy); other buffers are copied once. Log times need not be increasing;
        readers sort them.

        Raises:
            UnknownTopicError: ``topic`` was not added.
            BagError: ``t_ns`` outside [0, 2**64) or the writer is closed.
        """
        try:
            cid = self._topics[topic]
        except KeyError:
            self._require_open()
            raise UnknownTopicError(
                f"{self.path}: topic {topic!r} was not added; added: {sorted(self._topics)}"
            ) from None
        if self._f is None:
            self._require_open()
        pub = t_ns if publish_ns is None else publish_ns
        if not (0 <= t_ns < _MAX_U64 and 0 <= pub < _MAX_U64):
            raise BagError(f"{self.path}: {topic}: time {t_ns} ns is outside [0, 2**64)")
        data = rawdata if type(rawdata) is bytes else bytes(rawdata)
        n = len(data)
        self._seq[cid] += 1
        self._parts.append(
            rec.MESSAGE_PREFIX.pack(
                rec.OP_MESSAGE, rec.MESSAGE_FIXED + n, cid, self._seq[cid], t_ns, pub
            )
        )
        self._parts.append(data)
        index = self._index.get(cid)
        if index is None:
            index = self._index[cid] = []
        index.append((t_ns, self._chunk_bytes))
        self._chunk_bytes += rec.MESSAGE_PREFIX.size + n
        self._counts[cid] += 1
        if t_ns < self._chunk_start:
            self._chunk_start = t_ns
        if t_ns > self._chunk_end:
            self._chunk_end = t_ns
        if self._chunk_bytes >= self.chunk_size:
            self._close_chunk()

    def write_msg(self, topic: str, t_ns: int, msg: Any, *, publish_ns: int | None = None) -> None:
        """Serialize ``msg`` with the topic's type and :meth:`write` it."""
        cid = self._topics.get(topic)
        if cid is None:
            self.write(topic, t_ns, b"")  # raises UnknownTopicError
            return
        self.write(
            topic,
            t_ns,
            serialize(msg, self._topic_records[cid - 1].typename),
            publish_ns=publish_ns,
        )

    def flush(self) -> None:
        """Close the open chunk now (if it holds messages) and flush it to the OS."""
        self._require_open()
        self._close_chunk()

    def close(self) -> None:
        """Write the last chunk, the summary, the footer and the final ``metadata.yaml``.

        Idempotent. Raises BagError on an I/O error (the file then reads back up to
        its last complete chunk).
        """
        f = self._f
        if f is None:
            return
        try:
            self._close_chunk(refresh=False)
            meta = self._metadata(final=True)
            parts: list[bytes] = []
            pos = self._pos
            meta_record = rec.metadata("rosbag2", {"serialized_metadata": dump_info(meta)})
            meta_offset = pos
            parts.append(meta_record)
            pos += len(meta_record)
            parts.append(rec.data_end(0))
            pos += len(parts[-1])
            summary_start = pos
            summary: list[bytes] = []
            groups: list[tuple[int, int, int]] = []

            def group(opcode: int, items: list[bytes]) -> None:
                nonlocal pos
                if not items:
                    return
                start = pos
                for item in items:
                    summary.append(item)
                    pos += len(item)
                groups.append((opcode, start, pos - start))

            group(rec.OP_SCHEMA, [r for _, r in self._schemas.values()])
            group(rec.OP_CHANNEL, self._channels)
            t0, t1 = self._span(self._counts, self._t_min, self._t_max)
            group(
                rec.OP_STATISTICS,
                [
                    rec.statistics(
                        sum(self._counts),
                        len(self._schemas),
                        len(self._channels),
                        1,
                        len(self._chunk_indexes),
                        t0,
                        t1,
                        {cid: self._counts[cid] for cid in range(1, len(self._counts))},
                    )
                ],
            )
            group(rec.OP_CHUNK_INDEX, self._chunk_indexes)
            group(
                rec.OP_METADATA_INDEX,
                [rec.metadata_index(meta_offset, len(meta_record), "rosbag2")],
            )
            offsets_start = pos
            summary.extend(rec.summary_offset(*g) for g in groups)
            summary_bytes = b"".join(summary)
            footer = rec.footer_prefix(summary_start, offsets_start)
            crc = zlib.crc32(footer, zlib.crc32(summary_bytes))
            parts += [summary_bytes, footer, rec.U32.pack(crc), rec.MAGIC]
            f.writelines(parts)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            f.close()
            self._f = None
            write_metadata(self.path, meta)
        except OSError as exc:
            raise BagError(f"{self.storage_path}: cannot finish bag: {exc.strerror}") from None
        finally:
            if self._f is not None:
                self._f.close()
                self._f = None

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Finish the file even when the producer failed: what was recorded is evidence.
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _require_open(self) -> BinaryIO:
        if self._f is None:
            raise BagError(f"{self.path}: writer is closed")
        return self._f

    def _reset_chunk(self) -> None:
        self._parts = []
        self._index = {}
        self._chunk_bytes = 0
        self._chunk_start = _MAX_U64
        self._chunk_end = 0

    def _compress(self, size: int) -> tuple[str, list[bytes], int]:
        if self.compression is None:
            return "", self._parts, size
        out: list[bytes]
        if self.compression == "zstd":
            comp = zstd.ZstdCompressor(level=ZSTD_LEVEL)
            comp.set_pledged_input_size(size)
            out = [comp.compress(p) for p in self._parts]
            out.append(comp.flush(zstd.ZstdCompressor.FLUSH_FRAME))
        else:
            lz = lz4.frame.LZ4FrameCompressor(compression_level=LZ4_LEVEL)
            out = [lz.begin(size)]
            out += [lz.compress(p) for p in self._parts]
            out.append(lz.flush())
        out = [bytes(b) for b in out if b]
        return self.compression, out, sum(len(b) for b in out)

    def _close_chunk(self, refresh: bool = True) -> None:
        f = self._f
        if f is None or not self._parts:
            return
        size = self._chunk_bytes
        crc = 0
        for part in self._parts:
            crc = zlib.crc32(part, crc)
        name, payload, compressed_size = self._compress(size)
        head = (
            rec.CHUNK_FIXED.pack(self._chunk_start, self._chunk_end, size, crc)
            + rec.string(name)
            + rec.U64.pack(compressed_size)
        )
        head = rec.RECORD_PREFIX.pack(rec.OP_CHUNK, len(head) + compressed_size) + head
        chunk_offset = self._pos
        f.write(head)
        f.writelines(payload)
        chunk_length = len(head) + compressed_size
        self._pos += chunk_length
        index_start = self._pos
        index_offsets: dict[int, int] = {}
        for cid in sorted(self._index):
            record = rec.message_index(cid, self._index[cid])
            index_offsets[cid] = self._pos
            f.write(record)
            self._pos += len(record)
        self._chunk_indexes.append(
            rec.chunk_index(
                self._chunk_start,
                self._chunk_end,
                chunk_offset,
                chunk_length,
                index_offsets,
                self._pos - index_start,
                name,
                compressed_size,
                size,
            )
        )
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())
        self._t_min = min(self._t_min, self._chunk_start)
        self._t_max = max(self._t_max, self._chunk_end)
        self._flushed = list(self._counts)
        self._reset_chunk()
        if refresh:
            self._refresh_metadata()

    @staticmethod
    def _span(counts: list[int], t_min: int, t_max: int) -> tuple[int, int]:
        return (t_min, t_max) if sum(counts) else (0, 0)

    def _metadata(self, final: bool) -> BagMetadata:
        counts = self._counts if final else self._flushed
        t0, t1 = self._span(counts, self._t_min, self._t_max)
        topics = [
            TopicRecord(
                t.name, t.typename, t.serialization_format, t.qos, t.type_hash, counts[i + 1]
            )
            for i, t in enumerate(self._topic_records)
        ]
        return BagMetadata(
            storage_identifier="mcap",
            files=[self.storage_path.name],
            topics=topics,
            starting_time_ns=t0,
            duration_ns=t1 - t0,
            message_count=sum(counts),
            custom_data=self.custom_data,
        )

    def _refresh_metadata(self) -> None:
        try:
            write_metadata(self.path, self._metadata(final=False))
        except OSError as exc:
            raise BagError(f"{self.path}: cannot write metadata.yaml: {exc.strerror}") from None
