"""Errors of the ``robot`` package."""

from __future__ import annotations


class RobotError(Exception):
    """Base class of every error raised by ``robot`` (kinematics, trajectories, drivers)."""
