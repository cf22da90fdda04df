"""Between procedure results and calibration-store entries (and back to models).

``*_entry`` functions turn a procedure's result into a :class:`CalibrationEntry`
(plain floats and lists, ready for YAML); ``camera_from_store`` and
``transform_of`` read them back into :class:`PinholeCamera` / :class:`RigidTransform`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from calibration.camera import PinholeCamera
from calibration.encoder import EncoderResult
from calibration.extrinsics import ExtrinsicsResult
from calibration.intrinsics import IntrinsicsResult
from calibration.procedure_errors import StoreError
from calibration.rigid import RigidFit
from calibration.store import DEFAULT_MAX_AGE_DAYS, CalibrationEntry, CalibrationStore, Quality
from calibration.time_offset import TimeOffsetResult
from calibration.transforms import RigidTransform

# acceptance limits of the quality figure of each kind
LIMITS = {
    "intrinsics": 0.5,  # px RMS reprojection
    "extrinsics": 1.0,  # px RMS reprojection
    "encoder": 1e-3,  # m RMS along travel
    "rigid": 1e-3,  # m RMS touch residual
    "time_offset": 2e-3,  # s, 1-sigma of the offset
    "hsi_reference": 0.01,  # relative noise of the averaged white (median over bands)
    "xrf_energy": 10.0,  # eV RMS line residual
    "xrt_reference": 0.01,  # relative noise of the averaged flat (worst layer)
    "xrt_mass_scale": 2.0,  # %, worst plate's areal-density error after the correction
    "xrf_class_response": 0.05,  # worst class's u of its response factor
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _r(x: float, nd: int = 9) -> float:
    return round(float(x), nd)


def _transform_results(t: RigidTransform) -> dict[str, Any]:
    return {
        "translation": [_r(v) for v in t.translation],
        "rotation_xyzw": [_r(v, 12) for v in t.as_quaternion()],
        "rpy_deg": [_r(np.degrees(v), 6) for v in t.as_rpy()],
    }


def intrinsics_entry(
    result: IntrinsicsResult, source: str, date: dt.datetime | None = None
) -> CalibrationEntry:
    c = result.camera
    return CalibrationEntry(
        kind="intrinsics",
        date=date or _now(),
        method="charuco + cv2.calibrateCameraExtended, iterative view rejection",
        inputs={
            "source": source,
            "views_used": result.n_views,
            "views_rejected": [f"{r.view_id}: {r.reason}" for r in result.rejected],
            "corners": result.n_points,
            "coverage": _r(result.guidance.coverage, 3),
        },
        results={
            "width": c.width,
            "height": c.height,
            "fx": _r(c.fx, 6),
            "fy": _r(c.fy, 6),
            "cx": _r(c.cx, 6),
            "cy": _r(c.cy, 6),
            "distortion_model": "plumb_bob",
            "distortion": [_r(v, 9) for v in c.distortion],
            "std": {k: _r(v, 6) for k, v in result.std.items()},
        },
        residuals={
            "rms_px": _r(result.rms_px, 5),
            "per_view_rms_px": {k: _r(v, 4) for k, v in result.per_view_rms_px.items()},
        },
        quality=Quality(metric="rms_px", value=_r(result.rms_px, 5), limit=LIMITS["intrinsics"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["intrinsics"],
    )


def extrinsics_entry(
    result: ExtrinsicsResult,
    source: str,
    child_frame: str = "camera_optical_frame",
    date: dt.datetime | None = None,
) -> CalibrationEntry:
    return CalibrationEntry(
        kind="extrinsics",
        date=date or _now(),
        method="target on the belt + solvePnP + LM refinement",
        parent_frame="belt",
        child_frame=child_frame,
        inputs={
            "source": source,
            "views": len(result.per_view_rms_px),
            "points": int(sum(len(v) for v in result.image_points.values())),
        },
        results=_transform_results(result.T_belt_camera),
        residuals={
            "rms_px": _r(result.rms_px, 5),
            "belt_rms_m": _r(result.belt_rms_m, 7),
            "per_view_rms_px": {k: _r(v, 4) for k, v in result.per_view_rms_px.items()},
        },
        quality=Quality(metric="rms_px", value=_r(result.rms_px, 5), limit=LIMITS["extrinsics"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["extrinsics"],
    )


def encoder_entry(
    result: EncoderResult, source: str, date: dt.datetime | None = None
) -> CalibrationEntry:
    return CalibrationEntry(
        kind="encoder",
        date=date or _now(),
        method="marker on the belt at several encoder readings, least squares",
        inputs={"source": source, "readings": int(result.ticks.size),
                "ticks_span": _r(float(np.ptp(result.ticks)), 1)},
        results={
            "m_per_tick": _r(result.m_per_tick, 12),
            "ticks_per_m": _r(result.ticks_per_m, 4),
            "std_m_per_tick": None if np.isnan(result.std_m_per_tick)
            else _r(result.std_m_per_tick, 14),
            "drift_deg": _r(result.drift_deg, 4),
        },
        residuals={"rms_m": _r(result.rms_m, 7),
                   "per_reading_m": [_r(v, 7) for v in result.residuals_m]},
        quality=Quality(metric="rms_m", value=_r(result.rms_m, 7), limit=LIMITS["encoder"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["encoder"],
    )


def rigid_entry(
    fit: RigidFit,
    source: str,
    parent_frame: str,
    child_frame: str,
    date: dt.datetime | None = None,
) -> CalibrationEntry:
    """``fit.transform`` must be ``T_parent_child`` (e.g. ``T_belt_arm1_base_link``)."""
    return CalibrationEntry(
        kind="rigid",
        date=date or _now(),
        method="touched points, Kabsch/Umeyama + RANSAC over triples",
        parent_frame=parent_frame,
        child_frame=child_frame,
        inputs={"source": source, "points": int(fit.residuals_m.size),
                "outliers": fit.outlier_indices},
        results=_transform_results(fit.transform),
        residuals={"rms_m": _r(fit.rms_m, 7), "max_m": _r(fit.max_m, 7),
                   "per_point_m": [_r(v, 7) for v in fit.residuals_m]},
        quality=Quality(metric="rms_m", value=_r(fit.rms_m, 7), limit=LIMITS["rigid"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["rigid"],
    )


def time_offset_entry(
    result: TimeOffsetResult,
    source: str,
    sensor_a: str,
    sensor_b: str,
    date: dt.datetime | None = None,
) -> CalibrationEntry:
    return CalibrationEntry(
        kind="time_offset",
        date=date or _now(),
        method="object tracks seen by both sensors, joint polynomial fit",
        inputs={"source": source, "reference": sensor_a, "sensor": sensor_b,
                "objects": result.n_objects, "samples": int(result.residuals_m.size)},
        results={"offset_s": _r(result.offset_s, 7), "std_s": _r(result.std_s, 7),
                 "speed_mps": _r(result.speed_mps, 5),
                 "meaning": f"t_{sensor_a} = t_{sensor_b} + offset_s"},
        residuals={"rms_m": _r(result.rms_m, 7)},
        quality=Quality(metric="std_s", value=_r(result.std_s, 7), limit=LIMITS["time_offset"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["time_offset"],
    )


# -- reading back ---------------------------------------------------------------------------
def transform_of(entry: CalibrationEntry) -> RigidTransform:
    """``T_parent_child`` of a transform entry; raises :class:`StoreError` if it is not one."""
    try:
        t = entry.results["translation"]
        q = entry.results["rotation_xyzw"]
    except KeyError as exc:
        raise StoreError(f"{entry.kind} entry has no {exc.args[0]!r} in results") from None
    return RigidTransform.from_quaternion(q, t)


def camera_from_store(
    store: CalibrationStore,
    sensor: str = "camera",
) -> PinholeCamera:
    """The camera ``sensor`` as calibrated: ``<sensor>.intrinsics`` posed by
    ``<sensor>.extrinsics`` (identity pose when that entry is absent)."""
    e = store.get(f"{sensor}.intrinsics")
    r = e.results
    d = [float(v) for v in r["distortion"]]
    pose = RigidTransform.identity()
    if f"{sensor}.extrinsics" in store.calibrations:
        pose = transform_of(store.get(f"{sensor}.extrinsics"))
    return PinholeCamera(
        width=int(r["width"]),
        height=int(r["height"]),
        fx=float(r["fx"]),
        fy=float(r["fy"]),
        cx=float(r["cx"]),
        cy=float(r["cy"]),
        distortion=(d[0], d[1], d[2], d[3], d[4]),
        T_belt_camera=pose,
    )


def static_transforms(store: CalibrationStore) -> list[tuple[str, str, RigidTransform]]:
    """Every ``(parent, child, T_parent_child)`` transform in the store, by entry name."""
    out = []
    for _name, e in sorted(store.calibrations.items()):
        if e.parent_frame and e.child_frame and "translation" in e.results:
            out.append((e.parent_frame, e.child_frame, transform_of(e)))
    return out


def hsi_reference_entry(
    source: str,
    file: str,
    n_lines: int,
    shape: tuple[int, int],
    dead_columns: list[int],
    saturated_columns: list[int],
    noise_dark: np.ndarray,
    noise_white: np.ndarray,
    rel_noise: float,
    date: dt.datetime | None = None,
) -> CalibrationEntry:
    """Dark and white references of a line camera, averaged over ``n_lines`` and saved to
    ``file`` (npz, W x B arrays ``dark``, ``white``); residuals are the standard errors of
    the averages per band (counts); quality is the median relative noise of the white."""
    return CalibrationEntry(
        kind="hsi_reference",
        date=date or _now(),
        method="mean of N dark (shutter closed) and N white-panel lines; saturation and "
        "dead-pixel check",
        inputs={"source": source, "lines_averaged": int(n_lines),
                "pixels": int(shape[0]), "bands": int(shape[1])},
        results={"file": file, "dead_pixels": len(dead_columns),
                 "saturated_pixels": len(saturated_columns),
                 "dead_columns": [int(c) for c in dead_columns],
                 "saturated_columns": [int(c) for c in saturated_columns]},
        residuals={"dark_noise_counts_per_band": [_r(v, 3) for v in noise_dark],
                   "white_noise_counts_per_band": [_r(v, 3) for v in noise_white],
                   "white_rel_noise": _r(rel_noise, 6)},
        quality=Quality(metric="white_rel_noise", value=_r(rel_noise, 6),
                        limit=LIMITS["hsi_reference"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["hsi_reference"],
    )


def xrf_class_response_entry(
    source: str,
    live_time_s: float,
    balance: str | None,
    energy: str,
    responses: Mapping[str, Any],
    date: dt.datetime | None = None,
    elements: Mapping[str, Mapping[str, Any]] | None = None,
) -> CalibrationEntry:
    """XRF response per class: Σ read / Σ certified summed over reference objects of the
    class (``responses``: class → an object with ``factor``, ``u``, ``spread``, ``n``),
    and the elements that read off that level (``elements``: class → element → the same
    fields; Σ k · read / Σ certified, k the scale fusion applies)."""
    worst = max(float(c.u) for c in responses.values())
    results: dict[str, Any] = {
        "classes": {name: {"factor": _r(c.factor, 5), "u": _r(c.u, 5),
                           "spread": _r(c.spread, 5), "n": int(c.n)}
                    for name, c in responses.items()}}
    if elements:
        results["elements"] = {
            name: {e: {"factor": _r(x.factor, 5), "u": _r(x.u, 5), "spread": _r(x.spread, 5),
                       "n": int(x.n)} for e, x in els.items()}
            for name, els in elements.items()}
    return CalibrationEntry(
        kind="xrf_class_response",
        date=date or _now(),
        method="reference objects of known composition per class (type standards), one "
               "centred spot each at the line's live time (partly beside a narrow object or "
               "over a lump's hollow, as on the line); sum read / sum certified over the "
               "class's references (outliers left out), and per element sum k read / sum "
               "certified where it departs",
        inputs={"source": source, "live_time_s": _r(live_time_s, 4),
                "balance": balance or "normalised", "energy_scale": energy},
        results=results,
        residuals={"spread": {name: _r(c.spread, 5) for name, c in responses.items()}},
        quality=Quality(metric="worst_u", value=_r(worst, 5),
                        limit=LIMITS["xrf_class_response"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["xrf_class_response"],
    )


def xrf_energy_from_store(store: CalibrationStore, channels: int, calibrated_channels: int
                          ) -> tuple[float, float] | None:
    """(gain keV/channel, offset keV) of the store's ``xrf.energy`` entry, or None without one
    or when the MCA runs ``channels`` other than the ``calibrated_channels`` it was measured
    with."""
    if channels != calibrated_channels or "xrf.energy" not in store.calibrations:
        return None
    res = store.get("xrf.energy").results
    return float(res["gain_kev_per_channel"]), float(res["offset_kev"])


def xrf_energy_entry(
    source: str,
    reference: dict[str, float],
    labels: list[str],
    energies_kev: np.ndarray,
    channels: np.ndarray,
    residuals_kev: np.ndarray,
    gain_kev_per_channel: float,
    u_gain: float,
    offset_kev: float,
    u_offset: float,
    date: dt.datetime | None = None,
) -> CalibrationEntry:
    """Channel → keV of an XRF MCA, ``E = offset_kev + gain_kev_per_channel × channel``, fitted
    to the known lines of a reference sample; residuals per line in eV."""
    rms_ev = float(np.sqrt(np.mean(np.asarray(residuals_kev) ** 2))) * 1e3
    return CalibrationEntry(
        kind="xrf_energy",
        date=date or _now(),
        method="known lines of a reference sample, SNIP background, centroids, linear fit",
        inputs={"source": source, "reference": {k: _r(v, 4) for k, v in reference.items()},
                "lines": {lab: _r(e, 5) for lab, e in zip(labels, energies_kev, strict=True)}},
        results={"gain_kev_per_channel": _r(gain_kev_per_channel, 10),
                 "u_gain_kev_per_channel": _r(u_gain, 10),
                 "offset_kev": _r(offset_kev, 7), "u_offset_kev": _r(u_offset, 7),
                 "channels": {lab: _r(c, 3) for lab, c in zip(labels, channels, strict=True)}},
        residuals={"rms_ev": _r(rms_ev, 3),
                   "per_line_ev": {lab: _r(r * 1e3, 3)
                                   for lab, r in zip(labels, residuals_kev, strict=True)}},
        quality=Quality(metric="rms_ev", value=_r(rms_ev, 3), limit=LIMITS["xrf_energy"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["xrf_energy"],
    )
