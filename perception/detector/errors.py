"""Errors of ``perception.detector``: model files, class lists, frames and training."""

from __future__ import annotations

from perception.errors import PerceptionError


class DetectorError(PerceptionError):
    """Base class of every error raised by ``perception.detector``."""


class ModelFileError(DetectorError):
    """A model file (ONNX, weights or its metadata JSON) is missing, unreadable or corrupt."""


class ClassMismatchError(DetectorError):
    """A model's class list disagrees with the catalog; the message names the first difference."""


class FrameError(DetectorError):
    """An input frame is empty, of the wrong shape or dtype, or in an unsupported encoding."""


class TrainingError(DetectorError):
    """Training, export or evaluation could not run (bad dataset YAML, missing run output)."""
