"""Calibration-store entries of the DE-XRT scanner, and reading them back.

- ``xrt.reference`` (kind ``xrt_reference``): dark and flat references averaged over N lines,
  saved next to the store as ``<line>.xrt_reference.npz`` (arrays ``dark``, ``flat``, W x 2
  counts; saturated pixels carry their dark as flat, so they come out dead; masks ``dead``,
  ``saturated``, ``noisy``), the bad pixels by index.
- ``xrt.mass_scale`` (kind ``xrt_mass_scale``): how the scanner departs from its nominal
  set-up, fitted to weighed reference plates: ``tube_kv_delta`` (kV), ``filter_scale``,
  ``interlayer_scale`` (thickness factors), with each plate's areal-density error (%) before
  and after; quality is the worst plate's error after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from calibration.procedure_errors import StoreError
from calibration.records import LIMITS
from calibration.store import DEFAULT_MAX_AGE_DAYS, CalibrationEntry, CalibrationStore, Quality

REFERENCE = "xrt.reference"
MASS_SCALE = "xrt.mass_scale"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def xrt_reference_entry(source: str, file: str, n_lines: int, width: int,
                        dead: Sequence[int], not_above_dark: Sequence[int],
                        saturated: Sequence[int], noisy: Sequence[int],
                        dark_noise_counts: Sequence[float], flat_rel_noise: Sequence[float],
                        rel_noise: float, date: dt.datetime | None = None) -> CalibrationEntry:
    """The ``xrt.reference`` entry (see the module docstring); ``file`` is relative to the
    store's folder."""
    return CalibrationEntry(
        kind="xrt_reference", date=date or _now(),
        method="mean of N tube-off and N empty-belt lines; dead, saturated, noisy pixel check",
        inputs={"source": source, "lines_averaged": int(n_lines), "pixels": int(width)},
        results={"file": file, "dead_pixels": [int(i) for i in dead],
                 "flat_not_above_dark": [int(i) for i in not_above_dark],
                 "saturated_pixels": [int(i) for i in saturated],
                 "noisy_pixels": [int(i) for i in noisy]},
        residuals={"dark_noise_counts": [_r(v, 3) for v in dark_noise_counts],
                   "flat_rel_noise": [_r(v, 6) for v in flat_rel_noise],
                   "mean_rel_noise": _r(rel_noise, 7)},
        quality=Quality(metric="mean_rel_noise", value=_r(rel_noise, 7),
                        limit=LIMITS["xrt_reference"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["xrt_reference"],
    )


def xrt_mass_scale_entry(source: str, nominal_kv: float, correction: tuple[float, float, float],
                         plates: Sequence[tuple[str, float, float, float]],
                         rms_rel_residual: float,
                         date: dt.datetime | None = None) -> CalibrationEntry:
    """The ``xrt.mass_scale`` entry; ``plates`` are (name, known areal density g/cm², error %
    before, error % after)."""
    worst = max(abs(p[3]) for p in plates)
    return CalibrationEntry(
        kind="xrt_mass_scale", date=date or _now(),
        method="weighed reference plates; least-squares fit of tube kV, tube-filter and "
        "inter-layer thickness to their log-attenuations",
        inputs={"source": source, "nominal_tube_kv": _r(nominal_kv, 3),
                "plates": {p[0]: _r(p[1], 5) for p in plates}},
        results={"tube_kv_delta": _r(correction[0], 4), "filter_scale": _r(correction[1], 5),
                 "interlayer_scale": _r(correction[2], 5)},
        residuals={"rms_rel_residual": _r(rms_rel_residual, 6),
                   "areal_density_error_before_pct": {p[0]: _r(p[2], 3) for p in plates},
                   "areal_density_error_after_pct": {p[0]: _r(p[3], 3) for p in plates}},
        quality=Quality(metric="max_plate_error_pct", value=_r(worst, 3),
                        limit=LIMITS["xrt_mass_scale"]),
        max_age_days=DEFAULT_MAX_AGE_DAYS["xrt_mass_scale"],
    )


def xrt_reference_file(store: CalibrationStore, store_path: Path) -> Path | None:
    """The npz of ``xrt.reference`` (resolved next to ``store_path``), None without one;
    raises :class:`StoreError` when the entry names no file or the file is missing."""
    if REFERENCE not in store.calibrations:
        return None
    name = store.get(REFERENCE).results.get("file")
    if not name:
        raise StoreError(f"{store_path}: {REFERENCE} names no file")
    path = store_path.parent / str(name)
    if not path.is_file():
        raise StoreError(f"{store_path}: {REFERENCE} file {path} is missing: run "
                         "`crmsort calibrate xrt` again")
    return path


def xrt_correction(store: CalibrationStore) -> tuple[float, float, float] | None:
    """``(tube_kv_delta, filter_scale, interlayer_scale)`` of ``xrt.mass_scale``, None without
    one; raises :class:`StoreError` when a value is missing."""
    if MASS_SCALE not in store.calibrations:
        return None
    r = store.get(MASS_SCALE).results
    try:
        return (float(r["tube_kv_delta"]), float(r["filter_scale"]),
                float(r["interlayer_scale"]))
    except KeyError as exc:
        raise StoreError(f"{MASS_SCALE} entry has no {exc.args[0]!r} in results") from None
