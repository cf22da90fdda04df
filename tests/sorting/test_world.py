"""Belt kinematics and the feed of the simulated world."""

from __future__ import annotations

import numpy as np
import pytest

from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.config.line import BeltConfig, FeedConfig
from sorting.sim.world import BeltWorld, ObjectState


def _box(oid: int, x: float, y: float) -> SceneObject:
    return SceneObject(
        object_id=oid,
        class_name="box",
        stream="weee",
        shape=ShapeKind.BOX,
        size_m=(0.1, 0.05, 0.02),
        x_m=x,
        y_m=y,
        yaw_rad=0.0,
        material="abs",
        density_kg_m3=1000.0,
        composition={},
        appearance=Appearance(base_rgb=(0.5, 0.5, 0.5)),
    )


def _world(seed: int = 1, **belt: float) -> BeltWorld:
    return BeltWorld(
        BeltConfig(**belt), FeedConfig(objects_per_m=3.0), _box, np.random.default_rng(seed)
    )


def test_objects_move_with_encoder_within_1mm() -> None:
    w = _world()
    first: dict[int, tuple[float, float]] = {}
    for k in range(1, 2001):
        w.advance_to(k * 0.01)
        enc = w.encoder_position_m
        for o in w.on_belt():
            x0, e0 = first.setdefault(o.object_id, (o.x_m, enc))
            # travel seen by the object == travel counted by the encoder (tick = 0.1 mm)
            assert abs((o.x_m - x0) - (enc - e0)) <= 1e-3


def test_speed_ramps_and_wobbles_around_nominal() -> None:
    w = _world(speed_mps=0.5, speed_jitter=0.02, ramp_s=1.0)
    assert w.speed_at(0.0) == 0.0
    speeds = np.array([w.speed_at(t) for t in np.arange(2.0, 200.0, 0.1)])
    assert abs(speeds.mean() - 0.5) < 0.01  # wobble averages out to within 2 %
    assert speeds.std() > 0.001  # and it is really there
    assert speeds.min() > 0.5 * (1 - 5 * 0.02)


def test_same_seed_same_world() -> None:
    a, b = _world(seed=3), _world(seed=3)
    for w in (a, b):
        w.advance_to(30.0)
    pa = [(o.object_id, o.x_m, o.y_m) for o in a.on_belt()]
    pb = [(o.object_id, o.x_m, o.y_m) for o in b.on_belt()]
    assert pa == pb and len(pa) > 5


def test_feed_rate_and_exit() -> None:
    w = _world(seed=5)
    exited = 0
    for k in range(1, 601):
        w.advance_to(k * 0.1)
        exited += sum(1 for o in w.drain_changes() if o.state == ObjectState.EXITED)
    travelled = w.belt_position_m
    # about objects_per_m × travel left the belt end (Poisson: 4 sigma)
    expected = 3.0 * travelled
    assert abs(exited - expected) < 4 * np.sqrt(expected) + 3
    for o in w.on_belt():
        assert abs(o.y_m) <= 0.4


def test_the_simulated_line_runs_from_its_own_start_on_a_clock_of_any_epoch() -> None:
    """A line on a clock that reads nanoseconds since 1970 (the wall clock of ``crmsort
    run``) moves its world from the line's start, not from 1970: after 2 s of line time its
    belt and objects are where those of a line started at 0 are, and its stamps are the
    clock's."""
    from sorting.config import load_line
    from sorting.line import build_sim_line
    from sorting.runtime import InProcessExecutor, SimClock

    worlds = []
    for start in (0, 1_765_000_000 * 10**9):
        ex = InProcessExecutor(SimClock(start))
        built = build_sim_line(load_line(), ex, perception=False)
        stamps: list[int] = []
        ex.add_tap(lambda topic, _t, t_ns, _m, stamps=stamps: stamps.append(t_ns)
                   if topic.endswith("joint_states") else None)
        ex.spin_until(start + 2 * 10**9)
        assert built.sim.world.time_s == pytest.approx(2.0, abs=0.02)
        assert stamps and start <= min(stamps) and max(stamps) <= start + 2 * 10**9
        worlds.append(built.sim.world)
    epoch0, wall = worlds
    assert wall.belt_position_m == pytest.approx(epoch0.belt_position_m, abs=1e-6)
    assert wall.belt_position_m > 0.5
    assert sorted(wall.objects) == sorted(epoch0.objects)
