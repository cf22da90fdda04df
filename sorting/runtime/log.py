"""Per-node loggers on the stdlib :mod:`logging` module, stamped with runtime time.

A node in namespace ``/line1`` named ``camera`` logs to ``crmsort.line1.camera``;
each record carries ``sim_time_ns`` (int, ns) and ``sim_time_s`` (float, s) from
the runtime's clock and ``node`` (the fully qualified node name), so a handler
can print them with :data:`LOG_FORMAT` and :class:`SimTimeFormatter`.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from sorting.runtime.context import Clock

LOG_FORMAT = "[%(sim_time_s)14.6f] %(levelname)-7s %(name)s: %(message)s"


def logger_name(namespace: str, node: str) -> str:
    """``crmsort.<namespace with dots>.<node>`` (``/`` namespace → ``crmsort.<node>``)."""
    parts = [p for p in namespace.split("/") if p]
    return ".".join(["crmsort", *parts, node])


class NodeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logger adapter that adds the clock time and node name to every record."""

    def __init__(self, logger: logging.Logger, clock: Clock, node: str) -> None:
        super().__init__(logger, {})
        self._clock = clock
        self._node = node

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        t_ns = self._clock.now().nanoseconds
        extra = dict(kwargs.get("extra") or {})
        extra.update(sim_time_ns=t_ns, sim_time_s=t_ns * 1e-9, node=self._node)
        kwargs["extra"] = extra
        return msg, kwargs


def node_logger(namespace: str, node: str, clock: Clock) -> NodeLogger:
    """The logger of node ``node`` in absolute ``namespace``, stamped from ``clock``."""
    fqn = namespace + node if namespace == "/" else f"{namespace}/{node}"
    return NodeLogger(logging.getLogger(logger_name(namespace, node)), clock, fqn)


class SimTimeFormatter(logging.Formatter):
    """Formatter for :data:`LOG_FORMAT` that tolerates records without runtime time."""

    def __init__(self, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "sim_time_s"):
            record.sim_time_s = float("nan")
            record.sim_time_ns = -1
        return super().format(record)
