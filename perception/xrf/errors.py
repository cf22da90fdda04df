"""Errors of ``perception.xrf`` (spectra, set-up, fit, quantification)."""

from __future__ import annotations

from perception.errors import PerceptionError


class XrfError(PerceptionError):
    """Base class of every error raised by ``perception.xrf``."""


class SpectrumError(XrfError):
    """A spectrum is invalid: counts negative or not finite, calibration not monotonic, channel
    count disagreeing with the calibration, or a spectrum file that cannot be parsed."""


class SetupError(XrfError):
    """The instrument set-up YAML is invalid; the message names the file and the YAML path."""


class FitError(XrfError):
    """The spectrum cannot be fitted (no lines in range, singular system, bad fit region)."""


class QuantificationError(XrfError):
    """Quantification failed (unknown element, bad balance, standards inconsistent)."""


class CompositionError(XrfError):
    """A sample composition is invalid (unknown symbol, negative fraction, sum far from 1)."""
