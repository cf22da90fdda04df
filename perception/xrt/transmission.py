"""Raw detector counts → transmission and log-attenuation, with dark and flat references.

``T = (raw − dark) / (flat − dark)`` per pixel and layer, where ``dark`` is the mean of lines
taken with the tube off and ``flat`` of lines with only the belt in the beam (so the belt is
part of the reference). Flags per pixel: :data:`FLAG_OK`; :data:`FLAG_OPAQUE` where the high
layer sees less than ``opaque_below`` of the flat field (the object is too thick to measure:
its mass there is a lower bound); :data:`FLAG_DEAD` where a layer's flat is not above its dark.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perception.xrt.errors import XrtDataError

FloatArray = NDArray[np.float64]
FLAG_OK = 0
FLAG_OPAQUE = 1
FLAG_DEAD = 2
#: smallest transmission kept when taking the log (an opaque pixel's A is ``−ln`` of it)
T_FLOOR = 1e-5


def _mean_lines(ref: NDArray[np.floating], name: str) -> FloatArray:
    a = np.asarray(ref, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 2 or a.shape[0] < 1:
        raise XrtDataError(f"{name} reference: expected (lines, pixels, 2), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise XrtDataError(f"{name} reference: non-finite values")
    out: FloatArray = a.mean(axis=0)
    return out


class TransmissionCalibrator:
    """Flat-fields raw lines (see the module docstring). Raises :class:`XrtDataError` for
    references or lines of the wrong shape or with non-finite values."""

    def __init__(self, dark: NDArray[np.floating], flat: NDArray[np.floating],
                 opaque_below: float = 1e-3, min_response: float = 100.0) -> None:
        self.dark = _mean_lines(dark, "dark")
        self.flat = _mean_lines(flat, "flat")
        if self.dark.shape != self.flat.shape:
            raise XrtDataError(f"dark {self.dark.shape} and flat {self.flat.shape} references "
                               "disagree")
        if not 0 < opaque_below < 1:
            raise XrtDataError(f"opaque_below must be in (0, 1), got {opaque_below}")
        self.opaque_below = opaque_below
        self.response = self.flat - self.dark
        self.dead = np.any(self.response < min_response, axis=1)

    @property
    def width(self) -> int:
        return int(self.dark.shape[0])

    def apply(self, raw: NDArray[np.floating]) -> tuple[FloatArray, NDArray[np.uint8]]:
        """(transmission (W, 2), flags (W,)) of one raw line (W, 2)."""
        r = np.asarray(raw, dtype=np.float64)
        if r.shape != self.dark.shape:
            raise XrtDataError(f"raw line: expected shape {self.dark.shape}, got {r.shape}")
        if not np.all(np.isfinite(r)):
            raise XrtDataError("raw line: non-finite counts")
        t = (r - self.dark) / np.where(self.dead[:, None], 1.0, self.response)
        flags = np.full(self.width, FLAG_OK, dtype=np.uint8)
        flags[t[:, 1] < self.opaque_below] = FLAG_OPAQUE
        flags[self.dead] = FLAG_DEAD
        t[self.dead] = 1.0
        return t, flags


def log_attenuation_of(transmission: NDArray[np.floating]) -> FloatArray:
    """``A = −ln T`` with ``T`` floored at :data:`T_FLOOR` (noise can take T to or below 0 on
    opaque pixels, and just above 1 on bare belt, where A is then slightly negative)."""
    t = np.asarray(transmission, dtype=np.float64)
    out: FloatArray = -np.log(np.maximum(t, T_FLOOR))
    return out
