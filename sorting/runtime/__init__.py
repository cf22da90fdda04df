"""The node runtime: the rclpy-shaped node surface and the in-process executor.

Nodes are written against :class:`NodeContext` (see :mod:`sorting.runtime.context`);
:class:`InProcessExecutor` hosts them in one process on a :class:`SimClock` or a
:class:`WallClock`; :func:`replay` feeds a recorded message stream through it.
"""

from sorting.runtime.clock import RuntimeClock, SimClock, WallClock, clock_for_speed
from sorting.runtime.context import Node, NodeContext, QoSProfile, Time
from sorting.runtime.endpoints import (
    InProcessPublisher,
    InProcessSubscription,
    InProcessTimer,
    NodeInfo,
    SubscriptionStats,
    TopicInfo,
    TopicStats,
)
from sorting.runtime.inprocess import InProcessContext, InProcessExecutor
from sorting.runtime.log import LOG_FORMAT, SimTimeFormatter
from sorting.runtime.names import resolve_topic
from sorting.runtime.params import Parameter
from sorting.runtime.replay import ReplayStats, replay

__all__ = [
    "LOG_FORMAT",
    "InProcessContext",
    "InProcessExecutor",
    "InProcessPublisher",
    "InProcessSubscription",
    "InProcessTimer",
    "Node",
    "NodeContext",
    "NodeInfo",
    "Parameter",
    "QoSProfile",
    "ReplayStats",
    "RuntimeClock",
    "SimClock",
    "SimTimeFormatter",
    "SubscriptionStats",
    "Time",
    "TopicInfo",
    "TopicStats",
    "WallClock",
    "clock_for_speed",
    "replay",
    "resolve_topic",
]
