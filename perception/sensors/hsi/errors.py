"""Errors of the hyperspectral line-scan sensor package (sources, calibration, band models)."""

from __future__ import annotations

from perception.errors import SensorError


class HsiError(SensorError):
    """Base class of every error raised by ``perception.sensors.hsi`` and ``perception.hsi``."""


class CalibrationReferenceError(HsiError):
    """A dark or white reference is missing, mis-shaped, non-finite or not above the dark."""


class BandMismatchError(HsiError):
    """Band count or wavelengths of data disagree with what a model or reference expects."""


class NonFiniteDataError(HsiError):
    """Spectra contain NaN or infinite values where finite numbers are required."""


class SourceError(HsiError):
    """A line source (ENVI file, camera, simulator) cannot deliver lines."""
