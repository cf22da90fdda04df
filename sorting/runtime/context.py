"""The node-facing surface of a runtime, shaped like rclpy's ``Node``.

A crmsort node is a class whose constructor takes a :class:`NodeContext` and
declares its publishers, subscriptions, timers and parameters against it::

    class BeltEncoder(Node):
        def __init__(self, ctx: NodeContext) -> None:
            super().__init__(ctx)
            self.pub = ctx.create_publisher("sensor_msgs/msg/JointState", "belt/joint_states", 10)
            ctx.create_timer(0.01, self.tick)

Message types are given by name (``pkg/msg/Type``, as in a bag); messages are
the rosbags dataclasses of :mod:`sorting.msgs`. Topic names without a leading
``/`` are resolved against the node's namespace (``/line1`` + ``camera/image_raw``).
Two implementations: the in-process executor (:mod:`sorting.runtime.inprocess`)
and, when rclpy is present, a ROS 2 host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Time:
    """A point on a clock, integer nanoseconds (like ``rclpy.time.Time``)."""

    nanoseconds: int

    @property
    def seconds(self) -> float:
        return self.nanoseconds * 1e-9

    def to_msg(self) -> Any:
        from sorting.msgs import new

        sec, nsec = divmod(self.nanoseconds, 1_000_000_000)
        return new("builtin_interfaces/msg/Time", sec=sec, nanosec=nsec)


@dataclass(frozen=True)
class QoSProfile:
    """Subset of ROS 2 QoS that matters here: history depth, reliability, durability."""

    depth: int = 10
    reliable: bool = True
    transient_local: bool = False


QoS = QoSProfile | int

# the two profiles ROS 2 lines use everywhere (rclpy's qos_profile_sensor_data and a latched
# topic such as /tf_static)
SENSOR_QOS = QoSProfile(depth=5, reliable=False)
LATCHED_QOS = QoSProfile(depth=1, reliable=True, transient_local=True)


class Clock(Protocol):
    def now(self) -> Time: ...


class Logger(Protocol):
    def debug(self, msg: str) -> None: ...
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


class Publisher(Protocol):
    topic: str
    msg_type: str

    def publish(self, msg: Any) -> None: ...


class Subscription(Protocol):
    topic: str
    msg_type: str
    dropped: int


class Timer(Protocol):
    period_ns: int

    def cancel(self) -> None: ...


class Parameter(Protocol):
    name: str
    value: Any


class NodeContext(Protocol):
    """What a node may use of its runtime. Mirrors the rclpy ``Node`` methods of the same names."""

    def get_name(self) -> str: ...
    def get_namespace(self) -> str: ...
    def create_publisher(self, msg_type: str, topic: str, qos: QoS) -> Publisher: ...
    def create_subscription(
        self, msg_type: str, topic: str, callback: Callable[[Any], None], qos: QoS
    ) -> Subscription: ...
    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer: ...
    def get_clock(self) -> Clock: ...
    def declare_parameter(self, name: str, default: Any = None) -> Parameter: ...
    def get_parameter(self, name: str) -> Parameter: ...
    def get_logger(self) -> Logger: ...


class Node:
    """Base class of crmsort nodes: keeps the context; subclasses declare I/O in ``__init__``."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    def shutdown(self) -> None:
        """Called once when the runtime stops (flush files, close ports)."""
