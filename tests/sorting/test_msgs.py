"""Round trips of every message type: CDR, MCAP (crmsort and rosbags writers), sqlite3, and
the independent ``mcap`` + ``mcap_ros2`` decoders in a fresh process.

Messages are filled generically from the typestore's field definitions with
non-default values (non-empty strings and sequences, nested messages, every
scalar non-zero), so a field that a path drops or garbles shows up. Floats are
multiples of 1/4 so float32 fields round-trip exactly: equality is exact, no
tolerance.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from sorting.bags import BagWriter, read_decoded
from sorting.msgs import (
    CRMSORT_TYPES,
    VISION_TYPES,
    deserialize,
    msg_class,
    new,
    serialize,
    typestore,
)

STANDARD_TYPES = (
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/PointCloud2",
    "sensor_msgs/msg/JointState",
    "diagnostic_msgs/msg/DiagnosticArray",
    "tf2_msgs/msg/TFMessage",
    "trajectory_msgs/msg/JointTrajectory",
)
ALL_TYPES = (*CRMSORT_TYPES, *VISION_TYPES, *STANDARD_TYPES)
T0 = 1_700_000_000_000_000_000  # ns since the epoch

# rosbags Nodetype values
BASE, NAME, ARRAY, SEQUENCE = 1, 2, 3, 4
NUMPY = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64,
}  # fmt: skip


def _scalar(base: str, bound: int, rng: np.random.Generator) -> Any:
    if base == "string":
        text = f"v{int(rng.integers(1, 10**6))}-µ/ü"
        return text[:bound] if bound else text
    if base == "bool":
        return True
    dtype = np.dtype(NUMPY[base])
    if dtype.kind == "f":
        return float(rng.integers(1, 4000)) / 4.0 * (1 if rng.random() < 0.5 else -1)
    # 1..100 for 8-bit types: rosbags packs ROS 2 ``byte`` as a signed char
    high = 100 if dtype.itemsize == 1 else min(2 ** (8 * dtype.itemsize - 1) - 1, 2**40)
    return int(rng.integers(1, high + 1))


def _numeric_array(base: str, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.array([_scalar(base, 0, rng) for _ in range(n)], dtype=NUMPY[base])


def _value(node: tuple[Any, Any], rng: np.random.Generator) -> Any:
    kind, detail = node
    if kind == BASE:
        return _scalar(detail[0], detail[1], rng)
    if kind == NAME:
        return fill(detail, rng)
    sub, size = detail
    if kind == SEQUENCE:
        size = min(size, 3) if size else int(rng.integers(2, 5))
    if sub[0] == BASE and sub[1][0] != "string":
        return _numeric_array(sub[1][0], size, rng)
    return [_value(sub, rng) for _ in range(size)]


def fill(typename: str, rng: np.random.Generator) -> Any:
    """A message of ``typename`` with every field set to a non-default value."""
    fields = typestore().fielddefs[typename][1]
    return msg_class(typename)(**{name: _value(node, rng) for name, node in fields})


def _fields(msg: Any) -> list[str]:
    """Data field names (rosbags also makes constants and ``__msgtype__`` dataclass fields)."""
    return [name for name, _ in typestore().fielddefs[msg.__msgtype__][1]]


def canonical(value: Any) -> Any:
    """Plain Python (dict/list/int/float/str) of a rosbags message, for comparisons."""
    if dataclasses.is_dataclass(value):
        return {name: canonical(getattr(value, name)) for name in _fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def assert_same(got: Any, want: Any, where: str) -> None:
    """Field-by-field equality; numpy arrays by ``array_equal`` with the same dtype."""
    if dataclasses.is_dataclass(want):
        assert type(got).__name__ == type(want).__name__, where
        for name in _fields(want):
            assert_same(getattr(got, name), getattr(want, name), f"{where}.{name}")
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{where}: {type(got)} is not an ndarray"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert np.array_equal(got, want), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


def topic_of(typename: str) -> str:
    return "/test/" + typename.replace("/msg/", "_").lower()


@pytest.fixture(scope="module")
def samples() -> list[tuple[str, str, int, Any]]:
    """(topic, typename, t_ns, msg): two different messages per type, interleaved in time."""
    rng = np.random.default_rng(20261127)
    out = []
    for k in range(2):
        for i, typename in enumerate(ALL_TYPES):
            out.append(
                (
                    topic_of(typename),
                    typename,
                    T0 + 1000 * (k * len(ALL_TYPES) + i),
                    fill(typename, rng),
                )
            )
    return out


def test_every_type_is_covered_with_non_default_values(
    samples: list[tuple[str, str, int, Any]],
) -> None:
    assert len(CRMSORT_TYPES) >= 13 and len(VISION_TYPES) >= 5
    covered = {typename for _, typename, _, _ in samples}
    assert covered == set(ALL_TYPES)
    for _, typename, _, msg in samples:
        # a filled message must differ from the all-defaults one, or a dropped field could hide
        assert serialize(msg, typename) != serialize(new(typename), typename), typename


@pytest.mark.parametrize("typename", ALL_TYPES)
def test_cdr_round_trip(typename: str) -> None:
    msg = fill(typename, np.random.default_rng(7))
    assert_same(deserialize(serialize(msg, typename), typename), msg, typename)


def _write_crmsort(path: Path, samples: list[tuple[str, str, int, Any]], **kw: Any) -> None:
    with BagWriter(path, **kw) as bag:
        for topic, typename, _, _ in samples:
            bag.add_topic(topic, typename)
        for topic, _, t, msg in samples:
            bag.write_msg(topic, t, msg)


def _write_rosbags(
    path: Path, samples: list[tuple[str, str, int, Any]], plugin: StoragePlugin
) -> None:
    store = typestore()
    with Writer(path, version=9, storage_plugin=plugin) as bag:
        conns = {}
        for topic, typename, _, _ in samples:
            if topic not in conns:
                conns[topic] = bag.add_connection(topic, typename, typestore=store)
        for topic, typename, t, msg in samples:
            bag.write(conns[topic], t, store.serialize_cdr(msg, typename))


def _check_rosbags_reader(path: Path, samples: list[tuple[str, str, int, Any]]) -> None:
    store = typestore()
    with Reader(path) as bag:
        got = [
            (c.topic, c.msgtype, t, store.deserialize_cdr(raw, c.msgtype))
            for c, t, raw in bag.messages()
        ]
    _check(got, samples)


def _check(got: list[tuple[str, str, int, Any]], want: list[tuple[str, str, int, Any]]) -> None:
    assert [g[:3] for g in got] == [w[:3] for w in want]
    for (topic, typename, _, msg), (_, _, _, expected) in zip(got, want, strict=True):
        assert_same(msg, expected, f"{topic} ({typename})")


@pytest.mark.parametrize("compression", [None, "zstd", "lz4"])
def test_crmsort_mcap_read_by_rosbags_and_crmsort(
    tmp_path: Path, samples: list[tuple[str, str, int, Any]], compression: str | None
) -> None:
    # small chunks, so messages span several chunks
    _write_crmsort(tmp_path / "bag", samples, chunk_size=4096, compression=compression)
    _check_rosbags_reader(tmp_path / "bag", samples)
    _check(list(read_decoded(tmp_path / "bag")), samples)


def test_rosbags_mcap_read_by_crmsort(
    tmp_path: Path, samples: list[tuple[str, str, int, Any]]
) -> None:
    # rosbags keeps schemas/channels inside chunks and writes no chunk CRC: a foreign layout
    _write_rosbags(tmp_path / "bag", samples, StoragePlugin.MCAP)
    _check(list(read_decoded(tmp_path / "bag")), samples)


def test_sqlite3_round_trip(tmp_path: Path, samples: list[tuple[str, str, int, Any]]) -> None:
    _write_rosbags(tmp_path / "bag", samples, StoragePlugin.SQLITE3)
    assert list((tmp_path / "bag").glob("*.db3"))
    _check_rosbags_reader(tmp_path / "bag", samples)
    _check(list(read_decoded(tmp_path / "bag")), samples)


# Runs in a fresh interpreter: only the mcap packages and the schemas in the file are used.
INDEPENDENT_DECODER = r"""
import json, sys
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

def plain(v):
    if hasattr(v, "__slots__") and not isinstance(v, (bytes, str)):
        return {k: plain(getattr(v, k)) for k in v.__slots__}
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "tolist"):
        return v.tolist()
    return v

assert "sorting" not in sys.modules
out = []
with open(sys.argv[1], "rb") as f:
    reader = make_reader(f, decoder_factories=[DecoderFactory()])
    for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
        out.append([channel.topic, schema.name, message.log_time, plain(decoded)])
json.dump(out, sys.stdout)
"""


def test_independent_mcap_ros2_decoder_in_fresh_process(
    tmp_path: Path, samples: list[tuple[str, str, int, Any]]
) -> None:
    bag = tmp_path / "bag"
    _write_crmsort(bag, samples, chunk_size=8192, compression="zstd")
    proc = subprocess.run(
        [sys.executable, "-c", INDEPENDENT_DECODER, str(bag / "bag_0.mcap")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert [g[:3] for g in got] == [[t, n, ts] for t, n, ts, _ in samples]
    for (topic, typename, _, decoded), (_, _, _, msg) in zip(got, samples, strict=True):
        assert decoded == canonical(msg), f"{topic} ({typename}) differs"
