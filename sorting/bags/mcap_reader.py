"""Fault-tolerant MCAP reading: scan the record framing, then decode chunks in log-time order.

Reading happens in two passes over one file:

1. :meth:`McapFile.scan` walks the record framing from the magic to the footer,
   reading only record prefixes and chunk headers (payloads are seeked over). It
   collects schemas, channels and *segments* (chunks, or runs of messages written
   outside chunks). It stops at the first record that is cut off by the end of
   the file (:class:`TruncatedBagError`) or is not valid MCAP
   (:class:`CorruptBagError`) and keeps that error in :attr:`McapFile.problem`;
   everything before it stays readable. A file killed mid-recording has no footer:
   that is reported as truncated at the end of the last complete record.
2. :meth:`McapFile.messages` decompresses the segments, checks each chunk's
   length and CRC-32, and yields ``(log_time, channel_id, payload)`` in log-time
   order (ties in file order). Chunks are merged with a heap only where their time
   ranges overlap, so a file written in time order streams chunk after chunk.

Payloads are ``memoryview`` slices of the decompressed chunk (no copy).
"""

from __future__ import annotations

import heapq
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import lz4.frame

from sorting.bags import records as rec
from sorting.bags.errors import BrokenBagError, CorruptBagError, TruncatedBagError

if sys.version_info >= (3, 14):  # pragma: no cover
    from compression import zstd
else:
    from backports import zstd

_OPNAMES = {
    rec.OP_HEADER: "Header",
    rec.OP_FOOTER: "Footer",
    rec.OP_SCHEMA: "Schema",
    rec.OP_CHANNEL: "Channel",
    rec.OP_MESSAGE: "Message",
    rec.OP_CHUNK: "Chunk",
    rec.OP_MESSAGE_INDEX: "MessageIndex",
    rec.OP_CHUNK_INDEX: "ChunkIndex",
    rec.OP_ATTACHMENT: "Attachment",
    rec.OP_ATTACHMENT_INDEX: "AttachmentIndex",
    rec.OP_STATISTICS: "Statistics",
    rec.OP_METADATA: "Metadata",
    rec.OP_METADATA_INDEX: "MetadataIndex",
    rec.OP_SUMMARY_OFFSET: "SummaryOffset",
    rec.OP_DATA_END: "DataEnd",
}
_COMPRESSIONS = ("", "zstd", "lz4")
#: a chunk larger than this (uncompressed) is taken as a corrupt size field, not allocated.
MAX_CHUNK_BYTES = 1 << 34
_MSG_HEAD = struct.Struct("<HIQ")  # channel_id, sequence, log_time
_NEVER = 2**64  # later than any log time


@dataclass(frozen=True)
class SchemaInfo:
    """An MCAP schema: id, name (``pkg/msg/Type``), encoding (``ros2msg``) and text."""

    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(frozen=True)
class ChannelInfo:
    """An MCAP channel: id, topic, schema, message encoding (``cdr``) and metadata."""

    id: int
    topic: str
    schema_id: int
    encoding: str
    metadata: dict[str, str]


@dataclass
class Segment:
    """A unit of message data: one chunk, or a run of messages written outside chunks.

    ``offset`` is the file offset of the (first) record; ``data_offset``/``stored_size``
    locate the bytes to read; ``channel_ids`` is None where no message index tells.
    """

    offset: int
    data_offset: int
    stored_size: int
    uncompressed_size: int
    crc: int
    compression: str
    start: int
    end: int
    is_chunk: bool
    channel_ids: set[int] | None = None
    indexed_count: int = 0


@dataclass
class McapFile:
    """The scanned structure of one MCAP file (see module docstring)."""

    path: Path
    size: int = 0
    profile: str = ""
    library: str = ""
    schemas: dict[int, SchemaInfo] = field(default_factory=dict)
    channels: dict[int, ChannelInfo] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    complete: bool = False
    problem: BrokenBagError | None = None

    @classmethod
    def open(cls, path: Path) -> McapFile:
        """Scan ``path``; a broken file is not an error here (see :attr:`problem`).

        Raises:
            BagError (CorruptBagError): only when ``path`` cannot be opened.
        """
        mcap = cls(Path(path))
        with mcap._open() as f:
            mcap.scan(f)
        return mcap

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise CorruptBagError(self.path, 0, f"cannot open: {exc.strerror}") from None

    # -- pass 1: framing ----------------------------------------------------------------------

    def scan(self, f: BinaryIO) -> None:
        """Walk the record framing of ``f`` (see module docstring)."""
        self.size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if head != rec.MAGIC:
            if len(head) < 8 and rec.MAGIC.startswith(head):
                self.problem = TruncatedBagError(
                    self.path, 0, f"file is {len(head)} bytes, shorter than the MCAP magic"
                )
            else:
                self.problem = CorruptBagError(
                    self.path, 0, f"not an MCAP file: magic is {head!r}, expected {rec.MAGIC!r}"
                )
            return
        pos, size, first, in_summary = 8, self.size, True, False
        loose: Segment | None = None
        while True:
            if pos + 9 > size:
                self.problem = TruncatedBagError(
                    self.path,
                    pos,
                    "file ends without a footer (the writer did not close it)"
                    if pos == size
                    else f"record prefix cut after {size - pos} of 9 bytes",
                )
                break
            f.seek(pos)
            opcode, length = rec.RECORD_PREFIX.unpack(f.read(9))
            name = _OPNAMES.get(opcode, f"opcode 0x{opcode:02x}")
            if opcode == 0 or 0x10 <= opcode < 0x80:
                self.problem = CorruptBagError(
                    self.path, pos, f"unknown record opcode 0x{opcode:02x}"
                )
                break
            if first and opcode != rec.OP_HEADER:
                self.problem = CorruptBagError(
                    self.path, pos, f"first record is {name}, not Header"
                )
                break
            end = pos + 9 + length
            if opcode == rec.OP_FOOTER:
                self._footer(f, pos, length)
                break
            if end > size:
                self.problem = TruncatedBagError(
                    self.path,
                    pos,
                    f"{name} record needs {length} bytes, the file holds {size - pos - 9} more",
                )
                break
            if opcode != rec.OP_MESSAGE and loose is not None:
                self.segments.append(loose)
                loose = None
            try:
                if opcode == rec.OP_HEADER:
                    content = f.read(length)
                    self.profile, p = _string(content, 0)
                    self.library, _ = _string(content, p)
                elif opcode == rec.OP_CHUNK:
                    self.segments.append(self._chunk_header(f, pos, length))
                elif opcode == rec.OP_MESSAGE and not in_summary:
                    if length < rec.MESSAGE_FIXED:
                        raise ValueError(f"Message record of {length} bytes < {rec.MESSAGE_FIXED}")
                    cid, _seq, t = _MSG_HEAD.unpack(f.read(_MSG_HEAD.size))
                    if loose is None:
                        loose = Segment(pos, pos, 0, 0, 0, "", t, t, False, set())
                    loose.stored_size = end - loose.offset
                    loose.uncompressed_size = loose.stored_size
                    loose.start, loose.end = min(loose.start, t), max(loose.end, t)
                    assert loose.channel_ids is not None
                    loose.channel_ids.add(cid)
                    loose.indexed_count += 1
                elif opcode in (rec.OP_SCHEMA, rec.OP_CHANNEL):
                    self.add_definition(opcode, f.read(length))
                elif opcode == rec.OP_MESSAGE_INDEX and not in_summary and self.segments:
                    last = self.segments[-1]
                    if last.is_chunk:
                        if length < 6:
                            raise ValueError(f"MessageIndex record of {length} bytes < 6")
                        cid, nbytes = struct.unpack("<HI", f.read(6))
                        if last.channel_ids is None:
                            last.channel_ids = set()
                        last.channel_ids.add(cid)
                        last.indexed_count += nbytes // 16
                elif opcode == rec.OP_DATA_END:
                    in_summary = True
            except (ValueError, struct.error, UnicodeDecodeError) as exc:
                self.problem = CorruptBagError(self.path, pos, f"invalid {name} record: {exc}")
                break
            first = False
            pos = end
        if loose is not None:
            self.segments.append(loose)
        if self.problem is not None and self.segments and self.segments[-1].is_chunk:
            # The message indexes after the last chunk may be incomplete: don't trust them.
            self.segments[-1].channel_ids = None

    def _footer(self, f: BinaryIO, pos: int, length: int) -> None:
        if length != rec.FOOTER_LENGTH:
            self.problem = CorruptBagError(
                self.path, pos, f"Footer record of {length} bytes, expected {rec.FOOTER_LENGTH}"
            )
            return
        end = pos + 9 + length
        if end + 8 > self.size:
            self.problem = TruncatedBagError(
                self.path, pos, f"file ends inside the footer ({self.size - pos} of 37 bytes)"
            )
            return
        summary_start, offsets_start, crc = rec.FOOTER_CONTENT.unpack(f.read(length))
        magic = f.read(8)
        if magic != rec.MAGIC:
            self.problem = CorruptBagError(self.path, end, f"end magic is {magic!r}")
            return
        if crc and summary_start:
            f.seek(summary_start)
            summary = f.read(pos - summary_start)
            computed = zlib.crc32(
                rec.footer_prefix(summary_start, offsets_start), zlib.crc32(summary)
            )
            if computed != crc:
                self.problem = CorruptBagError(
                    self.path,
                    summary_start,
                    f"summary CRC mismatch: stored 0x{crc:08x}, computed 0x{computed:08x}",
                )
                return
        if end + 8 != self.size:
            self.problem = CorruptBagError(
                self.path, end + 8, f"{self.size - end - 8} bytes after the end magic"
            )
            return
        self.complete = True

    def _chunk_header(self, f: BinaryIO, pos: int, length: int) -> Segment:
        fixed = rec.CHUNK_FIXED.size
        if length < fixed + 4 + 8:
            raise ValueError(f"Chunk record of {length} bytes is shorter than its header")
        start, end, usize, crc = rec.CHUNK_FIXED.unpack(f.read(fixed))
        (clen,) = rec.U32.unpack(f.read(4))
        if clen > 16:
            raise ValueError(f"compression name of {clen} bytes")
        compression = f.read(clen).decode()
        if compression not in _COMPRESSIONS:
            raise ValueError(f"unsupported chunk compression {compression!r}")
        (stored,) = rec.U64.unpack(f.read(8))
        head = fixed + 4 + clen + 8
        if head + stored != length:
            raise ValueError(
                f"chunk data of {stored} bytes does not fill the record ({length - head} bytes)"
            )
        if usize > MAX_CHUNK_BYTES or (compression == "" and usize != stored):
            raise ValueError(f"uncompressed size {usize} does not match the stored {stored} bytes")
        if start > end:
            raise ValueError(f"message_start_time {start} > message_end_time {end}")
        return Segment(pos, pos + 9 + head, stored, usize, crc, compression, start, end, True)

    def add_definition(self, opcode: int, content: bytes) -> None:
        """Register a Schema or Channel record's content (raises ValueError if malformed)."""
        if opcode == rec.OP_SCHEMA:
            (sid,) = rec.U16.unpack_from(content, 0)
            name, p = _string(content, 2)
            encoding, p = _string(content, p)
            data, p = _bytes(content, p)
            self.schemas.setdefault(sid, SchemaInfo(sid, name, encoding, data))
            return
        cid, sid = struct.unpack_from("<HH", content, 0)
        topic, p = _string(content, 4)
        encoding, p = _string(content, p)
        (mlen,) = rec.U32.unpack_from(content, p)
        p += 4
        stop = p + mlen
        if stop > len(content):
            raise ValueError("channel metadata runs past the record")
        meta: dict[str, str] = {}
        while p < stop:
            key, p = _string(content, p)
            meta[key], p = _string(content, p)
        self.channels.setdefault(cid, ChannelInfo(cid, topic, sid, encoding, meta))

    def typename(self, channel_id: int) -> str:
        """The schema name of a channel (``""`` for a schemaless or unknown channel)."""
        ch = self.channels.get(channel_id)
        schema = self.schemas.get(ch.schema_id) if ch else None
        return schema.name if schema else ""

    def unknown_channel_ids(self) -> bool:
        """True when some segment may hold channels whose Channel record was not seen yet."""
        return any(
            s.channel_ids is None or not s.channel_ids <= self.channels.keys()
            for s in self.segments
        )

    def discover_channels(self) -> None:
        """Decode segments whose channels are unknown, to learn Channel records kept inside
        chunks (as some writers do). Broken segments are left for the reading pass."""
        with self._open() as f:
            for seg in self.segments:
                if seg.channel_ids is not None and seg.channel_ids <= self.channels.keys():
                    continue
                try:
                    self.load(f, seg, lambda cid: False)
                except BrokenBagError:
                    continue

    # -- pass 2: data -------------------------------------------------------------------------

    def load(
        self, f: BinaryIO, seg: Segment, wanted: Callable[[int], bool]
    ) -> tuple[memoryview, list[tuple[int, int, int, int]]]:
        """Read, decompress and check one segment.

        Returns the uncompressed bytes and ``(log_time, channel_id, start, end)`` of each
        wanted message, sorted by log time (stable). Raises CorruptBagError naming the
        segment's offset on a size, CRC or framing error.
        """
        f.seek(seg.data_offset)
        stored = f.read(seg.stored_size)
        if len(stored) != seg.stored_size:
            raise TruncatedBagError(
                self.path, seg.offset, f"data ends after {len(stored)} of {seg.stored_size} bytes"
            )
        what = "chunk" if seg.is_chunk else "message records"
        try:
            if seg.compression == "zstd":
                raw = zstd.decompress(stored)
            elif seg.compression == "lz4":
                raw = lz4.frame.decompress(stored)
            else:
                raw = stored
        except (zstd.ZstdError, RuntimeError, ValueError) as exc:
            raise CorruptBagError(
                self.path, seg.offset, f"{seg.compression} chunk does not decompress: {exc}"
            ) from None
        if len(raw) != seg.uncompressed_size:
            raise CorruptBagError(
                self.path,
                seg.offset,
                f"chunk decompresses to {len(raw)} bytes, header says {seg.uncompressed_size}",
            )
        if seg.crc:
            crc = zlib.crc32(raw)
            if crc != seg.crc:
                raise CorruptBagError(
                    self.path,
                    seg.offset,
                    f"chunk CRC mismatch: stored 0x{seg.crc:08x}, computed 0x{crc:08x} "
                    f"over {len(raw)} uncompressed bytes",
                )
        msgs: list[tuple[int, int, int, int]] = []
        p, n = 0, len(raw)
        unpack_prefix = rec.RECORD_PREFIX.unpack_from
        unpack_head = _MSG_HEAD.unpack_from
        try:
            while p < n:
                if p + 9 > n:
                    raise ValueError("record prefix cut by the end of the chunk")
                opcode, length = unpack_prefix(raw, p)
                end = p + 9 + length
                if end > n:
                    raise ValueError(f"record of {length} bytes runs past the end of the {what}")
                if opcode == rec.OP_MESSAGE:
                    if length < rec.MESSAGE_FIXED:
                        raise ValueError(f"Message record of {length} bytes")
                    cid, _seq, t = unpack_head(raw, p + 9)
                    if wanted(cid):
                        msgs.append((t, cid, p + 9 + rec.MESSAGE_FIXED, end))
                elif opcode in (rec.OP_SCHEMA, rec.OP_CHANNEL):
                    self.add_definition(opcode, raw[p + 9 : end])
                elif opcode == 0 or 0x10 <= opcode < 0x80:
                    raise ValueError(f"unknown record opcode 0x{opcode:02x}")
                p = end
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise CorruptBagError(
                self.path, seg.offset, f"{what} at byte {seg.offset}, +{p} uncompressed: {exc}"
            ) from None
        if any(msgs[i][0] > msgs[i + 1][0] for i in range(len(msgs) - 1)):
            msgs.sort(key=lambda m: m[0])
        return memoryview(raw), msgs

    def messages(
        self,
        wanted: Callable[[int], bool],
        on_error: Callable[[BrokenBagError], bool],
    ) -> Iterator[tuple[int, int, memoryview]]:
        """Yield ``(log_time, channel_id, payload)`` of wanted channels in log-time order.

        A segment that fails to load is passed to ``on_error``; when it returns True
        reading stops (after yielding what was already decoded), otherwise the segment
        is skipped. The scan problem (:attr:`problem`) is not raised here.
        """
        order = sorted(
            (
                s
                for s in self.segments
                if s.channel_ids is None
                or not s.channel_ids <= self.channels.keys()
                or any(wanted(c) for c in s.channel_ids)
            ),
            key=lambda s: (s.start, s.offset),
        )
        # Heap keys (log_time, segment file offset, index): ties come out in file order. A
        # message is released once the next segment starts later than it, as no later segment
        # can then hold an earlier (or equal-time, earlier-written) message... except one that
        # starts at the same time, hence the strict "<".
        heap: list[tuple[int, int, int, int, memoryview, int, int]] = []
        with self._open() as f:
            for i, seg in enumerate(order):
                try:
                    buf, msgs = self.load(f, seg, wanted)
                except BrokenBagError as exc:
                    if on_error(exc):
                        break
                    continue
                if i + 1 == len(order) and not heap:
                    for t, cid, s, e in msgs:
                        yield t, cid, buf[s:e]
                    continue
                next_start = order[i + 1].start if i + 1 < len(order) else _NEVER
                j = 0
                if not heap:
                    while j < len(msgs) and msgs[j][0] < next_start:
                        t, cid, s, e = msgs[j]
                        yield t, cid, buf[s:e]
                        j += 1
                for k in range(j, len(msgs)):
                    t, cid, s, e = msgs[k]
                    heapq.heappush(heap, (t, seg.offset, k, cid, buf, s, e))
                while heap and heap[0][0] < next_start:
                    t, _, _, cid, hbuf, s, e = heapq.heappop(heap)
                    yield t, cid, hbuf[s:e]
        while heap:
            t, _, _, cid, hbuf, s, e = heapq.heappop(heap)
            yield t, cid, hbuf[s:e]


def _string(buf: bytes, p: int) -> tuple[str, int]:
    raw, p = _bytes(buf, p)
    return raw.decode(), p


def _bytes(buf: bytes, p: int) -> tuple[bytes, int]:
    (n,) = rec.U32.unpack_from(buf, p)
    p += 4
    if p + n > len(buf):
        raise ValueError(f"field of {n} bytes runs past the record")
    return bytes(buf[p : p + n]), p + n
