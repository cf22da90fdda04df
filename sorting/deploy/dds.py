"""A Cyclone DDS transport that speaks ROS 2's wire conventions, without ROS 2.

What a ROS 2 system on Cyclone DDS (``rmw_cyclonedds_cpp``) puts on the wire, and
what this module reproduces:

- topic names: the ROS name with an ``rt`` prefix (``/line1/camera/image_raw`` →
  ``rt/line1/camera/image_raw``), :func:`dds_topic_name`;
- type names: ``<pkg>::msg::dds_::<Type>_`` (:func:`dds_type_name`);
- the DDS type: a keyless, final IDL struct that matches the ``.msg`` field for
  field (:func:`idl_class` builds it from the rosbags typestore), so that XTypes
  type matching and ``cyclonedds ls`` see the same type ROS 2 declares;
- the payload: classic CDR (XCDR1, little endian) with its 4-byte encapsulation
  header — exactly the bytes :func:`sorting.msgs.serialize` produces. Writers and
  readers move those bytes without decoding them (:class:`RawWriter`,
  :class:`RawReader`); the message is decoded once, by rosbags, where it is used.

The payload is padded to a multiple of 4 bytes on the wire with the pad count in
the low two bits of the encapsulation options (XTypes 1.3 §7.6.3.1.2), as Cyclone
does itself; :meth:`RawReader.take` strips it, so what comes out is byte-identical
to what went in.

Configuration: :func:`network_config_xml` pins a domain to the loopback interface
with unicast discovery (no multicast at all) unless interfaces and peers are given.
Raises :class:`~sorting.deploy.errors.DdsError` for DDS failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from xml.sax.saxutils import quoteattr

from cyclonedds import core, domain, pub, qos, sub, topic
from cyclonedds import idl as cidl
from cyclonedds._clayer import ddspy_take, ddspy_write, ddspy_write_ts
from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.idl import types as T  # noqa: N812

from sorting.deploy.errors import DdsError
from sorting.errors import UnknownTypeError
from sorting.msgs import msg_class, typestore
from sorting.runtime.context import QoSProfile

#: Highest DDS domain id whose port numbers fit (7400 + 250 * id + offsets < 65536).
MAX_DOMAIN_ID = 232
#: How long a silent participant stays known (s): :func:`network_config_xml`'s default.
LEASE_S = 2.0
ROS_TOPIC_PREFIX = "rt"

_BASE: dict[str, Any] = {
    "bool": bool, "byte": T.byte, "char": T.uint8, "int8": T.int8, "uint8": T.uint8,
    "int16": T.int16, "uint16": T.uint16, "int32": T.int32, "uint32": T.uint32,
    "int64": T.int64, "uint64": T.uint64, "float32": T.float32, "float64": T.float64,
}


# ------------------------------------------------------------------------------- names

def dds_topic_name(topic: str) -> str:
    """DDS topic of absolute ROS ``topic`` (``/a/b`` → ``rt/a/b``); DdsError if relative."""
    if not topic.startswith("/"):
        raise DdsError(f"topic {topic!r}: expected an absolute ROS name starting with '/'")
    return ROS_TOPIC_PREFIX + topic


def ros_topic_name(dds_topic: str) -> str | None:
    """The ROS topic of a DDS topic name, or None when it is not a ROS topic (no ``rt/``)."""
    if dds_topic.startswith(ROS_TOPIC_PREFIX + "/"):
        return dds_topic[len(ROS_TOPIC_PREFIX):]
    return None


def dds_type_name(ros_type: str) -> str:
    """``pkg/msg/Type`` → ``pkg::msg::dds_::Type_`` (DdsError for another shape)."""
    parts = ros_type.split("/")
    if len(parts) != 3 or not all(parts):
        raise DdsError(f"type {ros_type!r}: expected 'pkg/msg/Type'")
    pkg, kind, name = parts
    return f"{pkg}::{kind}::dds_::{name}_"


def ros_type_name(dds_type: str) -> str | None:
    """``pkg::msg::dds_::Type_`` → ``pkg/msg/Type``, or None for a non-ROS type name."""
    parts = dds_type.split("::")
    if len(parts) != 4 or parts[2] != "dds_" or not parts[3].endswith("_"):
        return None
    return f"{parts[0]}/{parts[1]}/{parts[3][:-1]}"


# --------------------------------------------------------------------------- IDL types

def _field_type(fieldtype: tuple[Any, ...]) -> Any:
    kind, detail = fieldtype
    # rosbags Nodetype: BASE=1, NAME=2, ARRAY=3, SEQUENCE=4
    if kind == 1:
        base, bound = detail
        if base == "string":
            return T.bounded_str[bound] if bound else str  # type: ignore[misc]
        if base == "wstring":
            raise DdsError("wstring fields are not supported by the DDS transport")
        return _BASE[base]
    if kind == 2:
        return idl_class(detail)
    if kind == 3:
        sub_t, length = detail
        return T.array[_field_type(sub_t), length]  # type: ignore[misc]
    sub_t, bound = detail
    if bound:
        return T.sequence[_field_type(sub_t), bound]  # type: ignore[misc]
    return T.sequence[_field_type(sub_t)]  # type: ignore[misc]


@cache
def idl_class(ros_type: str) -> type[cidl.IdlStruct]:
    """The cyclonedds IDL struct of ``ros_type``, named as ROS 2 names it on DDS.

    Built field for field from the rosbags typestore definition (nested types
    recursively), keyless and final like rosidl's. Raises UnknownTypeError.
    """
    msg_class(ros_type)
    fielddefs = typestore().fielddefs[ros_type][1]
    fields = {name: _field_type(ftype) for name, ftype in fielddefs}
    pkg, kind, name = ros_type.split("/")
    # cyclonedds structs are final by default, like rosidl's: XCDR1 is their native encoding
    return cidl.make_idl_struct(f"{name}_", f"{pkg}.{kind}.dds_.{name}_", fields)


# ------------------------------------------------------------------------ configuration

def network_config_xml(
    interfaces: Sequence[str] = ("lo",),
    peers: Sequence[str] = ("127.0.0.1",),
    *,
    multicast: bool = False,
    max_participants: int = 32,
    heartbeat_ms: float = 1.0,
    lease_s: float = LEASE_S,
    spdp_interval_s: float = 1.0,
) -> str:
    """A Cyclone DDS configuration (XML) for ``CYCLONEDDS_URI`` or :class:`DdsParticipant`.

    Defaults pin everything to loopback: the ``lo`` interface, no multicast, unicast
    discovery to 127.0.0.1 with automatic participant indices (up to
    ``max_participants`` processes per domain on one host). For a real network name
    the interfaces (``eth1``) and peers (``10.0.0.12``) of the line YAML.
    ``heartbeat_ms`` is how soon a reliable writer with unacknowledged data asks for
    acknowledgements (Cyclone's default, 100 ms, makes a lockstep clock crawl);
    ``lease_s`` how soon a vanished process is forgotten (its readers stop holding up
    reliable writers; Cyclone's default is 10 s). ``spdp_interval_s`` is how often a
    participant announces itself to every peer, known or not: after a network cut
    longer than the lease both sides have forgotten each other, and only these
    announcements bring them back (Cyclone's default, 30 s, keeps a healed link dark
    for up to half a minute). Raises DdsError for an empty interface list or a
    non-positive time.
    """
    if not interfaces:
        raise DdsError("network: at least one interface is needed")
    for what, value in (("heartbeat_ms", heartbeat_ms), ("lease_s", lease_s),
                        ("spdp_interval_s", spdp_interval_s)):
        if not value > 0:
            raise DdsError(f"network: {what} must be > 0, got {value}")
    mc = "true" if multicast else "false"
    nics = "".join(
        f"<NetworkInterface name={quoteattr(i)} multicast=\"{mc}\"/>" for i in interfaces
    )
    hb = f"{heartbeat_ms:g}ms"
    peer_xml = "".join(f"<Peer address={quoteattr(p)}/>" for p in peers)
    return (
        "<CycloneDDS><Domain id=\"any\"><General>"
        f"<Interfaces>{nics}</Interfaces><AllowMulticast>{mc}</AllowMulticast>"
        "</General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{max_participants}</MaxAutoParticipantIndex>"
        f"<Peers>{peer_xml}</Peers><SPDPInterval>{spdp_interval_s:g}s</SPDPInterval>"
        f"<LeaseDuration>{lease_s:g}s</LeaseDuration></Discovery>"
        f"<Internal><HeartbeatInterval min=\"{hb}\" minsched=\"{hb}\">{hb}</HeartbeatInterval>"
        "</Internal></Domain></CycloneDDS>"
    )


def check_domain_id(domain_id: int) -> int:
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise DdsError(f"DDS domain id {domain_id} out of range 0..{MAX_DOMAIN_ID}")
    return domain_id


def dds_qos(profile: QoSProfile, *, reader: bool, depth: int | None = None) -> qos.Qos:
    """DDS QoS of a ROS profile: keep-last ``depth``, reliability, durability, XCDR1, and
    (readers) ignore samples from the own participant."""
    policies: list[Any] = [
        qos.Policy.History.KeepLast(depth or profile.depth),
        qos.Policy.Reliability.Reliable(max_blocking_time=100_000_000)
        if profile.reliable
        else qos.Policy.Reliability.BestEffort,
        qos.Policy.Durability.TransientLocal
        if profile.transient_local
        else qos.Policy.Durability.Volatile,
        qos.Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    if reader:
        policies.append(qos.Policy.IgnoreLocal.Participant)
    return qos.Qos(*policies)


# ------------------------------------------------------------------------ participant

_domains: dict[int, domain.Domain] = {}
_domains_lock = threading.Lock()


def _pad(raw: bytes) -> bytes:
    pad = -len(raw) % 4
    if not pad:
        return raw
    if len(raw) < 4:
        raise DdsError(f"CDR payload of {len(raw)} bytes has no encapsulation header")
    return raw[:3] + bytes([(raw[3] & 0xFC) | pad]) + raw[4:] + b"\0" * pad


def _unpad(raw: bytes) -> bytes:
    pad = raw[3] & 0x03 if len(raw) >= 4 else 0
    if not pad:
        return raw
    return raw[:3] + bytes([raw[3] & 0xFC]) + raw[4:-pad]


@dataclass(frozen=True)
class Endpoint:
    """A discovered publication or subscription: ROS names (None if not ROS), DDS names."""

    dds_topic: str
    dds_type: str
    topic: str | None
    msg_type: str | None
    participant: str
    reliable: bool
    transient_local: bool


class RawWriter:
    """Writes CDR bytes (as :func:`sorting.msgs.serialize` gives them) to one DDS topic."""

    def __init__(self, writer: pub.DataWriter[Any], topic: str, msg_type: str) -> None:
        self._w = writer
        self.topic = topic
        self.msg_type = msg_type
        self.written = 0
        self.bytes = 0

    def write(self, raw: bytes, t_ns: int | None = None) -> None:
        """Write one sample; ``t_ns`` (ns) becomes the DDS source timestamp. DdsError on failure."""
        data = _pad(raw)
        ret = ddspy_write(self._w._ref, data) if t_ns is None else ddspy_write_ts(
            self._w._ref, data, int(t_ns))
        if ret < 0:
            raise DdsError(f"write on {self.topic!r} ({self.msg_type}) failed: DDS return {ret}")
        self.written += 1
        self.bytes += len(raw)

    def matched(self) -> int:
        """Number of matched remote readers."""
        return len(self._w.get_matched_subscriptions())

    def wait_for_acks(self, timeout_s: float) -> bool:
        """Block until every matched reliable reader acknowledged all samples (or timeout)."""
        try:
            return bool(self._w.wait_for_acks(int(timeout_s * 1e9)))
        except AttributeError:  # cyclonedds 11.0.1 raises this instead of returning on timeout
            return False


class RawReader:
    """Takes CDR bytes from one DDS topic; each sample comes with its source timestamp (ns)."""

    def __init__(self, reader: sub.DataReader[Any], topic: str, msg_type: str) -> None:
        self._r = reader
        self.topic = topic
        self.msg_type = msg_type
        self.taken = 0

    def take(self, n: int = 256) -> list[tuple[bytes, int]]:
        """Up to ``n`` samples as (CDR bytes, source timestamp ns), oldest first."""
        mask = core.SampleState.Any | core.ViewState.Any | core.InstanceState.Any
        ret = ddspy_take(self._r._ref, mask, n)
        if isinstance(ret, int):
            raise DdsError(f"take on {self.topic!r} failed: DDS return {ret}")
        out = [(_unpad(data), int(info.source_timestamp)) for data, info in ret if info.valid_data]
        self.taken += len(out)
        return out

    def matched(self) -> int:
        """Number of matched remote writers."""
        return len(self._r.get_matched_publications())

    @property
    def entity(self) -> sub.DataReader[Any]:
        return self._r


class DdsParticipant:
    """One DDS participant on ``domain_id``, making raw writers and readers for ROS topics.

    ``config_xml`` configures the domain the first time this process uses it
    (default: :func:`network_config_xml`, loopback only); later participants on the
    same domain in the same process share that configuration. Raises DdsError.
    """

    def __init__(self, domain_id: int, config_xml: str | None = None) -> None:
        self.domain_id = check_domain_id(domain_id)
        with _domains_lock:
            if domain_id not in _domains:
                try:
                    _domains[domain_id] = domain.Domain(
                        domain_id, config_xml if config_xml is not None else network_config_xml()
                    )
                except core.DDSException as e:
                    raise DdsError(f"cannot create DDS domain {domain_id}: {e}") from None
        try:
            self.dp = domain.DomainParticipant(domain_id)
        except core.DDSException as e:
            raise DdsError(f"cannot join DDS domain {domain_id}: {e}") from None
        self._topics: dict[str, tuple[str, topic.Topic[Any]]] = {}
        self._pubs_reader: BuiltinDataReader | None = None
        self._seen: dict[str, Endpoint] = {}
        self.key = str(self.dp.guid)

    def _topic(self, ros_topic: str, msg_type: str) -> topic.Topic[Any]:
        have = self._topics.get(ros_topic)
        if have is not None:
            if have[0] != msg_type:
                raise DdsError(
                    f"topic {ros_topic!r} already used with {have[0]} in this process, "
                    f"not {msg_type}"
                )
            return have[1]
        try:
            cls = idl_class(msg_type)
        except UnknownTypeError as e:
            raise DdsError(f"topic {ros_topic!r}: {e}") from None
        t: topic.Topic[Any] = topic.Topic(self.dp, dds_topic_name(ros_topic), cls)
        self._topics[ros_topic] = (msg_type, t)
        return t

    def writer(self, ros_topic: str, msg_type: str, profile: QoSProfile) -> RawWriter:
        """A writer on absolute ``ros_topic``. Writers are always reliable (a reliable
        writer serves best-effort readers too) and keep at least 64 samples."""
        t = self._topic(ros_topic, msg_type)
        wq = QoSProfile(max(profile.depth, 64), True, profile.transient_local)
        return RawWriter(pub.DataWriter(self.dp, t, dds_qos(wq, reader=False)), ros_topic, msg_type)

    def reader(self, ros_topic: str, msg_type: str, profile: QoSProfile,
               depth: int | None = None) -> RawReader:
        """A reader on absolute ``ros_topic`` with ``profile``'s reliability/durability and
        history ``depth`` (default: the profile's)."""
        t = self._topic(ros_topic, msg_type)
        r: sub.DataReader[Any] = sub.DataReader(
            self.dp, t, dds_qos(profile, reader=True, depth=depth))
        return RawReader(r, ros_topic, msg_type)

    def publications(self) -> list[Endpoint]:
        """Every remote publication discovered so far (accumulated across calls)."""
        if self._pubs_reader is None:
            self._pubs_reader = BuiltinDataReader(self.dp, BuiltinTopicDcpsPublication)
        for s in self._pubs_reader.take(N=1024):
            if not getattr(s, "topic_name", None):
                continue
            q = s.qos
            rel = q[qos.Policy.Reliability] if q is not None else None
            dur = q[qos.Policy.Durability] if q is not None else None
            self._seen[str(s.key)] = Endpoint(
                s.topic_name, s.type_name, ros_topic_name(s.topic_name),
                ros_type_name(s.type_name), str(s.participant_key),
                rel != qos.Policy.Reliability.BestEffort,
                dur == qos.Policy.Durability.TransientLocal,
            )
        return [e for e in self._seen.values() if e.participant != self.key]

    def close(self) -> None:
        """Delete the participant and everything it made (idempotent)."""
        dp = getattr(self, "dp", None)
        if dp is not None:
            self._pubs_reader = None
            self._topics.clear()
            del self.dp
            dp.__del__()


def wait_matched(
    endpoints: Iterable[RawWriter | RawReader], timeout_s: float, at_least: int = 1
) -> bool:
    """Poll until each endpoint has ``at_least`` matches or ``timeout_s`` passes; True if all."""
    items = list(endpoints)
    deadline = time.monotonic() + timeout_s
    while True:
        if all(e.matched() >= at_least for e in items):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


class DataWait:
    """Sleep until one of ``readers`` holds data (a DDS WaitSet) — no busy polling."""

    def __init__(self, participant: DdsParticipant, readers: Iterable[RawReader]) -> None:
        self._ws = core.WaitSet(participant.dp)
        mask = core.SampleState.Any | core.ViewState.Any | core.InstanceState.Any
        self._conds = [core.ReadCondition(r.entity, mask) for r in readers]
        for c in self._conds:
            self._ws.attach(c)

    def wait(self, timeout_s: float) -> bool:
        """True when data is available, False after ``timeout_s`` without any."""
        return int(self._ws.wait(int(timeout_s * 1e9))) > 0
