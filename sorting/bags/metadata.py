"""rosbag2 ``metadata.yaml`` (version 9, as ROS 2 Jazzy writes it) and QoS profiles.

:func:`dump_metadata` renders the file deterministically (fixed key order, no
clock, no host names), so two identical recordings give identical text.
:func:`load_metadata` reads one back and raises :class:`~sorting.errors.BagError`
naming the file and the missing key when it is not a rosbag2 metadata file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from sorting.errors import BagError

METADATA_FILE = "metadata.yaml"
ROSBAG2_VERSION = 9
#: rmw's "infinite" duration, as ``ros2 bag record`` stores unset deadlines/lifespans.
INFINITE = QosTime(9223372036, 854775807)

#: ROS 2 default publisher QoS: reliable, volatile, keep last 10.
DEFAULT_QOS = Qos(
    QosHistory.KEEP_LAST,
    10,
    QosReliability.RELIABLE,
    QosDurability.VOLATILE,
    INFINITE,
    INFINITE,
    QosLiveliness.AUTOMATIC,
    INFINITE,
    False,
)
#: ROS 2 sensor-data QoS: best effort, volatile, keep last 5.
SENSOR_QOS = DEFAULT_QOS._replace(depth=5, reliability=QosReliability.BEST_EFFORT)
#: Latched topics (static TF, camera info of a fixed camera): transient local, keep last 1.
LATCHED_QOS = DEFAULT_QOS._replace(depth=1, durability=QosDurability.TRANSIENT_LOCAL)


def qos_dicts(profiles: Sequence[Qos]) -> list[dict[str, Any]]:
    """QoS profiles as rosbag2 v9 writes them (lower-case policy names, sec/nsec times)."""

    def time(t: QosTime) -> dict[str, int]:
        return {"sec": int(t.sec), "nsec": int(t.nsec)}

    return [
        {
            "history": q.history.name.lower(),
            "depth": int(q.depth),
            "reliability": q.reliability.name.lower(),
            "durability": q.durability.name.lower(),
            "deadline": time(q.deadline),
            "lifespan": time(q.lifespan),
            "liveliness": q.liveliness.name.lower(),
            "liveliness_lease_duration": time(q.liveliness_lease_duration),
            "avoid_ros_namespace_conventions": bool(q.avoid_ros_namespace_conventions),
        }
        for q in profiles
    ]


def qos_yaml(profiles: Sequence[Qos]) -> str:
    """QoS profiles as the YAML string rosbag2 puts in MCAP channel metadata."""
    return _dump(qos_dicts(profiles)).strip()


# libyaml's emitter when present: the metadata is rewritten after every chunk, and the
# pure-Python emitter took ~13 ms a time, most of the write cost of a bag
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(data: object) -> str:
    return yaml.dump(
        data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


@dataclass
class TopicRecord:
    """One topic of a bag: name, ROS type, serialization, QoS, type hash and message count."""

    name: str
    typename: str
    serialization_format: str = "cdr"
    qos: list[Qos] = field(default_factory=lambda: [DEFAULT_QOS])
    type_hash: str = ""
    message_count: int = 0


@dataclass
class BagMetadata:
    """The content of ``metadata.yaml`` that crmsort reads and writes."""

    storage_identifier: str
    files: list[str]
    topics: list[TopicRecord]
    starting_time_ns: int = 0
    duration_ns: int = 0
    message_count: int = 0
    compression_format: str = ""
    compression_mode: str = ""
    version: int = ROSBAG2_VERSION
    ros_distro: str = "jazzy"
    custom_data: dict[str, str] | None = None
    file_counts: list[int] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def info_dict(meta: BagMetadata) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` mapping, keys in rosbag2's order."""
    file_counts = meta.file_counts or [meta.message_count] * len(meta.files)
    return {
        "version": meta.version,
        "storage_identifier": meta.storage_identifier,
        "duration": {"nanoseconds": int(meta.duration_ns)},
        "starting_time": {"nanoseconds_since_epoch": int(meta.starting_time_ns)},
        "message_count": int(meta.message_count),
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": t.name,
                    "type": t.typename,
                    "serialization_format": t.serialization_format,
                    "offered_qos_profiles": qos_dicts(t.qos),
                    "type_description_hash": t.type_hash,
                },
                "message_count": int(t.message_count),
            }
            for t in meta.topics
        ],
        "compression_format": meta.compression_format,
        "compression_mode": meta.compression_mode,
        "relative_file_paths": list(meta.files),
        "files": [
            {
                "path": name,
                "starting_time": {"nanoseconds_since_epoch": int(meta.starting_time_ns)},
                "duration": {"nanoseconds": int(meta.duration_ns)},
                "message_count": int(count),
            }
            for name, count in zip(meta.files, file_counts, strict=True)
        ],
        "custom_data": dict(sorted(meta.custom_data.items())) if meta.custom_data else None,
        "ros_distro": meta.ros_distro,
    }


def dump_metadata(meta: BagMetadata) -> str:
    """Render ``metadata.yaml`` text (deterministic: same metadata, same bytes)."""
    return _dump({"rosbag2_bagfile_information": info_dict(meta)})


def dump_info(meta: BagMetadata) -> str:
    """The bare info mapping as YAML, as rosbag2 puts it in the MCAP ``rosbag2`` metadata record."""
    return _dump(info_dict(meta)).strip()


def write_metadata(directory: Path, meta: BagMetadata) -> None:
    """Write ``directory/metadata.yaml`` atomically (temp file + rename), so a reader or a
    killed writer never leaves a half file."""
    target = directory / METADATA_FILE
    tmp = directory / (METADATA_FILE + ".tmp")
    tmp.write_text(dump_metadata(meta), encoding="utf-8")
    tmp.replace(target)


def _parse_qos(value: object) -> list[Qos]:
    items: Any = yaml.safe_load(value) if isinstance(value, str) else value
    if not items:
        return []
    out = []
    for item in items:

        def enum(cls: Any, key: str, item: Mapping[str, Any] = item) -> Any:
            raw = item.get(key, "unknown")
            if isinstance(raw, int):
                return cls(raw)
            return cls.__members__.get(str(raw).upper(), cls.UNKNOWN)

        def time(key: str, item: Mapping[str, Any] = item) -> QosTime:
            t = item.get(key) or {}
            return QosTime(int(t.get("sec", 0)), int(t.get("nsec", 0)))

        out.append(
            Qos(
                enum(QosHistory, "history"),
                int(item.get("depth", 0)),
                enum(QosReliability, "reliability"),
                enum(QosDurability, "durability"),
                time("deadline"),
                time("lifespan"),
                enum(QosLiveliness, "liveliness"),
                time("liveliness_lease_duration"),
                bool(item.get("avoid_ros_namespace_conventions", False)),
            )
        )
    return out


def parse_qos(value: object) -> list[Qos]:
    """Parse offered QoS profiles (v9 list or v8 YAML string); unknown policies map to UNKNOWN."""
    try:
        return _parse_qos(value)
    except (yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise BagError(f"offered_qos_profiles is not a list of QoS profiles: {exc}") from None


def load_metadata(path: Path) -> BagMetadata:
    """Read a rosbag2 ``metadata.yaml``; raise BagError naming the file and the bad key."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BagError(f"{path}: cannot read rosbag2 metadata: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rosbag2_bagfile_information"), dict):
        raise BagError(f"{path}: not rosbag2 metadata (no 'rosbag2_bagfile_information' mapping)")
    info = doc["rosbag2_bagfile_information"]
    key = "rosbag2_bagfile_information"
    try:
        topics = []
        for i, entry in enumerate(info.get("topics_with_message_count") or []):
            key = f"rosbag2_bagfile_information.topics_with_message_count[{i}]"
            tm = entry["topic_metadata"]
            topics.append(
                TopicRecord(
                    name=str(tm["name"]),
                    typename=str(tm["type"]),
                    serialization_format=str(tm.get("serialization_format", "cdr")),
                    qos=parse_qos(tm.get("offered_qos_profiles") or []),
                    type_hash=str(tm.get("type_description_hash", "") or ""),
                    message_count=int(entry.get("message_count", 0)),
                )
            )
        key = "rosbag2_bagfile_information.relative_file_paths"
        files = [str(f) for f in info["relative_file_paths"]]
        key = "rosbag2_bagfile_information.storage_identifier"
        storage = str(info["storage_identifier"])
        key = "rosbag2_bagfile_information"
        return BagMetadata(
            storage_identifier=storage,
            files=files,
            topics=topics,
            starting_time_ns=int(
                (info.get("starting_time") or {}).get("nanoseconds_since_epoch", 0)
            ),
            duration_ns=int((info.get("duration") or {}).get("nanoseconds", 0)),
            message_count=int(info.get("message_count", 0)),
            compression_format=str(info.get("compression_format", "") or ""),
            compression_mode=str(info.get("compression_mode", "") or ""),
            version=int(info.get("version", 0)),
            ros_distro=str(info.get("ros_distro", "") or ""),
            custom_data=info.get("custom_data"),
            raw=info,
        )
    except (KeyError, TypeError, ValueError, BagError) as exc:
        raise BagError(f"{path}: invalid rosbag2 metadata at {key}: {exc!r}") from None
