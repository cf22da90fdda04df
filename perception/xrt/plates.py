"""Reference plates in a run of log-attenuation lines: find them and average their interior.

Plates of known material and areal density pass one after another, flat on the belt, under
the scanner (:mod:`perception.xrt.setup_fit` fits the model to them). Cells whose ``A_high``
stands above ``k_sigma`` times the bare belt's noise (robust: 1.4826 × the median absolute
deviation of all cells, most of them bare belt) are labelled into 8-connected plates; each
plate is eroded by ``margin`` cells so that its edges (partial volume, the fan's oblique rays
through the plate's sides) do not enter the mean. Plates are returned in the order they passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from perception.xrt.errors import XrtPlateError
from perception.xrt.transmission import FLAG_DEAD, FLAG_OPAQUE

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PlateSpec:
    """A reference plate as weighed: name, composition (element mass fractions), mass (g) and
    area (cm²) of its face; ``areal_density_g_cm2`` = mass / area. Raises
    :class:`XrtPlateError` for values <= 0 or fractions outside 0..1."""

    name: str
    composition: Mapping[str, float] = field(default_factory=dict)
    mass_g: float = 0.0
    area_cm2: float = 0.0

    def __post_init__(self) -> None:
        if not (self.mass_g > 0 and self.area_cm2 > 0):
            raise XrtPlateError(f"plate {self.name!r}: mass_g and area_cm2 must be > 0, got "
                                f"{self.mass_g}, {self.area_cm2}")
        if not self.composition or any(not 0 <= v <= 1 for v in self.composition.values()):
            raise XrtPlateError(f"plate {self.name!r}: composition must give element mass "
                                f"fractions in 0..1, got {dict(self.composition)}")

    @property
    def areal_density_g_cm2(self) -> float:
        return self.mass_g / self.area_cm2


@dataclass(frozen=True)
class PlateCells:
    """One plate found in the lines: first and last line, the mean ``A_low``, ``A_high`` and
    ray cos θ over its interior cells, their count and the whole plate's cell count."""

    first_line: int
    last_line: int
    a_low: float
    a_high: float
    cos_theta: float
    cells: int
    footprint_cells: int


def find_plates(a: NDArray[np.floating], cos_theta: NDArray[np.floating],
                flags: NDArray[np.integer] | None = None, k_sigma: float = 8.0,
                margin: int = 2, min_cells: int = 9) -> list[PlateCells]:
    """Plates in ``a`` (N lines, W pixels, 2 layers of log-attenuation), with ``cos_theta``
    (W,) per pixel and optional ``flags`` (N, W). Raises :class:`XrtPlateError` for wrong
    shapes or non-finite values, when no plate is found, or when a plate has opaque cells."""
    arr = np.asarray(a, dtype=np.float64)
    cos = np.asarray(cos_theta, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 2 or arr.shape[0] < 3:
        raise XrtPlateError(f"plate lines: expected N >= 3 lines x W pixels x 2 layers, got "
                            f"shape {arr.shape}")
    if cos.shape != (arr.shape[1],):
        raise XrtPlateError(f"cos_theta: expected ({arr.shape[1]},), got {cos.shape}")
    if not np.all(np.isfinite(arr)):
        raise XrtPlateError("plate lines: non-finite log-attenuation")
    fl = np.zeros(arr.shape[:2], dtype=np.uint8) if flags is None else np.asarray(flags)
    if fl.shape != arr.shape[:2]:
        raise XrtPlateError(f"flags: expected {arr.shape[:2]}, got {fl.shape}")
    hi = arr[..., 1]
    live = fl != FLAG_DEAD
    sigma = 1.4826 * float(np.median(np.abs(hi[live] - np.median(hi[live])))) if live.any() else 0
    thr = max(k_sigma * sigma, 0.01)
    labels, _n = ndimage.label((hi > thr) & live, structure=np.ones((3, 3), dtype=bool))
    out: list[PlateCells] = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp = labels == k
        inner = ndimage.binary_erosion(comp, iterations=margin) & live
        if np.count_nonzero(inner) < min_cells:
            continue
        if np.any(fl[inner] == FLAG_OPAQUE):
            raise XrtPlateError(f"plate at lines {sl[0].start}-{sl[0].stop - 1}: opaque cells: "
                                "too thick for the scanner, use a thinner plate")
        rows, cols = np.nonzero(inner)
        out.append(PlateCells(int(sl[0].start), int(sl[0].stop - 1),
                              float(arr[rows, cols, 0].mean()), float(arr[rows, cols, 1].mean()),
                              float(cos[cols].mean()), int(rows.size), int(comp.sum())))
    if not out:
        raise XrtPlateError(f"no plates found in {arr.shape[0]} lines (no {min_cells}+ interior "
                            f"cells above A_high {thr:.3f}): did the plates pass under the "
                            "scanner, and are they bigger than a few pixels?")
    return sorted(out, key=lambda p: p.first_line)
