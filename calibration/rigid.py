"""Belt → arm transform from touched points: Kabsch/Umeyama fit with RANSAC outlier rejection.

Given N >= 3 points ``p_i`` known in the belt frame and the arm's tool-tip
positions ``q_i`` (arm base frame) when touching them, find ``R, t`` minimising
``sum |R p_i + t - q_i|^2`` (Kabsch; Umeyama adds an optional scale ``s``).
With centroids ``p̄, q̄`` and ``H = sum (p_i - p̄)(q_i - q̄)^T = U S V^T``::

    D = diag(1, 1, sign(det(V U^T)))
    R = V D U^T,  s = trace(S D) / sum |p_i - p̄|^2 (or 1),  t = q̄ - s R p̄

Outliers (a slipped tool, a wrong point) are removed by RANSAC over triples
of points: the largest consensus within ``inlier_m`` is refit; the per-point
residuals of all points are reported.

Example::

    >>> fit = fit_rigid(p_belt, q_arm)
    >>> fit.transform.apply(p_belt) - q_arm  # residuals
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError
from calibration.procedure_errors import DegenerateGeometryError, PoorFitError, TooFewViewsError
from calibration.transforms import RigidTransform

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class RigidFit:
    """``transform`` maps source points onto target points (``T_target_source``);
    ``scale`` (1 unless fitted); ``residuals_m`` per point (N,, distance after the
    fit, outliers included); ``inliers`` mask; ``rms_m`` and ``max_m`` over inliers."""

    transform: RigidTransform
    scale: float
    residuals_m: FloatArray
    inliers: BoolArray
    rms_m: float
    max_m: float

    @property
    def outlier_indices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.inliers)]


def _check_pair(source: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(source, dtype=np.float64)
    q = np.asarray(target, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or q.shape != p.shape:
        raise CalibrationError(
            f"points: expected two N x 3 arrays of the same shape, got {p.shape} and {q.shape}"
        )
    return p, q


def check_not_collinear(points: FloatArray, min_offset_m: float = 0.01) -> None:
    """Raise :class:`DegenerateGeometryError` unless some point lies ``min_offset_m``
    (m) or more off the best-fit line through ``points`` (N x 3)."""
    if len(points) < 3:
        raise TooFewViewsError(
            f"{len(points)} touch points, need >= 3 (better 6-12 spread over the workspace)"
        )
    c = points - points.mean(axis=0)
    _, _sv, vt = np.linalg.svd(c, full_matrices=False)
    off = c - np.outer(c @ vt[0], vt[0])
    worst = float(np.max(np.linalg.norm(off, axis=1)))
    if worst < min_offset_m:
        raise DegenerateGeometryError(
            f"the {len(points)} touch points lie on one line (farthest {worst * 1e3:.1f} mm "
            f"off it, need >= {min_offset_m * 1e3:.0f} mm): the rotation about that line is "
            "unknown; touch points spread over an area, e.g. the corners of a triangle "
            ">= 20 cm a side"
        )


def kabsch(source: ArrayLike, target: ArrayLike, with_scale: bool = False) -> tuple[
    RigidTransform, float
]:
    """Least-squares ``(T_target_source, scale)`` for N x 3 point pairs (Umeyama's method).

    Raises :class:`DegenerateGeometryError` for collinear points.
    """
    p, q = _check_pair(source, target)
    check_not_collinear(p, 1e-9)
    pm, qm = p.mean(axis=0), q.mean(axis=0)
    pc, qc = p - pm, q - qm
    h = pc.T @ qc
    u, s, vt = np.linalg.svd(h)
    d = np.ones(3)
    d[2] = 1.0 if np.linalg.det(vt.T @ u.T) >= 0 else -1.0
    r = vt.T @ np.diag(d) @ u.T
    scale = float(np.sum(s * d) / np.sum(pc**2)) if with_scale else 1.0
    t = qm - scale * r @ pm
    return RigidTransform(r, t), scale


def _residuals(t: RigidTransform, scale: float, p: FloatArray, q: FloatArray) -> FloatArray:
    pred = scale * (p @ t.rotation.T) + t.translation
    out: FloatArray = np.linalg.norm(pred - q, axis=1)
    return out


def fit_rigid(
    source: ArrayLike,
    target: ArrayLike,
    *,
    inlier_m: float = 3e-3,
    iterations: int = 300,
    rng: np.random.Generator | None = None,
    with_scale: bool = False,
    min_inliers: int = 4,
    min_offset_m: float = 0.01,
    max_rms_m: float = 2e-3,
) -> RigidFit:
    """Robust rigid fit ``target ≈ T @ source`` (N x 3 each, m) with per-point residuals.

    RANSAC over random triples (``iterations``, ``rng`` default seed 0) keeps the
    largest set within ``inlier_m``; the inliers are refit by Kabsch. With 3
    points no outlier can be detected and all are used.

    Raises :class:`TooFewViewsError` for fewer than 3 points or fewer than
    ``min_inliers`` inliers (when N > 3), :class:`DegenerateGeometryError` for
    collinear points, :class:`PoorFitError` when the inlier RMS exceeds ``max_rms_m``.
    """
    p, q = _check_pair(source, target)
    check_not_collinear(p, min_offset_m)
    n = len(p)
    gen = rng if rng is not None else np.random.default_rng(0)
    best = np.ones(n, dtype=bool)
    if n > 3:
        best_count, best_err = -1, math.inf
        for _ in range(iterations):
            idx = gen.choice(n, size=3, replace=False)
            c = p[idx] - p[idx].mean(axis=0)
            if np.linalg.svd(c, compute_uv=False)[1] < 1e-3:
                continue
            t, sc = kabsch(p[idx], q[idx], with_scale)
            res = _residuals(t, sc, p, q)
            inl = res < inlier_m
            count = int(inl.sum())
            err = float(np.sum(res[inl] ** 2))
            if count > best_count or (count == best_count and err < best_err):
                best, best_count, best_err = inl, count, err
                if count == n:
                    break
        if best_count < min(min_inliers, n):
            raise TooFewViewsError(
                f"only {best_count} of {n} touch points agree within {inlier_m * 1e3:.1f} mm: "
                "re-teach the tool centre point and touch the points again"
            )
    # refit on the consensus, then grow it once with the refined transform
    for _ in range(2):
        check_not_collinear(p[best], min_offset_m)
        t, sc = kabsch(p[best], q[best], with_scale)
        res = _residuals(t, sc, p, q)
        if n > 3:
            best = res < inlier_m
    rms = float(np.sqrt(np.mean(res[best] ** 2)))
    if rms > max_rms_m:
        raise PoorFitError(
            f"touch-point RMS residual {rms * 1e3:.2f} mm > {max_rms_m * 1e3:.1f} mm: check "
            "the tool centre point and that each touch matches its belt point"
        )
    return RigidFit(t, sc, res, best, rms, float(np.max(res[best])))
