"""Delta kinematics: IK∘FK identity over the workspace, workspace boundaries, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot.config import demo_arms
from robot.delta.arm import DeltaArm
from robot.delta.kinematics import DeltaGeometry, forward, inverse
from robot.errors import InvalidInputError, LimitViolation, UnreachableError

GEOM = DeltaGeometry(0.2, 0.05, 0.45, 1.0, 0.1)


def test_fk_of_ik_is_identity_over_the_workspace() -> None:
    # a 3-D grid over the demo workspace (cylinder r 0.5 m, z -1.1..-0.9 m in the arm frame)
    errs = []
    for r in np.linspace(0.0, 0.5, 6):
        for ang in np.linspace(0, 2 * math.pi, 13)[:-1]:
            for z in np.linspace(-1.1, -0.9, 5):
                p = np.array([r * math.cos(ang), r * math.sin(ang), z])
                errs.append(float(np.linalg.norm(forward(GEOM, inverse(GEOM, p)) - p)))
    # closed forms on both sides: only float round-off remains (1e-9 m = 1 nm)
    assert max(errs) < 1e-9, max(errs)


def test_ik_of_fk_is_identity_for_random_joints() -> None:
    rng = np.random.default_rng(3)
    n = 0
    for q in rng.uniform(-0.3, 1.3, size=(300, 3)):
        try:
            p = forward(GEOM, q)
        except UnreachableError:
            continue
        n += 1
        np.testing.assert_allclose(inverse(GEOM, p), q, atol=1e-9)
    assert n > 200


def test_known_point_below_the_centre_is_symmetric() -> None:
    q = inverse(GEOM, (0.0, 0.0, -1.0))
    assert np.ptp(q) < 1e-12  # three identical joint angles straight below the centre
    assert 0 < q[0] < math.pi / 2


def test_workspace_boundaries_belt_frame() -> None:
    arm = DeltaArm(demo_arms()[0])  # base x 3.6 m, y 0, z 1.1 m; r 0.5, z 0..0.2 m
    assert arm.reachable((3.6 + 0.4999, 0.0, 0.05))
    assert not arm.reachable((3.6 + 0.5011, 0.0, 0.05))
    assert arm.reachable((3.6, 0.0, 0.0)) and not arm.reachable((3.6, 0.0, -0.001))
    assert arm.reachable((3.6, 0.0, 0.2)) and not arm.reachable((3.6, 0.0, 0.2011))
    assert arm.reach_x_range_m(0.3, 0.0) == pytest.approx((3.2, 4.0))
    assert arm.reach_x_range_m(0.51, 0.0) is None
    assert arm.reach_x_range_m(0.0, 0.3) is None
    with pytest.raises(UnreachableError, match="outside the workspace"):
        arm.ik((5.0, 0.0, 0.05))


def test_bad_input_is_typed() -> None:
    with pytest.raises(InvalidInputError):
        inverse(GEOM, (math.nan, 0.0, -1.0))
    with pytest.raises(InvalidInputError):
        forward(GEOM, (0.1, 0.2))
    with pytest.raises(UnreachableError):
        inverse(GEOM, (0.0, 0.0, -3.0))  # beyond the forearms
    arm = DeltaArm(demo_arms()[0])
    with pytest.raises(LimitViolation):
        arm.check_joints(np.array([0.0, 0.0, 2.5]))
    with pytest.raises(InvalidInputError):
        arm.ik((3.6, math.inf, 0.1))
