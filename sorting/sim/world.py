"""The simulated world: a belt with an encoder carrying objects from infeed to discharge.

The belt moves at ``speed_mps`` with a start-up ramp and a slow, seeded wobble
of the drive (so the encoder, not the nominal speed, is what tracks objects).
The drive can be switched off and on again (:meth:`BeltWorld.set_drive`: the line
controller's STOP, E-stop and START): the speed ramps linearly to standstill or back
to nominal, and the encoder shows it.
Each object lies still on the belt surface: its belt-frame position is
``x = s + belt_position`` where ``s`` is fixed when it is dropped on. Objects
arrive as a renewal process with ``objects_per_m`` per metre of belt travel,
are dropped near the infeed, and leave at the discharge end (or when picked).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from perception.sensors.scene import SceneObject, scene_height
from sorting.config.line import BeltConfig, FeedConfig
from sorting.errors import SortingError

DROP_X_M = 0.05  # where the feeder drops objects onto the belt


class ObjectState(IntEnum):
    """Matches ``crmsort_msgs/GroundTruthObject.STATE_*``."""

    ON_BELT = 0
    PICKED = 1
    EXITED = 2


@dataclass
class WorldObject:
    """An object and where it sits on the belt surface (``x = s_m + belt position``)."""

    obj: SceneObject
    s_m: float
    state: ObjectState = ObjectState.ON_BELT
    bin: str = ""


SpawnFn = Callable[[int, float, float], SceneObject]


class BeltWorld:
    """Belt kinematics, encoder and the objects on the belt.

    ``spawn(object_id, x_m, y_m)`` makes a new object (see ``sorting.sim.spawner``);
    ``rng`` drives arrivals, placement and the drive wobble. Same seed, same world.
    """

    def __init__(
        self, belt: BeltConfig, feed: FeedConfig, spawn: SpawnFn, rng: np.random.Generator,
        *, running: bool = True,
    ) -> None:
        self.belt = belt
        self.feed = feed
        self._spawn = spawn
        self._rng = rng
        self.time_s = 0.0
        self.belt_position_m = 0.0
        self.objects: dict[int, WorldObject] = {}
        self.changed: list[int] = []  # ids whose state changed since the last drain_changes()
        self._next_id = 1
        # the drive's ramp after a set_drive(): (t0 s, ramp factor at t0, target 0/1, s per
        # full ramp); None: the start-up ramp from standstill at t=0, as the line was built
        self._drive: tuple[float, float, float, float] | None = (
            None if running else (0.0, 0.0, 0.0, belt.ramp_s))
        # drive wobble: three slow sinusoids, unit standard deviation in sum
        self._wobble = [
            (float(rng.uniform(0.03, 0.4)), float(rng.uniform(0, 2 * math.pi))) for _ in range(3)
        ]
        # pre-fill the belt as if it had been running: arrivals from the far end back to the drop
        self._next_arrival_m = -(belt.length_m - DROP_X_M)
        self._fill()

    # -- kinematics -------------------------------------------------------------------------
    def ramp_at(self, t_s: float) -> float:
        """The drive's ramp factor (0: standstill, 1: nominal speed) at ``t_s`` (≥ the last
        :meth:`set_drive`)."""
        if self._drive is None:
            return 1.0 if self.belt.ramp_s <= 0 else min(1.0, max(0.0, t_s / self.belt.ramp_s))
        t0, r0, target, ramp_s = self._drive
        if ramp_s <= 0:
            return target
        step = (t_s - t0) / ramp_s
        return min(target, r0 + step) if target >= r0 else max(target, r0 - step)

    @property
    def drive_on(self) -> bool:
        """The drive is commanded to run (ramping up or at speed)."""
        return self._drive is None or self._drive[2] > 0

    def set_drive(self, run: bool, t_s: float, ramp_s: float | None = None) -> None:
        """Switch the drive on (ramp to nominal speed) or off (ramp to standstill) at
        ``t_s``, from whatever speed the belt has then. ``ramp_s`` is the time of a full
        ramp, 0 ↔ nominal (default ``belt.ramp_s``; an E-stop passes its shorter braking
        time). Advance the world to ``t_s`` first; raises SortingError for a time before it."""
        if t_s < self.time_s - 1e-12:
            raise SortingError(f"set_drive at {t_s} s: the world is already at {self.time_s} s")
        r0 = self.ramp_at(t_s)
        self._drive = (t_s, r0, 1.0 if run else 0.0,
                       self.belt.ramp_s if ramp_s is None else ramp_s)

    def speed_at(self, t_s: float) -> float:
        """Belt speed (m/s) at time ``t_s``: ramp × (1 + jitter × wobble)."""
        ramp = self.ramp_at(t_s)
        wobble = sum(math.sin(2 * math.pi * f * t_s + ph) for f, ph in self._wobble) * math.sqrt(
            2 / 3
        )
        return self.belt.speed_mps * ramp * (1.0 + self.belt.speed_jitter * wobble)

    @property
    def speed_mps(self) -> float:
        return self.speed_at(self.time_s)

    @property
    def encoder_ticks(self) -> int:
        """Encoder count: belt travel quantized to whole ticks."""
        return math.floor(self.belt_position_m * self.belt.encoder_ticks_per_m + 1e-9)

    @property
    def encoder_position_m(self) -> float:
        return self.encoder_ticks / self.belt.encoder_ticks_per_m

    def advance_to(self, t_s: float) -> None:
        """Move the world forward to ``t_s`` (sub-steps of ≤ 1 ms, midpoint rule)."""
        if t_s < self.time_s - 1e-12:
            raise SortingError(f"world time cannot go back: {t_s} s < {self.time_s} s")
        while self.time_s < t_s - 1e-12:
            dt = min(1e-3, t_s - self.time_s)
            self.belt_position_m += self.speed_at(self.time_s + dt / 2) * dt
            self.time_s += dt
        self._fill()
        self._retire()

    # -- objects --------------------------------------------------------------------------
    def x_of(self, wobj: WorldObject) -> float:
        return wobj.s_m + self.belt_position_m

    def on_belt(self) -> list[SceneObject]:
        """Objects on the belt now, with their current belt-frame x."""
        return [
            dataclasses.replace(w.obj, x_m=self.x_of(w))
            for w in self.objects.values()
            if w.state == ObjectState.ON_BELT
        ]

    def pick(self, object_id: int, bin_name: str) -> SceneObject:
        """Take an object off the belt into ``bin_name`` (used by the simulated arms)."""
        wobj = self.objects.get(object_id)
        if wobj is None or wobj.state != ObjectState.ON_BELT:
            raise SortingError(f"object {object_id} is not on the belt")
        wobj.state = ObjectState.PICKED
        wobj.bin = bin_name
        self.changed.append(object_id)
        return dataclasses.replace(wobj.obj, x_m=self.x_of(wobj))

    def drain_changes(self) -> list[WorldObject]:
        out = [self.objects[i] for i in self.changed]
        self.changed = []
        return out

    def _fill(self) -> None:
        while self._next_arrival_m <= self.belt_position_m:
            x = DROP_X_M + (self.belt_position_m - self._next_arrival_m)
            self._drop(x)
            gap = self._rng.exponential(1.0 / self.feed.objects_per_m)
            self._next_arrival_m += max(self.feed.min_gap_m, gap)

    def _drop(self, x_m: float) -> None:
        oid = self._next_id
        self._next_id += 1
        obj = self._spawn(oid, x_m, 0.0)
        half_w = self.belt.width_m / 2 - self.feed.edge_margin_m
        reach = min(obj.footprint_radius_m(), half_w)
        neighbours = [o for o in self.on_belt() if abs(o.x_m - x_m) < 0.5]
        overlap = bool(neighbours) and self._rng.random() < self.feed.overlap_probability
        if overlap:
            # dropped touching or partly on top of a neighbour
            other = neighbours[int(self._rng.integers(len(neighbours)))]
            dist = (other.footprint_radius_m() + reach) * float(self._rng.uniform(0.4, 0.9))
            ang = float(self._rng.uniform(0, 2 * math.pi))
            x_m = other.x_m + dist * math.cos(ang)
            y = float(np.clip(other.y_m + dist * math.sin(ang), -half_w + reach, half_w - reach))
        else:
            y = 0.0
            for _ in range(20):
                y = float(self._rng.uniform(-half_w + reach, half_w - reach))
                if all(
                    math.hypot(o.x_m - x_m, o.y_m - y) > o.footprint_radius_m() + reach
                    for o in neighbours
                ):
                    break
        obj = dataclasses.replace(obj, x_m=x_m, y_m=y)
        # rest on whatever lies under the footprint (objects do not tilt in this model)
        if neighbours:
            xs, ys = _footprint_samples(obj)
            z, _ = scene_height(neighbours, xs, ys)
            inside = np.isfinite(obj.top_height(xs, ys) - obj.z_m)
            if inside.any() and float(z[inside].max()) > 0:
                obj = dataclasses.replace(obj, z_m=float(z[inside].max()))
        self.objects[oid] = WorldObject(obj=obj, s_m=x_m - self.belt_position_m)

    def _retire(self) -> None:
        for oid, wobj in self.objects.items():
            if wobj.state == ObjectState.ON_BELT:
                x = self.x_of(wobj)
                if x - wobj.obj.footprint_radius_m() > self.belt.length_m:
                    wobj.state = ObjectState.EXITED
                    self.changed.append(oid)
        # forget objects long gone so memory stays flat on long runs
        stale = [
            oid
            for oid, w in self.objects.items()
            if w.state != ObjectState.ON_BELT and oid not in self.changed
        ]
        for oid in stale:
            del self.objects[oid]


def _footprint_samples(obj: SceneObject, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    r = obj.footprint_radius_m()
    g = np.linspace(-r, r, n)
    xs, ys = np.meshgrid(obj.x_m + g, obj.y_m + g, indexing="ij")
    return xs, ys
