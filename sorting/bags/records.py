"""MCAP record layout (spec v0, https://mcap.dev/spec): opcodes, struct formats, encoders.

Every record is ``opcode:u8 length:u64 content[length]``, little-endian; strings
are ``u32 length + UTF-8``, byte arrays ``u32`` (or ``u64`` for chunk data)
``length + bytes``, maps ``u32 byte-length + key/value pairs``. Only what the
crmsort writer emits and the reader checks lives here; the writer and the reader
share it so the two cannot drift apart.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

MAGIC = b"\x89MCAP0\r\n"

OP_HEADER = 0x01
OP_FOOTER = 0x02
OP_SCHEMA = 0x03
OP_CHANNEL = 0x04
OP_MESSAGE = 0x05
OP_CHUNK = 0x06
OP_MESSAGE_INDEX = 0x07
OP_CHUNK_INDEX = 0x08
OP_ATTACHMENT = 0x09
OP_ATTACHMENT_INDEX = 0x0A
OP_STATISTICS = 0x0B
OP_METADATA = 0x0C
OP_METADATA_INDEX = 0x0D
OP_SUMMARY_OFFSET = 0x0E
OP_DATA_END = 0x0F
#: opcodes defined by MCAP v0; 0x80-0xFF are for private records, which readers skip.
KNOWN_OPCODES = frozenset(range(0x01, 0x10))

RECORD_PREFIX = struct.Struct("<BQ")  # opcode, content length
#: message record prefix: opcode, length, channel_id, sequence, log_time, publish_time
MESSAGE_PREFIX = struct.Struct("<BQHIQQ")
MESSAGE_FIXED = 2 + 4 + 8 + 8  # content bytes before the payload
#: chunk content start: message_start_time, message_end_time, uncompressed_size, uncompressed_crc
CHUNK_FIXED = struct.Struct("<QQQI")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
FOOTER_CONTENT = struct.Struct("<QQI")
FOOTER_LENGTH = FOOTER_CONTENT.size  # 20


def string(text: str) -> bytes:
    """Encode an MCAP string (u32 byte length + UTF-8)."""
    raw = text.encode()
    return U32.pack(len(raw)) + raw


def byte_array(raw: bytes) -> bytes:
    """Encode MCAP bytes with a u32 length prefix."""
    return U32.pack(len(raw)) + raw


def string_map(items: Mapping[str, str]) -> bytes:
    """Encode a ``map<string, string>`` in the given order (callers sort for determinism)."""
    body = b"".join(string(k) + string(v) for k, v in items.items())
    return U32.pack(len(body)) + body


def record(opcode: int, content: bytes) -> bytes:
    """Frame ``content`` as one record."""
    return RECORD_PREFIX.pack(opcode, len(content)) + content


def header(profile: str, library: str) -> bytes:
    """Header record."""
    return record(OP_HEADER, string(profile) + string(library))


def schema(schema_id: int, name: str, encoding: str, data: bytes) -> bytes:
    """Schema record."""
    return record(
        OP_SCHEMA, U16.pack(schema_id) + string(name) + string(encoding) + byte_array(data)
    )


def channel(
    channel_id: int, schema_id: int, topic: str, encoding: str, metadata: Mapping[str, str]
) -> bytes:
    """Channel record."""
    content = U16.pack(channel_id) + U16.pack(schema_id) + string(topic) + string(encoding)
    return record(OP_CHANNEL, content + string_map(metadata))


def message_index(channel_id: int, entries: list[tuple[int, int]]) -> bytes:
    """MessageIndex record: (log_time, offset in the uncompressed chunk) pairs."""
    body = struct.pack(f"<{2 * len(entries)}Q", *(v for pair in entries for v in pair))
    return record(OP_MESSAGE_INDEX, U16.pack(channel_id) + U32.pack(len(body)) + body)


def chunk_index(
    start: int,
    end: int,
    chunk_offset: int,
    chunk_length: int,
    index_offsets: Mapping[int, int],
    index_length: int,
    compression: str,
    compressed_size: int,
    uncompressed_size: int,
) -> bytes:
    """ChunkIndex record (summary section)."""
    offsets = b"".join(U16.pack(cid) + U64.pack(off) for cid, off in index_offsets.items())
    content = (
        struct.pack("<QQQQ", start, end, chunk_offset, chunk_length)
        + U32.pack(len(offsets))
        + offsets
        + U64.pack(index_length)
        + string(compression)
        + struct.pack("<QQ", compressed_size, uncompressed_size)
    )
    return record(OP_CHUNK_INDEX, content)


def statistics(
    message_count: int,
    schema_count: int,
    channel_count: int,
    metadata_count: int,
    chunk_count: int,
    start: int,
    end: int,
    channel_counts: Mapping[int, int],
) -> bytes:
    """Statistics record (summary section); no attachments are ever written."""
    counts = b"".join(U16.pack(cid) + U64.pack(n) for cid, n in channel_counts.items())
    content = struct.pack(
        "<QHIIIIQQ",
        message_count,
        schema_count,
        channel_count,
        0,
        metadata_count,
        chunk_count,
        start,
        end,
    )
    return record(OP_STATISTICS, content + U32.pack(len(counts)) + counts)


def metadata(name: str, items: Mapping[str, str]) -> bytes:
    """Metadata record."""
    return record(OP_METADATA, string(name) + string_map(items))


def metadata_index(offset: int, length: int, name: str) -> bytes:
    """MetadataIndex record (summary section)."""
    return record(OP_METADATA_INDEX, struct.pack("<QQ", offset, length) + string(name))


def summary_offset(opcode: int, start: int, length: int) -> bytes:
    """SummaryOffset record."""
    return record(OP_SUMMARY_OFFSET, struct.pack("<BQQ", opcode, start, length))


def data_end(crc: int) -> bytes:
    """DataEnd record (0 = data section CRC not computed)."""
    return record(OP_DATA_END, U32.pack(crc))


def footer_prefix(summary_start: int, summary_offset_start: int) -> bytes:
    """Footer record without its trailing CRC field (the summary CRC covers these bytes)."""
    return (
        RECORD_PREFIX.pack(OP_FOOTER, FOOTER_LENGTH)
        + U64.pack(summary_start)
        + U64.pack(summary_offset_start)
    )
