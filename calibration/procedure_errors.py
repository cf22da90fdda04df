"""Typed errors of the calibration procedures; each message says what to do next.

All derive from :class:`calibration.errors.CalibrationError`, so the CLI prints
them as one line with exit status 2.
"""

from __future__ import annotations

from calibration.errors import CalibrationError


class TargetNotFoundError(CalibrationError):
    """No (or too little of the) calibration board or marker was found in an image."""


class TooFewViewsError(CalibrationError):
    """Fewer usable views or observations than the procedure needs."""


class DegenerateGeometryError(CalibrationError):
    """The observations cannot constrain the solution: all board views parallel,
    touch points collinear, a marker that did not move, tracks that do not overlap."""


class PoorFitError(CalibrationError):
    """The solver converged but the residuals are too large to trust the result."""


class StoreError(CalibrationError):
    """The calibration store file is unreadable, invalid or lacks an entry."""
