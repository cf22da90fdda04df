"""SNIP background (Statistics-sensitive Non-linear Iterative Peak clipping; Ryan et al. 1988,
Morháč's decreasing-window variant), vectorized over channels.

Counts are compressed with the LLS operator v = ln(ln(√(y+1)+1)+1), then for window p from
``width`` down to 1: v[i] = min(v[i], (v[i−p] + v[i+p])/2); the result is expanded back.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perception.xrf.errors import SpectrumError


def snip_background(counts: ArrayLike, width: int, smooth: int = 3) -> NDArray[np.float64]:
    """Background [channels] under ``counts`` [channels] for a clipping half-window of
    ``width`` channels (≈ 1–2 × the widest peak's FWHM in channels); ``smooth`` is a moving-average
    length applied first (odd, 1 = none). Raises ``SpectrumError`` for bad input."""
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 1 or y.size < 3:
        raise SpectrumError(f"snip: counts must be 1-D with ≥ 3 channels, got shape {y.shape}")
    if width < 1:
        raise SpectrumError(f"snip: width must be ≥ 1 channel, got {width}")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise SpectrumError("snip: counts must be finite and ≥ 0")
    if smooth > 1:
        k = np.ones(smooth) / smooth
        y = np.convolve(np.pad(y, smooth // 2, mode="edge"), k, mode="valid")
    v = np.log(np.log(np.sqrt(y + 1.0) + 1.0) + 1.0)
    n = v.size
    width = min(width, (n - 1) // 2)
    for p in range(width, 0, -1):
        mean = 0.5 * (v[: n - 2 * p] + v[2 * p :])
        np.minimum(v[p : n - p], mean, out=v[p : n - p])
    bg = (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0
    return np.asarray(np.maximum(bg, 0.0), dtype=np.float64)
