"""Errors of ``perception.xrt`` and ``perception.sensors.xrt`` (dual-energy X-ray transmission)."""

from __future__ import annotations

from perception.errors import PerceptionError


class XrtError(PerceptionError):
    """Base class of every error raised by the X-ray transmission packages."""


class XrtSetupError(XrtError):
    """The X-ray set-up is invalid (tube voltage, layer, filter or composition named wrong)."""


class XrtDataError(XrtError):
    """A transmission line is invalid: wrong shape, non-finite or negative values, layers or
    pixel pitch that disagree with what the segmenter was started with."""
