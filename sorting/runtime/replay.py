"""Feed a recorded message stream through an in-process executor.

``messages`` is any iterable of ``(topic, msg_type, t_ns, rawdata)`` in time
order — what a bag reader yields. Each message is decoded with
:func:`sorting.msgs.deserialize`, the executor is advanced to ``t_ns`` (timers
due at or before ``t_ns`` fire first) and the message is injected, so every
subscriber and tap sees it at its recorded time::

    ex = InProcessExecutor(clock_for_speed(speed))
    ex.add_node(Detector, "detector")
    stats = replay(ex, reader_messages, speed)

Before the first message the executor's clock is set to its ``t_ns`` with
:meth:`InProcessExecutor.reset_time` (timers keep their phase), so a bag
stamped in Unix time replays on an executor created at time 0.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sorting.errors import ReplayError, UnknownTypeError
from sorting.msgs import deserialize, msg_class
from sorting.runtime import names
from sorting.runtime.clock import SimClock, WallClock
from sorting.runtime.inprocess import InProcessExecutor

RawMessage = tuple[str, str, int, bytes]


@dataclass(frozen=True)
class ReplayStats:
    """What a replay did: messages injected and skipped, first/last stamp (ns), wall time (s)."""

    messages: int
    skipped: int
    first_t_ns: int | None
    last_t_ns: int | None
    wall_s: float
    stopped: bool

    @property
    def duration_s(self) -> float:
        """Stream time covered, first to last injected message (s)."""
        if self.first_t_ns is None or self.last_t_ns is None:
            return 0.0
        return (self.last_t_ns - self.first_t_ns) * 1e-9

    @property
    def real_time_factor(self) -> float:
        """Stream seconds per wall second (inf for an instant replay)."""
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")


def _check_clock(executor: InProcessExecutor, speed: float | None) -> None:
    clock = executor.clock
    if speed is None:
        if not isinstance(clock, SimClock):
            raise ReplayError(
                f"replay at maximum speed (speed=None) needs an executor on a SimClock, "
                f"got {clock!r}; build it with clock_for_speed(None)"
            )
    elif not speed > 0:
        raise ReplayError(f"replay speed must be > 0 or None (maximum), got {speed!r}")
    elif not isinstance(clock, WallClock) or clock.rate != speed:
        raise ReplayError(
            f"replay at speed {speed} needs an executor on WallClock(rate={speed}), got {clock!r}; "
            f"build it with clock_for_speed({speed})"
        )


def replay(
    executor: InProcessExecutor,
    messages: Iterable[RawMessage],
    speed: float | None = None,
    *,
    topics: Collection[str] | None = None,
    remap: Mapping[str, str] | None = None,
) -> ReplayStats:
    """Replay ``messages`` into ``executor`` at ``speed`` (None = as fast as possible).

    ``topics`` keeps only those (recorded) topic names; ``remap`` renames recorded
    topics (old → new absolute name) before injection. The executor's clock must
    match ``speed`` (see :func:`~sorting.runtime.clock.clock_for_speed`). Returns
    :class:`ReplayStats`; a ``stop()`` on the executor ends the replay early
    (``stopped=True``).

    Raises ReplayError for a clock that does not fit ``speed``, a remap target that
    is not a valid absolute topic, messages out of time order or a message that
    cannot be decoded (naming index, topic and time); UnknownTypeError naming the
    topic for a type the typestore lacks; whatever injection raises (type clash,
    CallbackError from a subscriber).
    """
    _check_clock(executor, speed)
    remap = dict(remap or {})
    for old, new in remap.items():
        try:
            names.validate_topic(new)
        except Exception as e:
            raise ReplayError(f"remap {old!r} -> {new!r}: {e}") from e
    wanted = None if topics is None else frozenset(topics)
    known_types: set[str] = set()
    n = skipped = 0
    first: int | None = None
    last: int | None = None
    stopped = False
    wall0 = time.perf_counter()
    for index, (topic, msg_type, t_ns, rawdata) in enumerate(messages):
        if wanted is not None and topic not in wanted:
            skipped += 1
            continue
        if msg_type not in known_types:
            try:
                msg_class(msg_type)
            except UnknownTypeError as e:
                raise UnknownTypeError(
                    f"message {index} on topic {topic!r} at t={t_ns} ns: {e}"
                ) from None
            known_types.add(msg_type)
        if last is not None and t_ns < last:
            raise ReplayError(
                f"message {index} on topic {topic!r} at t={t_ns} ns is earlier than the one "
                f"before it (t={last} ns): the stream must be in time order"
            )
        try:
            msg = deserialize(rawdata, msg_type)
        except Exception as e:
            raise ReplayError(
                f"message {index} on topic {topic!r} ({msg_type}) at t={t_ns} ns cannot be "
                f"decoded ({len(rawdata)} bytes): {type(e).__name__}: {e}"
            ) from e
        if first is None:
            first = t_ns
            if executor.now_ns() != t_ns:
                executor.reset_time(t_ns)
        if not executor.spin_until(t_ns):
            stopped = True
            break
        executor.inject(remap.get(topic, topic), msg_type, msg)
        n += 1
        last = t_ns
    if last is not None and not stopped:
        executor.drain()
    return ReplayStats(n, skipped, first, last, time.perf_counter() - wall0, stopped)
