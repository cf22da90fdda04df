"""The XRF trigger: aim at the next object, acquire it under the head (on the encoder), once."""

from __future__ import annotations

import pytest

from sorting.xrf_trigger import Tracked, XrfTrigger, composition_stake


def test_aims_then_acquires_each_object_once_when_the_encoder_brings_it_under_the_head() -> None:
    trig = XrfTrigger(x_head_m=2.6)
    aim = trig.update([Tracked(1, 2.50, 0.1), Tracked(2, 2.40, -0.2)], belt_position_m=10.0)
    assert aim is not None and aim.object_id == 1  # nearest upstream
    # encoder readings every 5 mm: the object (at 2.50 when the encoder read 10.0) is under
    # the head at 10.10, not at the next tracker update 5 cm later
    got = [(p, trig.tick(p)) for p in (10.0 + 0.005 * k for k in range(25))]
    fired = [(p, o) for p, o in got if o is not None]
    assert len(fired) == 1
    p, obj = fired[0]
    assert obj.object_id == 1 and p == pytest.approx(10.10, abs=0.003)
    assert obj.x_m == pytest.approx(2.6, abs=0.003) and obj.y_m == 0.1
    # the head is free: the next update aims at object 2; object 1 is never measured again
    aim = trig.update([Tracked(1, 2.72, 0.1), Tracked(2, 2.52, -0.2)], belt_position_m=10.12)
    assert aim is not None and aim.object_id == 2
    assert trig.tick(10.3) is not None and trig.aimed is None
    assert trig.update([Tracked(1, 2.9, 0.1)], belt_position_m=10.3) is None


def test_the_traverse_follows_the_refined_track_and_a_vanished_object_frees_the_head() -> None:
    trig = XrfTrigger(x_head_m=2.6)
    assert trig.update([Tracked(7, 2.50, 0.20)], 0.0) is not None
    aim = trig.update([Tracked(7, 2.55, 0.18)], 0.05)  # the tracker moved it across the belt
    assert aim is not None and aim.y_m == 0.18
    # object 7 picked or lost before reaching the head: the next one is aimed at instead
    aim = trig.update([Tracked(8, 2.50, -0.1)], 0.10)
    assert aim is not None and aim.object_id == 8
    assert trig.tick(0.10) is None  # 8 is 10 cm upstream


def test_nothing_is_acquired_without_an_aimed_object() -> None:
    trig = XrfTrigger(x_head_m=2.6)
    assert trig.update([Tracked(3, 2.30, 0.0)], 0.0) is None  # beyond the approach distance
    assert all(trig.tick(0.01 * k) is None for k in range(50))


def test_of_two_objects_arriving_together_the_one_with_more_at_stake_is_measured() -> None:
    """Updates every 5 cm of belt travel: the first object reaches the head 8 cm on, the next
    update comes 10 cm on, so an object 1 cm behind the first cannot be aimed at after it and
    the head takes whichever has more at stake; one 10 cm behind is measured in turn."""
    trig = XrfTrigger(x_head_m=2.6)
    assert trig.update([], belt_position_m=0.0) is None
    phone, plate = Tracked(1, 2.52, 0.2, stake=0.4), Tracked(2, 2.51, -0.1, stake=3.1)
    aim = trig.update([phone, plate], belt_position_m=0.05)
    assert aim is not None and aim.object_id == 2 and trig.passed_over == 1
    fired = [o for o in (trig.tick(0.05 + 0.005 * k) for k in range(30)) if o is not None]
    assert [o.object_id for o in fired] == [2]
    # far enough apart: nearest first, then the other, whatever their stakes
    trig = XrfTrigger(x_head_m=2.6)
    trig.update([], belt_position_m=0.0)
    near, far = Tracked(3, 2.55, 0.0, stake=0.1), Tracked(4, 2.45, 0.1, stake=5.0)
    assert trig.update([near, far], belt_position_m=0.05).object_id == 3
    assert trig.tick(0.10) is not None
    assert trig.update([Tracked(4, 2.50, 0.1, stake=5.0)], belt_position_m=0.10).object_id == 4
    assert trig.passed_over == 0


def test_composition_stake_is_the_value_the_composition_leaves_open() -> None:
    prices = {"Ni": 16.0, "Co": 30.0}
    stake = composition_stake(2.0, ["Ni", "Co", "Fe"], [0.04, 0.003, 0.05], prices)
    assert stake == pytest.approx(2.0 * ((16 * 0.04) ** 2 + (30 * 0.003) ** 2) ** 0.5)
    with pytest.raises(ValueError):
        composition_stake(1.0, ["Ni"], [], prices)


def test_a_head_busy_for_its_live_time_lets_pass_what_arrives_while_it_counts() -> None:
    """busy_m = 15 cm (0.3 s at 0.5 m/s): an object 10 cm behind the first is a rival (it
    arrives while the head counts), so the one with more at stake is measured; after an
    acquisition, what arrives before the head is free again is not aimed at."""
    lean, rich = Tracked(1, 2.55, 0.0, stake=0.1), Tracked(2, 2.45, 0.1, stake=3.0)
    idle = XrfTrigger(x_head_m=2.6)
    idle.update([], 0.0)
    assert idle.update([lean, rich], 0.05).object_id == 1  # 10 cm apart: both in turn
    busy = XrfTrigger(x_head_m=2.6, busy_m=0.15)
    busy.update([], 0.0)
    assert busy.update([lean, rich], 0.05).object_id == 2 and busy.passed_over == 1
    # the head measures object 2 at 0.20 and is busy until 0.35
    assert [o.object_id for o in (busy.tick(0.05 + 0.005 * k) for k in range(31))
            if o is not None] == [2]
    late, next_one = Tracked(3, 2.50, 0.0), Tracked(4, 2.45, 0.0)  # at 0.30 and 0.35
    aim = busy.update([late, next_one], 0.20)
    assert aim is not None and aim.object_id == 4 and busy.missed_busy == 1  # object 3
    assert all(busy.tick(0.20 + 0.005 * k) is None for k in range(1, 30))
    fired = busy.tick(0.35)
    assert fired is not None and fired.object_id == 4
