"""The spectral library in ``datasets/hsi``: synthetic material spectra and measured references.

``library.csv`` holds one reflectance spectrum per material (columns named by the catalog's
material ids, plus ``belt`` for the conveyor) at 5 nm over 850-2550 nm, generated from
``features.yaml`` (see :mod:`perception.hsi.synth`). ``reference/*.csv`` holds measured
spectra (PVC targets and a Spectralon panel shipped by hylite). Labels: a material's label
is its catalog ``hsi_id``; the belt is :data:`BELT_LABEL` and "no material / rejected" is
:data:`UNKNOWN_LABEL`, as in ``crmsort_msgs/MaterialMap``. Metals have no NIR absorption
features (their spectra differ only in level and a slight slope, which gloss, oxide and
tilt swamp), so the classifier names them as one group, :data:`METAL_LABEL` ("metal: ask
the XRF"); :func:`classifier_label` maps a material to the label the classifier reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from perception.catalog import load_catalog
from perception.hsi.synth import LibraryFormatError
from perception.sensors.hsi.bands import BandModel

FloatArray = NDArray[np.float64]
UNKNOWN_LABEL = 255
BELT_LABEL = 254
METAL_LABEL = 253
BLACK_MATERIAL = "carbon_black_plastic"
LIBRARY_FILE = "library.csv"
FEATURES_FILE = "features.yaml"


def hsi_root() -> Path:
    """``$CRMSORT_DATASETS/hsi`` when set, else ``datasets/hsi`` of this checkout."""
    env = os.environ.get("CRMSORT_DATASETS")
    if env:
        return Path(env) / "hsi"
    return Path(__file__).resolve().parents[2] / "datasets" / "hsi"


def _read_csv(path: Path) -> tuple[list[str], FloatArray]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise LibraryFormatError(f"{path}: {exc}") from exc
    header = [ln for ln in lines if ln.startswith("#")]
    if not header or "wavelength_nm" not in header[-1]:
        raise LibraryFormatError(f"{path}: last comment line must name the columns")
    cols = [c.strip() for c in header[-1].lstrip("# ").split(",")]
    try:
        data = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
    except ValueError as exc:
        raise LibraryFormatError(f"{path}: {exc}") from exc
    if data.shape[1] != len(cols):
        raise LibraryFormatError(f"{path}: {len(cols)} column names but {data.shape[1]} columns")
    if not np.all(np.isfinite(data)) or np.any(np.diff(data[:, 0]) <= 0):
        raise LibraryFormatError(f"{path}: values must be finite, wavelengths increasing")
    return cols, data


@dataclass(frozen=True)
class SpectralLibrary:
    """Spectra ``(M, N)`` on ``wavelengths_nm`` (N,), rows named ``names``, labels ``labels``."""

    wavelengths_nm: FloatArray
    names: tuple[str, ...]
    labels: tuple[int, ...]
    spectra: FloatArray

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise LibraryFormatError(
                f"material {name!r} is not in the library; known: {', '.join(self.names)}"
            ) from None

    def spectrum(self, name: str) -> FloatArray:
        """The library spectrum of ``name`` (N,)."""
        row: FloatArray = self.spectra[self.index(name)]
        return row

    def resampled(self, bands: BandModel) -> FloatArray:
        """All spectra resampled to a camera's bands, ``(M, B)``."""
        return bands.resample(self.wavelengths_nm, self.spectra)

    @property
    def material_names(self) -> tuple[str, ...]:
        """Names of the rows that are catalog materials (everything but the belt)."""
        return tuple(n for n, lab in zip(self.names, self.labels, strict=True) if lab < 254)


def load_library(root: Path | None = None) -> SpectralLibrary:
    """Load ``library.csv`` and label its columns by the catalog's ``hsi_id``.

    Raises :class:`LibraryFormatError` for a malformed file or a column that is neither a
    catalog material nor ``belt``, and for a catalog material missing from the library.
    """
    root = hsi_root() if root is None else Path(root)
    path = root / LIBRARY_FILE
    cols, data = _read_csv(path)
    catalog = load_catalog()
    names = tuple(cols[1:])
    labels: list[int] = []
    for n in names:
        if n == "belt":
            labels.append(BELT_LABEL)
        elif n in catalog.materials:
            labels.append(catalog.materials[n].hsi_id)
        else:
            raise LibraryFormatError(f"{path}: column {n!r} is not a catalog material or 'belt'")
    missing = sorted(set(catalog.materials) - set(names))
    if missing:
        raise LibraryFormatError(f"{path}: catalog materials missing: {', '.join(missing)}")
    return SpectralLibrary(data[:, 0].copy(), names, tuple(labels), data[:, 1:].T.copy())


def classifier_labels(library: SpectralLibrary) -> dict[int, int]:
    """Library label -> the label the classifier reports (metals -> :data:`METAL_LABEL`)."""
    catalog = load_catalog()
    out = {}
    for name, lab in zip(library.names, library.labels, strict=True):
        metal = name in catalog.materials and catalog.materials[name].family == "metal"
        out[lab] = METAL_LABEL if metal else lab
    return out


def label_names(library: SpectralLibrary) -> dict[int, str]:
    """Every classifier label (materials, belt, metal group, unknown) -> its name."""
    names = {lab: n for n, lab in zip(library.names, library.labels, strict=True)}
    names[METAL_LABEL] = "metal"
    names[UNKNOWN_LABEL] = "unknown"
    return names


def load_reference(name: str, root: Path | None = None) -> tuple[FloatArray, FloatArray]:
    """A measured reference spectrum ``reference/<name>.csv`` -> (wavelengths_nm, reflectance)."""
    root = hsi_root() if root is None else Path(root)
    path = root / "reference" / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "reference").glob("*.csv"))
        raise LibraryFormatError(f"{path}: no such reference; known: {', '.join(known)}")
    cols, data = _read_csv(path)
    if cols != ["wavelength_nm", "reflectance"]:
        raise LibraryFormatError(f"{path}: expected columns wavelength_nm,reflectance")
    return data[:, 0].copy(), data[:, 1].copy()


def panel_reflectance(bands: BandModel, name: str = "spectralon_r90") -> FloatArray:
    """The white panel's reflectance at a camera's band centres (B,), edge values held."""
    wl, r = load_reference(name)
    out: FloatArray = np.interp(bands.centres_nm, wl, r)
    return out
