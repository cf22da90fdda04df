"""Handles of the in-process runtime: topics, publishers, subscriptions, timers, statistics.

The executor (:mod:`sorting.runtime.inprocess`) creates these; nodes hold the
publisher, subscription and timer handles; the summary of a run reads the
statistics tuples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sorting.runtime.context import QoSProfile

if TYPE_CHECKING:
    from sorting.runtime.inprocess import InProcessExecutor


class TopicEntry:
    """One topic of an executor: its type, endpoints and publish count."""

    __slots__ = ("first_user", "msg_type", "name", "published", "pubs", "subs")

    def __init__(self, name: str, msg_type: str, first_user: str) -> None:
        self.name = name
        self.msg_type = msg_type
        self.first_user = first_user
        self.pubs: list[InProcessPublisher] = []
        self.subs: list[InProcessSubscription] = []
        self.published = 0


class InProcessPublisher:
    """Publisher handle returned by ``create_publisher``; ``publish(msg)`` enqueues ``msg``."""

    __slots__ = ("_executor", "_topic", "history", "msg_type", "node", "qos", "topic")

    def __init__(self, executor: InProcessExecutor, topic: TopicEntry, node: str, qos: QoSProfile):
        self._executor = executor
        self._topic = topic
        self.topic = topic.name
        self.msg_type = topic.msg_type
        self.node = node
        self.qos = qos
        # (publish sequence number, message) kept for late transient-local subscribers
        self.history: deque[tuple[int, Any]] | None = (
            deque(maxlen=qos.depth) if qos.transient_local else None
        )

    def publish(self, msg: Any) -> None:
        """Publish ``msg`` (a ``msg_type`` message); RuntimeGraphError on a type mismatch."""
        self._executor._publish(self._topic, msg, self)

    def get_subscription_count(self) -> int:
        return len(self._topic.subs)


class InProcessSubscription:
    """Subscription handle: its queue and counters ``received``, ``delivered``, ``dropped``."""

    __slots__ = (
        "callback", "delivered", "depth", "dropped", "msg_type", "node", "qos", "queue",
        "received", "topic",
    )

    def __init__(
        self, topic: str, msg_type: str, callback: Callable[[Any], None], node: str, qos: QoSProfile
    ) -> None:
        self.topic = topic
        self.msg_type = msg_type
        self.callback = callback
        self.node = node
        self.qos = qos
        self.depth = qos.depth
        self.queue: deque[list[Any]] = deque()
        self.received = 0
        self.delivered = 0
        self.dropped = 0


class InProcessTimer:
    """Timer handle: ``period_ns``, the next ``due_ns``; ``cancel()`` stops it for good."""

    __slots__ = ("callback", "canceled", "due_ns", "node", "period_ns", "seq")

    def __init__(
        self, period_ns: int, callback: Callable[[], None], node: str, due_ns: int, seq: int
    ) -> None:
        self.period_ns = period_ns
        self.callback = callback
        self.node = node
        self.due_ns = due_ns
        self.seq = seq
        self.canceled = False

    def cancel(self) -> None:
        self.canceled = True

    def is_canceled(self) -> bool:
        return self.canceled


class TopicInfo(NamedTuple):
    """One topic for a summary: resolved name, message type, number of publishes."""

    topic: str
    msg_type: str
    published: int


class SubscriptionStats(NamedTuple):
    """Counters of one subscription (``queued`` = received - delivered - dropped)."""

    node: str
    topic: str
    msg_type: str
    depth: int
    received: int
    delivered: int
    dropped: int
    queued: int


class TopicStats(NamedTuple):
    """Counters of one topic; ``delivered``/``dropped`` are sums over its subscriptions."""

    topic: str
    msg_type: str
    published: int
    delivered: int
    dropped: int
    subscriptions: tuple[SubscriptionStats, ...]


class NodeInfo(NamedTuple):
    """One node: fully qualified name, class name, topics it publishes/subscribes, timers."""

    name: str
    cls: str
    publishes: tuple[str, ...]
    subscribes: tuple[str, ...]
    timers: int
