"""Rigid transforms (SE(3)) between named frames.

A :class:`RigidTransform` ``T_a_b`` maps points given in frame ``b`` into frame
``a``: ``p_a = R @ p_b + t``. Composition follows the subscripts:
``T_a_c = T_a_b @ T_b_c``. Quaternions are ``(x, y, z, w)`` as in ROS
``geometry_msgs/Quaternion``; roll/pitch/yaw are the ROS fixed-axis convention
``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.

Example::

    >>> T = RigidTransform.from_rpy(0.0, 0.0, math.pi / 2, translation=(1.0, 0.0, 0.0))
    >>> T.apply(np.array([[1.0, 0.0, 0.0]])).round(6)
    array([[1., 1., 0.]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError

FloatArray = NDArray[np.float64]

_ORTHO_TOL = 1e-6


def _as_points(points: ArrayLike, name: str = "points") -> FloatArray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise CalibrationError(f"{name}: expected an N x 3 array, got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class RigidTransform:
    """A proper rigid motion: 3x3 rotation ``rotation`` and translation ``translation`` (m).

    Raises :class:`CalibrationError` if ``rotation`` is not 3x3 orthonormal with
    determinant +1 (within 1e-6) or ``translation`` does not have 3 elements.
    """

    rotation: FloatArray
    translation: FloatArray

    def __post_init__(self) -> None:
        r = np.array(self.rotation, dtype=np.float64)
        t = np.array(self.translation, dtype=np.float64).reshape(-1)
        if r.shape != (3, 3):
            raise CalibrationError(f"rotation: expected 3 x 3, got shape {r.shape}")
        if t.shape != (3,):
            raise CalibrationError(f"translation: expected 3 elements, got shape {t.shape}")
        if not np.allclose(r @ r.T, np.eye(3), atol=_ORTHO_TOL) or np.linalg.det(r) < 0:
            raise CalibrationError("rotation: not a proper rotation (R @ R.T != I or det(R) < 0)")
        r.setflags(write=False)
        t.setflags(write=False)
        object.__setattr__(self, "rotation", r)
        object.__setattr__(self, "translation", t)

    # constructors ---------------------------------------------------------------
    @classmethod
    def identity(cls) -> RigidTransform:
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, matrix: ArrayLike) -> RigidTransform:
        """From a 4x4 homogeneous matrix; raises if the shape or the last row is wrong."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4):
            raise CalibrationError(f"matrix: expected 4 x 4, got shape {m.shape}")
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]):
            raise CalibrationError(f"matrix: last row must be [0, 0, 0, 1], got {m[3].tolist()}")
        return cls(m[:3, :3], m[:3, 3])

    @classmethod
    def from_quaternion(
        cls, quaternion_xyzw: ArrayLike, translation: ArrayLike = (0.0, 0.0, 0.0)
    ) -> RigidTransform:
        """From a ROS quaternion ``(x, y, z, w)`` (normalised here) and a translation in m."""
        q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(-1)
        if q.shape != (4,):
            raise CalibrationError(f"quaternion_xyzw: expected 4 elements, got {q.shape}")
        n = float(np.linalg.norm(q))
        if n < 1e-12:
            raise CalibrationError("quaternion_xyzw: zero quaternion")
        x, y, z, w = q / n
        r = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        return cls(r, np.asarray(translation, dtype=np.float64))

    @classmethod
    def from_rpy(
        cls,
        roll: float,
        pitch: float,
        yaw: float,
        translation: ArrayLike = (0.0, 0.0, 0.0),
    ) -> RigidTransform:
        """From ROS roll/pitch/yaw in rad (``R = Rz(yaw) Ry(pitch) Rx(roll)``) and m."""
        cr, sr = math.cos(roll), math.sin(roll)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]], dtype=np.float64)
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]], dtype=np.float64)
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]], dtype=np.float64)
        return cls(rz @ ry @ rx, np.asarray(translation, dtype=np.float64))

    # conversions ----------------------------------------------------------------
    def as_matrix(self) -> FloatArray:
        """The 4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.translation
        return m

    def as_quaternion(self) -> tuple[float, float, float, float]:
        """The rotation as a unit ROS quaternion ``(x, y, z, w)`` with ``w >= 0``."""
        r = self.rotation
        tr = float(np.trace(r))
        if tr > 0:
            s = math.sqrt(tr + 1.0) * 2
            w, x = 0.25 * s, (r[2, 1] - r[1, 2]) / s
            y, z = (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            w, x = (r[2, 1] - r[1, 2]) / s, 0.25 * s
            y, z = (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
        elif r[1, 1] > r[2, 2]:
            s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            w, x = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s
            y, z = 0.25 * s, (r[1, 2] + r[2, 1]) / s
        else:
            s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            w, x = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s
            y, z = (r[1, 2] + r[2, 1]) / s, 0.25 * s
        q = np.array([x, y, z, w], dtype=np.float64)
        q /= np.linalg.norm(q)
        if q[3] < 0:
            q = -q
        return float(q[0]), float(q[1]), float(q[2]), float(q[3])

    def as_rpy(self) -> tuple[float, float, float]:
        """ROS roll, pitch, yaw in rad (pitch in [-pi/2, pi/2])."""
        r = self.rotation
        pitch = math.asin(float(np.clip(-r[2, 0], -1.0, 1.0)))
        if abs(math.cos(pitch)) < 1e-9:  # gimbal lock: put everything into yaw
            return 0.0, pitch, math.atan2(-r[0, 1], r[1, 1])
        return math.atan2(r[2, 1], r[2, 2]), pitch, math.atan2(r[1, 0], r[0, 0])

    # algebra ----------------------------------------------------------------------
    def compose(self, other: RigidTransform) -> RigidTransform:
        """``self @ other``: ``T_a_b.compose(T_b_c) == T_a_c``."""
        return RigidTransform(
            self.rotation @ other.rotation, self.rotation @ other.translation + self.translation
        )

    def __matmul__(self, other: RigidTransform) -> RigidTransform:
        return self.compose(other)

    def inverse(self) -> RigidTransform:
        """``T_b_a`` for ``self == T_a_b``."""
        rt = self.rotation.T
        return RigidTransform(rt, -rt @ self.translation)

    def apply(self, points: ArrayLike) -> FloatArray:
        """Map N x 3 points (m) from the source frame into the target frame; returns N x 3."""
        p = _as_points(points)
        out: FloatArray = p @ self.rotation.T + self.translation
        return out

    def apply_vectors(self, vectors: ArrayLike) -> FloatArray:
        """Rotate N x 3 direction vectors (no translation); returns N x 3."""
        v = _as_points(vectors, "vectors")
        out: FloatArray = v @ self.rotation.T
        return out

    def allclose(self, other: RigidTransform, atol: float = 1e-9) -> bool:
        return bool(
            np.allclose(self.rotation, other.rotation, atol=atol)
            and np.allclose(self.translation, other.translation, atol=atol)
        )

    def __repr__(self) -> str:
        q = self.as_quaternion()
        t = self.translation
        return (
            f"RigidTransform(t=({t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}), "
            f"q_xyzw=({q[0]:.4f}, {q[1]:.4f}, {q[2]:.4f}, {q[3]:.4f}))"
        )
