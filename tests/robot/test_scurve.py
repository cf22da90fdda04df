"""S-curve timing: limits respected (sampled), exact target, minimal time vs trapezoid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot.errors import InvalidInputError
from robot.motion.scurve import SCurve, plan_joint_move, trapezoid_time_s

pos = st.floats(min_value=1e-3, max_value=1e3)


@settings(max_examples=150, deadline=None)
@given(d=st.floats(min_value=0.0, max_value=10.0), v=pos, a=pos, j=pos)
def test_scurve_respects_limits_and_reaches_target(d: float, v: float, a: float, j: float) -> None:
    s = SCurve.plan(d, v, a, j)
    t = np.linspace(0.0, s.duration_s, 2001)
    p, vel, acc, jerk = s.evaluate(t)
    rel = 1e-9
    assert np.all(np.abs(vel) <= v * (1 + rel))
    assert np.all(np.abs(acc) <= a * (1 + rel))
    assert np.all(np.abs(jerk) <= j * (1 + rel))
    assert p[-1] == d  # exactly the target
    assert vel[-1] == 0.0 and acc[-1] == 0.0
    assert np.all(np.diff(p) >= -1e-12 * max(d, 1.0))  # never backs up
    # continuity: the last point of the integrated profile before the end matches the target
    p_end_int, _, _, _ = s.evaluate(np.array([s.duration_s * (1 - 1e-12)]))
    assert p_end_int[0] == pytest.approx(d, rel=1e-6, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(d=st.floats(min_value=1e-4, max_value=10.0), v=pos, a=pos, j=pos)
def test_scurve_time_brackets_trapezoid(d: float, v: float, a: float, j: float) -> None:
    t_s = SCurve.plan(d, v, a, j).duration_s
    t_trap = trapezoid_time_s(d, v, a)
    t_jerk = 4.0 * (d / (2.0 * j)) ** (1.0 / 3.0)  # bang-bang jerk, no v/a limit
    # lower bounds: dropping the jerk limit (trapezoid) or the v/a limits can only be faster
    assert t_s >= t_trap * (1 - 1e-9)
    assert t_s >= t_jerk * (1 - 1e-9)
    # upper bound: the jerk ramps cost at most 2 a/j over the trapezoid unless jerk dominates
    assert t_s <= max(t_trap + 2 * a / j, t_jerk) * (1 + 1e-9)


def test_all_limits_reached_matches_closed_form() -> None:
    s = SCurve.plan(2.0, 10.0, 100.0, 5000.0)  # long enough to cruise
    assert s.t_v > 0
    assert s.duration_s == pytest.approx(2.0 / 10 + 10 / 100 + 100 / 5000, rel=1e-12)
    assert s.peak_velocity == pytest.approx(10.0)


def test_synchronized_joint_move_keeps_each_joint_limit() -> None:
    vmax, amax, jmax = np.array([10.0, 5.0, 8.0]), np.array([100.0, 80.0, 60.0]), np.full(3, 4e3)
    mv = plan_joint_move([0.0, 0.5, -0.2], [1.0, 0.1, 0.3], vmax, amax, jmax)
    t = np.linspace(0, mv.duration_s, 3001)
    q, qd, qdd, qddd = mv.sample(t)
    assert np.all(np.abs(qd) <= vmax * (1 + 1e-9))
    assert np.all(np.abs(qdd) <= amax * (1 + 1e-9))
    assert np.all(np.abs(qddd) <= jmax * (1 + 1e-9))
    np.testing.assert_array_equal(q[-1], [1.0, 0.1, 0.3])
    # synchronized: the slowest joint's own minimal time is a lower bound and all finish together
    own = max(
        SCurve.plan(abs(dq), v, a, jj).duration_s
        for dq, v, a, jj in zip([1.0, 0.4, 0.5], vmax, amax, jmax, strict=True)
    )
    assert mv.duration_s >= own - 1e-12
    assert mv.duration_s <= own * 1.25  # same profile shape: within the ratio of limits


def test_bad_limits_are_typed() -> None:
    for args in [(-1.0, 1, 1, 1), (math.nan, 1, 1, 1), (1.0, 0, 1, 1), (1.0, 1, math.inf, 1)]:
        with pytest.raises(InvalidInputError):
            SCurve.plan(*args)
    with pytest.raises(InvalidInputError):
        plan_joint_move([0, 0, 0], [0, math.nan, 0], 1, 1, 1)
