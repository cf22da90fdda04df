"""Raw counts -> reflectance with dark and white references (flat-field calibration).

For each spatial pixel p and band b of a line (W x B):

    R[p, b] = (raw[p, b] - dark[p, b]) / (white[p, b] - dark[p, b]) * panel(lambda_b)

where ``dark`` is the mean of lines taken with the shutter closed, ``white`` the mean of
lines of a white reference panel under the working illumination, and ``panel`` the
panel's own reflectance curve (a Spectralon-type panel is ~0.95-0.99, not 1). Pixels are
flagged, not silently used:

- ``FLAG_SATURATED``: some band of ``raw`` reached the sensor's full scale;
- ``FLAG_DEAD``: the pixel responds to neither light nor dark (``white - dark`` below
  ``min_response`` counts in some band), found once when the references are loaded.

Flags match ``crmsort_msgs/HyperspectralLine.FLAG_*``. Reflectance of flagged pixels is
set to NaN so nothing downstream uses it by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perception.sensors.hsi.errors import (
    BandMismatchError,
    CalibrationReferenceError,
    NonFiniteDataError,
)

FloatArray = NDArray[np.float64]
FLAG_OK = 0
FLAG_SATURATED = 1
FLAG_DEAD = 2


def _as_2d(name: str, a: FloatArray | None, shape: tuple[int, int] | None) -> FloatArray:
    if a is None:
        raise CalibrationReferenceError(f"{name} reference is missing (None)")
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 3:  # a stack of reference lines: average them
        arr = arr.mean(axis=0)
    if arr.ndim != 2:
        raise CalibrationReferenceError(
            f"{name} reference: expected W x B (or N x W x B lines), got shape {arr.shape}"
        )
    if shape is not None and arr.shape != shape:
        raise BandMismatchError(
            f"{name} reference has shape {arr.shape} (W x B) but {shape} was expected"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise NonFiniteDataError(
            f"{name} reference has non-finite values (first at pixel {bad[0]}, band {bad[1]})"
        )
    return arr


@dataclass(frozen=True)
class ReflectanceCalibrator:
    """Dark/white flat-field calibration of one camera (see the module docstring).

    ``dark`` and ``white`` are W x B (or stacks N x W x B, averaged); ``panel_reflectance``
    is the white panel's reflectance per band (B,) or a scalar; ``full_scale`` the raw count
    at which the sensor saturates; ``min_response`` the least ``white - dark`` (counts) of a
    live pixel. Raises :class:`CalibrationReferenceError` for a missing reference or a white
    darker than the dark in more than ``max_dead_fraction`` of pixels (a swapped or
    unlit reference), :class:`BandMismatchError` when shapes disagree and
    :class:`NonFiniteDataError` for NaN/inf.
    """

    dark: FloatArray
    white: FloatArray
    panel_reflectance: FloatArray
    full_scale: float = 4095.0
    min_response: float = 20.0
    max_dead_fraction: float = 0.05
    _gain: FloatArray = field(init=False, repr=False, compare=False)
    _dead: NDArray[np.bool_] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        white = _as_2d("white", self.white, None)
        dark = _as_2d("dark", self.dark, white.shape)
        w, b = white.shape
        panel = np.broadcast_to(np.asarray(self.panel_reflectance, dtype=np.float64), (b,))
        if not np.all(np.isfinite(panel)) or np.any(panel <= 0) or np.any(panel > 1.2):
            raise CalibrationReferenceError(
                "panel_reflectance must be finite and in (0, 1.2] in every band"
            )
        resp = white - dark
        if np.median(resp) <= 0:
            raise CalibrationReferenceError(
                f"white reference is darker than the dark reference (median white - dark = "
                f"{np.median(resp):.1f} counts): references swapped or lamp off?"
            )
        dead = np.any(resp < self.min_response, axis=1)
        if dead.mean() > self.max_dead_fraction:
            cols = np.flatnonzero(dead)
            raise CalibrationReferenceError(
                f"white reference is not above the dark by {self.min_response} counts in "
                f"{dead.sum()} of {w} pixels (first: {cols[:5].tolist()}); expected at most "
                f"{self.max_dead_fraction:.0%} dead pixels"
            )
        object.__setattr__(self, "dark", dark)
        object.__setattr__(self, "white", white)
        object.__setattr__(self, "panel_reflectance", np.array(panel))
        gain = np.where(resp >= self.min_response, panel[None, :] / np.maximum(resp, 1e-9), 0.0)
        object.__setattr__(self, "_gain", gain)
        object.__setattr__(self, "_dead", dead)

    @property
    def shape(self) -> tuple[int, int]:
        """(W, B) of the lines this calibration applies to."""
        w, b = self.white.shape
        return int(w), int(b)

    @property
    def dead_pixels(self) -> NDArray[np.bool_]:
        """(W,) True where the pixel is dead (no response in some band)."""
        return self._dead

    def apply(
        self, raw: NDArray[np.floating[Any]]
    ) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        """Raw counts ``(W, B)`` or ``(N, W, B)`` -> (reflectance float32 same shape, flags).

        ``flags`` has the shape without the band axis. Flagged pixels get NaN reflectance.
        Raises :class:`BandMismatchError` on a shape other than :attr:`shape`,
        :class:`NonFiniteDataError` on NaN/inf counts.
        """
        arr = np.asarray(raw)
        if arr.shape[-2:] != self.shape:
            raise BandMismatchError(
                f"raw line has shape {arr.shape[-2:]} (W x B) but the calibration was taken "
                f"with {self.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise NonFiniteDataError("raw counts contain NaN/inf")
        refl = ((arr - self.dark) * self._gain).astype(np.float32)
        flags = np.zeros(arr.shape[:-1], dtype=np.uint8)
        flags[np.any(arr >= self.full_scale, axis=-1)] = FLAG_SATURATED
        flags[..., self.dead_pixels] = FLAG_DEAD
        refl[flags != FLAG_OK] = np.nan
        return refl, flags
