"""Safety: nothing outside limits for any input (property-based), E-stop braking and latch,
stale data holds the arms, no picks on a stopped belt, payload, bad plans → typed errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot.config import demo_arms
from robot.drivers.base import ArmState, Outcome
from robot.drivers.sim import GraspTarget, SimArmDriver
from robot.errors import (
    BeltStopped,
    EStopActive,
    InvalidInputError,
    LimitViolation,
    PayloadViolation,
    RobotError,
    WatchdogStale,
)
from robot.motion.intercept import MovingTarget
from robot.motion.scurve import plan_joint_move
from robot.pick_cycle import DeltaPickCycle, PickPlan
from robot.safety import EStopLatch, SafetyGuard, Watchdog

CYCLE = DeltaPickCycle(demo_arms()[0])


def make_driver(watchdog: Watchdog | None = None, line: EStopLatch | None = None) -> SimArmDriver:
    guard = SafetyGuard(CYCLE.arm, line_estop=line, watchdog=watchdog)
    return SimArmDriver(CYCLE, guard, np.random.default_rng(0))


def target_for(plan: PickPlan, speed: float = 0.5, mass: float = 0.2) -> GraspTarget:
    t_mid = plan.t_contact_s + CYCLE.dwell_s / 2
    x, y, z = plan.pick_xyz
    return GraspTarget(x, y, t_mid, speed, z, mass, 1.0, 0.1)


anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=10),
    st.floats(min_value=-1e9, max_value=1e9),
    st.floats(min_value=0.0, max_value=0.3),  # plausible heights, speeds, masses
    st.floats(min_value=2.5, max_value=4.5),  # plausible x around the arm
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=anything, y=anything, z=anything, speed=anything, mass=anything, t0=anything)
def test_no_command_outside_limits_for_any_input(
    x: float, y: float, z: float, speed: float, mass: float, t0: float
) -> None:
    driver = make_driver()
    try:
        target = MovingTarget(x, y, z, 0.0, speed)
        plan = CYCLE.plan_pick(target, "crm", t0, payload_kg=mass)
        grasp = GraspTarget(x, y, 0.0, speed, z, mass)
        driver.begin(plan, grasp, plan.t_start_s)
    except RobotError:
        assert driver.commands_accepted == 0  # rejected with a typed error, nothing sent
        assert driver.state == ArmState.IDLE
        return
    # accepted: every sampled joint state is within limits and the tool in the workspace
    arm = CYCLE.arm
    t = np.linspace(plan.t_start_s, plan.t_end_s, 200)
    for ti in t:
        q, qd, qdd = plan.state_at(float(ti))
        assert np.all(q >= arm.q_min - 1e-12) and np.all(q <= arm.q_max + 1e-12)
        assert np.all(np.abs(qd) <= arm.v_max * (1 + 1e-9))
        assert np.all(np.abs(qdd) <= arm.a_max * (1 + 1e-9))
        driver.guard.check_tcp(arm.fk(q))
    assert 0 <= plan.payload_kg <= arm.config.safety.max_payload_kg
    assert speed >= arm.config.safety.min_belt_speed_mps


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(min_value=1.01, max_value=1e6))
def test_trajectory_over_a_limit_is_rejected_and_not_sent(scale: float) -> None:
    plan = CYCLE.plan_fixed((3.6, 0.1, 0.03), "crm", 0.0)
    arm = CYCLE.arm
    fast = []
    for ph in plan.phases:  # re-time every move with limits `scale` × too high
        if ph.move is None:
            fast.append(ph)
            continue
        mv = plan_joint_move(
            ph.q_start, ph.q_end, arm.v_max * scale, arm.a_max * scale, arm.j_max * scale
        )
        fast.append(dataclasses.replace(ph, move=mv, duration_s=mv.duration_s))
    t = 0.0
    for k, ph in enumerate(fast):
        fast[k] = dataclasses.replace(ph, t_start_s=t)
        t += ph.duration_s
    bad = dataclasses.replace(plan, phases=tuple(fast))
    driver = make_driver()
    with pytest.raises(LimitViolation):
        driver.begin(bad, target_for(plan), 0.0)
    assert driver.commands_accepted == 0


def test_bad_input_is_rejected_before_anything_is_sent() -> None:
    driver = make_driver()
    with pytest.raises(RobotError, match=r"outside the workspace|cannot reach|out of reach"):
        CYCLE.plan_fixed((5.0, 0.0, 0.03), "crm", 0.0)
    with pytest.raises(RobotError, match="unknown bin"):
        CYCLE.plan_fixed((3.6, 0.0, 0.03), "gold", 0.0)
    with pytest.raises(InvalidInputError):
        CYCLE.plan_fixed((3.6, math.nan, 0.03), "crm", 0.0)
    heavy = CYCLE.plan_fixed((3.6, 0.0, 0.03), "crm", 0.0, payload_kg=5.0)
    with pytest.raises(PayloadViolation):
        driver.begin(heavy, target_for(heavy, mass=5.0), 0.0)
    plan = CYCLE.plan_fixed((3.6, 0.0, 0.03), "crm", 0.0)
    with pytest.raises(BeltStopped):
        driver.begin(plan, target_for(plan, speed=0.0), 0.0)
    other = DeltaPickCycle(demo_arms()[1]).plan_fixed((4.6, 0.0, 0.03), "crm", 0.0)
    with pytest.raises(InvalidInputError, match="plan is for arm"):
        driver.begin(other, target_for(other), 0.0)
    assert driver.commands_accepted == 0


@pytest.mark.parametrize("line_wide", [False, True])
def test_estop_mid_move_stops_within_braking_time_and_stays_latched(line_wide: bool) -> None:
    line = EStopLatch("line")
    driver = make_driver(line=line)
    plan = CYCLE.plan_fixed((3.8, -0.2, 0.03), "battery", 0.0)
    driver.begin(plan, target_for(plan), 0.0)
    # trip in the middle of the transfer, at full speed
    tr = next(ph for ph in plan.phases if ph.name == "transfer")
    t_trip = tr.t_start_s + tr.duration_s / 2
    _, qd_trip = driver.joint_state(t_trip)
    assert float(np.max(np.abs(qd_trip))) > 1.0  # really moving
    driver.advance(t_trip - 1e-3)
    if line_wide:
        line.trip("operator pressed the line E-stop", t_trip)
    else:
        driver.estop("light curtain", t_trip)
    out = driver.advance(t_trip + 1e-3)
    assert out is not None and out.outcome == Outcome.ABORTED
    braking = CYCLE.config.safety.braking_time_s
    q_stop, qd_stop = driver.joint_state(t_trip + braking)
    assert np.all(qd_stop == 0.0)  # standing still within the braking time
    # braking distance is bounded by v²/(2·decel) for each joint
    decel = CYCLE.arm.v_max / braking
    assert np.all(
        np.abs(q_stop - driver.joint_state(t_trip)[0]) <= qd_trip**2 / (2 * decel) + 1e-12
    )
    driver.advance(t_trip + braking + 5.0)
    assert driver.state == ArmState.ESTOPPED
    np.testing.assert_array_equal(driver.joint_state(t_trip + 10.0)[0], q_stop)  # nothing moves
    # no new motion until reset, even from where it stopped
    again = CYCLE.plan_fixed(
        (3.6, 0.0, 0.03), "crm", t_trip + 6.0, from_xyz=tuple(driver.tcp_xyz())
    )
    with pytest.raises(EStopActive):
        driver.begin(again, target_for(again), t_trip + 6.0)
    assert driver.commands_accepted == 1
    driver.reset()
    if line_wide:
        assert driver.state == ArmState.ESTOPPED  # the line latch still holds
        line.reset()
        driver.reset()
    assert driver.state is ArmState.IDLE  # type: ignore[comparison-overlap]
    out2 = driver.execute(again, target_for(again))
    assert out2.outcome in (Outcome.PICKED, Outcome.MISSED)
    assert driver.commands_accepted == 2


def test_stale_data_holds_the_arms() -> None:
    wd = Watchdog(0.25)
    driver = make_driver(watchdog=wd)
    plan = CYCLE.plan_fixed((3.6, 0.0, 0.03), "crm", 1.0)
    with pytest.raises(WatchdogStale):  # never fed
        driver.begin(plan, target_for(plan), 1.0)
    wd.feed(0.9, "tracking")
    wd.feed(0.9, "encoder")
    driver.begin(plan, target_for(plan), 1.0)  # fresh: allowed
    # the encoder stops updating; tracking keeps coming; at 1.2 s the data are 0.3 s old
    wd.feed(1.2, "tracking")
    out = driver.advance(1.2)
    assert out is not None and out.outcome == Outcome.ABORTED and "watchdog" in out.message
    q_hold = driver.joint_state(1.2 + CYCLE.config.safety.braking_time_s)[0]
    driver.advance(2.0)
    np.testing.assert_array_equal(driver.joint_state(3.0)[0], q_hold)
    nxt = CYCLE.plan_fixed((3.6, 0.0, 0.03), "crm", 3.0, from_xyz=tuple(driver.tcp_xyz()))
    with pytest.raises(WatchdogStale, match="encoder"):
        driver.begin(nxt, target_for(nxt), 3.0)
    wd.feed(3.0, "encoder")
    wd.feed(3.0, "tracking")
    driver.begin(nxt, target_for(nxt), 3.0)
    assert driver.commands_accepted == 2


def test_plausible_inputs_are_accepted() -> None:
    # the property test above must not pass by rejecting everything
    driver = make_driver()
    plan = CYCLE.plan_pick(MovingTarget(3.0, 0.2, 0.03, 0.0, 0.5), "crm", 0.0)
    driver.begin(plan, GraspTarget(3.0, 0.2, 0.0, 0.5, 0.03, 0.3), 0.0)
    assert driver.commands_accepted == 1 and driver.state == ArmState.MOVING
