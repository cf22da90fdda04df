"""Errors of the ``robot`` package.

Every error derives from :class:`RobotError`. Bad input (a target out of reach, a NaN pose,
an unknown bin, a trajectory over a limit) raises one of the typed subclasses below *before*
anything is sent to an arm.
"""

from __future__ import annotations


class RobotError(Exception):
    """Base class of every error raised by ``robot`` (kinematics, trajectories, drivers)."""


class RobotConfigError(RobotError):
    """An arm description is invalid; the message names the YAML path (``arms[1].bins``)."""


class InvalidInputError(RobotError):
    """A pose, time or speed is not a finite number or has the wrong shape."""


class UnreachableError(RobotError):
    """A target lies outside the arm's workspace or has no inverse-kinematics solution."""


class UnknownBinError(RobotError):
    """A pick names a bin that the arm does not have."""


class LimitViolation(RobotError):  # noqa: N818 - names from issue 9
    """A command or trajectory would exceed a joint, workspace, speed or payload limit."""


class WorkspaceViolation(LimitViolation):
    """A tool position lies outside the arm's safe workspace."""


class PayloadViolation(LimitViolation):
    """An object is heavier than the gripper or the arm may carry."""


class SafetyHold(RobotError):  # noqa: N818 - names from issue 9
    """Motion is not allowed right now (base of the conditions below)."""


class EStopActive(SafetyHold):
    """An E-stop (this arm or the whole line) is latched; only an explicit reset clears it."""


class WatchdogStale(SafetyHold):
    """Tracking or encoder data are older than the watchdog timeout: the arms hold."""


class BeltStopped(SafetyHold):
    """The belt is (nearly) stopped: no picks are started."""


class InterceptError(RobotError):
    """No time and place exist at which the tool can meet the moving object."""


class DriverError(RobotError):
    """An arm driver failed (I/O, controller fault)."""


class ProtocolError(DriverError):
    """The controller answered something the protocol does not allow, or an ``error:`` line."""


class DriverTimeout(DriverError):  # noqa: N818 - names from issue 9
    """The controller did not answer within the timeout."""


class ControllerAlarm(DriverError):  # noqa: N818 - names from issue 9
    """The controller reported an alarm (``ALARM:``); it stays locked until reset."""
