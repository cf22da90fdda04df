"""Errors of the ``perception`` package."""

from __future__ import annotations


class PerceptionError(Exception):
    """Base class of every error raised by ``perception``."""


class CatalogError(PerceptionError):
    """The class/material catalog in ``datasets/`` is invalid; the message names file and field."""


class SensorError(PerceptionError):
    """A sensor (driver or simulator) got bad input or failed."""
