"""Synthetic reflectance spectra from documented absorption features (``features.yaml``).

Model, per material (units nm, reflectance 0-1)::

    R(l) = C(l) * exp(-sum_k d_k * exp(-(l - c_k)^2 / (2 s_k^2))),   s_k = fwhm_k / 2.3548
    C(l) = clip(r1000 * (1 + slope_per_um * (l - 1000) / 1000), 0.005, 0.99)

Gaussian bands in absorbance on a sloped continuum: the shape NIR sorting literature
describes (overtone/combination bands of C-H, O-H, N-H, C=O; broad Fe2+ crystal-field
bands; featureless metals and carbon black). A ``mix`` entry blends the continua and the
band lists of other materials by weight (PC/ABS). :func:`write_library_csv` writes the
5 nm library that :mod:`perception.hsi.library` loads; :func:`import_two_column_spectrum`
turns a measured spectrum (e.g. hylite's PVC targets) into a reference CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from perception.sensors.hsi.errors import HsiError

FloatArray = NDArray[np.float64]
LIBRARY_GRID_NM = np.arange(850.0, 2550.0 + 1e-9, 5.0)
"""The library's wavelength grid: 850-2550 nm at 5 nm (covers the SRF tails of 900-2500 nm
cameras)."""
_FWHM_TO_SIGMA = 1.0 / 2.3548200450309493


class LibraryFormatError(HsiError):
    """``features.yaml`` or a library/reference CSV is malformed; the message names the entry."""


def _recipe(entries: dict[str, Any], name: str, where: str) -> tuple[float, float, list[Any]]:
    e = entries.get(name)
    if not isinstance(e, dict):
        raise LibraryFormatError(f"{where}: no entry {name!r}")
    if "mix" in e:
        mix = e["mix"]
        if not isinstance(mix, dict) or not mix:
            raise LibraryFormatError(f"{where}.{name}.mix: expected {{material: weight}}")
        r = s = 0.0
        bands: list[Any] = []
        for comp, w in mix.items():
            cr, cs, cb = _recipe(entries, str(comp), where)
            r += float(w) * cr
            s += float(w) * cs
            bands += [dict(b, depth=float(b["depth"]) * float(w)) for b in cb]
        return r, s, bands
    cont = e.get("continuum")
    if not isinstance(cont, dict) or "r1000" not in cont or "slope_per_um" not in cont:
        raise LibraryFormatError(f"{where}.{name}.continuum: expected {{r1000, slope_per_um}}")
    bands = list(e.get("bands") or [])
    for i, b in enumerate(bands):
        for key in ("nm", "fwhm", "depth", "what", "src"):
            if key not in b:
                raise LibraryFormatError(f"{where}.{name}.bands[{i}]: missing {key!r}")
        if float(b["fwhm"]) <= 0 or float(b["depth"]) < 0:
            raise LibraryFormatError(f"{where}.{name}.bands[{i}]: fwhm must be > 0, depth >= 0")
    return float(cont["r1000"]), float(cont["slope_per_um"]), bands


def spectrum_from_recipe(
    r1000: float, slope_per_um: float, bands: list[Any], grid_nm: FloatArray
) -> FloatArray:
    """Reflectance on ``grid_nm`` from a continuum and Gaussian absorption bands (see module)."""
    cont = np.clip(r1000 * (1.0 + slope_per_um * (grid_nm - 1000.0) / 1000.0), 0.005, 0.99)
    absorb = np.zeros_like(grid_nm)
    for b in bands:
        sig = float(b["fwhm"]) * _FWHM_TO_SIGMA
        absorb += float(b["depth"]) * np.exp(-0.5 * ((grid_nm - float(b["nm"])) / sig) ** 2)
    out: FloatArray = cont * np.exp(-absorb)
    return out


def load_features(path: Path) -> dict[str, Any]:
    """Parse ``features.yaml``; checks every source key cited exists."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LibraryFormatError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or "materials" not in data or "sources" not in data:
        raise LibraryFormatError(f"{path}: expected top-level 'sources' and 'materials'")
    sources = data["sources"]
    for section in ("materials", "background"):
        for name, e in (data.get(section) or {}).items():
            for i, b in enumerate((e or {}).get("bands") or []):
                if b.get("src") not in sources:
                    raise LibraryFormatError(
                        f"{path}: {section}.{name}.bands[{i}].src {b.get('src')!r} is not in "
                        f"sources"
                    )
    return data


def synthesize(
    features: dict[str, Any], grid_nm: FloatArray = LIBRARY_GRID_NM
) -> dict[str, FloatArray]:
    """Spectra of every material and background entry of parsed ``features.yaml``."""
    entries = {**features["materials"], **(features.get("background") or {})}
    out: dict[str, FloatArray] = {}
    for name in entries:
        r, s, bands = _recipe(entries, name, "features.yaml")
        out[name] = spectrum_from_recipe(r, s, bands, grid_nm)
    return out


def write_library_csv(spectra: dict[str, FloatArray], grid_nm: FloatArray, path: Path) -> None:
    """Write ``wavelength_nm,<name>...`` rows (5 decimals), one per grid wavelength."""
    names = list(spectra)
    table = np.column_stack([grid_nm] + [spectra[n] for n in names])
    header = (
        "generated by `crmsort hsi library` from datasets/hsi/features.yaml "
        "(perception/hsi/synth.py); do not edit by hand\n" + ",".join(["wavelength_nm", *names])
    )
    np.savetxt(path, table, delimiter=",", fmt="%.5f", header=header, comments="# ")


def import_two_column_spectrum(
    src: Path, dst: Path, note: str, grid_nm: FloatArray | None = None
) -> FloatArray:
    """Resample a measured ``wavelength_nm,reflectance`` text file to a 5 nm reference CSV.

    Averages the measured samples inside each 5 nm bin (noise down, no aliasing) over the
    measured range ∩ 850-2550 nm; writes ``dst`` with ``note`` (provenance, licence) as a
    comment header. Returns the (N, 2) table written.
    """
    try:
        d = np.loadtxt(src, delimiter=",")
    except (OSError, ValueError) as exc:
        raise LibraryFormatError(f"{src}: {exc}") from exc
    if d.ndim != 2 or d.shape[1] != 2:
        raise LibraryFormatError(f"{src}: expected two columns wavelength_nm,reflectance")
    grid = LIBRARY_GRID_NM if grid_nm is None else grid_nm
    grid = grid[(grid - 2.5 >= d[0, 0]) & (grid + 2.5 <= d[-1, 0])]
    vals = np.interp(grid, d[:, 0], d[:, 1])  # where a bin holds no sample
    for i, g in enumerate(grid):
        inside = (d[:, 0] >= g - 2.5) & (d[:, 0] < g + 2.5)
        if inside.any():
            vals[i] = d[inside, 1].mean()
    table = np.column_stack([grid, vals])
    np.savetxt(dst, table, delimiter=",", fmt="%.5f",
               header=note + "\nwavelength_nm,reflectance", comments="# ")
    return table
