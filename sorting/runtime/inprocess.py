"""The in-process executor: many nodes in one Python process, in a deterministic order.

Order of events (the contract tests rely on):

1. ``publish()`` calls every tap (in the order they were added) with the clock
   time, then appends the message to each matching subscription's queue
   (bounded by the QoS depth: when full the *oldest* queued message is dropped
   and that subscription's ``dropped`` counter increments). Nothing is
   delivered inside ``publish()``.
2. Queued messages are delivered in global publish order (FIFO). Messages
   published by those callbacks are delivered in the same step, after the ones
   already queued. A step ends when no message is queued.
3. Then the next timer fires: timers are ordered by (due time, creation order);
   a timer created at time t with period p is first due at t + p, then every p
   (no drift). ``spin_until(t)`` fires every timer due at or before t.

Messages are passed by reference to every subscriber (never copied): a
subscriber must not mutate what it receives.

Errors in callbacks propagate as :class:`~sorting.errors.CallbackError` naming
the node and the topic (``on_error="raise"``, default) or are logged and
counted in :attr:`InProcessExecutor.error_count` (``on_error="log"``).
Parameter overrides that a node never declares make ``add_node`` raise
:class:`~sorting.errors.ParameterError` (as ROS 2 does for undeclared
parameters). QoS compatibility (reliability, durability mismatches) is not
checked: every subscription on a topic receives every publish; a
transient-local subscription also receives the history kept by
transient-local publishers on its topic.

The executor is single-threaded; only :meth:`InProcessExecutor.stop` may be
called from a signal handler or another thread.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from sorting.errors import (
    CallbackError,
    RuntimeGraphError,
    UnknownTopicError,
    UnknownTypeError,
)
from sorting.msgs import msg_class
from sorting.runtime import names
from sorting.runtime.clock import RuntimeClock, SimClock
from sorting.runtime.context import Node, NodeContext, QoS, QoSProfile, Time
from sorting.runtime.endpoints import (
    InProcessPublisher,
    InProcessSubscription,
    InProcessTimer,
    NodeInfo,
    SubscriptionStats,
    TopicEntry,
    TopicInfo,
    TopicStats,
)
from sorting.runtime.log import NodeLogger, node_logger
from sorting.runtime.params import Parameter, ParameterStore

N = TypeVar("N", bound=Node)
Tap = Callable[[str, str, int, Any], None]
OnError = Literal["raise", "log"]

_log = logging.getLogger("crmsort.runtime")


def _profile(qos: QoS, where: str) -> QoSProfile:
    profile = QoSProfile(depth=qos) if isinstance(qos, int) else qos
    if profile.depth < 1:
        raise RuntimeGraphError(f"{where}: QoS depth must be >= 1, got {profile.depth}")
    return profile


class _NodeRecord:
    __slots__ = ("ctx", "fqn", "node", "pubs", "subs", "timers")

    def __init__(self, fqn: str, ctx: InProcessContext) -> None:
        self.fqn = fqn
        self.ctx = ctx
        self.node: Node | None = None
        self.pubs: list[InProcessPublisher] = []
        self.subs: list[InProcessSubscription] = []
        self.timers: list[InProcessTimer] = []


class InProcessContext(NodeContext):
    """The :class:`NodeContext` a node gets from :meth:`InProcessExecutor.add_node`."""

    def __init__(
        self, executor: InProcessExecutor, name: str, namespace: str, params: ParameterStore
    ) -> None:
        self._executor = executor
        self._name = name
        self._namespace = namespace
        self._fqn = names.join(namespace, name)
        self.params = params
        self._logger = node_logger(namespace, name, executor.clock)

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return self._fqn

    def resolve_topic_name(self, topic: str) -> str:
        """The absolute name ``topic`` resolves to for this node (raises InvalidNameError)."""
        return names.resolve_topic(topic, self._namespace, self._name)

    def create_publisher(self, msg_type: str, topic: str, qos: QoS) -> InProcessPublisher:
        resolved = self.resolve_topic_name(topic)
        return self._executor._create_publisher(self._fqn, msg_type, resolved, qos)

    def create_subscription(
        self, msg_type: str, topic: str, callback: Callable[[Any], None], qos: QoS
    ) -> InProcessSubscription:
        resolved = self.resolve_topic_name(topic)
        return self._executor._create_subscription(self._fqn, msg_type, resolved, callback, qos)

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> InProcessTimer:
        return self._executor._create_timer(self._fqn, period_s, callback)

    def get_clock(self) -> RuntimeClock:
        return self._executor.clock

    def declare_parameter(self, name: str, default: Any = None) -> Parameter:
        return self.params.declare(name, default)

    def get_parameter(self, name: str) -> Parameter:
        return self.params.get(name)

    def get_logger(self) -> NodeLogger:
        return self._logger


class InProcessExecutor:
    """Hosts nodes in one process and runs their timers and callbacks in a fixed order.

    ``clock`` is a :class:`~sorting.runtime.clock.SimClock` (default, starting at 0)
    or a :class:`~sorting.runtime.clock.WallClock`. ``on_error`` is ``"raise"``
    (a callback exception propagates as CallbackError) or ``"log"`` (it is logged
    on the node's logger and counted in :attr:`error_count`). See the module
    docstring for the order of events.
    """

    def __init__(self, clock: RuntimeClock | None = None, on_error: OnError = "raise") -> None:
        if on_error not in ("raise", "log"):
            raise ValueError(f"on_error must be 'raise' or 'log', got {on_error!r}")
        self.clock: RuntimeClock = clock if clock is not None else SimClock()
        self.on_error: OnError = on_error
        self.error_count = 0
        self._errors_by_node: dict[str, int] = {}
        self._nodes: dict[str, _NodeRecord] = {}
        self._topics: dict[str, TopicEntry] = {}
        self._taps: list[Tap] = []
        self._pending: deque[list[Any]] = deque()  # entries [subscription | None, msg]
        self._timers: list[tuple[int, int, InProcessTimer]] = []  # heap (due_ns, seq, timer)
        self._timer_seq = 0
        self._pub_seq = 0
        self._stop = False
        self._spinning = False
        self._shut_down = False

    # ------------------------------------------------------------------ graph

    def add_node(
        self,
        node_cls: Callable[[NodeContext], N],
        name: str,
        namespace: str = "/line1",
        parameters: Mapping[str, Any] | None = None,
    ) -> N:
        """Build a context for ``namespace``/``name`` and return ``node_cls(ctx)``.

        Raises InvalidNameError for a bad name or namespace, RuntimeGraphError for a
        duplicate fully qualified name or a type clash on a topic, UnknownTypeError
        for an unknown message type, ParameterError for overrides of parameters the
        node does not declare. On any error the node's publishers, subscriptions and
        timers are removed again and the exception propagates.
        """
        self._check_open("add_node")
        names.validate_node_name(name)
        ns = names.normalize_namespace(namespace)
        fqn = names.join(ns, name)
        if fqn in self._nodes:
            existing = self._nodes[fqn].node
            raise RuntimeGraphError(
                f"duplicate node name {fqn!r} (already used by {type(existing).__name__}); "
                f"give each node a unique name within its namespace"
            )
        ctx = InProcessContext(self, name, ns, ParameterStore(fqn, parameters))
        record = _NodeRecord(fqn, ctx)
        self._nodes[fqn] = record
        try:
            node = node_cls(ctx)
            if not isinstance(node, Node):
                raise RuntimeGraphError(
                    f"add_node({fqn!r}): {node_cls!r} returned {type(node).__name__}, "
                    f"not a sorting.runtime.Node"
                )
            ctx.params.check_overrides_used()
        except BaseException:
            self._remove_record(record)
            raise
        record.node = node
        return node

    def _remove_record(self, record: _NodeRecord) -> None:
        del self._nodes[record.fqn]
        for timer in record.timers:
            timer.cancel()
        touched = {p.topic for p in record.pubs} | {s.topic for s in record.subs}
        for sub in record.subs:
            sub.queue.clear()
        for name in touched:
            topic = self._topics[name]
            topic.pubs = [p for p in topic.pubs if p not in record.pubs]
            topic.subs = [s for s in topic.subs if s not in record.subs]
            if not topic.pubs and not topic.subs and topic.published == 0:
                del self._topics[name]
        for entry in self._pending:
            if entry[0] is not None and entry[0] in record.subs:
                entry[0] = entry[1] = None

    def _topic(self, name: str, msg_type: str, user: str) -> TopicEntry:
        topic = self._topics.get(name)
        if topic is None:
            try:
                msg_class(msg_type)
            except UnknownTypeError as e:
                raise UnknownTypeError(f"{e} (topic {name!r}, used by {user})") from None
            topic = self._topics[name] = TopicEntry(name, msg_type, user)
        elif topic.msg_type != msg_type:
            raise RuntimeGraphError(
                f"topic {name!r} is used with two types: {topic.msg_type} (first by "
                f"{topic.first_user}) and {msg_type} (by {user})"
            )
        return topic

    def _record(self, fqn: str) -> _NodeRecord:
        return self._nodes[fqn]

    def _create_publisher(
        self, fqn: str, msg_type: str, topic: str, qos: QoS
    ) -> InProcessPublisher:
        profile = _profile(qos, f"node {fqn!r} publisher on {topic!r}")
        t = self._topic(topic, msg_type, f"publisher of node {fqn!r}")
        pub = InProcessPublisher(self, t, fqn, profile)
        t.pubs.append(pub)
        self._record(fqn).pubs.append(pub)
        return pub

    def _create_subscription(
        self, fqn: str, msg_type: str, topic: str, callback: Callable[[Any], None], qos: QoS
    ) -> InProcessSubscription:
        profile = _profile(qos, f"node {fqn!r} subscription on {topic!r}")
        t = self._topic(topic, msg_type, f"subscription of node {fqn!r}")
        sub = InProcessSubscription(topic, msg_type, callback, fqn, profile)
        t.subs.append(sub)
        self._record(fqn).subs.append(sub)
        if profile.transient_local:
            kept = sorted(
                (item for p in t.pubs if p.history is not None for item in p.history),
                key=lambda item: item[0],
            )
            for _seq, msg in kept:
                self._enqueue(sub, msg)
        return sub

    def _create_timer(
        self, fqn: str, period_s: float, callback: Callable[[], None]
    ) -> InProcessTimer:
        period_ns = round(period_s * 1e9)
        if not period_ns >= 1:
            raise RuntimeGraphError(f"node {fqn!r}: timer period must be > 0 s, got {period_s!r}")
        self._timer_seq += 1
        timer = InProcessTimer(
            period_ns, callback, fqn, self.clock.now_ns() + period_ns, self._timer_seq
        )
        heapq.heappush(self._timers, (timer.due_ns, timer.seq, timer))
        self._record(fqn).timers.append(timer)
        return timer

    # ---------------------------------------------------------------- publish

    def _enqueue(self, sub: InProcessSubscription, msg: Any) -> None:
        queue = sub.queue
        if len(queue) >= sub.depth:
            oldest = queue.popleft()
            oldest[0] = oldest[1] = None  # dead entry: skipped when reached in _pending
            sub.dropped += 1
        entry = [sub, msg]
        queue.append(entry)
        self._pending.append(entry)
        sub.received += 1

    def _publish(self, topic: TopicEntry, msg: Any, pub: InProcessPublisher | None) -> None:
        if getattr(msg, "__msgtype__", None) != topic.msg_type:
            got = getattr(msg, "__msgtype__", type(msg).__name__)
            who = f"node {pub.node!r}" if pub is not None else "inject()"
            raise RuntimeGraphError(
                f"{who} published a {got} on {topic.name!r}, which carries {topic.msg_type}"
            )
        topic.published += 1
        self._pub_seq += 1
        if pub is not None and pub.history is not None:
            pub.history.append((self._pub_seq, msg))
        if self._taps:
            t_ns = self.clock.now_ns()
            for tap in self._taps:
                try:
                    tap(topic.name, topic.msg_type, t_ns, msg)
                except Exception as e:
                    name = getattr(tap, "__qualname__", type(tap).__qualname__)
                    self._failed(e, f"tap {name!r}", topic.name, "on topic")
        for sub in topic.subs:
            self._enqueue(sub, msg)

    def add_tap(self, fn: Tap) -> None:
        """Call ``fn(topic, msg_type, t_ns, msg)`` for every publish, in publish order.

        ``t_ns`` is the clock time at the publish. A tap that raises is treated like a
        failing callback (CallbackError, or logged under ``on_error="log"``).
        """
        self._taps.append(fn)

    def remove_tap(self, fn: Tap) -> None:
        """Remove a tap added with :meth:`add_tap` (ValueError if it is not there)."""
        self._taps.remove(fn)

    def inject(self, topic: str, msg_type: str, msg: Any) -> None:
        """Publish ``msg`` on absolute ``topic`` from outside any node, at the current time.

        Raises InvalidNameError for a bad or relative topic, RuntimeGraphError for a
        type clash or a message that is not a ``msg_type``, UnknownTypeError.
        """
        t = self._topics.get(topic)
        if t is None:
            names.validate_topic(topic)
            t = self._topic(topic, msg_type, "inject()")
        elif t.msg_type != msg_type:
            self._topic(topic, msg_type, "inject()")  # raises the type clash
        self._publish(t, msg, None)

    # ------------------------------------------------------------------- spin

    def _failed(self, e: Exception, node: str, topic: str | None, what: str) -> None:
        """Raise CallbackError for a failure of ``node`` (a node name or ``tap '<fn>'``),
        or log and count it under ``on_error="log"``."""
        where = f"{what} {topic!r}" if topic is not None else what
        label = node if node.startswith("tap ") else f"node {node!r}"
        text = f"{label}: {where} raised {type(e).__name__}: {e}"
        if self.on_error == "raise":
            raise CallbackError(text, node, topic) from e
        self.error_count += 1
        self._errors_by_node[node] = self._errors_by_node.get(node, 0) + 1
        (self._logger_of(node) or _log).error(text, exc_info=e)

    def _logger_of(self, fqn: str) -> NodeLogger | None:
        record = self._nodes.get(fqn)
        return record.ctx.get_logger() if record is not None else None

    def _drain(self) -> int:
        """Deliver every queued message (and those their callbacks publish); return the count."""
        pending = self._pending
        n = 0
        while pending:
            entry = pending.popleft()
            sub = entry[0]
            if sub is None:
                continue
            sub.queue.popleft()  # the head of its queue is this entry (both are FIFO)
            msg = entry[1]
            entry[1] = None
            sub.delivered += 1
            n += 1
            try:
                sub.callback(msg)
            except Exception as e:
                self._failed(e, sub.node, sub.topic, "callback on topic")
        return n

    def _next_timer(self) -> InProcessTimer | None:
        heap = self._timers
        while heap:
            timer = heap[0][2]
            if not timer.canceled:
                return timer
            heapq.heappop(heap)
        return None

    def _fire(self, timer: InProcessTimer) -> None:
        timer.due_ns += timer.period_ns
        heapq.heapreplace(self._timers, (timer.due_ns, timer.seq, timer))
        try:
            timer.callback()
        except Exception as e:
            self._failed(e, timer.node, None, f"timer (period {timer.period_ns * 1e-9:g} s)")

    def _stop_requested(self) -> bool:
        return self._stop

    def _begin(self, what: str) -> None:
        self._check_open(what)
        if self._spinning:
            raise RuntimeGraphError(f"{what}() called from inside a callback; spins do not nest")
        self._spinning = True

    def _check_open(self, what: str) -> None:
        if self._shut_down:
            raise RuntimeGraphError(f"{what}() after shutdown(): the executor is closed")

    def _stopped(self) -> bool:
        """If a stop was requested: consume it and return True."""
        if self._stop:
            self._stop = False
            return True
        return False

    def spin_until(self, t_ns: int) -> bool:
        """Run every event up to and including time ``t_ns`` (ns); leave the clock at ``t_ns``.

        Returns True when ``t_ns`` was reached, False when :meth:`stop` ended the spin
        early (after the current step). A ``t_ns`` in the past only delivers what is queued.
        """
        self._begin("spin_until")
        try:
            clock = self.clock
            self._drain()
            while not self._stop:
                timer = self._next_timer()
                if timer is None or timer.due_ns > t_ns:
                    break
                if not clock.sleep_until(timer.due_ns, self._stop_requested):
                    break
                self._fire(timer)
                self._drain()
            if self._stopped():
                return False
            if not clock.sleep_until(t_ns, self._stop_requested):
                self._stopped()
                return False
            return True
        finally:
            self._spinning = False

    def spin_for(self, seconds: float) -> bool:
        """:meth:`spin_until` ``now + seconds`` (s, rounded to ns)."""
        return self.spin_until(self.clock.now_ns() + round(seconds * 1e9))

    def spin_once(self) -> bool:
        """Process the next event: deliver what is queued if anything is, else fire the next
        timer (moving the clock to its due time) and deliver what it published.

        Returns False when there was nothing to do (no queued message, no timer) or a stop
        was requested.
        """
        self._begin("spin_once")
        try:
            if self._stopped():
                return False
            if self._pending:
                self._drain()
                return True
            timer = self._next_timer()
            if timer is None:
                return False
            if not self.clock.sleep_until(timer.due_ns, self._stop_requested):
                self._stopped()
                return False
            self._fire(timer)
            self._drain()
            return True
        finally:
            self._spinning = False

    def spin(self) -> None:
        """Run until :meth:`stop` is called or nothing is left to do (no timers, no queue)."""
        while self.spin_once():
            pass

    def drain(self) -> int:
        """Deliver every queued message now without moving the clock; return how many."""
        self._begin("drain")
        try:
            return self._drain()
        finally:
            self._spinning = False

    def stop(self) -> None:
        """Ask the running (or next) spin to return after its current step.

        Safe to call from a signal handler, another thread or a callback; the request is
        consumed by the spin it ends.
        """
        self._stop = True

    def reset_time(self, t_ns: int) -> None:
        """Set the clock to ``t_ns`` without firing timers in between (e.g. the start of a bag).

        Every timer keeps its remaining time to its next due time.
        """
        delta = t_ns - self.clock.now_ns()
        self.clock.reset(t_ns)
        timers = [t for _, _, t in self._timers if not t.canceled]
        for timer in timers:
            timer.due_ns += delta
        self._timers = [(t.due_ns, t.seq, t) for t in timers]
        heapq.heapify(self._timers)

    def shutdown(self) -> None:
        """Call every node's ``shutdown()`` once, in the order the nodes were added.

        Idempotent. Every node is shut down even if one raises; then the first error is
        raised as CallbackError (or each is logged under ``on_error="log"``). Spinning or
        adding nodes afterwards raises RuntimeGraphError.
        """
        if self._shut_down:
            return
        self._shut_down = True
        errors: list[tuple[str, Exception]] = []
        for record in list(self._nodes.values()):
            if record.node is None:
                continue
            try:
                record.node.shutdown()
            except Exception as e:
                errors.append((record.fqn, e))
        for fqn, err in errors:
            self._failed(err, fqn, None, "shutdown()")

    def __enter__(self) -> InProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---------------------------------------------------------- introspection

    def now(self) -> Time:
        """The clock's current time."""
        return self.clock.now()

    def now_ns(self) -> int:
        return self.clock.now_ns()

    @property
    def pending(self) -> int:
        """Number of queued, not yet delivered messages (over all subscriptions)."""
        return sum(len(r.queue) for rec in self._nodes.values() for r in rec.subs)

    def topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name: (topic, msg_type, published count)."""
        return [TopicInfo(t.name, t.msg_type, t.published) for _, t in sorted(self._topics.items())]

    def _sub_stats(self, s: InProcessSubscription) -> SubscriptionStats:
        return SubscriptionStats(
            s.node, s.topic, s.msg_type, s.depth, s.received, s.delivered, s.dropped, len(s.queue)
        )

    def topic_stats(self, topic: str) -> TopicStats:
        """Counters of ``topic`` (absolute name); raises UnknownTopicError."""
        t = self._topics.get(topic)
        if t is None:
            raise UnknownTopicError(
                f"no topic {topic!r} in this executor; topics are {sorted(self._topics)}"
            )
        subs = tuple(self._sub_stats(s) for s in t.subs)
        return TopicStats(
            t.name, t.msg_type, t.published,
            sum(s.delivered for s in subs), sum(s.dropped for s in subs), subs,
        )

    def subscriptions(self) -> list[SubscriptionStats]:
        """Counters of every subscription, by node (in order added), then creation order."""
        return [self._sub_stats(s) for rec in self._nodes.values() for s in rec.subs]

    def error_counts(self) -> dict[str, int]:
        """Node (or ``tap '<fn>'``) → callbacks that failed under ``on_error="log"``."""
        return dict(self._errors_by_node)

    def drop_counts(self) -> dict[str, int]:
        """Topic → messages dropped over all its subscriptions, for topics with any drop."""
        drops = {name: sum(s.dropped for s in t.subs) for name, t in sorted(self._topics.items())}
        return {name: n for name, n in drops.items() if n}

    def nodes(self) -> list[NodeInfo]:
        """Every node in the order added."""
        return [
            NodeInfo(
                rec.fqn, type(rec.node).__name__,
                tuple(p.topic for p in rec.pubs), tuple(s.topic for s in rec.subs),
                sum(not t.canceled for t in rec.timers),
            )
            for rec in self._nodes.values()
        ]

    def node(self, fqn: str) -> Node:
        """The node instance named ``fqn`` (e.g. ``/line1/camera``); raises RuntimeGraphError."""
        record = self._nodes.get(fqn)
        if record is None or record.node is None:
            raise RuntimeGraphError(f"no node {fqn!r}; nodes are {sorted(self._nodes)}")
        return record.node
