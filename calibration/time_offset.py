"""Time offset between two sensors from objects that both of them see.

Each sensor reports an object's belt-frame position ``x`` (m, along travel)
against its own time stamps. The object rides the belt, so both tracks are
samples of one trajectory ``x(t)``: sensor B's stamps plus the offset ``δ``
(``t_reference = t_b + δ``) must put its samples on sensor A's curve. Per
object, ``x(t)`` is a polynomial of degree ``degree`` (1: constant speed, 2:
slow speed change) in time; the polynomial coefficients are linear given
``δ``, so the fit is a 1-D minimisation of the summed squared residual over ``δ``
(variable projection: closed-form start from the constant-speed model, then a
golden-section refinement). ``δ``'s 1-sigma uncertainty comes from the
curvature of that sum at the optimum.

A time offset shows up as a position error of ``v * δ`` (0.5 m/s × 2 ms = 1 mm),
which is why the sensors must also agree in space (calibrated extrinsics).

Example::

    >>> t = np.linspace(0, 1, 20)
    >>> res = estimate_time_offset([Track(t, 0.5 * t)], [Track(t + 1.0 - 0.004, 0.5 * (t + 1))])
    >>> round(res.offset_s, 4)
    0.004
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError
from calibration.procedure_errors import DegenerateGeometryError, TooFewViewsError

FloatArray = NDArray[np.float64]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Track:
    """One object's positions ``x_m`` (N,, m, belt frame along travel) at times ``t_s`` (N,, s)."""

    t_s: FloatArray
    x_m: FloatArray

    def __init__(self, t_s: ArrayLike, x_m: ArrayLike) -> None:
        t = np.asarray(t_s, dtype=np.float64).reshape(-1)
        x = np.asarray(x_m, dtype=np.float64).reshape(-1)
        if t.size != x.size:
            raise CalibrationError(f"track: t_s and x_m lengths differ ({t.size} vs {x.size})")
        object.__setattr__(self, "t_s", t)
        object.__setattr__(self, "x_m", x)


@dataclass(frozen=True)
class TimeOffsetResult:
    """``offset_s``: add to sensor B's stamps to get sensor A's clock; ``std_s`` its
    1-sigma uncertainty; ``residuals_m`` per B sample (all objects, in order);
    ``rms_m``; ``speed_mps`` mean object speed; ``n_objects``."""

    offset_s: float
    std_s: float
    residuals_m: FloatArray
    rms_m: float
    speed_mps: float
    n_objects: int


def _sse(
    delta: float,
    pairs: Sequence[tuple[Track, Track]],
    degree: int,
    t0: Sequence[float],
    encoder: Track | None = None,
) -> tuple[float, list[FloatArray]]:
    total = 0.0
    res_b: list[FloatArray] = []
    for (a, b), tc in zip(pairs, t0, strict=True):
        t = np.concatenate([a.t_s, b.t_s + delta]) - tc
        x = np.concatenate([a.x_m, b.x_m])
        if encoder is not None:
            # position on the belt surface: constant for an object riding the belt
            x = x - np.interp(t + tc, encoder.t_s, encoder.x_m)
        v = np.vander(t, degree + 1)
        coef, *_ = np.linalg.lstsq(v, x, rcond=None)
        r = x - v @ coef
        total += float(np.sum(r**2))
        res_b.append(r[a.t_s.size :])
    return total, res_b


def estimate_time_offset(
    tracks_a: Sequence[Track],
    tracks_b: Sequence[Track],
    *,
    degree: int = 1,
    search_s: float = 0.5,
    encoder: Track | None = None,
) -> TimeOffsetResult:
    """Offset ``δ`` (s) with ``t_A = t_B + δ`` from matched tracks (``tracks_a[i]`` and
    ``tracks_b[i]`` are the same object), searched within ``±search_s`` of the
    constant-speed estimate.

    ``encoder``: belt position samples (``x_m`` m, on sensor A's clock). With it,
    each object's position on the belt surface (``x - belt(t)``) must be constant
    (``degree`` is then the polynomial degree of any residual slide, 0 for none):
    speed changes between the two sensors no longer alias into the offset. Without
    it, a speed change between the sensors' fields of view (1 % of 0.5 m/s over
    1 s is 5 mm) biases the offset; use it whenever the tracks do not overlap.

    Raises :class:`TooFewViewsError` when a track has fewer than ``degree + 1``
    samples or none are given, :class:`DegenerateGeometryError` when the objects
    do not move (no speed, no time information).
    """
    if not tracks_a or len(tracks_a) != len(tracks_b):
        raise TooFewViewsError(
            f"need the same object seen by both sensors: got {len(tracks_a)} and "
            f"{len(tracks_b)} tracks"
        )
    if degree not in (0, 1, 2, 3) or (degree == 0 and encoder is None):
        raise CalibrationError(
            f"degree: expected 1, 2 or 3 (0 only with an encoder), got {degree}"
        )
    if encoder is not None and (encoder.t_s.size < 2 or np.any(np.diff(encoder.t_s) <= 0)):
        raise CalibrationError("encoder: need >= 2 samples with increasing times")
    pairs = list(zip(tracks_a, tracks_b, strict=True))
    starts: list[float] = []
    speeds: list[float] = []
    for i, (a, b) in enumerate(pairs):
        for name, tr in (("A", a), ("B", b)):
            if tr.t_s.size < 2 or tr.t_s.size < degree:
                raise TooFewViewsError(
                    f"object {i}: sensor {name} has {tr.t_s.size} samples, need >= "
                    f"{max(2, degree)}: let the object pass through the whole field of view"
                )
        va, _ = np.polyfit(a.t_s, a.x_m, 1)
        vb, _ = np.polyfit(b.t_s, b.x_m, 1)
        speeds.extend([float(va), float(vb)])
    v_mean = float(np.mean(speeds))
    if abs(v_mean) < 1e-3:
        raise DegenerateGeometryError(
            f"objects move at {v_mean * 1e3:.2f} mm/s: run the belt while both sensors record"
        )
    # constant-speed closed form: shift B onto A's line per object, average
    guesses = []
    for a, b in pairs:
        va, xa = np.polyfit(a.t_s, a.x_m, 1)
        guesses.append(float(np.mean((b.x_m - xa) / va - b.t_s)))
        starts.append(float(a.t_s.mean()))
    d0 = float(np.median(guesses))
    if degree == 1 or encoder is not None:
        lo, hi = d0 - min(search_s, 0.05), d0 + min(search_s, 0.05)
    else:
        lo, hi = d0 - search_s, d0 + search_s

    def f(d: float) -> float:
        return _sse(d, pairs, degree, starts, encoder)[0]

    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while hi - lo > 1e-7:
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - _GOLDEN * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + _GOLDEN * (hi - lo)
            f2 = f(x2)
    delta = 0.5 * (lo + hi)
    sse, res_b = _sse(delta, pairs, degree, starts, encoder)
    n_obs = sum(a.t_s.size + b.t_s.size for a, b in pairs)
    n_par = len(pairs) * (degree + 1) + 1
    s2 = sse / max(n_obs - n_par, 1)
    h = 1e-4
    curv = (f(delta + h) - 2 * sse + f(delta - h)) / h**2
    std = math.sqrt(2 * s2 / curv) if curv > 0 else math.inf
    res = np.concatenate(res_b)
    return TimeOffsetResult(
        offset_s=delta,
        std_s=std,
        residuals_m=res,
        rms_m=float(np.sqrt(np.mean(res**2))),
        speed_mps=v_mean,
        n_objects=len(pairs),
    )
