"""Belt kinematics and the feed of the simulated world."""

from __future__ import annotations

import numpy as np

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
