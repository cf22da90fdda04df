"""Ctrl-C and SIGTERM as a stop request instead of an exception.

Python turns Ctrl-C into KeyboardInterrupt wherever the main thread happens to
be — inside a bag write, a DDS call, the shutdown itself. A run that must close
its bag and stop its processes in order asks to stop instead: while
:func:`stop_on_signals` is active, SIGINT and SIGTERM call ``on_stop(name)``
(``"SIGINT"``/``"SIGTERM"``), which only sets a flag the run loop checks between
steps; a second signal calls ``on_again()`` (e.g. kill children at once).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None],
                    on_again: Callable[[], None] | None = None) -> Iterator[bool]:
    """Route SIGINT/SIGTERM to ``on_stop`` (then ``on_again``) while inside; yields True, or
    False outside the main thread, where no handler can be installed (signals then keep
    their old meaning). The previous handlers come back on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    seen = {"n": 0}

    def _on_signal(signum: int, _frame: Any) -> None:
        seen["n"] += 1
        if seen["n"] > 1 and on_again is not None:
            on_again()
        on_stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield True
    finally:
        for s, h in old.items():
            signal.signal(s, h)
