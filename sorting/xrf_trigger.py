"""When the XRF head measures what: aim the traverse at the next tracked object, acquire
when it is under the head, each object once.

The head sits at belt x ``x_head_m``. An object is *aimed at* when it comes within
``approach_m`` upstream; the traverse follows the aimed object's across-belt position as the
tracker refines it. It is *acquired* on the encoder, not on the tracker's updates: each
update fixes the object's place on the belt (``x − encoder``), and the first encoder reading
at which that place reaches the head (within half the belt travel between two readings)
fires the acquisition. At 10 Hz tracker updates and 0.5 m/s the object would otherwise be
anywhere within ±2.5 cm of the head when measured: half a 12 mm spot off a small object.

One head cannot measure two objects that reach it together: after an acquisition the next
object can be aimed at only on the next tracker update, and a real head is busy for its live
time (``busy_m`` of belt travel; the simulated head's acquisitions complete when read, so 0
there). Objects that reach the head before the first update after it is free again, having
measured the first one (its *rivals*), would be passed over, so among them the head takes
the one with the most at stake (:attr:`Tracked.stake`, the value its composition leaves
uncertain): a 4.7 kg stainless plate before a 0.3 kg phone that arrives 4 cm ahead of it.
Objects farther behind are measured in turn, nearest first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

APPROACH_M = 0.15


@dataclass(frozen=True)
class Tracked:
    """What the trigger needs of a tracked object: id and belt-frame centre now (m)."""

    object_id: int
    x_m: float
    y_m: float
    stake: float = 0.0   # what measuring it is worth (EUR of value its composition leaves open)


def composition_stake(mass_kg: float, elements: Sequence[str], fractions_u: Sequence[float],
                      prices_eur_per_kg: Mapping[str, float]) -> float:
    """The value (EUR, k=1) an object's composition leaves uncertain: ``m · sqrt(Σ (price_e ·
    u_e)²)`` over its elements' mass-fraction u — what an analysis could settle (its mass u
    stays whatever the head finds)."""
    return mass_kg * math.sqrt(sum((prices_eur_per_kg.get(e, 0.0) * u) ** 2
                                   for e, u in zip(elements, fractions_u, strict=True)))


@dataclass
class XrfTrigger:
    x_head_m: float
    approach_m: float = APPROACH_M
    aimed: int | None = None
    #: belt travel after an acquisition during which the head is busy counting: its live
    #: time at the belt's speed on a real head, 0 for the simulated one (its acquisitions
    #: complete when they are read)
    busy_m: float = 0.0
    passed_over: int = 0    # times a rival with more at stake was taken instead of the first
    missed_busy: int = 0    # objects that reached the head while it was busy
    measured: set[int] = field(default_factory=set)
    _place: tuple[float, float] | None = None   # aimed object's (x − encoder, y)
    _last_p: float | None = None
    _last_update_p: float | None = None
    _free_at: float | None = None   # encoder reading from which a busy head is free again
    _let_pass: set[int] = field(default_factory=set)

    def update(self, objects: Sequence[Tracked], belt_position_m: float) -> Tracked | None:
        """One tracker update (``objects`` at encoder reading ``belt_position_m``): the object
        to aim the traverse at (the newly aimed one, or the aimed one at its refined place),
        or None."""
        p = belt_position_m
        last, self._last_update_p = self._last_update_p, p
        step = p - last if last is not None else 0.0
        free = max(self._free_at, p) if self._free_at is not None else p

        def arrival(o: Tracked) -> float:  # encoder reading at which o reaches the head
            return p + self.x_head_m - o.x_m

        # coming, and reaching the head when it is free again (a busy head lets pass what
        # arrives while it counts)
        pending = [o for o in objects if o.object_id not in self.measured]
        near = [o for o in pending if 0 < self.x_head_m - o.x_m <= self.approach_m]
        reachable = {o.object_id for o in near if arrival(o) >= free - 1e-9}
        for o in near:
            if o.object_id not in reachable:
                self._let_go(o.object_id)
        coming = [o for o in pending if o.object_id == self.aimed or o.object_id in reachable]
        if not coming:
            self.aimed, self._place = None, None
            return None
        first = max(coming, key=lambda o: o.x_m)
        # updates come every `step` of belt travel: the first one after the head, having
        # measured the first object, is free again is when it can be aimed again; whatever
        # reaches the head before that is passed over if the first is taken
        done = arrival(first) + self.busy_m
        again = p + (math.floor(max(done - p, 0.0) / step) + 1) * step if step > 0 else done
        rivals = [o for o in coming if arrival(o) <= again + 1e-9 or o is first]
        current = max(rivals, key=lambda o: (o.stake, o.x_m))
        if current is not first and current.object_id != self.aimed:
            self.passed_over += 1
        self.aimed = current.object_id
        self._place = (current.x_m - p, current.y_m)
        return current

    def tick(self, belt_position_m: float) -> Tracked | None:
        """One encoder reading: the aimed object, at its predicted place, if it has reached
        the head now and the head is free (marked measured; the head is busy for ``busy_m``),
        else None. An aimed object that went past while the head was busy is given up."""
        last, self._last_p = self._last_p, belt_position_m
        if self.aimed is None or self._place is None:
            return None
        step = max(belt_position_m - last, 0.0) if last is not None else 0.0
        x = self._place[0] + belt_position_m
        if x < self.x_head_m - step / 2:
            return None
        if self._free_at is not None and belt_position_m < self._free_at:
            if x > self.x_head_m + step / 2:
                self._let_go(self.aimed)
                self.aimed, self._place = None, None
            return None
        obj = Tracked(self.aimed, x, self._place[1])
        self.measured = _remember(self.measured, self.aimed)
        self.aimed, self._place = None, None
        if self.busy_m > 0:
            self._free_at = belt_position_m + self.busy_m
        return obj

    def _let_go(self, object_id: int) -> None:
        """Count an object the busy head lets pass (once)."""
        if object_id not in self._let_pass:
            self._let_pass = _remember(self._let_pass, object_id)
            self.missed_busy += 1


def _remember(ids: set[int], object_id: int) -> set[int]:
    """``ids`` with ``object_id`` added, the oldest forgotten past 5000 (objects long gone)."""
    ids.add(object_id)
    return set(sorted(ids)[-1000:]) if len(ids) > 5000 else ids
