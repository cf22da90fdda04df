"""Clocks of the in-process runtime: simulated time and (scaled) wall time.

Both count integer nanoseconds and expose ``now() -> Time``. The executor moves
time with :meth:`sleep_until` before each event:

- :class:`SimClock`: time stands still between events and jumps to the next
  event's time at once, so a simulation runs as fast as the CPU allows and is
  fully deterministic.
- :class:`WallClock`: time is real (monotonic) time times ``rate`` since an
  anchor; ``sleep_until`` really sleeps. ``rate=2.0`` runs twice as fast as
  real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from sorting.runtime.context import Time

#: Longest single sleep of a WallClock: how quickly a ``stop()`` is noticed, in s.
_SLEEP_SLICE_S = 0.05


class RuntimeClock(Protocol):
    """What the executor needs of a clock (nodes only see ``now()``)."""

    def now(self) -> Time: ...
    def now_ns(self) -> int: ...
    def sleep_until(self, t_ns: int, should_stop: Callable[[], bool]) -> bool: ...
    def reset(self, t_ns: int) -> None: ...


class SimClock:
    """Simulated time: advances only when the executor asks, never by itself.

    ``start_ns`` is the time before the first event (ns, default 0).
    """

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now(self) -> Time:
        return Time(self._now)

    def now_ns(self) -> int:
        return self._now

    def sleep_until(self, t_ns: int, should_stop: Callable[[], bool]) -> bool:
        """Jump to ``t_ns`` at once (never backwards); always True (nothing to interrupt)."""
        if t_ns > self._now:
            self._now = t_ns
        return True

    def reset(self, t_ns: int) -> None:
        """Set the time to ``t_ns`` (either direction); the executor rebases its timers."""
        self._now = int(t_ns)

    def __repr__(self) -> str:
        return f"SimClock(now_ns={self._now})"


class WallClock:
    """Real time scaled by ``rate``: ``now = start_ns + rate * (monotonic elapsed)``.

    ``start_ns`` defaults to the system time (ns since the Unix epoch) at
    construction, so stamps look like a ROS 2 system clock. ``rate`` > 0 (2.0 =
    twice real time). Raises ValueError for a rate that is not positive.
    """

    __slots__ = ("_origin", "_start", "rate")

    def __init__(self, rate: float = 1.0, start_ns: int | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"WallClock rate must be > 0, got {rate!r}")
        self.rate = float(rate)
        self._start = time.time_ns() if start_ns is None else int(start_ns)
        self._origin = time.perf_counter_ns()

    def now_ns(self) -> int:
        return self._start + int((time.perf_counter_ns() - self._origin) * self.rate)

    def now(self) -> Time:
        return Time(self.now_ns())

    def sleep_until(self, t_ns: int, should_stop: Callable[[], bool]) -> bool:
        """Sleep until ``now() >= t_ns``; return False early if ``should_stop()`` turns True.

        Sleeps in slices of at most 50 ms so that a stop request (e.g. from a
        signal handler) is honoured promptly.
        """
        while True:
            if should_stop():
                return False
            remaining_s = (t_ns - self.now_ns()) / self.rate * 1e-9
            if remaining_s <= 0:
                return True
            time.sleep(min(remaining_s, _SLEEP_SLICE_S))

    def reset(self, t_ns: int) -> None:
        """Re-anchor so that ``now()`` reads ``t_ns`` at this instant."""
        self._start = int(t_ns)
        self._origin = time.perf_counter_ns()

    def __repr__(self) -> str:
        return f"WallClock(rate={self.rate}, now_ns={self.now_ns()})"


def clock_for_speed(speed: float | None, start_ns: int = 0) -> SimClock | WallClock:
    """The clock a replay at ``speed`` needs: None → SimClock (max speed), N → WallClock(rate=N).

    Raises ValueError for a speed that is not positive.
    """
    if speed is None:
        return SimClock(start_ns)
    return WallClock(rate=speed, start_ns=start_ns)
