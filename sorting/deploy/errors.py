"""Errors of the deployment layer (DDS transport, process groups, launch generation, rclpy)."""

from __future__ import annotations

from sorting.errors import ConfigError, SortingError


class DeployError(SortingError):
    """Base class of every error raised by :mod:`sorting.deploy`."""


class DdsError(DeployError):
    """The DDS transport failed: no participant, a bad configuration, a write that failed."""


class TopicTypeMismatchError(DeployError):
    """A topic is used with two types across processes (or by a foreign DDS publisher)."""


class DeployConfigError(DeployError, ConfigError):
    """The ``deploy`` section of a line YAML (or a node it names) is invalid."""


class RclpyUnavailableError(DeployError):
    """rclpy cannot be imported: source a ROS 2 installation (Jazzy or newer) first."""
