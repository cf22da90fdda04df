"""Geometry shared by line-scan sensors across the belt (hyperspectral camera, X-ray scanner)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LineGeometry:
    """Where the line lies: belt-frame ``x_m``, pixel-0 centre ``y0_m``, pitch (m), width."""

    x_m: float = 1.6
    y0_m: float = -0.3984375
    pixel_pitch_m: float = 0.003125
    width_px: int = 256

    def pixel_y(self) -> FloatArray:
        """Across-belt position (m) of every pixel centre, (W,)."""
        pixels = np.arange(self.width_px, dtype=np.float64)
        out: FloatArray = self.y0_m + self.pixel_pitch_m * pixels
        return out
