"""The XRF trigger: aim at the next object, acquire it under the head, once."""

from __future__ import annotations

from sorting.xrf_trigger import Tracked, XrfTrigger


def test_aims_then_acquires_each_object_once() -> None:
    trig = XrfTrigger(x_head_m=2.6)
    acquire, aim = trig.update([Tracked(1, 2.50, 0.1), Tracked(2, 2.40, -0.2)])
    assert acquire is None and aim is not None and aim.object_id == 1  # nearest upstream
    acquire, aim = trig.update([Tracked(1, 2.55, 0.1), Tracked(2, 2.45, -0.2)])
    assert acquire is None and aim is None  # still busy with object 1
    acquire, aim = trig.update([Tracked(1, 2.60, 0.1), Tracked(2, 2.50, -0.2)])
    assert acquire is not None and acquire.object_id == 1
    assert aim is not None and aim.object_id == 2  # head free again: aim at the next
    acquire, _ = trig.update([Tracked(1, 2.61, 0.1), Tracked(2, 2.55, -0.2)])
    assert acquire is None  # object 1 is measured once only


def test_an_object_never_aimed_at_is_not_acquired() -> None:
    trig = XrfTrigger(x_head_m=2.6)
    trig.aimed = 7  # the traverse is at another object
    acquire, _ = trig.update([Tracked(3, 2.60, 0.0), Tracked(7, 2.50, 0.2)])
    assert acquire is None
