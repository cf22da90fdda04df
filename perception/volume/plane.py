"""Robust fit of the belt plane to a point cloud.

A plane is ``n . p + d = 0`` with unit normal ``n`` pointing *up* (towards the
sensor); ``signed_distance(p) = n . p + d`` is then the height above the belt
(m). Two modes:

- :func:`fit_plane` — MSAC (RANSAC with a truncated quadratic cost) on a seeded
  random subsample, then least-squares refinement on the inliers. Objects can
  cover most of the belt: a large flat object top can gather as many inliers as
  the belt, so each hypothesis is also charged for the points lying clearly
  *below* it (for the true belt only noise lies below; for an object top, the
  whole visible belt does). Half of the hypotheses are drawn among the lowest
  quarter of the points, where the belt is. Hypotheses tilted more than
  ``max_tilt_deg`` from the expected ``up`` are rejected.
- :func:`refine_plane` — start from a prior plane (from calibration) and only
  refine it by iteratively reweighted least squares on the points near it.

Both raise :class:`PlaneNotFoundError` when the support is too small.

Example::

    >>> rng = np.random.default_rng(0)
    >>> pts = np.column_stack([rng.uniform(-1, 1, (500, 2)), rng.normal(0, 1e-3, 500)])
    >>> plane = fit_plane(pts, rng=np.random.default_rng(1))
    >>> bool(abs(plane.normal[2]) > 0.999 and abs(plane.offset) < 1e-3)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.volume.errors import BadCloudError, PlaneNotFoundError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Plane:
    """``normal . p + offset = 0``; ``normal`` unit length, pointing up (m).

    ``inlier_fraction`` (0-1) and ``rms_m`` describe the support of the fit.
    """

    normal: FloatArray
    offset: float
    inlier_fraction: float = 1.0
    rms_m: float = 0.0

    def signed_distance(self, points: FloatArray) -> FloatArray:
        """Height of N x 3 ``points`` above the plane (m), shape (N,)."""
        return _dist(np.asarray(points, dtype=np.float64), self.normal, self.offset)

    def tilt_deg(self, up: FloatArray) -> float:
        """Angle between the normal and ``up`` (degrees)."""
        u = np.asarray(up, dtype=np.float64)
        c = float(np.dot(self.normal, u) / np.linalg.norm(u))
        return math.degrees(math.acos(min(1.0, max(-1.0, c))))

    @classmethod
    def horizontal(cls, z_m: float = 0.0) -> Plane:
        """The plane ``z = z_m`` with normal +z (the calibrated belt in the belt frame)."""
        return cls(np.array([0.0, 0.0, 1.0]), -float(z_m))


@dataclass(frozen=True)
class PlaneFitConfig:
    """Settings of :func:`fit_plane` / :func:`refine_plane`.

    ``threshold_m``: inlier distance; ``iterations``: MSAC hypotheses;
    ``sample_size``: points drawn for the hypothesis scoring; ``min_inlier_fraction``:
    smallest share of points on the belt; ``below_weight``: cost of a point lying
    more than ``3 * threshold_m`` below a hypothesis, relative to an outlier;
    ``max_tilt_deg``: largest angle between the normal and ``up``.
    """

    threshold_m: float = 0.004
    iterations: int = 64
    sample_size: int = 3000
    min_inlier_fraction: float = 0.1
    below_weight: float = 20.0
    max_tilt_deg: float = 20.0
    refine_iterations: int = 3


def _check_points(points: FloatArray, max_points: int = 0) -> FloatArray:
    """Finite rows as float64; with ``max_points`` > 0 an even subsample of about that many."""
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] != 3:
        raise BadCloudError(f"plane fit: expected N x 3 points, got shape {p.shape}")
    if max_points > 0 and len(p) > 2 * max_points:
        p = p[:: len(p) // max_points]
    fin = np.isfinite(p[:, 0]) & np.isfinite(p[:, 1]) & np.isfinite(p[:, 2])
    if not fin.all():
        p = p[fin]
    p = p.astype(np.float64, copy=False)
    if len(p) < 3:
        raise BadCloudError(f"plane fit: need at least 3 finite points, got {len(p)}")
    return p


_REFINE_POINTS = 20000


def _dist(p: FloatArray, n: FloatArray, d: float) -> FloatArray:
    out: FloatArray = p[:, 0] * n[0] + p[:, 1] * n[1] + p[:, 2] * n[2] + d
    return out


def _lsq_plane(
    x: FloatArray, y: FloatArray, z: FloatArray, up: FloatArray
) -> tuple[FloatArray, float]:
    """Least-squares plane of the points (x, y, z columns): unit normal towards ``up``, offset."""
    centroid = np.array([x.mean(), y.mean(), z.mean()])
    # eigenvector of the smallest eigenvalue of the 3 x 3 scatter matrix = normal; the six
    # sums as dot products of contiguous columns (reductions over an N x 3 array are slow)
    q = (x - centroid[0], y - centroid[1], z - centroid[2])
    scatter = np.empty((3, 3))
    for a in range(3):
        for b in range(a, 3):
            scatter[a, b] = scatter[b, a] = float(np.dot(q[a], q[b]))
    _, vecs = np.linalg.eigh(scatter)
    n = vecs[:, 0]
    if np.dot(n, up) < 0:
        n = -n
    return n, -float(n @ centroid)


def _result(points: FloatArray, n: FloatArray, d: float, thr: float) -> Plane:
    dist = _dist(points, n, d)
    inl = np.abs(dist) < thr
    rms = float(np.sqrt(np.mean(dist[inl] ** 2))) if inl.any() else float("inf")
    return Plane(n, d, float(inl.mean()), rms)


def fit_plane(
    points: FloatArray,
    *,
    rng: np.random.Generator,
    up: FloatArray | None = None,
    config: PlaneFitConfig | None = None,
) -> Plane:
    """The belt plane of N x 3 ``points`` (m) by MSAC + least squares (module docstring).

    ``up`` is the expected normal direction (default +z); ``rng`` draws the
    samples, so the same seed gives the same plane. NaN rows are ignored.
    Raises :class:`BadCloudError` for fewer than 3 finite points and
    :class:`PlaneNotFoundError` when no hypothesis has ``min_inlier_fraction``
    support within ``max_tilt_deg`` of ``up``.
    """
    cfg = config or PlaneFitConfig()
    pts = _check_points(points, _REFINE_POINTS)
    upv = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    upv = upv / np.linalg.norm(upv)
    sample = pts if len(pts) <= cfg.sample_size else pts[rng.choice(len(pts), cfg.sample_size,
                                                                     replace=False)]
    m = len(sample)
    idx = rng.integers(0, m, size=(cfg.iterations, 3))
    # the sensor looks down at the belt, so the belt is the lowest surface: half of the
    # hypotheses are drawn among the lowest quarter of the points along up, which keeps
    # the belt found when objects hide most of it
    heights = sample @ upv
    low = np.nonzero(heights <= np.quantile(heights, 0.25))[0]
    if len(low) >= 3:
        half = cfg.iterations // 2
        idx[:half] = low[rng.integers(0, len(low), size=(half, 3))]
    a, b, c = sample[idx[:, 0]], sample[idx[:, 1]], sample[idx[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    normals[ok] /= norms[ok, None]
    flip = normals @ upv < 0
    normals[flip] *= -1.0
    cos_tilt = normals @ upv
    ok &= cos_tilt >= math.cos(math.radians(cfg.max_tilt_deg))
    if not ok.any():
        raise PlaneNotFoundError(
            f"plane fit: none of {cfg.iterations} hypotheses lies within "
            f"{cfg.max_tilt_deg} deg of up={upv.round(3).tolist()}"
        )
    normals, a = normals[ok], a[ok]
    offsets = -np.einsum("ij,ij->i", normals, a)
    # (m, k) distances; broadcasting, not BLAS, which is slow on tiny inner dimensions
    dist = (sample[:, 0:1] * normals[:, 0] + sample[:, 1:2] * normals[:, 1]
            + sample[:, 2:3] * normals[:, 2] + offsets)
    thr = cfg.threshold_m
    cost = np.minimum(dist**2, thr**2).sum(axis=0)
    below = (dist < -3 * thr).sum(axis=0)
    cost += cfg.below_weight * thr**2 * below
    best = int(np.argmin(cost))
    n, d = normals[best], float(offsets[best])
    inliers = np.abs(dist[:, best]) < thr
    if inliers.mean() < cfg.min_inlier_fraction:
        raise PlaneNotFoundError(
            f"plane fit: best plane has {inliers.mean():.1%} of {m} points within {thr} m; "
            f"need {cfg.min_inlier_fraction:.0%}"
        )
    return refine_plane(pts, Plane(n, d), up=upv, config=cfg)


def refine_plane(
    points: FloatArray,
    prior: Plane,
    *,
    up: FloatArray | None = None,
    config: PlaneFitConfig | None = None,
) -> Plane:
    """Refine ``prior`` by least squares on the points within ``threshold_m`` of it.

    Iterates ``refine_iterations`` times, each time re-selecting the points near
    the current plane. Raises :class:`BadCloudError` for fewer than 3 finite
    points and :class:`PlaneNotFoundError` when fewer than ``min_inlier_fraction``
    of them lie near the plane or the result tilts more than ``max_tilt_deg``.
    """
    cfg = config or PlaneFitConfig()
    # a coarse subsample is plenty for a 3-parameter fit, and keeps 100 k-point frames fast
    sub = _check_points(points, _REFINE_POINTS)
    upv = prior.normal if up is None else np.asarray(up, dtype=np.float64)
    upv = upv / np.linalg.norm(upv)
    n, d = np.asarray(prior.normal, dtype=np.float64), float(prior.offset)
    # contiguous columns: the inlier selections below are then 1-D gathers
    x, y, z = (np.ascontiguousarray(sub[:, k]) for k in range(3))
    for _ in range(max(1, cfg.refine_iterations)):
        inl = np.abs(x * n[0] + y * n[1] + z * n[2] + d) < cfg.threshold_m
        n_inl = int(np.count_nonzero(inl))
        if n_inl < max(3, cfg.min_inlier_fraction * len(sub)):
            raise PlaneNotFoundError(
                f"plane refinement: {n_inl} of {len(sub)} points within "
                f"{cfg.threshold_m} m of the prior plane; need {cfg.min_inlier_fraction:.0%}"
            )
        n, d = _lsq_plane(x[inl], y[inl], z[inl], upv)
    plane = _result(sub, n, d, cfg.threshold_m)
    if plane.tilt_deg(upv) > cfg.max_tilt_deg:
        raise PlaneNotFoundError(
            f"plane refinement: plane tilts {plane.tilt_deg(upv):.1f} deg from up; "
            f"limit {cfg.max_tilt_deg} deg"
        )
    return plane


def plane_frame(plane: Plane) -> tuple[FloatArray, FloatArray]:
    """Rotation R (3x3) and translation t with ``R @ p + t`` putting the plane at z = 0.

    The minimal rotation taking ``plane.normal`` to +z, so for a nearly horizontal
    plane x and y barely change. Returns ``(R, t)``.
    """
    n = plane.normal
    z = np.array([0.0, 0.0, 1.0])
    v = np.array([n[1], -n[0], 0.0])  # n x z
    s = float(np.linalg.norm(v))
    c = float(np.dot(n, z))
    if s < 1e-12:
        rot = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
        rot = np.eye(3) + vx + vx @ vx * ((1 - c) / s**2)
    # after rotation the plane is z = -offset; shift it to 0
    t = np.array([0.0, 0.0, plane.offset])
    return rot, t
