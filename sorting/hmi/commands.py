"""Where the operator's commands go: a ``crmsort_msgs/LineCommand`` on the line's
``control/command``, over DDS (:class:`DdsCommandSink`: ``crmsort hmi``, ``crmsort line
start``…) or into an in-process line (:class:`QueueSink`, drained on the executor's thread:
``crmsort run --hmi PORT``)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from sorting.control import Command
from sorting.msgs import new, serialize
from sorting.msgs.convert import header
from sorting.nodes.line_control import COMMAND_TYPE
from sorting.nodes.line_control import CONTROL_COMMAND_TOPIC as COMMAND_TOPIC


def command_topic(namespace: str) -> str:
    """``/line1`` → ``/line1/control/command``."""
    return f"{namespace.rstrip('/')}/{COMMAND_TOPIC}"


def command_msg(cmd: Command, source: str, reason: str = "", stamp_ns: int | None = None) -> Any:
    """A ``LineCommand`` stamped ``stamp_ns`` (default: the wall clock now, ns since 1970;
    the line echoes the stamp in its answer, ``LineControlState.last_command_stamp``)."""
    t_ns = time.time_ns() if stamp_ns is None else stamp_ns
    return new(COMMAND_TYPE, header=header(t_ns, ""), command=int(cmd), source=source,
               reason=reason)


class CommandSink(Protocol):
    """Something that delivers a ``LineCommand`` message to the line."""

    def send(self, msg: Any) -> None: ...


class QueueSink:
    """Commands handed over between threads: the HTTP server :meth:`send`s, the line's
    executor thread :meth:`take`s and publishes them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Any] = deque()

    def send(self, msg: Any) -> None:
        with self._lock:
            self._queue.append(msg)

    def take(self) -> list[Any]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out


class DdsCommandSink:
    """Writes commands on ``<namespace>/control/command`` through ``participant``
    (a :class:`sorting.deploy.dds.DdsParticipant`, reliable, as ROS 2's default QoS).

    ``line_time_ns`` (e.g. :meth:`sorting.hmi.HmiState.line_time_ns`) gives the line's
    clock as last heard: it becomes the sample's DDS source time. A ``--processes`` line
    takes samples in line-clock order, up to its current step, and would hold one stamped
    with the wall clock (years ahead of a simulated line's clock) for ever."""

    def __init__(self, participant: Any, namespace: str,
                 line_time_ns: Callable[[], int | None] | None = None) -> None:
        from sorting.runtime import QoSProfile

        self.topic = command_topic(namespace)
        self.writer = participant.writer(self.topic, COMMAND_TYPE, QoSProfile(depth=10))
        self.line_time_ns = line_time_ns

    def send(self, msg: Any) -> None:
        t_ns = self.line_time_ns() if self.line_time_ns is not None else None
        self.writer.write(serialize(msg, COMMAND_TYPE), t_ns)
