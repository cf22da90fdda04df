"""Errors of ``perception.volume``: bad clouds, no belt plane, wrong frames."""

from __future__ import annotations

from perception.errors import PerceptionError


class VolumeError(PerceptionError):
    """Base class of every error raised by ``perception.volume``."""


class BadCloudError(VolumeError):
    """The point cloud is unusable: wrong shape, empty, or without enough finite points."""


class PlaneNotFoundError(VolumeError):
    """No belt plane with enough support (or within the allowed tilt) was found."""


class FrameError(VolumeError):
    """The cloud is in another coordinate frame than the sensor the estimator was built for."""
