"""The calibration store's transforms as a ``/tf_static`` ``tf2_msgs/TFMessage``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calibration.records import static_transforms
from calibration.store import CalibrationStore, load_store
from sorting.msgs import convert


def tf_static_message(store: CalibrationStore, t_ns: int = 0) -> Any:
    """One ``TransformStamped`` per transform entry (``T_parent_child``: header frame =
    parent, child_frame_id = child), stamped ``t_ns``."""
    transforms = [
        convert.transform_msg(t_ns, parent, child, tr.translation, tr.as_quaternion())
        for parent, child, tr in static_transforms(store)
    ]
    return convert.new_tf(transforms)


def tf_static_from_file(path: str | Path, t_ns: int = 0) -> Any:
    """:func:`tf_static_message` of the store file ``path`` (raises ``StoreError``)."""
    return tf_static_message(load_store(path), t_ns)
