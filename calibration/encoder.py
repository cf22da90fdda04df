"""Belt encoder scale (m per tick) from a marker riding the belt, and a belt-speed check.

A marker lies on the belt; the calibrated camera sees it at two or more encoder
readings. Its belt-plane position at each reading (the marker centre's pixel
ray meets the plane ``z = thickness``) against the tick count is a straight line
``p = p0 + b * ticks``; ``|b|`` is the scale (m/tick), least squares over all
readings. The direction of ``b`` should be belt +x; the angle off it is reported
(``drift_deg``: camera yaw error or belt mistracking).

Example::

    >>> r = fit_encoder_scale(np.array([0, 4000]), np.array([[1.0, 0.0], [1.4, 0.0]]))
    >>> round(r.m_per_tick * 1e4, 6)
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.camera import PinholeCamera
from calibration.errors import CalibrationError
from calibration.procedure_errors import DegenerateGeometryError, TooFewViewsError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class EncoderResult:
    """``m_per_tick`` (m), its 1-sigma ``std_m_per_tick`` (NaN with two readings),
    ``drift_deg`` (direction of travel off belt +x), ``residuals_m`` per reading (N,),
    ``rms_m``, and the inputs ``ticks`` (N,) and ``positions_m`` (N x 2)."""

    m_per_tick: float
    std_m_per_tick: float
    drift_deg: float
    residuals_m: FloatArray
    rms_m: float
    ticks: FloatArray
    positions_m: FloatArray

    @property
    def ticks_per_m(self) -> float:
        return 1.0 / self.m_per_tick


def marker_belt_position(
    camera: PinholeCamera, corners_px: ArrayLike, plane_z_m: float = 0.0
) -> FloatArray:
    """Belt-plane (x, y) in m of a marker whose 4 image corners are ``corners_px`` (4 x 2).

    Each corner's ray meets the plane ``z = plane_z_m`` and the four points are
    averaged (the centre of a square under any perspective). Raises
    :class:`CalibrationError` for a wrong shape or rays that miss the plane.
    """
    c = np.asarray(corners_px, dtype=np.float64)
    if c.shape != (4, 2):
        raise CalibrationError(f"corners_px: expected 4 x 2, got shape {c.shape}")
    rays = camera.pixel_rays(c)
    t = (plane_z_m - rays.origins[:, 2]) / rays.directions[:, 2]
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise CalibrationError("marker corners: their rays do not meet the belt plane")
    pts = rays.origins + t[:, None] * rays.directions
    out: FloatArray = pts[:, :2].mean(axis=0)
    return out


def fit_encoder_scale(ticks: ArrayLike, positions_m: ArrayLike) -> EncoderResult:
    """Least-squares scale from encoder ``ticks`` (N,) and marker belt positions (N x 2, m).

    Raises :class:`TooFewViewsError` for fewer than two readings and
    :class:`DegenerateGeometryError` when the ticks do not change (belt not
    moved or encoder not counting) or the marker did not move (it slipped or was
    not on the belt).
    """
    tk = np.asarray(ticks, dtype=np.float64).reshape(-1)
    pos = np.asarray(positions_m, dtype=np.float64)
    if pos.ndim != 2 or pos.shape != (tk.size, 2):
        raise CalibrationError(
            f"positions_m: expected {tk.size} x 2 to match ticks, got shape {pos.shape}"
        )
    if tk.size < 2:
        raise TooFewViewsError(
            f"{tk.size} encoder reading(s), need >= 2: move the belt so the marker crosses "
            "the image and capture it at several encoder readings"
        )
    if np.ptp(tk) == 0:
        raise DegenerateGeometryError(
            "all readings have the same encoder count: run the belt between captures "
            "(or check the encoder wiring)"
        )
    a = np.column_stack([np.ones_like(tk), tk - tk.mean()])
    coef, *_ = np.linalg.lstsq(a, pos, rcond=None)
    b = coef[1]
    scale = float(np.linalg.norm(b))
    travel = scale * float(np.ptp(tk))
    if travel < 1e-3:
        raise DegenerateGeometryError(
            f"the marker moved {travel * 1e3:.2f} mm over {np.ptp(tk):.0f} ticks: is it "
            "lying on the belt (not on the frame) and is the belt moving?"
        )
    u = b / scale
    fitted = a @ coef
    # along-travel residuals: what an encoder error would show
    res = (pos - fitted) @ u
    n = tk.size
    if n > 2:
        s2 = float(np.sum(res**2)) / (n - 2)
        std = math.sqrt(s2 / float(np.sum((tk - tk.mean()) ** 2)))
    else:
        std = math.nan
    drift = math.degrees(math.atan2(float(u[1]), float(u[0])))
    return EncoderResult(
        m_per_tick=scale,
        std_m_per_tick=std,
        drift_deg=drift,
        residuals_m=res,
        rms_m=float(np.sqrt(np.mean(res**2))),
        ticks=tk,
        positions_m=pos,
    )


@dataclass(frozen=True)
class SpeedCheck:
    """Belt speed from the encoder: ``mean_mps``, ``std_mps`` (of the per-interval
    speeds), relative ``deviation`` from ``expected_mps``, ``ok`` within tolerance,
    and a ``message`` for the operator."""

    mean_mps: float
    std_mps: float
    expected_mps: float
    deviation: float
    ok: bool
    message: str


def belt_speed_check(
    times_s: ArrayLike,
    ticks: ArrayLike,
    m_per_tick: float,
    expected_mps: float,
    tolerance: float = 0.02,
) -> SpeedCheck:
    """Compare the encoder-measured belt speed with ``expected_mps`` (relative ``tolerance``).

    ``times_s`` (N,) and ``ticks`` (N,) are encoder samples. Raises
    :class:`TooFewViewsError` for fewer than 2 samples and :class:`CalibrationError`
    for times that do not increase or a non-positive scale.
    """
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    k = np.asarray(ticks, dtype=np.float64).reshape(-1)
    if t.size != k.size:
        raise CalibrationError(f"times_s/ticks: lengths differ ({t.size} vs {k.size})")
    if t.size < 2:
        raise TooFewViewsError("belt speed check: need >= 2 encoder samples")
    if np.any(np.diff(t) <= 0):
        raise CalibrationError("times_s: must increase strictly")
    if m_per_tick <= 0 or expected_mps <= 0:
        raise CalibrationError("m_per_tick and expected_mps must be > 0")
    v = np.diff(k) * m_per_tick / np.diff(t)
    mean = float((k[-1] - k[0]) * m_per_tick / (t[-1] - t[0]))
    dev = mean / expected_mps - 1.0
    ok = abs(dev) <= tolerance
    if ok:
        msg = f"belt speed {mean:.4f} m/s, {dev:+.2%} from the set {expected_mps} m/s: ok"
    else:
        msg = (
            f"belt speed {mean:.4f} m/s is {dev:+.2%} off the set {expected_mps} m/s "
            f"(tolerance {tolerance:.0%}): check the drive set-point and the encoder scale"
        )
    return SpeedCheck(mean, float(np.std(v)), expected_mps, dev, ok, msg)
