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
