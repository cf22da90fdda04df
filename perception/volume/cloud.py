"""Checks and clean-up of an organized point cloud before it is gridded.

Depth sensors put "flying pixels" between the two surfaces of a depth edge, and
see steep walls at grazing angles. Both smear an object's outline outwards in a
height map, so points whose local surface is seen nearly edge-on (angle between
the viewing ray and the surface normal above ``max_incidence_deg``) are dropped.
A wall then collapses onto the outline of the top it belongs to, which is what
a height map (the view from straight above) should show.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from perception.volume.errors import BadCloudError

F32 = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


def check_organized(points: F32, *, expected_shape: tuple[int, int] | None = None) -> F32:
    """Validate an organized H x W x 3 cloud (m, sensor optical frame; NaN = no return).

    Returns it as float32. Raises :class:`BadCloudError` for another shape, a
    size other than ``expected_shape`` (H, W), or a cloud with no finite point.
    """
    p = np.asarray(points, dtype=np.float32)
    if p.ndim != 3 or p.shape[2] != 3:
        raise BadCloudError(f"cloud: expected an organized H x W x 3 array, got shape {p.shape}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise BadCloudError(f"cloud: empty ({p.shape[0]} x {p.shape[1]} points)")
    if expected_shape is not None and p.shape[:2] != tuple(expected_shape):
        raise BadCloudError(
            f"cloud: expected {expected_shape[0]} x {expected_shape[1]} points (the sensor's "
            f"image size), got {p.shape[0]} x {p.shape[1]}"
        )
    return p


def grazing_mask(points: F32, max_incidence_deg: float = 80.0) -> BoolArray:
    """H x W mask of points seen at grazing incidence (flying pixels, steep walls).

    The normal at each pixel is the cross product of the central differences to
    its horizontal and vertical neighbours; pixels at the border or next to a
    missing return are never flagged (their normal is unknown).
    """
    h, w = points.shape[:2]
    out = np.zeros((h, w), dtype=bool)
    if h < 3 or w < 3:
        return out
    # component by component: reductions over a 3-wide last axis are slow in numpy
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    ax, ay, az = (c[1:-1, 2:] - c[1:-1, :-2] for c in (x, y, z))
    bx, by, bz = (c[2:, 1:-1] - c[:-2, 1:-1] for c in (x, y, z))
    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    rx, ry, rz = x[1:-1, 1:-1], y[1:-1, 1:-1], z[1:-1, 1:-1]
    dot = np.abs(nx * rx + ny * ry + nz * rz)
    norm2 = (nx * nx + ny * ny + nz * nz) * (rx * rx + ry * ry + rz * rz)
    cos_min = math.cos(math.radians(max_incidence_deg))
    with np.errstate(invalid="ignore"):
        graze = dot * dot < (cos_min * cos_min) * norm2
    out[1:-1, 1:-1] = graze
    return out


def finite_mask(points: F32) -> BoolArray:
    """H x W mask of points with finite x, y and z."""
    return np.isfinite(points[..., 0]) & np.isfinite(points[..., 1]) & np.isfinite(points[..., 2])
