"""Pile-up template for the fit: the expected sum spectrum of a measured spectrum.

Pairs of photons within the detector's resolving time τ are recorded as one count at the sum
energy. With the input rate R (from the observed total N_obs = R t (1 − P/2), P = 1 − e^{−Rτ})
the sum spectrum is ½ P R t × (s/Σs) ∗ (s/Σs), where s is the singles spectrum; s is estimated
from the measurement y by removing its own pile-up: s ← (y − ½ P R t (s/Σs) ∗ (s/Σs)) / (1 − P),
three passes (pile-up of pile-up is what the passes remove). :func:`singles_spectrum` returns s.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import fftconvolve

_F = NDArray[np.float64]


def self_convolution(s: _F, shift: int) -> _F:
    """(s/Σs) ∗ (s/Σs) on the channels of ``s`` [channels]: the sum energy 2·offset + gain·(i + j)
    lands at channel i + j + ``shift`` (``shift`` = round(offset/gain))."""
    tot = float(s.sum())
    if tot <= 0:
        return np.zeros_like(s)
    shape = s / tot
    conv = fftconvolve(shape, shape)
    idx = np.arange(s.size) - shift
    out = np.zeros_like(s)
    ok = (idx >= 0) & (idx < conv.size)
    out[ok] = np.clip(conv[idx[ok]], 0.0, None)
    return out


def _pileup_terms(y: _F, live_s: float, tau_s: float, gain: float, offset: float
                  ) -> tuple[_F, _F, float]:
    """(sum spectrum, singles estimate s, pair probability P) of the measured counts ``y``."""
    s = np.clip(y, 0.0, None)
    n_obs = float(s.sum())
    if n_obs <= 0:
        return np.zeros_like(s), s, 0.0
    live = max(live_s, 1e-12)
    rate = n_obs / live
    p = 0.0
    for _ in range(30):
        p = -math.expm1(-rate * tau_s)
        rate = n_obs / live / (1.0 - 0.5 * p)
    shift = round(offset / gain)
    pile = self_convolution(s, shift)
    if p <= 0:
        return pile * n_obs * 1e-6, s, 0.0
    for _ in range(3):
        s = np.clip((y - 0.5 * p * rate * live * pile) / (1.0 - p), 0.0, None)
        pile = self_convolution(s, shift)
    return np.asarray(0.5 * p * rate * live * pile, dtype=np.float64), s, p


def pileup_spectrum(y: _F, live_s: float, tau_s: float, gain: float, offset: float) -> _F:
    """Expected sum spectrum (counts) [channels] of the measured counts ``y`` [channels] taken in
    ``live_s`` with resolving time ``tau_s``; ``gain``/``offset`` (keV) the calibration. Without a
    resolving time (τ = 0) the shape is returned at a nominal size of 1e-6 × N_obs."""
    return _pileup_terms(y, live_s, tau_s, gain, offset)[0]


def singles_spectrum(y: _F, live_s: float, tau_s: float, gain: float, offset: float) -> _F:
    """Counts [channels] that ``y`` would hold without pile-up: the sum spectrum removed and the
    singles lost to it restored, s = (y − sum spectrum) / (1 − P) (arguments as
    :func:`pileup_spectrum`)."""
    return _pileup_terms(y, live_s, tau_s, gain, offset)[1]
