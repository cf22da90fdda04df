"""Errors of the ``calibration`` package."""

from __future__ import annotations


class CalibrationError(Exception):
    """Base class of every error raised by ``calibration``.

    Raised for bad input to a camera model or transform (wrong array shape,
    non-positive focal length, a rotation that is not orthonormal, ...); the
    message names the argument and what was expected.
    """
