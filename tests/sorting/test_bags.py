"""rosbag2 MCAP bags: layout, determinism, ordering, truncation, corruption, SIGKILL, bad input.

Chunk boundaries for the damage tests come from the independent ``mcap`` reader's
chunk index, not from crmsort's reader, so the expected message lists do not
depend on the code under test.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap.writer import Writer as McapWriter
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from sorting.bags import (
    SENSOR_QOS,
    BagError,
    BagExistsError,
    BagReader,
    BagWriter,
    CorruptBagError,
    TruncatedBagError,
    bag_info,
    format_info,
    read_decoded,
    read_messages,
)
from sorting.errors import UnknownTopicError, UnknownTypeError
from sorting.msgs import message_definition, new, serialize, typestore

T0 = 1_764_000_000_000_000_000
IMAGE = "/line1/camera/image_raw"
STATUS = "/line1/status"
Msg = tuple[str, str, int, bytes]


def make_messages(n: int, seed: int = 3) -> list[Msg]:
    """n camera frames (1-3 kB of noise) at 100 Hz, each followed 1 ms later by a status."""
    rng = np.random.default_rng(seed)
    out: list[Msg] = []
    for i in range(n):
        t = T0 + i * 10_000_000
        size = int(rng.integers(1000, 3000))
        img = new(
            "sensor_msgs/msg/Image",
            height=1,
            width=size,
            encoding="mono8",
            step=size,
            data=rng.integers(0, 256, size, dtype=np.uint8),
        )
        out.append((IMAGE, "sensor_msgs/msg/Image", t, serialize(img)))
        status = new("crmsort_msgs/msg/LineStatus", state=i % 4, objects_seen=i)
        out.append((STATUS, "crmsort_msgs/msg/LineStatus", t + 1_000_000, serialize(status)))
    return out


def write_bag(path: Path, msgs: list[Msg], **kw: Any) -> Path:
    with BagWriter(path, **kw) as bag:
        bag.add_topic(IMAGE, "sensor_msgs/msg/Image", qos=SENSOR_QOS)
        bag.add_topic(STATUS, "crmsort_msgs/msg/LineStatus")
        for topic, _, t, raw in msgs:
            bag.write(topic, t, raw)
    return path


def mcap_file(bag: Path) -> Path:
    return bag / f"{bag.name}_0.mcap"


def chunk_spans(bag: Path) -> list[tuple[int, int, int, int]]:
    """(offset, end, start_time, end_time) of each chunk, from the independent mcap reader."""
    with open(mcap_file(bag), "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    return sorted(
        (
            c.chunk_start_offset,
            c.chunk_start_offset + c.chunk_length,
            c.message_start_time,
            c.message_end_time,
        )
        for c in summary.chunk_indexes
    )


def read_until_error(bag: Path, **kw: Any) -> tuple[list[Msg], Exception | None]:
    got: list[Msg] = []
    try:
        for m in read_messages(bag, **kw):
            got.append(m)
    except BagError as exc:
        return got, exc
    return got, None


def copy_bag(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / f"{src.name}_0.mcap").rename(mcap_file(dst))  # keep the <dir>_0.mcap convention
    meta = (dst / "metadata.yaml").read_text().replace(f"{src.name}_0.mcap", f"{dst.name}_0.mcap")
    (dst / "metadata.yaml").write_text(meta)
    return dst


@pytest.fixture(scope="module")
def msgs() -> list[Msg]:
    return make_messages(120)


@pytest.fixture(scope="module")
def multi_chunk_bag(tmp_path_factory: pytest.TempPathFactory, msgs: list[Msg]) -> Path:
    # ~24 kB chunks: about 10 chunks for 120 frames of ~2 kB
    return write_bag(tmp_path_factory.mktemp("bags") / "src", msgs, chunk_size=24_000)


# -- layout and readers ------------------------------------------------------------------------


def test_layout_metadata_and_independent_reader(tmp_path: Path, msgs: list[Msg]) -> None:
    bag = write_bag(tmp_path / "run1", msgs, compression="zstd", chunk_size=30_000)
    assert sorted(p.name for p in bag.iterdir()) == ["metadata.yaml", "run1_0.mcap"]
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["run1_0.mcap"]
    assert info["message_count"] == len(msgs)
    assert info["starting_time"]["nanoseconds_since_epoch"] == T0
    assert info["duration"]["nanoseconds"] == msgs[-1][2] - T0
    counts = {
        t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]
    }
    assert counts == {IMAGE: 120, STATUS: 120}
    image_meta = info["topics_with_message_count"][0]["topic_metadata"]
    assert image_meta["offered_qos_profiles"][0]["reliability"] == "best_effort"
    assert image_meta["type_description_hash"] == typestore().hash_rihs01("sensor_msgs/msg/Image")

    with open(mcap_file(bag), "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
        assert header.profile == "ros2"
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == len(msgs)
        assert summary.statistics.chunk_count == len(summary.chunk_indexes) > 1
        for schema in summary.schemas.values():
            assert schema.encoding == "ros2msg"
            assert schema.data.decode() == message_definition(schema.name)
        for channel in summary.channels.values():
            assert channel.message_encoding == "cdr"
            assert set(channel.metadata) == {"offered_qos_profiles", "topic_type_hash"}
            assert yaml.safe_load(channel.metadata["offered_qos_profiles"])[0]["depth"] in (5, 10)
        assert {c.compression for c in summary.chunk_indexes} == {"zstd"}
        got = [
            (ch.topic, s.name if s else "", m.log_time, m.data)
            for s, ch, m in reader.iter_messages()
        ]
    assert got == msgs
    # every chunk carries a CRC, and the independent reader validates them all
    with open(mcap_file(bag), "rb") as f:
        assert len(list(StreamReader(f, validate_crcs=True).records)) > len(msgs)
    with open(mcap_file(bag), "rb") as f:
        chunks = [
            r for r in StreamReader(f, emit_chunks=True).records if type(r).__name__ == "Chunk"
        ]
    assert chunks and all(getattr(c, "uncompressed_crc", 0) != 0 for c in chunks)

    with Reader(bag) as rb:
        assert rb.message_count == len(msgs)
        assert [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in rb.messages()] == msgs


@pytest.mark.parametrize("compression", [None, "zstd", "lz4"])
def test_round_trip_and_bag_info(tmp_path: Path, msgs: list[Msg], compression: str | None) -> None:
    bag = write_bag(tmp_path / "b", msgs, compression=compression, chunk_size=20_000)
    assert list(read_messages(bag)) == msgs
    assert [m[:3] for m in read_messages(bag, [STATUS])] == [m[:3] for m in msgs if m[0] == STATUS]
    decoded = list(read_decoded(bag, [STATUS]))
    assert [m[3].objects_seen for m in decoded] == list(range(120))

    info = bag_info(bag)
    assert info.problems == [] and info.complete
    assert info.storage == "mcap" and info.compression == (compression or "none")
    assert info.message_count == len(msgs) and info.chunk_count > 1
    assert info.start_ns == T0 and info.end_ns == msgs[-1][2]
    image = info.topic(IMAGE)
    assert image.count == 120 and image.typename == "sensor_msgs/msg/Image"
    assert image.bytes == sum(len(m[3]) for m in msgs if m[0] == IMAGE)
    # 120 frames 10 ms apart: 119 intervals over 1.19 s = 100 Hz (float rounding only)
    assert image.rate_hz == pytest.approx(100.0, rel=1e-9)
    text = format_info(info)
    assert IMAGE in text and "crmsort_msgs/msg/LineStatus" in text and "complete" in text


def test_writes_are_deterministic(tmp_path: Path, msgs: list[Msg]) -> None:
    for compression in (None, "zstd", "lz4"):
        a = write_bag(
            tmp_path / f"a_{compression}" / "bag", msgs, compression=compression, chunk_size=10_000
        )
        b = write_bag(
            tmp_path / f"b_{compression}" / "bag", msgs, compression=compression, chunk_size=10_000
        )
        assert mcap_file(a).read_bytes() == mcap_file(b).read_bytes(), compression
        assert (a / "metadata.yaml").read_bytes() == (b / "metadata.yaml").read_bytes()
    assert mcap_file(a).read_bytes() != mcap_file(tmp_path / "a_None" / "bag").read_bytes()


def test_log_time_order_across_overlapping_chunks(tmp_path: Path) -> None:
    # log times go back and forth so chunk time ranges overlap; equal times keep write order
    rng = np.random.default_rng(11)
    times = T0 + rng.integers(0, 50, 400) * 1000
    msgs = [
        (STATUS, "crmsort_msgs/msg/LineStatus", int(t), i.to_bytes(4, "little") * 8)
        for i, t in enumerate(times)
    ]
    bag = write_bag(tmp_path / "b", msgs, chunk_size=500)
    assert len(chunk_spans(bag)) > 10
    expected = sorted(msgs, key=lambda m: m[2])  # stable: ties in write order
    assert list(read_messages(bag)) == expected


def test_mutable_buffers_are_copied_once_written(tmp_path: Path) -> None:
    buf = bytearray(b"\x00\x01\x00\x00" + b"x" * 12)
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic(STATUS, "crmsort_msgs/msg/LineStatus")
        bag.write(STATUS, T0, buf)
        buf[4:] = b"y" * 12  # the caller reuses its buffer
        bag.write(STATUS, T0 + 1, memoryview(buf))
    assert [m[3] for m in read_messages(tmp_path / "b")] == [
        b"\x00\x01\x00\x00" + b"x" * 12,
        b"\x00\x01\x00\x00" + b"y" * 12,
    ]


def test_writer_errors(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagExistsError, match="exists"):
        BagWriter(tmp_path / "exists")
    with pytest.raises(BagError, match="compression"):
        BagWriter(tmp_path / "c", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(BagError, match="chunk_size"):
        BagWriter(tmp_path / "d", chunk_size=0)
    with BagWriter(tmp_path / "b") as bag:
        bag.add_topic(STATUS, "crmsort_msgs/msg/LineStatus")
        assert bag.add_topic(STATUS, "crmsort_msgs/msg/LineStatus") == 1
        with pytest.raises(BagError, match="was added with type"):
            bag.add_topic(STATUS, "sensor_msgs/msg/Image")
        with pytest.raises(UnknownTypeError, match="nope_msgs/msg/X"):
            bag.add_topic("/x", "nope_msgs/msg/X")
        with pytest.raises(BagError, match="absolute"):
            bag.add_topic("relative", "crmsort_msgs/msg/LineStatus")
        with pytest.raises(UnknownTopicError, match="/missing"):
            bag.write("/missing", T0, b"")
        with pytest.raises(BagError, match="outside"):
            bag.write(STATUS, -1, b"")
    with pytest.raises(BagError, match="closed"):
        bag.write(STATUS, T0, b"")


# -- damage ------------------------------------------------------------------------------------


def _cut_points(bag: Path) -> dict[str, tuple[int, int]]:
    """name -> (cut length, offset the error must name)."""
    spans = chunk_spans(bag)
    data = mcap_file(bag).read_bytes()
    header_end = 8 + 9 + int.from_bytes(data[9:17], "little")
    third, second = spans[3], spans[2]
    size = len(data)
    return {
        "in the magic": (5, 0),
        "just after the header": (header_end, header_end),
        "mid-record prefix": (second[0] + 4, second[0]),
        "mid-chunk": ((third[0] + third[1]) // 2, third[0]),
        "between chunks": (spans[4][0], spans[4][0]),
        "inside the footer": (size - 20, size - 37),
    }


@pytest.mark.parametrize(
    "where",
    [
        "in the magic",
        "just after the header",
        "mid-record prefix",
        "mid-chunk",
        "between chunks",
        "inside the footer",
    ],
)
def test_truncated_bag_reads_complete_chunks_then_names_file_and_offset(
    tmp_path: Path, multi_chunk_bag: Path, msgs: list[Msg], where: str
) -> None:
    cut, offset = _cut_points(multi_chunk_bag)[where]
    bag = copy_bag(multi_chunk_bag, tmp_path / "cut")
    with open(mcap_file(bag), "r+b") as f:
        f.truncate(cut)
    complete = [span for span in chunk_spans(multi_chunk_bag) if span[1] <= cut]
    last_time = max((s[3] for s in complete), default=-1)
    expected = [m for m in msgs if m[2] <= last_time]  # written in time order, chunk by chunk

    got, err = read_until_error(bag)
    assert got == expected
    assert isinstance(err, TruncatedBagError)
    assert err.path == mcap_file(bag) and err.offset == offset
    assert err.messages_read == len(expected)
    assert str(mcap_file(bag)) in str(err) and f"byte {offset}" in str(err)

    reader = BagReader(bag, strict=False)
    assert list(reader.messages()) == expected  # no raise
    assert len(reader.errors) == 1 and isinstance(reader.errors[0], TruncatedBagError)

    info = bag_info(bag)
    assert f"truncated at byte {offset} after {len(expected)} messages" in info.problems[0]
    assert not info.complete
    assert info.topic(IMAGE).count == sum(m[0] == IMAGE for m in expected)
    assert info.topic(STATUS).count == sum(m[0] == STATUS for m in expected)
    assert "Problems" in format_info(info)


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_flipped_byte_in_a_chunk_is_a_corrupt_error_at_that_chunk(
    tmp_path: Path, msgs: list[Msg], compression: str | None
) -> None:
    bag = write_bag(tmp_path / "b", msgs, chunk_size=24_000, compression=compression)
    spans = chunk_spans(bag)
    off, end, _, _ = spans[4]
    path = mcap_file(bag)
    data = bytearray(path.read_bytes())
    pos = (off + end) // 2  # inside the chunk's (compressed) data
    data[pos : pos + 3] = bytes(b ^ 0x5A for b in data[pos : pos + 3])
    path.write_bytes(bytes(data))
    before = [m for m in msgs if m[2] < spans[4][2]]
    inside = {m[2] for m in msgs if spans[4][2] <= m[2] <= spans[4][3]}

    got, err = read_until_error(bag)
    assert got == before
    assert isinstance(err, CorruptBagError)
    assert err.offset == off and err.path == path and f"byte {off}" in str(err)

    reader = BagReader(bag, strict=False)
    rest = list(reader.messages())
    assert rest == [m for m in msgs if m[2] not in inside]  # only the damaged chunk is lost
    assert len(reader.problems) == 1 and "corrupt" in reader.problems[0]
    info = bag_info(bag)
    assert info.message_count == len(rest) and any("corrupt" in p for p in info.problems)
    # the independent reader agrees that the chunk is damaged (CRCs are written)
    with open(path, "rb") as f, pytest.raises(Exception):  # noqa: B017 (any mcap error will do)
        list(StreamReader(f, validate_crcs=True).records)


def test_corrupt_record_length_names_offset(tmp_path: Path, multi_chunk_bag: Path) -> None:
    bag = copy_bag(multi_chunk_bag, tmp_path / "c")
    off = chunk_spans(bag)[2][0]
    path = mcap_file(bag)
    data = bytearray(path.read_bytes())
    data[off + 1 : off + 9] = (7).to_bytes(8, "little")  # chunk length too short for its header
    path.write_bytes(bytes(data))
    got, err = read_until_error(bag)
    assert isinstance(err, CorruptBagError) and err.offset == off
    assert len(got) == err.messages_read > 0


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from sorting.bags import BagWriter
    from sorting.msgs import new, serialize
    w = BagWriter(sys.argv[1], chunk_size=4000, compression="zstd")
    w.add_topic("/line1/status", "crmsort_msgs/msg/LineStatus")
    closed = 0
    for i in range(10**6):
        raw = serialize(new("crmsort_msgs/msg/LineStatus", objects_seen=i, uptime_s=i * 0.25))
        before = w.chunk_count
        w.write("/line1/status", 10**18 + i * 10**7, raw)
        if w.chunk_count != before:
            closed = i + 1  # this write closed and flushed a chunk
        if w.chunk_count == 5 and i + 1 - closed == 7:  # 5 chunks on disk, 7 msgs in memory
            print(closed, flush=True)
            time.sleep(60)
""")


def test_sigkilled_writer_leaves_a_bag_readable_up_to_its_last_chunk(tmp_path: Path) -> None:
    bag = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(bag)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        flushed = int(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] == flushed > 0  # refreshed with every chunk

    got, err = read_until_error(bag)
    assert [m[3] for m in got] == [
        serialize(new("crmsort_msgs/msg/LineStatus", objects_seen=i, uptime_s=i * 0.25))
        for i in range(flushed)
    ]
    assert isinstance(err, TruncatedBagError) and "without a footer" in str(err)
    assert err.offset == mcap_file(bag).stat().st_size
    info = bag_info(bag)
    assert info.message_count == flushed and info.chunk_count == 5
    assert info.problems and "truncated" in info.problems[0]


def test_truncated_foreign_mcap_with_channels_inside_chunks(tmp_path: Path) -> None:
    # rosbags writes schema/channel records inside chunks, 1 MiB chunks, no chunk CRC
    store = typestore()
    bag = tmp_path / "foreign"
    frames = []
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(IMAGE, "sensor_msgs/msg/Image", typestore=store)
        for i in range(6):
            img = new("sensor_msgs/msg/Image", width=400_000, data=np.full(400_000, i, np.uint8))
            raw = serialize(img)
            frames.append(raw)
            w.write(conn, T0 + i, raw)
    path = next(bag.glob("*.mcap"))
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    chunks = sorted(c.chunk_start_offset + c.chunk_length for c in summary.chunk_indexes)
    assert len(chunks) >= 2
    with open(path, "r+b") as f:
        f.truncate(chunks[0] + 100)
    got, err = read_until_error(bag, topics=[IMAGE])
    assert [m[3] for m in got] == frames[: len(got)] and 0 < len(got) < 6
    assert isinstance(err, TruncatedBagError) and err.path == path


def test_unchunked_foreign_mcap_is_read_in_log_time_order(tmp_path: Path, msgs: list[Msg]) -> None:
    (tmp_path / "plain").mkdir()
    shuffled = [msgs[i] for i in np.random.default_rng(5).permutation(len(msgs))]
    with open(tmp_path / "plain" / "plain.mcap", "wb") as f:
        w = McapWriter(f, use_chunking=False)
        w.start(profile="ros2", library="test")
        ids = {}
        for topic, typename in (
            (IMAGE, "sensor_msgs/msg/Image"),
            (STATUS, "crmsort_msgs/msg/LineStatus"),
        ):
            sid = w.register_schema(typename, "ros2msg", message_definition(typename).encode())
            ids[topic] = w.register_channel(topic, "cdr", sid)
        for topic, _, t, raw in shuffled:
            w.add_message(ids[topic], t, raw, t)
        w.finish()  # type: ignore[no-untyped-call,unused-ignore]
    # a directory without metadata.yaml (and the file itself) is read as a bag
    assert list(read_messages(tmp_path / "plain")) == msgs
    assert list(read_messages(tmp_path / "plain" / "plain.mcap", [IMAGE])) == [
        m for m in msgs if m[0] == IMAGE
    ]


# -- bad input ---------------------------------------------------------------------------------


def test_bad_paths_and_topics(tmp_path: Path, multi_chunk_bag: Path) -> None:
    with pytest.raises(BagError, match="does not exist") as exc:
        read_messages(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag") as exc:
        bag_info(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(exc.value)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        BagReader(tmp_path / "notes.txt")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk_0.mcap").write_bytes(b"this is not an mcap file at all")
    got, err = read_until_error(tmp_path / "junk")
    assert got == [] and isinstance(err, CorruptBagError) and err.offset == 0
    (tmp_path / "badmeta").mkdir()
    (tmp_path / "badmeta" / "metadata.yaml").write_text("rosbag2_bagfile_information: [1, 2")
    with pytest.raises(BagError, match=r"metadata\.yaml"):
        BagReader(tmp_path / "badmeta")

    with pytest.raises(UnknownTopicError) as unknown:
        read_messages(multi_chunk_bag, topics=["/line1/nope"])
    assert "/line1/nope" in str(unknown.value) and IMAGE in str(unknown.value)


def test_sqlite3_bag_info_and_read(tmp_path: Path, msgs: list[Msg]) -> None:
    store = typestore()
    with Writer(tmp_path / "db", version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conns = {
            STATUS: w.add_connection(STATUS, "crmsort_msgs/msg/LineStatus", typestore=store),
            IMAGE: w.add_connection(IMAGE, "sensor_msgs/msg/Image", typestore=store),
        }
        for topic, _, t, raw in msgs:
            w.write(conns[topic], t, raw)
    assert list(read_messages(tmp_path / "db")) == msgs
    info = bag_info(tmp_path / "db")
    assert info.storage == "sqlite3" and info.message_count == len(msgs) and not info.problems
    with pytest.raises(UnknownTopicError):
        read_messages(tmp_path / "db", topics=["/x"])


def test_damaged_sqlite3_bag_is_a_corrupt_error_naming_the_db3(tmp_path: Path) -> None:
    store = typestore()
    with Writer(tmp_path / "db", version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection(STATUS, "crmsort_msgs/msg/LineStatus", typestore=store)
        for i in range(100):
            w.write(conn, T0 + i, serialize(new("crmsort_msgs/msg/LineStatus", objects_seen=i)))
    db = next((tmp_path / "db").glob("*.db3"))
    db.write_bytes(b"not a database" * 100)
    got, err = read_until_error(tmp_path / "db")
    assert got == [] and isinstance(err, CorruptBagError) and err.path == db
    assert str(db) in str(err)
    info = bag_info(tmp_path / "db")
    assert info.message_count == 0 and any(str(db) in p for p in info.problems)
