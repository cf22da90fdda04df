"""rosbag2 bags: a chunked, crash-tolerant MCAP writer, a tolerant reader and ``bag info``.

* :class:`BagWriter` writes ``<dir>/<dir>_0.mcap`` + ``metadata.yaml`` (rosbag2 v9)
  that ``ros2 bag``, Foxglove, the ``mcap`` readers and ``rosbags`` open; byte-identical
  for identical input; every closed chunk survives a SIGKILL.
* :func:`read_messages` / :func:`read_decoded` / :class:`BagReader` yield messages in
  log-time order from MCAP or sqlite3 bags, and report truncation/corruption with
  the file and byte offset (:class:`TruncatedBagError`, :class:`CorruptBagError`).
* :func:`bag_info` / :func:`format_info` summarise a bag, broken or not.
"""

from sorting.bags.errors import (
    BagError,
    BagExistsError,
    BrokenBagError,
    CorruptBagError,
    TruncatedBagError,
)
from sorting.bags.info import BagInfo, TopicInfo, bag_info, format_info
from sorting.bags.metadata import DEFAULT_QOS, LATCHED_QOS, SENSOR_QOS
from sorting.bags.reader import BagReader, TopicDecl, read_decoded, read_messages
from sorting.bags.writer import BagWriter

__all__ = [
    "DEFAULT_QOS",
    "LATCHED_QOS",
    "SENSOR_QOS",
    "BagError",
    "BagExistsError",
    "BagInfo",
    "BagReader",
    "BagWriter",
    "BrokenBagError",
    "CorruptBagError",
    "TopicDecl",
    "TopicInfo",
    "TruncatedBagError",
    "bag_info",
    "format_info",
    "read_decoded",
    "read_messages",
]
