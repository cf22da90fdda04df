"""Camera → belt extrinsics from a ChArUco board or ArUco markers lying on the belt.

Each observation pairs image points (px) with the same points' belt-frame
coordinates (m), known because the target lies at a known place on the belt
(for a board moved by the belt between views: its first position plus the
encoder travel). All observations are solved jointly as one PnP problem:
``solvePnP`` (iterative, planar-aware) for a start, then Levenberg-Marquardt
refinement (``solvePnPRefineLM``) of the reprojection error; intrinsics are fixed.

Result: ``T_belt_camera`` (camera optical frame → belt frame), residuals per
point and per view.

Example::

    >>> obs = [board_observation(det, T_belt_board) for det, T_belt_board in views]
    >>> result = calibrate_extrinsics(intrinsics_camera, obs)
    >>> result.T_belt_camera.translation
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from calibration.detection import BoardDetection
from calibration.errors import CalibrationError
from calibration.procedure_errors import DegenerateGeometryError, PoorFitError, TooFewViewsError
from calibration.targets import MarkerTarget
from calibration.transforms import RigidTransform

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PointObservation:
    """Image points ``image_points`` (N x 2, px) of belt points ``belt_points`` (N x 3, m)."""

    view_id: str
    image_points: FloatArray
    belt_points: FloatArray

    def __post_init__(self) -> None:
        ip, bp = np.asarray(self.image_points), np.asarray(self.belt_points)
        if ip.ndim != 2 or ip.shape[1] != 2 or bp.shape != (ip.shape[0], 3):
            raise CalibrationError(
                f"observation {self.view_id!r}: expected N x 2 image points and N x 3 belt "
                f"points, got {ip.shape} and {bp.shape}"
            )


def board_observation(
    detection: BoardDetection,
    T_belt_board: RigidTransform,  # noqa: N803 - frame subscripts
) -> PointObservation:
    """A board detection with the board's known pose on the belt."""
    return PointObservation(
        detection.view_id, detection.image_points, T_belt_board.apply(detection.object_points)
    )


def marker_observations(
    markers: dict[int, FloatArray],
    placed: dict[int, tuple[MarkerTarget, RigidTransform]],
    view_id: str = "",
) -> list[PointObservation]:
    """Observations of detected ArUco markers (id → 4 x 2 corners) whose belt poses are known.

    ``placed``: id → (marker target, ``T_belt_target``). Markers found but not in
    ``placed`` are ignored.
    """
    out = []
    for mid, corners in sorted(markers.items()):
        if mid not in placed:
            continue
        target, pose = placed[mid]
        out.append(
            PointObservation(f"{view_id}#{mid}", corners, pose.apply(target.corner_points()))
        )
    return out


@dataclass(frozen=True)
class ExtrinsicsResult:
    """``T_belt_camera``; ``camera``: the intrinsics posed there; RMS and per-view RMS
    reprojection errors (px); ``residuals_px`` per view (N x 2, projected - detected);
    ``belt_residuals_m``: the same errors back-projected onto the belt plane (N, m)."""

    T_belt_camera: RigidTransform
    camera: PinholeCamera
    rms_px: float
    per_view_rms_px: dict[str, float]
    image_points: dict[str, FloatArray]
    residuals_px: dict[str, FloatArray]
    belt_rms_m: float


def calibrate_extrinsics(
    intrinsics: PinholeCamera,
    observations: Sequence[PointObservation],
    *,
    min_points: int = 8,
    max_rms_px: float = 2.0,
) -> ExtrinsicsResult:
    """Solve ``T_belt_camera`` from observations of belt points with known coordinates.

    ``intrinsics`` supplies K and distortion (its pose is ignored). Raises
    :class:`TooFewViewsError` for fewer than ``min_points`` points,
    :class:`DegenerateGeometryError` when the points are (nearly) collinear, and
    :class:`PoorFitError` when the RMS reprojection error exceeds ``max_rms_px``
    (wrong board definition, wrong belt pose given, or a moved camera).
    """
    if not observations:
        raise TooFewViewsError(
            "no observations: lay the board (or markers) flat on the belt under the camera"
        )
    img = np.concatenate([np.asarray(o.image_points, dtype=np.float64) for o in observations])
    obj = np.concatenate([np.asarray(o.belt_points, dtype=np.float64) for o in observations])
    if len(img) < min_points:
        raise TooFewViewsError(
            f"{len(img)} points, need >= {min_points}: show more of the board or more markers"
        )
    centred = obj - obj.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[1] < 1e-3 * max(float(sv[0]), 1e-12):
        raise DegenerateGeometryError(
            "the target points lie on one line: lay the board flat and show at least two rows"
        )
    k, dist = intrinsics.K, intrinsics.D
    # centre the object points: numerically better for planar PnP far from the belt origin
    origin = obj.mean(axis=0)
    ok, rvec, tvec = cv2.solvePnP(obj - origin, img, k, dist, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise PoorFitError("solvePnP failed: check the intrinsics and the target's belt poses")
    crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rvec, tvec = cv2.solvePnPRefineLM(obj - origin, img, k, dist, rvec, tvec, criteria=crit)
    r_cb = np.asarray(cv2.Rodrigues(rvec)[0], dtype=np.float64)
    t_cb = tvec.reshape(3) - r_cb @ origin
    T_camera_belt = RigidTransform(r_cb, t_cb)  # noqa: N806 - frame subscripts
    T_belt_camera = T_camera_belt.inverse()  # noqa: N806
    camera = intrinsics.with_pose(T_belt_camera)

    per_view: dict[str, float] = {}
    residuals: dict[str, FloatArray] = {}
    points: dict[str, FloatArray] = {}
    belt_err: list[FloatArray] = []
    for o in observations:
        uv, _ = camera.project(o.belt_points)
        res = uv - o.image_points
        residuals[o.view_id] = res
        points[o.view_id] = np.asarray(o.image_points, dtype=np.float64)
        per_view[o.view_id] = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
        # the detected pixels' rays on the target plane vs the true belt points
        rays = camera.pixel_rays(o.image_points)
        z = o.belt_points[:, 2]
        t = (z - rays.origins[:, 2]) / rays.directions[:, 2]
        hit = rays.origins + t[:, None] * rays.directions
        belt_err.append(np.linalg.norm(hit - o.belt_points, axis=1))
    all_res = np.concatenate(list(residuals.values()))
    rms = float(np.sqrt(np.mean(np.sum(all_res**2, axis=1))))
    if rms > max_rms_px:
        raise PoorFitError(
            f"reprojection RMS {rms:.2f} px > {max_rms_px} px: check that the board "
            "definition and its position on the belt are right and the intrinsics are current"
        )
    return ExtrinsicsResult(
        T_belt_camera=T_belt_camera,
        camera=camera,
        rms_px=rms,
        per_view_rms_px=per_view,
        image_points=points,
        residuals_px=residuals,
        belt_rms_m=float(np.sqrt(np.mean(np.concatenate(belt_err) ** 2))),
    )


def rotation_angle_deg(a: RigidTransform, b: RigidTransform) -> float:
    """Angle (degrees) of the rotation between the orientations of ``a`` and ``b``."""
    r = a.rotation.T @ b.rotation
    c = (float(np.trace(r)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
