"""The line's state machine: operator commands in, the line's state and belt drive out.

States are those of ``crmsort_msgs/LineStatus`` (``STATE_*``). Transitions::

    STOPPED  --START-->  STARTING  (belt drive on)
    STARTING --encoder at start_speed_fraction x nominal speed-->  RUNNING
    STARTING, RUNNING --STOP-->  STOPPING  (drive off: the belt ramps down; no new picks;
                                            picks in flight finish)
    STOPPING --encoder still and no pick in flight-->  STOPPED
    any      --ESTOP-->  ESTOP  (the line E-stop latches; drive off at E-stop deceleration)
    ESTOP    --RESET, belt still-->  STOPPED  (never straight back to RUNNING)

Any other command is refused and the state stays; every command, accepted or refused,
yields an :class:`Outcome` that says why (the node logs it with its source and reason).
Picks are allowed in RUNNING only. Time is the line's clock in seconds; speeds in m/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from sorting.errors import CommandError, ConfigError


class LineState(IntEnum):
    """``crmsort_msgs/LineStatus.STATE_*``."""

    STOPPED = 0
    STARTING = 1
    RUNNING = 2
    STOPPING = 3
    ESTOP = 4
    FAULT = 5


class Command(IntEnum):
    """``crmsort_msgs/LineCommand`` constants."""

    START = 1
    STOP = 2
    ESTOP = 3
    RESET = 4


def parse_command(text: str) -> Command:
    """``"start"``, ``"STOP"``, ``"e-stop"`` … → :class:`Command`; raises
    :class:`~sorting.errors.CommandError` naming an unknown command and the known ones."""
    key = str(text).strip().upper().replace("-", "").replace("_", "")
    try:
        return Command[key]
    except KeyError:
        known = ", ".join(c.name.lower() for c in Command)
        raise CommandError(f"unknown line command {text!r}: expected one of {known}") from None


def command_name(code: int) -> str:
    """A ``LineCommand.command`` code's name (``COMMAND_<n>`` for one it does not define)."""
    try:
        return Command(code).name
    except ValueError:
        return f"COMMAND_{code}"


@dataclass(frozen=True)
class Outcome:
    """What became of one command: accepted or not, the states before and after, and why."""

    command: Command
    accepted: bool
    before: LineState
    after: LineState
    source: str
    reason: str
    message: str
    t_s: float

    def log_line(self) -> str:
        """One line for the log: verdict, command, who, their reason, the controller's why."""
        verdict = "accepted" if self.accepted else "REFUSED"
        why = self.reason or "no reason given"
        return (f"{self.command.name} from {self.source or 'unknown source'!r} ({why}) "
                f"{verdict}: {self.message}")


class LineController:
    """The state machine of one line (see the module docstring).

    ``nominal_speed_mps`` is the belt's set speed; ``autostart`` starts in RUNNING (the
    belt ramping up on its own, as a simulated line always has) instead of STOPPED.
    Feed it the encoder's measured speed (:meth:`observe_belt`), the pick tasks sent and
    answered (:meth:`pick_sent`, :meth:`pick_answered`) and the time (:meth:`tick`); each
    returns the new state when the line changed state, else None. Raises
    :class:`~sorting.errors.ConfigError` for a non-positive speed or threshold.
    """

    def __init__(self, nominal_speed_mps: float, *, autostart: bool = True,
                 start_speed_fraction: float = 0.95, stopped_speed_mps: float = 0.005,
                 drain_timeout_s: float = 10.0) -> None:
        for name, value in (("nominal_speed_mps", nominal_speed_mps),
                            ("start_speed_fraction", start_speed_fraction),
                            ("stopped_speed_mps", stopped_speed_mps),
                            ("drain_timeout_s", drain_timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"line controller: {name} must be > 0, got {value}")
        self.nominal_speed_mps = nominal_speed_mps
        self.start_speed_fraction = start_speed_fraction
        self.stopped_speed_mps = stopped_speed_mps
        self.drain_timeout_s = drain_timeout_s
        self.state = LineState.RUNNING if autostart else LineState.STOPPED
        self.reason = "autostart" if autostart else "waiting for START"
        self.estop_latched = False
        self.estop_t_s = math.nan
        self.belt_speed_mps: float | None = None  # None: the encoder has not spoken yet
        self.in_flight: dict[tuple[str, int], float] = {}  # (arm, task id) -> t sent (s)
        self.last: Outcome | None = None

    # -- what the line does ---------------------------------------------------------------
    @property
    def belt_run(self) -> bool:
        """The belt drive is commanded to run."""
        return self.state in (LineState.STARTING, LineState.RUNNING)

    @property
    def picks_allowed(self) -> bool:
        """New picks may be planned and sent (RUNNING only)."""
        return self.state == LineState.RUNNING

    def _belt_still(self) -> bool:
        return self.belt_speed_mps is not None and abs(self.belt_speed_mps) < self.stopped_speed_mps

    # -- commands -------------------------------------------------------------------------
    def command(self, cmd: Command, t_s: float, source: str = "", reason: str = "") -> Outcome:
        """Apply ``cmd`` at ``t_s``; the :class:`Outcome` says whether it was accepted, and why."""
        before = self.state
        s = self.state
        accepted = False
        if cmd == Command.ESTOP:
            accepted = True
            if self.estop_latched:
                msg = (f"E-stop already latched since t={self.estop_t_s:.3f} s "
                       f"({self.reason}); RESET clears it")
            else:
                self.estop_latched, self.estop_t_s = True, t_s
                self.state = LineState.ESTOP
                self.in_flight.clear()  # the arms abort what they were doing
                msg = f"E-stop latched ({before.name} -> ESTOP): arms brake, belt stops"
        elif cmd == Command.RESET:
            if s != LineState.ESTOP:
                msg = f"nothing to reset: the line is {s.name} (RESET clears an E-stop)"
            elif self.belt_speed_mps is not None and not self._belt_still():
                msg = (f"the belt still moves at {self.belt_speed_mps:.3f} m/s: RESET once it "
                       "stands still")
            else:
                accepted = True
                self.estop_latched, self.estop_t_s = False, math.nan
                self.state = LineState.STOPPED
                msg = "E-stop cleared (ESTOP -> STOPPED); START to run"
        elif cmd == Command.START:
            if s == LineState.STOPPED:
                accepted = True
                self.state = LineState.STARTING
                msg = "belt starting (STOPPED -> STARTING)"
            elif s == LineState.ESTOP:
                msg = "E-stop latched: RESET first (it brings the line to STOPPED), then START"
            elif s == LineState.STOPPING:
                msg = "the line is STOPPING: START once it is STOPPED"
            else:
                msg = f"the line is already {s.name}"
        elif cmd == Command.STOP:
            if s in (LineState.RUNNING, LineState.STARTING):
                accepted = True
                self.state = LineState.STOPPING
                msg = (f"stopping ({s.name} -> STOPPING): no new picks, "
                       f"{len(self.in_flight)} in flight finish, belt ramps down")
            elif s == LineState.ESTOP:
                msg = "E-stop latched: the line is already stopped (RESET brings it to STOPPED)"
            else:
                msg = f"the line is already {s.name}"
        else:  # an IntEnum member not handled above cannot exist; a bad code is typed
            raise CommandError(f"unknown line command code {int(cmd)}")
        if accepted and self.state != before:
            who = source or "unknown source"
            self.reason = f"{cmd.name} from {who}" + (f": {reason}" if reason else "")
        out = Outcome(cmd, accepted, before, self.state, source, reason, msg, t_s)
        self.last = out
        # a STOP that finds the belt still and no pick out is done at once
        self._settle(t_s)
        return out

    # -- feedback -------------------------------------------------------------------------
    def observe_belt(self, speed_mps: float, t_s: float) -> LineState | None:
        """The encoder's measured belt speed (m/s) at ``t_s``."""
        if math.isfinite(speed_mps):
            self.belt_speed_mps = speed_mps
        return self._settle(t_s)

    def pick_sent(self, arm: str, task_id: int, t_s: float) -> None:
        """A pick task went out to ``arm``: it is in flight until answered."""
        self.in_flight[(arm, task_id)] = t_s

    def pick_answered(self, arm: str, task_id: int, t_s: float) -> LineState | None:
        """``arm`` answered task ``task_id`` (any outcome): no longer in flight."""
        self.in_flight.pop((arm, task_id), None)
        return self._settle(t_s)

    def tick(self, t_s: float) -> LineState | None:
        """Time passes: a task unanswered for ``drain_timeout_s`` stops holding the line."""
        for key, t_sent in list(self.in_flight.items()):
            if t_s - t_sent > self.drain_timeout_s:
                del self.in_flight[key]
        return self._settle(t_s)

    def _settle(self, t_s: float) -> LineState | None:
        if self.state == LineState.STARTING and self.belt_speed_mps is not None and (
                self.belt_speed_mps >= self.start_speed_fraction * self.nominal_speed_mps):
            self.state = LineState.RUNNING
            return self.state
        if self.state == LineState.STOPPING and self._belt_still() and not self.in_flight:
            self.state = LineState.STOPPED
            return self.state
        return None
