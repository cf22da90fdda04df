"""Errors of the ``sorting`` package: one base class, one subclass per kind of failure."""

from __future__ import annotations


class SortingError(Exception):
    """Base class of every error raised by ``sorting``."""


class UnknownTypeError(SortingError):
    """A message type name is not registered in the crmsort typestore."""


class UnknownTopicError(SortingError):
    """A topic was asked for that does not exist (in a bag, a line or a runtime)."""


class ConfigError(SortingError):
    """A line description (YAML) is invalid; the message names the YAML path."""


class BagError(SortingError):
    """A rosbag2 bag cannot be read or written; the message names the file."""


class RuntimeGraphError(SortingError):
    """A node graph is inconsistent (type clash on a topic, duplicate node name, ...)."""


class InvalidNameError(RuntimeGraphError):
    """A node name, namespace or topic name breaks the ROS 2 naming rules."""


class ParameterError(RuntimeGraphError):
    """A node parameter is undeclared, declared twice, or overridden with a wrong type/name."""


class CallbackError(SortingError):
    """A node callback (subscription, timer, shutdown) or a tap raised; names node and topic.

    The original exception is the ``__cause__``; ``node`` and ``topic`` say where it happened
    (``topic`` is ``None`` for timers and shutdown).
    """

    def __init__(self, message: str, node: str, topic: str | None) -> None:
        super().__init__(message)
        self.node = node
        self.topic = topic


class ReplayError(SortingError):
    """A message stream cannot be replayed (out of time order, undecodable message, bad remap)."""


class CommandError(SortingError):
    """An operator command (start, stop, estop, reset) is unknown or cannot be sent; the
    message names the command and what was expected."""
