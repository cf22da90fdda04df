r"""Closed-form kinematics of a 3-arm rotary delta robot (Clavel delta, ABB FlexPicker type).

Frame (the arm's ``base_link``): origin at the centre of the fixed base plate, z up, so the
tool works at negative z. Arm ``i`` (i = 0, 1, 2) has its shoulder axis at distance ``R``
(``base_radius_m``) from the centre in direction :math:`\varphi_i = 2\pi i/3`; the shoulder axis
is horizontal and perpendicular to that direction. The joint angle :math:`\theta_i` is the
angle of the upper arm (length ``L``) *below* the horizontal (0 = horizontal pointing outward,
positive = down). The forearm parallelogram (length ``l``) joins the elbow to the moving
platform at distance ``r`` (``effector_radius_m``) from its centre ``P``; the platform never
tilts. The tool centre point (TCP) is ``tool_length_m`` below ``P``.

**Inverse kinematics** (per arm, closed form). In the arm's plane frame (rotate ``P`` by
:math:`-\varphi_i`: :math:`x' = x\cos\varphi_i + y\sin\varphi_i`,
:math:`y' = -x\sin\varphi_i + y\cos\varphi_i`, :math:`z' = z`) the elbow is
:math:`E = (R + L\cos\theta,\ 0,\ -L\sin\theta)` and the forearm end is
:math:`W = (x' + r,\ y',\ z)`. The forearm constraint :math:`|E - W|^2 = l^2` with
:math:`a = x' + r - R` expands to

.. math::  A\cos\theta + B\sin\theta = C,\quad A = -2aL,\ B = 2zL,\
           C = l^2 - L^2 - a^2 - y'^2 - z^2,

so :math:`\theta = \operatorname{atan2}(B, A) \pm \arccos\big(C/\sqrt{A^2+B^2}\big)`. A real
solution needs :math:`|C| \le \sqrt{A^2+B^2}`; of the two we take the *elbow-out* one (the
elbow farther from the centre, larger :math:`\cos\theta`), the working branch of every
industrial delta.

**Forward kinematics** (closed form). Each forearm end ``W_i`` lies on a sphere of radius
``l`` about :math:`E_i`; shifting by the platform offset, ``P`` lies on the three spheres of
radius ``l`` centred at :math:`C_i = E_i - r\,u_i` (:math:`u_i` the arm direction).
Trilateration: with :math:`e_x = (C_2 - C_1)/d`, :math:`i = e_x\cdot(C_3 - C_1)`,
:math:`e_y \propto C_3 - C_1 - i e_x`, :math:`j = e_y\cdot(C_3 - C_1)`,
:math:`e_z = e_x\times e_y`: :math:`x = d/2`, :math:`y = (i^2 + j^2)/(2j) - i x/j`,
:math:`z = \pm\sqrt{l^2 - x^2 - y^2}`; ``P`` is the lower of the two points. No real
solution (negative radicand) means the joint angles are not assemblable.

Example::

    >>> from robot.delta.kinematics import DeltaGeometry, inverse, forward
    >>> g = DeltaGeometry(0.2, 0.05, 0.35, 0.8, 0.0)
    >>> q = inverse(g, (0.1, -0.05, -0.7))
    >>> [round(v, 9) for v in forward(g, q)]
    [0.1, -0.05, -0.7]

Limits are checked without a Jacobian: joint positions against their interval, the tool
against a cylinder workspace (:func:`in_workspace`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robot.errors import InvalidInputError, LimitViolation, UnreachableError

FloatArray = NDArray[np.float64]
ARM_ANGLES_RAD = (0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0)
JOINT_NAMES = ("theta1", "theta2", "theta3")


@dataclass(frozen=True)
class DeltaGeometry:
    """Link lengths (m): base radius ``R``, platform radius ``r``, upper arm ``L``, forearm ``l``,
    and the tool length below the platform centre."""

    base_radius_m: float
    effector_radius_m: float
    upper_arm_m: float
    forearm_m: float
    tool_length_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("base_radius_m", "effector_radius_m", "upper_arm_m", "forearm_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(
                    f"DeltaGeometry.{name}: must be finite and > 0, got {value}"
                )
        if not (math.isfinite(self.tool_length_m) and self.tool_length_m >= 0):
            raise InvalidInputError(
                f"DeltaGeometry.tool_length_m: must be finite and >= 0, got {self.tool_length_m}"
            )


@dataclass(frozen=True)
class Workspace:
    """Safe tool (TCP) workspace in the arm frame: a vertical cylinder of ``radius_m`` about the
    base axis between ``z_min_m`` and ``z_max_m`` (both negative: below the base)."""

    radius_m: float
    z_min_m: float
    z_max_m: float


def _point(p: Sequence[float] | FloatArray, name: str = "point") -> tuple[float, float, float]:
    arr = np.asarray(p, dtype=np.float64)
    if arr.shape != (3,):
        raise InvalidInputError(
            f"{name}: expected 3 coordinates (x, y, z) in m, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name}: coordinates must be finite, got {arr.tolist()}")
    return float(arr[0]), float(arr[1]), float(arr[2])


def inverse(geometry: DeltaGeometry, tcp: Sequence[float] | FloatArray) -> FloatArray:
    """Joint angles (rad, shape (3,)) that put the TCP at ``tcp`` (arm frame, m).

    Raises :class:`InvalidInputError` for a non-finite point and :class:`UnreachableError`
    when an arm has no real solution (the point is beyond the forearm's reach).
    """
    x, y, z = _point(tcp, "tcp")
    z += geometry.tool_length_m  # platform centre
    big_r, r = geometry.base_radius_m, geometry.effector_radius_m
    big_l, ll = geometry.upper_arm_m, geometry.forearm_m
    q = np.empty(3)
    for i, phi in enumerate(ARM_ANGLES_RAD):
        c, s = math.cos(phi), math.sin(phi)
        xp = x * c + y * s
        yp = -x * s + y * c
        a = xp + r - big_r
        coef_a = -2.0 * a * big_l
        coef_b = 2.0 * z * big_l
        coef_c = ll * ll - big_l * big_l - a * a - yp * yp - z * z
        norm = math.hypot(coef_a, coef_b)
        if norm == 0.0 or abs(coef_c) > norm:
            raise UnreachableError(
                f"inverse kinematics: arm {i + 1} cannot reach tcp ({x:.4f}, {y:.4f}, "
                f"{z - geometry.tool_length_m:.4f}) m"
            )
        base = math.atan2(coef_b, coef_a)
        delta = math.acos(coef_c / norm)
        t1, t2 = base + delta, base - delta
        # elbow-out: the solution whose elbow lies farther out (larger cos)
        theta = t1 if math.cos(t1) >= math.cos(t2) else t2
        q[i] = math.atan2(math.sin(theta), math.cos(theta))
    return q


def elbows(geometry: DeltaGeometry, q: Sequence[float] | FloatArray) -> FloatArray:
    """Elbow positions (m, shape (3, 3)) in the arm frame for joint angles ``q`` (rad)."""
    t = np.asarray(q, dtype=np.float64)
    out = np.empty((3, 3))
    for i, phi in enumerate(ARM_ANGLES_RAD):
        radial = geometry.base_radius_m + geometry.upper_arm_m * math.cos(float(t[i]))
        out[i] = (
            radial * math.cos(phi),
            radial * math.sin(phi),
            -geometry.upper_arm_m * math.sin(float(t[i])),
        )
    return out


def forward(geometry: DeltaGeometry, q: Sequence[float] | FloatArray) -> FloatArray:
    """TCP position (m, shape (3,)) in the arm frame for joint angles ``q`` (rad, shape (3,)).

    Raises :class:`InvalidInputError` for a wrong shape / non-finite angles and
    :class:`UnreachableError` when the three forearm spheres do not meet.
    """
    qq = np.asarray(q, dtype=np.float64)
    if qq.shape != (3,) or not np.all(np.isfinite(qq)):
        raise InvalidInputError(
            f"forward kinematics: expected 3 finite joint angles, got {qq.tolist()}"
        )
    big_r, r = geometry.base_radius_m, geometry.effector_radius_m
    big_l, ll = geometry.upper_arm_m, geometry.forearm_m
    centres = []
    for i, phi in enumerate(ARM_ANGLES_RAD):
        th = float(qq[i])
        radial = big_r + big_l * math.cos(th) - r  # elbow, shifted by the platform offset
        centres.append((radial * math.cos(phi), radial * math.sin(phi), -big_l * math.sin(th)))
    (x1, y1, z1), (x2, y2, z2), (x3, y3, z3) = centres
    dx, dy, dz = x2 - x1, y2 - y1, z2 - z1
    d = math.sqrt(dx * dx + dy * dy + dz * dz)
    if d == 0.0:
        raise UnreachableError(f"forward kinematics: degenerate joint angles {qq.tolist()}")
    ex = (dx / d, dy / d, dz / d)
    v13 = (x3 - x1, y3 - y1, z3 - z1)
    i_ = ex[0] * v13[0] + ex[1] * v13[1] + ex[2] * v13[2]
    ey_v = (v13[0] - i_ * ex[0], v13[1] - i_ * ex[1], v13[2] - i_ * ex[2])
    ey_n = math.sqrt(ey_v[0] ** 2 + ey_v[1] ** 2 + ey_v[2] ** 2)
    if ey_n == 0.0:
        raise UnreachableError(f"forward kinematics: collinear sphere centres for {qq.tolist()}")
    ey = (ey_v[0] / ey_n, ey_v[1] / ey_n, ey_v[2] / ey_n)
    ez = (
        ex[1] * ey[2] - ex[2] * ey[1],
        ex[2] * ey[0] - ex[0] * ey[2],
        ex[0] * ey[1] - ex[1] * ey[0],
    )
    j_ = ey[0] * v13[0] + ey[1] * v13[1] + ey[2] * v13[2]
    x = d / 2.0
    y = (i_ * i_ + j_ * j_) / (2.0 * j_) - i_ * x / j_
    rad = ll * ll - x * x - y * y
    if rad < 0.0:
        raise UnreachableError(
            f"forward kinematics: joint angles {qq.tolist()} rad are not assemblable "
            f"(forearms cannot meet)"
        )
    zz = math.sqrt(rad)
    # the lower of the two intersection points (ez or -ez, whichever points down)
    sgn = -1.0 if ez[2] > 0 else 1.0
    p = np.array(
        [
            x1 + x * ex[0] + y * ey[0] + sgn * zz * ez[0],
            y1 + x * ex[1] + y * ey[1] + sgn * zz * ez[1],
            z1 + x * ex[2] + y * ey[2] + sgn * zz * ez[2],
        ]
    )
    return np.asarray(p - np.array([0.0, 0.0, geometry.tool_length_m]), dtype=np.float64)


def in_workspace(
    workspace: Workspace, tcp: Sequence[float] | FloatArray, tol_m: float = 1e-9
) -> bool:
    """True when the TCP (arm frame, m) lies in the cylinder workspace (``tol_m`` slack)."""
    x, y, z = _point(tcp, "tcp")
    return (
        math.hypot(x, y) <= workspace.radius_m + tol_m
        and workspace.z_min_m - tol_m <= z <= workspace.z_max_m + tol_m
    )


def check_joints(
    q: Sequence[float] | FloatArray, lower_rad: float, upper_rad: float, what: str = "joints"
) -> FloatArray:
    """Return ``q`` as an array, or raise :class:`LimitViolation` naming the joint out of
    ``[lower_rad, upper_rad]`` (:class:`InvalidInputError` if not finite)."""
    qq = np.asarray(q, dtype=np.float64)
    if qq.shape != (3,) or not np.all(np.isfinite(qq)):
        raise InvalidInputError(f"{what}: expected 3 finite joint angles, got {qq.tolist()}")
    for k in range(3):
        if not lower_rad - 1e-12 <= qq[k] <= upper_rad + 1e-12:
            raise LimitViolation(
                f"{what}: {JOINT_NAMES[k]} = {qq[k]:.4f} rad outside "
                f"[{lower_rad:.4f}, {upper_rad:.4f}]"
            )
    return qq


def inverse_checked(
    geometry: DeltaGeometry,
    workspace: Workspace,
    lower_rad: float,
    upper_rad: float,
    tcp: Sequence[float] | FloatArray,
) -> FloatArray:
    """IK with the workspace and joint-limit checks: raises :class:`UnreachableError` (outside
    the workspace or no solution) or :class:`LimitViolation` (a joint out of range)."""
    x, y, z = _point(tcp, "tcp")
    if not in_workspace(workspace, (x, y, z)):
        raise UnreachableError(
            f"tcp ({x:.4f}, {y:.4f}, {z:.4f}) m is outside the workspace (radius "
            f"{workspace.radius_m} m, z in [{workspace.z_min_m}, {workspace.z_max_m}] m)"
        )
    q = inverse(geometry, (x, y, z))
    return check_joints(q, lower_rad, upper_rad, f"tcp ({x:.4f}, {y:.4f}, {z:.4f})")
