"""crmsort message types: the ``crmsort_msgs`` interface package plus ``vision_msgs``.

The ``.msg`` files under ``sorting/msgs/crmsort_msgs/msg`` are the single source:
a ROS 2 workspace builds them with rosidl (``package.xml`` + ``CMakeLists.txt``
sit beside them) and :func:`typestore` registers the very same text with
rosbags for the pure-Python side.
"""

from sorting.msgs.typestore import (
    CRMSORT_TYPES,
    VISION_TYPES,
    deserialize,
    message_definition,
    msg_class,
    new,
    serialize,
    typestore,
)

__all__ = [
    "CRMSORT_TYPES",
    "VISION_TYPES",
    "deserialize",
    "message_definition",
    "msg_class",
    "new",
    "serialize",
    "typestore",
]
