"""When the XRF head measures what: aim the traverse at the next tracked object, acquire
when it is under the head, each object once.

The head sits at belt x ``x_head_m``. An object is *aimed at* when it comes within
``approach_m`` upstream and the head is free (nothing aimed, or the aimed object was
measured or is gone); it is *acquired* when its centre is within ``window_m`` of the head
(at least half the belt travel between two tracker updates, so none slips through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

APPROACH_M = 0.15
WINDOW_M = 0.026  # >= 0.5 m/s / 10 Hz / 2


@dataclass(frozen=True)
class Tracked:
    """What the trigger needs of a tracked object: id and belt-frame centre now (m)."""

    object_id: int
    x_m: float
    y_m: float


@dataclass
class XrfTrigger:
    x_head_m: float
    approach_m: float = APPROACH_M
    window_m: float = WINDOW_M
    aimed: int | None = None
    measured: set[int] = field(default_factory=set)

    def update(self, objects: Sequence[Tracked]) -> tuple[Tracked | None, Tracked | None]:
        """One tracker update: ``(acquire, aim)`` — the object to measure now and the object
        to aim the traverse at next (either may be None). Marks the acquired one measured."""
        pending = [o for o in objects if o.object_id not in self.measured]
        acquire = next((o for o in pending if o.object_id == self.aimed
                        and abs(o.x_m - self.x_head_m) <= self.window_m), None)
        if acquire is not None:
            self.measured.add(acquire.object_id)
            if len(self.measured) > 5000:  # forget objects long gone
                self.measured = set(sorted(self.measured)[-1000:])
        coming = [o for o in pending if 0 < self.x_head_m - o.x_m <= self.approach_m
                  and o.object_id != self.aimed]
        head_free = (self.aimed is None or self.aimed in self.measured
                     or all(o.object_id != self.aimed for o in pending))
        aim = None
        if coming and head_free:
            aim = max(coming, key=lambda o: o.x_m)
            self.aimed = aim.object_id
        return acquire, aim
