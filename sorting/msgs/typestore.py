"""One rosbags typestore for the whole line: ROS 2 Jazzy + vision_msgs + crmsort_msgs.

Messages in the in-process runtime are the dataclasses that rosbags generates
from the ``.msg`` text; on the wire and in bags they are CDR bytes. Use
:func:`new` to build a message with defaults for the fields you leave out.

Example::

    >>> from sorting.msgs import new, serialize, deserialize
    >>> m = new("crmsort_msgs/msg/LineStatus", state=2)
    >>> deserialize(serialize(m), "crmsort_msgs/msg/LineStatus").state
    2
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from sorting.errors import UnknownTypeError

MSG_ROOT = Path(__file__).resolve().parent


def _msg_files(package: str) -> list[Path]:
    return sorted((MSG_ROOT / package / "msg").glob("*.msg"))


CRMSORT_TYPES: tuple[str, ...] = tuple(
    f"crmsort_msgs/msg/{p.stem}" for p in _msg_files("crmsort_msgs")
)
VISION_TYPES: tuple[str, ...] = tuple(
    f"vision_msgs/msg/{p.stem}" for p in _msg_files("vision_msgs")
)


@cache
def typestore() -> Typestore:
    """Return the shared typestore (ROS 2 Jazzy with vision_msgs and crmsort_msgs registered)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for package in ("vision_msgs", "crmsort_msgs"):
        for path in _msg_files(package):
            types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    store.register(types)
    return store


def msg_class(typename: str) -> type:
    """Return the message class of ``typename`` (``pkg/msg/Type``); raise UnknownTypeError."""
    try:
        return typestore().types[typename]
    except KeyError:
        raise UnknownTypeError(
            f"unknown message type {typename!r}: expected 'pkg/msg/Type' registered in the "
            f"crmsort typestore (ROS 2 Jazzy, vision_msgs, crmsort_msgs)"
        ) from None


def _default(store: Typestore, fieldtype: tuple[Any, ...]) -> Any:
    """Zero value for a rosbags field description."""
    kind, detail = fieldtype
    # rosbags Nodetype: BASE=1, NAME=2, ARRAY=3, SEQUENCE=4
    if kind == 1:
        base = detail[0]
        if base == "string":
            return ""
        if base == "bool":
            return False
        if base in ("float32", "float64"):
            return 0.0
        return 0
    if kind == 2:
        return new(detail)
    if kind == 3:
        sub, length = detail
        if sub[0] == 1 and sub[1][0] != "string":
            return np.zeros(length, dtype=_NUMPY[sub[1][0]])
        return [_default(store, sub) for _ in range(length)]
    sub = detail[0]
    if sub[0] == 1 and sub[1][0] != "string":
        return np.zeros(0, dtype=_NUMPY[sub[1][0]])
    return []


_NUMPY = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def new(typename: str, **fields: Any) -> Any:
    """Build a message of ``typename``; fields not given get zero values (empty arrays, "")."""
    store = typestore()
    cls = msg_class(typename)
    try:
        fielddefs = store.fielddefs[typename][1]
    except KeyError:
        raise UnknownTypeError(f"unknown message type {typename!r}") from None
    names = [name for name, _ in fielddefs]
    unknown = set(fields) - set(names)
    if unknown:
        raise UnknownTypeError(f"{typename} has no field(s) {sorted(unknown)}; fields are {names}")
    values = {
        name: fields[name] if name in fields else _default(store, ftype)
        for name, ftype in fielddefs
    }
    return cls(**values)


def serialize(msg: Any, typename: str | None = None) -> bytes:
    """CDR-serialize ``msg`` (little-endian, as ROS 2 publishes it)."""
    name = typename or msg.__msgtype__
    return bytes(typestore().serialize_cdr(msg, name))


def deserialize(data: bytes | memoryview, typename: str) -> Any:
    """Decode CDR bytes into a message of ``typename``."""
    msg_class(typename)
    return typestore().deserialize_cdr(bytes(data), typename)


def message_definition(typename: str) -> str:
    """Full ros2msg definition of ``typename`` and its dependencies, as rosbag2 stores in MCAP."""
    msg_class(typename)
    text, _md5 = typestore().generate_msgdef(typename, ros_version=2)
    return text
