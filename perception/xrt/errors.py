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


class XrtReferenceError(XrtDataError):
    """Dark / flat references unusable: mis-shaped, too few lines, flat not above dark, too
    many dead, saturated or noisy pixels (the message names the pixel indices)."""


class XrtPlateError(XrtDataError):
    """Reference plates for the mass-scale calibration: none found in the lines, a count that
    disagrees with the plate list, or a plate described wrong (areal density, material)."""


class XrtFitError(XrtError):
    """The mass-scale fit did not converge, or its residuals are too large to trust."""
