"""Camera intrinsics and lens distortion from ChArUco views, with bad-view rejection and guidance.

The solver is OpenCV's ``calibrateCameraExtended`` (Zhang's method + Levenberg-
Marquardt over K, ``plumb_bob`` distortion ``(k1, k2, p1, p2, k3)`` and one board
pose per view). Around it:

* bad-view rejection: views whose RMS reprojection error exceeds
  ``max(reject_factor * median, reject_floor_px)`` are dropped and the problem
  re-solved, up to ``max_rounds`` times (a blurred or mis-detected view pulls
  every parameter);
* degeneracy check: if every board normal lies within ``min_tilt_spread_deg``
  of every other (all views parallel), focal length and distance cannot be
  separated and :class:`DegenerateGeometryError` says how to tilt the board;
* guidance (:func:`assess_views`): views still needed, image coverage on an
  ``8 x 6`` grid, tilt variety — as sentences an operator can act on.

Example::

    >>> dets = [detect_charuco(img, board, str(i)) for i, img in enumerate(images)]
    >>> result = calibrate_intrinsics(dets)
    >>> result.camera.fx, result.rms_px
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from calibration.detection import BoardDetection
from calibration.errors import CalibrationError
from calibration.procedure_errors import DegenerateGeometryError, TooFewViewsError
from calibration.transforms import RigidTransform

FloatArray = NDArray[np.float64]

GRID = (8, 6)


@dataclass(frozen=True)
class Guidance:
    """What the operator should do next.

    ``views_needed``: more good views to reach the target count; ``coverage``:
    fraction of the ``GRID`` image cells that hold at least one detected corner;
    ``empty_regions``: names of image regions with no corners ("top-left", ...);
    ``tilted_views``: views whose board is tilted >= 15° from the image plane;
    ``messages``: sentences, most important first; ``done`` when nothing is left.
    """

    views_needed: int
    coverage: float
    empty_regions: list[str]
    tilted_views: int
    messages: list[str]

    @property
    def done(self) -> bool:
        return not self.messages


@dataclass(frozen=True)
class RejectedView:
    """A view left out of the solution and why (``rms_px`` NaN when not from the error)."""

    view_id: str
    reason: str
    rms_px: float = math.nan


@dataclass(frozen=True)
class IntrinsicsResult:
    """Outcome of :func:`calibrate_intrinsics`.

    ``camera``: the intrinsics and distortion (identity pose); ``rms_px``: RMS
    reprojection error over all corners of the kept views; ``per_view_rms_px``
    per kept view; ``std``: 1-sigma uncertainties of ``fx fy cx cy k1 k2 p1 p2 k3``
    (px / unitless) from the solver's covariance; ``poses``: ``T_camera_board`` per
    kept view; ``image_points`` / ``residuals_px``: per kept view, N x 2 detected
    corners and (projected - detected).
    """

    camera: PinholeCamera
    rms_px: float
    per_view_rms_px: dict[str, float]
    rejected: list[RejectedView]
    std: dict[str, float]
    poses: dict[str, RigidTransform]
    image_points: dict[str, FloatArray]
    residuals_px: dict[str, FloatArray]
    guidance: Guidance
    rounds: int = 1
    tilt_deg: dict[str, float] = field(default_factory=dict)

    @property
    def n_views(self) -> int:
        return len(self.per_view_rms_px)

    @property
    def n_points(self) -> int:
        return int(sum(len(p) for p in self.image_points.values()))


_REGION_ROWS = ("top", "middle", "bottom")
_REGION_COLS = ("left", "centre", "right")


def _region_name(row: int, col: int) -> str:
    r, c = _REGION_ROWS[row], _REGION_COLS[col]
    if r == "middle" and c == "centre":
        return "centre"
    if r == "middle":
        return f"{c} edge"
    if c == "centre":
        return f"{r} edge"
    return f"{r}-{c}"


def assess_views(
    detections: Sequence[BoardDetection],
    image_size: tuple[int, int],
    target_views: int = 20,
    tilt_deg: Sequence[float] | None = None,
) -> Guidance:
    """Guidance for the views so far: how many more, where to move the board, whether to tilt.

    ``tilt_deg``: per-view tilt of the board from the image plane (from a
    solution), if known. Needs no solution, so it can run after every capture.
    """
    w, h = image_size
    gx, gy = GRID
    occ = np.zeros((gy, gx), dtype=bool)
    occ3 = np.zeros((3, 3), dtype=bool)
    for d in detections:
        p = d.image_points
        cx = np.clip((p[:, 0] / w * gx).astype(int), 0, gx - 1)
        cy = np.clip((p[:, 1] / h * gy).astype(int), 0, gy - 1)
        occ[cy, cx] = True
        c3x = np.clip((p[:, 0] / w * 3).astype(int), 0, 2)
        c3y = np.clip((p[:, 1] / h * 3).astype(int), 0, 2)
        occ3[c3y, c3x] = True
    coverage = float(occ.mean())
    empty = [_region_name(r, c) for r in range(3) for c in range(3) if not occ3[r, c]]
    messages: list[str] = []
    needed = max(0, target_views - len(detections))
    if needed:
        messages.append(f"{needed} more views needed ({len(detections)} of {target_views})")
    if empty:
        messages.append("move the board into the " + ", ".join(empty) + " of the image")
    elif coverage < 0.7:
        messages.append(
            f"corners cover {coverage:.0%} of the image: move the board closer to the edges "
            "and corners"
        )
    tilted = 0
    if tilt_deg is not None:
        tilted = int(sum(1 for t in tilt_deg if t >= 15.0))
        if tilted < min(6, max(3, len(detections) // 3)):
            messages.append(
                f"only {tilted} views have the board tilted >= 15°: tilt the board 20-40° "
                "toward/away from the camera and to the left/right"
            )
    return Guidance(needed, coverage, empty, tilted, messages)


def _tilts_and_normals(poses: Sequence[RigidTransform]) -> tuple[FloatArray, FloatArray]:
    normals = np.array([p.rotation[:, 2] for p in poses])
    tilt = np.degrees(np.arccos(np.clip(np.abs(normals[:, 2]), 0.0, 1.0)))
    return tilt, normals


def _solve(
    dets: Sequence[BoardDetection], image_size: tuple[int, int], flags: int
) -> tuple[
    float, FloatArray, FloatArray, list[FloatArray], list[FloatArray], FloatArray, FloatArray
]:
    obj = [d.object_points.astype(np.float32).reshape(-1, 1, 3) for d in dets]
    img = [d.image_points.astype(np.float32).reshape(-1, 1, 2) for d in dets]
    crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rms, k, dist, rvecs, tvecs, std_in, _std_ex, per_view = cv2.calibrateCameraExtended(
        obj, img, image_size, None, None, flags=flags, criteria=crit  # type: ignore[call-overload]
    )
    return (
        float(rms),
        np.asarray(k, dtype=np.float64),
        np.asarray(dist, dtype=np.float64).reshape(-1),
        [np.asarray(r, dtype=np.float64).reshape(3) for r in rvecs],
        [np.asarray(t, dtype=np.float64).reshape(3) for t in tvecs],
        np.asarray(std_in, dtype=np.float64).reshape(-1),
        np.asarray(per_view, dtype=np.float64).reshape(-1),
    )


def calibrate_intrinsics(
    detections: Sequence[BoardDetection],
    *,
    min_views: int = 10,
    target_views: int = 20,
    reject_factor: float = 3.0,
    reject_floor_px: float = 0.5,
    max_rounds: int = 3,
    fix_k3: bool = True,
    min_tilt_spread_deg: float = 8.0,
) -> IntrinsicsResult:
    """Calibrate one camera from ChArUco detections of >= ``min_views`` views.

    Views are rejected (and the problem re-solved) while their RMS error exceeds
    ``max(reject_factor * median, reject_floor_px)``; ``fix_k3`` keeps k3 at 0
    (advisable unless the lens is strongly wide-angle).

    Raises :class:`TooFewViewsError` (with how many more views to capture) when
    fewer than ``min_views`` usable views remain, :class:`DegenerateGeometryError`
    when all board orientations lie within ``min_tilt_spread_deg`` of each other,
    and :class:`CalibrationError` for views of different image sizes.
    """
    dets = [d for d in detections if d.n >= 6]
    rejected = [
        RejectedView(d.view_id, f"only {d.n} corners") for d in detections if d.n < 6
    ]
    if not dets or len(dets) < min_views:
        raise TooFewViewsError(
            f"{len(dets)} usable board views, need >= {min_views}: capture "
            f"{min_views - len(dets)} more views with the whole board visible, tilted "
            "20-40° in different directions and spread over the image"
        )
    ids = [d.view_id for d in dets]
    if len(set(ids)) != len(ids):
        raise CalibrationError("detections: view ids must be unique (they key the results)")
    sizes = {d.image_size for d in dets}
    if len(sizes) != 1:
        raise CalibrationError(f"detections: views come from different image sizes {sorted(sizes)}")
    image_size = dets[0].image_size
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0

    rounds = 0
    while True:
        rounds += 1
        rms, k, dist, rvecs, tvecs, std_in, per_view = _solve(dets, image_size, flags)
        med = float(np.median(per_view))
        limit = max(reject_factor * med, reject_floor_px)
        bad = np.flatnonzero(per_view > limit)
        if bad.size == 0 or rounds > max_rounds:
            break
        if len(dets) - bad.size < min_views:
            names = ", ".join(dets[i].view_id for i in bad)
            raise TooFewViewsError(
                f"views {names} have reprojection errors > {limit:.2f} px (median "
                f"{med:.2f} px); without them {len(dets) - bad.size} views remain, need "
                f">= {min_views}: recapture sharp, well-lit views"
            )
        for i in bad:
            rejected.append(
                RejectedView(
                    dets[i].view_id,
                    f"reprojection error {per_view[i]:.2f} px > {limit:.2f} px",
                    float(per_view[i]),
                )
            )
        keep = np.setdiff1d(np.arange(len(dets)), bad)
        dets = [dets[i] for i in keep]

    poses = [
        RigidTransform(np.asarray(cv2.Rodrigues(r)[0], dtype=np.float64), t)
        for r, t in zip(rvecs, tvecs, strict=True)
    ]
    tilt, normals = _tilts_and_normals(poses)
    spread = float(np.degrees(np.arccos(np.clip(np.min(normals @ normals.T), -1.0, 1.0))))
    if spread < min_tilt_spread_deg:
        raise DegenerateGeometryError(
            f"all {len(dets)} views show the board at nearly the same orientation (normals "
            f"within {spread:.1f}°, need >= {min_tilt_spread_deg:.0f}°): focal length and "
            "board distance cannot be told apart; tilt the board 20-40° toward/away from "
            "the camera and left/right in at least 4 views"
        )

    d5 = np.zeros(5)
    d5[: min(5, dist.size)] = dist[:5]
    camera = PinholeCamera(
        width=image_size[0],
        height=image_size[1],
        fx=float(k[0, 0]),
        fy=float(k[1, 1]),
        cx=float(k[0, 2]),
        cy=float(k[1, 2]),
        distortion=(float(d5[0]), float(d5[1]), float(d5[2]), float(d5[3]), float(d5[4])),
    )
    params = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
    std = {n: float(std_in[i]) for i, n in enumerate(params) if i < std_in.size}
    residuals: dict[str, FloatArray] = {}
    image_points: dict[str, FloatArray] = {}
    for d, r, t in zip(dets, rvecs, tvecs, strict=True):
        proj, _ = cv2.projectPoints(d.object_points, r, t, k, dist)
        residuals[d.view_id] = proj.reshape(-1, 2) - d.image_points
        image_points[d.view_id] = d.image_points
    tilts = {d.view_id: float(t) for d, t in zip(dets, tilt, strict=True)}
    guidance = assess_views(dets, image_size, target_views, list(tilt))
    return IntrinsicsResult(
        camera=camera,
        rms_px=rms,
        per_view_rms_px={d.view_id: float(e) for d, e in zip(dets, per_view, strict=True)},
        rejected=rejected,
        std=std,
        poses={d.view_id: p for d, p in zip(dets, poses, strict=True)},
        image_points=image_points,
        residuals_px=residuals,
        guidance=guidance,
        rounds=rounds,
        tilt_deg=tilts,
    )
