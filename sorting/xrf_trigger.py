"""When the XRF head measures what: aim the traverse at the next tracked object, acquire
when it is under the head, each object once.

The head sits at belt x ``x_head_m``. An object is *aimed at* when it comes within
``approach_m`` upstream and the head is free (nothing aimed, or the aimed object was
measured or is gone); the traverse follows the aimed object's across-belt position as the
tracker refines it. It is *acquired* on the encoder, not on the tracker's updates: each
update fixes the object's place on the belt (``x − encoder``), and the first encoder reading
at which that place reaches the head (within half the belt travel between two readings)
fires the acquisition. At 10 Hz tracker updates and 0.5 m/s the object would otherwise be
anywhere within ±2.5 cm of the head when measured: half a 12 mm spot off a small object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

APPROACH_M = 0.15


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
    aimed: int | None = None
    measured: set[int] = field(default_factory=set)
    _place: tuple[float, float] | None = None   # aimed object's (x − encoder, y)
    _last_p: float | None = None

    def update(self, objects: Sequence[Tracked], belt_position_m: float) -> Tracked | None:
        """One tracker update (``objects`` at encoder reading ``belt_position_m``): the object
        to aim the traverse at (the newly aimed one, or the aimed one at its refined place),
        or None."""
        pending = [o for o in objects if o.object_id not in self.measured]
        current = next((o for o in pending if o.object_id == self.aimed), None)
        if current is None:
            self.aimed, self._place = None, None
            coming = [o for o in pending if 0 < self.x_head_m - o.x_m <= self.approach_m]
            if not coming:
                return None
            current = max(coming, key=lambda o: o.x_m)
            self.aimed = current.object_id
        self._place = (current.x_m - belt_position_m, current.y_m)
        return current

    def tick(self, belt_position_m: float) -> Tracked | None:
        """One encoder reading: the aimed object, at its predicted place, if it has reached
        the head now (marked measured; the head is free again), else None."""
        last, self._last_p = self._last_p, belt_position_m
        if self.aimed is None or self._place is None:
            return None
        step = belt_position_m - last if last is not None else 0.0
        x = self._place[0] + belt_position_m
        if x < self.x_head_m - max(step, 0.0) / 2:
            return None
        obj = Tracked(self.aimed, x, self._place[1])
        self.measured.add(self.aimed)
        if len(self.measured) > 5000:  # forget objects long gone
            self.measured = set(sorted(self.measured)[-1000:])
        self.aimed, self._place = None, None
        return obj
