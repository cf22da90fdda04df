"""The online planner itself: cross-arm assignment, feasible plans, online information only."""

from __future__ import annotations

import numpy as np
import pytest

from sorting.scheduling.arm_model import TableArmModel
from sorting.scheduling.baselines import GreedyPolicy
from sorting.scheduling.errors import SettingsError
from sorting.scheduling.online import OnlinePolicy, OnlineScheduler, PlannerSettings, plan_all
from sorting.scheduling.problem import Problem
from sorting.scheduling.simulate import SimView, simulate
from sorting.scheduling.stream import Stream, StreamObject, generate_stream, stream_from_spec

BINS = {"cu": (0.0, 0.45, 0.0), "pcb": (0.0, -0.45, 0.0)}
INF = np.inf


def _two_arms() -> list[TableArmModel]:
    # arm1's 0.2 m window lasts 0.5 s at 0.4 m/s: one pick (0.2 s + 0.8 s) per object pair;
    # arm2 does not reach y > 0.1
    return [TableArmModel("arm1", 1.0, 1.2, -0.3, 0.3, bins=BINS),
            TableArmModel("arm2", 1.8, 2.3, -0.3, 0.1, bins=BINS)]


def test_upstream_arm_leaves_object_for_downstream_arm() -> None:
    # A (5 EUR) both arms reach, B (4 EUR) only arm1; they arrive together
    objs = [StreamObject(1, 0.0, 0.0, 5.0, "cu", "copper_scrap"),
            StreamObject(2, 0.0, 0.25, 4.0, "pcb", "pcb_high_grade")]
    p = Problem(Stream(belt_speed_mps=0.4, arms=list(_two_arms()), objects=objs))
    # the peer, value-greedy per arm, takes A on arm1 and loses B
    assert simulate(p, GreedyPolicy()).value_eur == pytest.approx(5.0)
    res = simulate(p, OnlinePolicy())
    assert res.value_eur == pytest.approx(9.0) and res.missed == []
    assert {(r.object_id, r.arm) for r in res.picks} == {(2, "arm1"), (1, "arm2")}
    sch = OnlineScheduler(_two_arms(), 0.4)
    for o in objs:
        sch.upsert(o, 0.0)
    assert [[k for k, _ in plan] for plan in sch.plan(2.0)] == [[2], [1]]


def test_wait_that_pushes_a_pick_out_of_its_window_is_repaired() -> None:
    # rows X, Y, Z, W; columns arm A, arm B. On B's 1 s slot grid X, Y, Z fit slots 0–2,
    # but X's 0.2 s wait pushes Z (window ends 2.25 s) to 2.4 s. Repaired, Z goes to A's
    # only slot instead of the cheaper W.
    r = np.array([[INF, 0.4], [INF, 0.5], [0.6, 1.0], [0.6, INF]])
    d = np.array([[-INF, 1.65], [-INF, 1.75], [0.9, 2.25], [0.9, -INF]])
    ap, cy = np.full((4, 2), 0.2), np.full((4, 2), 0.8)
    v, prio = np.array([3.0, 3.0, 2.0, 1.0]), np.zeros(4, dtype=bool)
    free, up = np.array([0.5, 0.0]), np.ones(2, dtype=bool)

    def plan(rounds: int) -> list[list[int]]:
        out = plan_all(0.0, free, up, r, d, ap, cy, v, prio, PlannerSettings(repair_rounds=rounds))
        return [[k for k, _ in p] for p in out]

    assert plan(0) == [[3], [0, 1]]  # unrepaired: Z dropped from B's chain, A takes W
    assert plan(3) == [[2], [0, 1]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plans_are_feasible_and_disjoint(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arms = stream_from_spec(generate_stream("dense", seed, n_arms=4, duration_s=1.0)).arms
    for _ in range(20):
        sch = OnlineScheduler(arms, 0.4)
        for k in range(50):
            sch.upsert(StreamObject(k + 1, float(rng.uniform(0.7, 4.0)),
                                    float(rng.uniform(-0.27, 0.27)),
                                    float(rng.lognormal(0.3, 1.0)), "cu",
                                    "li_ion_pouch_pack" if rng.random() < 0.05 else ""), 0.0)
        sch.arm_free_s[:] = rng.uniform(0.0, 1.0, len(arms))
        down = int(rng.integers(len(arms)))
        sch.set_arm_up(arms[down].name, False)
        now = float(rng.uniform(0.0, 0.5))
        plans = sch.plan(now)
        assert plans[down] == []
        ids = [k for p in plans for k, _ in p]
        assert len(ids) == len(set(ids))  # every object in at most one plan
        for a, p in enumerate(plans):
            back = max(now, float(sch.arm_free_s[a]))
            for k, t in p:
                r, d, ap, cy = sch.win[k][:, a]
                assert r - 1e-9 <= t <= d + 1e-9  # inside the arm's window
                assert t - ap >= back - 1e-9  # leaves standby after the last pick is back
                back = t + cy


def test_decisions_use_only_objects_seen_so_far() -> None:
    arms = _two_arms()
    seen = [StreamObject(1, 0.0, 0.0, 2.0, "cu"), StreamObject(2, -0.1, 0.0, 3.0, "cu")]
    # objects not yet past the vision point: what they are must not change any decision
    decisions = []
    for future_value in (0.5, 1000.0):
        future = [StreamObject(3 + k, -2.0 - 0.1 * k, 0.0, future_value, "cu")
                  for k in range(5)]
        p = Problem(Stream(belt_speed_mps=0.4, arms=list(arms), objects=seen + future))
        pol = OnlinePolicy()
        pol.reset(p)
        view = SimView(p, {0, 1}, np.zeros(2), np.ones(2, dtype=bool))
        decisions.append([pol.choose(t, a, view) for t in (2.0, 2.3, 2.55) for a in (0, 1)])
    assert decisions[0] == decisions[1]
    # at 2.0 s arm1 plans object 2 (enters its reach at 2.75 s) and stays at standby until
    # its approach must start; by 2.55 s it has started a pick of a seen object
    choice, wake = decisions[0][0]
    assert choice is None and wake == pytest.approx(2.55)
    assert decisions[0][4][0] in (0, 1) and decisions[0][4][1] is None


def test_settings_out_of_range_raise() -> None:
    with pytest.raises(SettingsError, match="max_slots"):
        PlannerSettings(max_slots=0)
    with pytest.raises(SettingsError, match="wait_tol_rel"):
        PlannerSettings(wait_tol_rel=float("nan"))
    with pytest.raises(SettingsError, match="wait_cost_rel"):
        PlannerSettings(wait_cost_rel=-1.0)
