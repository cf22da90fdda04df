"""Re-planning: failed picks go to a downstream arm, faults take arms out, Li-ion first."""

from __future__ import annotations

import pytest

from sorting.scheduling.arm_model import TableArmModel
from sorting.scheduling.baselines import FifoPolicy, GreedyPolicy
from sorting.scheduling.online import OnlinePolicy, OnlineScheduler
from sorting.scheduling.problem import Problem
from sorting.scheduling.simulate import ArmFault, simulate
from sorting.scheduling.stream import Stream, StreamObject

BINS = {"cu": (0.0, 0.45, 0.0), "battery": (0.0, -0.45, 0.0)}


def _arms(arm2_y: tuple[float, float] = (-0.3, 0.3)) -> list[TableArmModel]:
    return [
        TableArmModel("arm1", 1.0, 1.5, -0.3, 0.3, bins=BINS),
        TableArmModel("arm2", 1.8, 2.3, arm2_y[0], arm2_y[1], bins=BINS),
    ]


def _stream(objects: list[StreamObject], arm2_y: tuple[float, float] = (-0.3, 0.3)) -> Stream:
    return Stream(belt_speed_mps=0.4, arms=list(_arms(arm2_y)), objects=objects)


def test_failed_pick_is_replanned_to_downstream_arm() -> None:
    p = Problem(_stream([StreamObject(7, 0.0, 0.0, 5.0, "cu", "copper_scrap")]))
    # arm1's grasp fails; the object rides on into arm2's window
    res = simulate(p, OnlinePolicy(), fail=lambda i, a, k: a == 0)
    # arm1 fails (and may retry while the object is in its window), then arm2 takes it
    assert (res.picks[0].arm, res.picks[0].success) == ("arm1", False)
    assert (res.picks[-1].arm, res.picks[-1].success) == ("arm2", True)
    assert all(not r.success for r in res.picks if r.arm == "arm1")
    assert res.value_eur == 5.0 and res.missed == []
    assert res.arms[0].failed >= 1 and res.arms[1].picks == 1


def test_failed_pick_is_missed_when_no_arm_can_still_reach() -> None:
    # arm2 does not reach y = 0.25: the failed object is lost, and reported as missed
    p = Problem(_stream([StreamObject(7, 0.0, 0.25, 5.0, "cu")], arm2_y=(-0.3, 0.1)))
    res = simulate(p, OnlinePolicy(), fail=lambda i, a, k: a == 0)
    assert res.picks and all(r.arm == "arm1" and not r.success for r in res.picks)
    assert res.value_eur == 0.0 and [m.object_id for m in res.missed] == [7]


def test_arm_fault_moves_picks_downstream_and_recovery_brings_arm_back() -> None:
    objs = [StreamObject(i, -0.5 * i, 0.0, 2.0, "cu") for i in range(1, 7)]
    p = Problem(_stream(objs))
    res = simulate(p, OnlinePolicy(), faults=[ArmFault("arm1", 0.0, 6.0)])
    t_first_arm1 = min(r.t_pick_s for r in res.picks if r.arm == "arm1")
    assert t_first_arm1 >= 6.0  # nothing moves on arm1 while it is down
    assert any(r.arm == "arm2" and r.t_pick_s < 6.0 for r in res.picks)
    assert res.value_eur == 12.0


def test_li_ion_beats_value_for_every_policy() -> None:
    # same arrival: only one of the two can be picked by the single arm in reach
    objs = [StreamObject(1, 0.0, 0.1, 10.0, "cu", "pcb_high_grade"),
            StreamObject(2, 0.0, -0.1, 0.4, "battery", "li_ion_cylindrical_cell")]
    stream = Stream(belt_speed_mps=0.4, arms=[TableArmModel(
        "arm1", 1.0, 1.2, -0.3, 0.3, bins=BINS)], objects=objs)
    p = Problem(stream)
    for policy in (OnlinePolicy(), GreedyPolicy(), FifoPolicy()):
        res = simulate(p, policy)
        assert [r.object_id for r in res.picks if r.success] == [2], policy.name
        assert res.priority_missed == []


def test_scheduler_commit_fail_and_replan() -> None:
    sch = OnlineScheduler(_arms(), belt_speed_mps=0.4)
    sch.upsert(StreamObject(9, 0.0, 0.0, 3.0, "cu"), t_s=0.0)
    # 2.5 s before it reaches arm1: planned for arm1 when its window opens, not committed
    early = sch.plan(0.0)
    assert [[k for k, _ in p] for p in early] == [[9], []]
    assert early[0][0][1] == pytest.approx(2.5)
    plans = sch.plan(2.3)
    arm_first = [a.name for a, p in zip(sch.arms, plans, strict=True) if p]
    assert arm_first[0] == "arm1" and plans[0][0][0] == 9
    tm = sch.commit("arm1", 9, now_s=2.3)
    assert tm is not None and 2.5 - 1e-9 <= tm.t_pick_s <= 3.75
    assert sch.plan(tm.t_pick_s) == [[], []]  # in a pick: nobody else plans it
    # arm1 is back at standby at 3.7 s: too late to catch it again before 3.75 s
    sch.pick_failed(9, "arm1", free_s=3.7)
    later = sch.plan(4.1)
    assert later[0] == [] and later[1][0][0] == 9
    assert 4.5 - 1e-9 <= later[1][0][1] <= 5.75  # inside arm2's window
    sch.set_arm_up("arm2", False)
    assert sch.plan(4.1) == [[], []]
