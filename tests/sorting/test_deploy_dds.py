"""DDS transport: ROS 2 naming, IDL types that match the .msg field for field, byte-identical CDR
between two processes on loopback, and foreign publishers of the wrong type."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sorting.deploy.bridge import DdsBridge
from sorting.deploy.dds import (
    DdsParticipant,
    dds_topic_name,
    dds_type_name,
    idl_class,
    network_config_xml,
    ros_topic_name,
    ros_type_name,
    wait_matched,
)
from sorting.deploy.errors import DdsError
from sorting.msgs import CRMSORT_TYPES, msg_class, new, serialize, typestore
from sorting.runtime import InProcessExecutor, Node, NodeContext, QoSProfile

REPO = Path(__file__).resolve().parents[2]
TYPES = [*CRMSORT_TYPES, "sensor_msgs/msg/Image", "sensor_msgs/msg/PointCloud2",
         "diagnostic_msgs/msg/DiagnosticArray", "rosgraph_msgs/msg/Clock"]
_NP = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
       "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
       "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64}


def domain_for(test: str) -> int:
    """A domain no other test run on this machine uses at the same time (PID + test)."""
    return 100 + (os.getpid() * 7 + sum(map(ord, test))) % 120


def _value(ftype: tuple[Any, ...], rng: np.random.Generator, n: int) -> Any:
    kind, detail = ftype
    if kind == 1:
        base = detail[0]
        if base == "string":
            return "".join(rng.choice(list("abcxyz_/0189"), size=int(rng.integers(0, 12))))
        if base == "bool":
            return bool(rng.integers(0, 2))
        if base.startswith("float"):
            return float(np.asarray(rng.normal() * 1e3, dtype=_NP[base]))
        if base == "byte":  # rosbags packs byte as signed, ROS 2 as octet: 0..127 fit both
            return int(rng.integers(0, 128))
        info = np.iinfo(_NP[base])
        return int(rng.integers(info.min, info.max, endpoint=True, dtype=np.int64)
                   if info.max < 2**63 else rng.integers(0, 2**62))
    if kind == 2:
        return random_msg(detail, rng)
    sub, length = detail
    count = length if kind == 3 else (n if sub[0] == 1 else int(rng.integers(0, 3)))
    if sub[0] == 1 and sub[1][0] != "string":
        dt = _NP[sub[1][0]]
        if np.issubdtype(dt, np.floating):
            return rng.normal(size=count).astype(dt)
        if dt is np.bool_:
            return rng.integers(0, 2, size=count).astype(bool)
        return rng.integers(0, 100, size=count).astype(dt)
    return [_value(sub, rng, n) for _ in range(count)]


def random_msg(typename: str, rng: np.random.Generator, n: int = 7) -> Any:
    """A message with every field random (sequences of ``n`` numbers)."""
    fields = typestore().fielddefs[typename][1]
    return msg_class(typename)(**{name: _value(ft, rng, n) for name, ft in fields})


def test_ros2_names() -> None:
    assert dds_topic_name("/line1/camera/image_raw") == "rt/line1/camera/image_raw"
    assert ros_topic_name("rt/line1/camera/image_raw") == "/line1/camera/image_raw"
    assert ros_topic_name("DCPSParticipant") is None
    assert dds_type_name("sensor_msgs/msg/Image") == "sensor_msgs::msg::dds_::Image_"
    assert ros_type_name("crmsort_msgs::msg::dds_::XrfResult_") == "crmsort_msgs/msg/XrfResult"
    assert ros_type_name("Foo") is None
    assert idl_class("sensor_msgs/msg/Image").__idl__.idl_transformed_typename == (
        "sensor_msgs::msg::dds_::Image_")
    with pytest.raises(DdsError, match="absolute"):
        dds_topic_name("camera/image_raw")


def test_config_is_pinned_to_loopback() -> None:
    xml = network_config_xml()
    assert 'NetworkInterface name="lo"' in xml
    assert "<AllowMulticast>false</AllowMulticast>" in xml
    assert '<Peer address="127.0.0.1"/>' in xml


@pytest.mark.parametrize("typename", TYPES)
def test_idl_type_matches_msg_field_for_field(typename: str) -> None:
    # decoding rosbags' CDR with the generated IDL type and encoding it again as XCDR1 gives
    # the same bytes only if every field has the .msg's type, order and alignment
    rng = np.random.default_rng(sum(map(ord, typename)))
    for _ in range(3):
        raw = serialize(random_msg(typename, rng))
        again = idl_class(typename).deserialize(raw).serialize(use_version_2=False)
        assert again == raw


ECHO = textwrap.dedent("""
    import sys, time
    from sorting.deploy.dds import DdsParticipant, wait_matched
    from sorting.runtime import QoSProfile
    from sorting.msgs import serialize, deserialize
    domain, types = int(sys.argv[1]), sys.argv[2:]
    p = DdsParticipant(domain)
    pairs = []
    for i, t in enumerate(types):
        pairs.append((p.reader(f"/echo_test/in{i}", t, QoSProfile(), depth=100),
                      p.writer(f"/echo_test/out{i}", t, QoSProfile())))
    print("ready", flush=True)
    end = time.monotonic() + 30
    left = len(types)
    while left and time.monotonic() < end:
        for r, w in pairs:
            for raw, ts in r.take():
                # decode and encode again with rosbags: what a node on the far side would do
                w.write(serialize(deserialize(raw, r.msg_type), r.msg_type), ts)
                left -= 1
        time.sleep(0.002)
    for _r, w in pairs:
        w.wait_for_acks(5.0)
""")


def test_round_trip_between_processes_is_byte_identical() -> None:
    domain = domain_for("roundtrip")
    rng = np.random.default_rng(5)
    types = [*TYPES]
    proc = subprocess.Popen([sys.executable, "-c", ECHO, str(domain), *types], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        p = DdsParticipant(domain)
        msgs = [random_msg(t, rng) for t in types]
        # one camera-sized image: fragmented on the wire
        msgs[types.index("sensor_msgs/msg/Image")] = new(
            "sensor_msgs/msg/Image", height=480, width=640, encoding="rgb8", step=1920,
            data=rng.integers(0, 256, size=480 * 1920).astype(np.uint8))
        raws = [serialize(m, t) for m, t in zip(msgs, types, strict=True)]
        writers = [p.writer(f"/echo_test/in{i}", t, QoSProfile()) for i, t in enumerate(types)]
        readers = [p.reader(f"/echo_test/out{i}", t, QoSProfile(), depth=10)
                   for i, t in enumerate(types)]
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert wait_matched(writers + readers, 20.0)
        time.sleep(0.2)
        for i, (w, raw) in enumerate(zip(writers, raws, strict=True)):
            w.write(raw, 1_000 + i)
        got: dict[int, tuple[bytes, int]] = {}
        end = time.monotonic() + 20
        while len(got) < len(types) and time.monotonic() < end:
            for i, r in enumerate(readers):
                for raw, ts in r.take():
                    got[i] = (raw, ts)
            time.sleep(0.005)
        assert sorted(got) == list(range(len(types)))
        for i, t in enumerate(types):
            assert got[i][0] == raws[i], t  # byte-identical CDR after two process hops
            assert got[i][1] == 1_000 + i  # the source timestamp travels too
        assert len(raws[types.index("sensor_msgs/msg/Image")]) > 900_000
        p.close()
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


class _Sub(Node):
    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.got: list[Any] = []
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states",
                                self.got.append, 10)


def test_foreign_publisher_of_wrong_type_is_reported_not_fatal() -> None:
    domain = domain_for("foreign")
    ex = InProcessExecutor()
    node = ex.add_node(_Sub, "sub", namespace="/line1")
    mine = DdsParticipant(domain)
    bridge = DdsBridge(ex, mine)
    bridge.attach()
    # a foreign participant (a ROS tool, a rogue script) on the same topic with another type
    foreign = DdsParticipant(domain)
    w = foreign.writer("/line1/belt/joint_states", "std_msgs/msg/String", QoSProfile())
    good = DdsParticipant(domain)
    g = good.writer("/line1/belt/joint_states", "sensor_msgs/msg/JointState", QoSProfile())
    assert wait_matched([g], 5.0)
    w.write(serialize(new("std_msgs/msg/String", data="not a joint state")))
    g.write(serialize(new("sensor_msgs/msg/JointState", name=["belt"])))
    problems: list[str] = []
    end = time.monotonic() + 5
    while time.monotonic() < end and not (problems and node.got):
        problems += bridge.check_types()
        bridge.poll()
        bridge.deliver()
        ex.drain()
        time.sleep(0.01)
    assert len(node.got) == 1 and list(node.got[0].name) == ["belt"]  # good data still flows
    assert problems and "std_msgs/msg/String" in problems[0] and "sensor_msgs/msg/JointState" in (
        problems[0])
    (status,) = bridge.diagnostics(0)
    assert status.level == 2 and "std_msgs/msg/String" in status.message
    for p in (foreign, good, mine):
        p.close()
