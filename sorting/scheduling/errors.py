"""Errors of ``sorting.scheduling``: streams, arm models, policies and the hindsight optimum."""

from __future__ import annotations

from sorting.errors import SortingError


class SchedulingError(SortingError):
    """Base class of every error raised by the pick scheduler and its evaluation."""


class StreamError(SchedulingError):
    """A stream file (JSON/CSV) is malformed; the message names the file, field and row."""


class NonFiniteError(SchedulingError):
    """A NaN or infinite number was given where a finite one is required (names the field)."""


class UnknownBinError(SchedulingError):
    """An object's target bin is served by no arm (or by not the arm asked)."""


class OutOfReachError(SchedulingError):
    """A pick target lies outside every reach window (or outside the arm asked)."""


class SettingsError(SchedulingError):
    """A planner setting is out of range (names the setting and the range expected)."""


class ArmFaultError(SchedulingError):
    """An arm named in a command is unknown or faulted."""


class OptimumError(SchedulingError):
    """The hindsight-optimum MILP could not be solved (time limit, infeasible, solver error)."""
