"""Banded (windowed) detector-response kernels and a cached linear response operator.

The detector turns photons (energy E_p, rate r_p, extra Gaussian width x_p) into counts per MCA
channel: a channel-integrated Gaussian (Fano + noise ⊕ x_p) at E_p and, for a fraction of the
photons, at the Si escape energy E_p − 1.740 keV, an exponential low-energy tail
exp((E − E_p)/β)/β (β = 2σ + 0.02 keV) and a flat shelf 1/E_p on (0, E_p). All of it is linear
in the rates, and the photon energies depend only on the set-up (tube grid, Compton shift) and the
element set (line energies), so :class:`ResponseOperator` builds the response once as a sparse
[channels × columns] matrix and applies it per composition with one sparse product.

Windowing, instead of dense [channels × peaks] matrices:

* Gaussians are integrated over the channels within ±``NSIG`` σ of their centre (the mass left
  out, erfc(8/√2) ≈ 1e-15, is what a dense evaluation puts there);
* tails are evaluated on the ``TAIL_BETAS`` β below their photon (e^-30 ≈ 1e-13 of the tail's
  peak density);
* shelves are exact: a reverse cumulative sum over the photon energies, per composition.

Peaks are processed in buckets of similar window length (powers of two), each bucket one
vectorised [peaks × window] evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.special import erf

from perception.xrf.detector import SI_KA_KEV, escape_fraction, sigma_kev

_F = NDArray[np.float64]
_I = NDArray[np.intp]
NSIG = 8.0
TAIL_BETAS = 30.0
TAIL_FRACTION = 0.004
SHELF_FRACTION = 0.001
_SQRT2 = float(np.sqrt(2.0))

#: (channel rows, peak indices, values), one entry per non-zero
Band = tuple[_I, _I, _F]


def _buckets(length: _I) -> list[_I]:
    """Indices grouped by ⌈log2(length)⌉ (each group's longest window ≤ 2 × its shortest)."""
    cls = np.ceil(np.log2(np.maximum(length, 1))).astype(np.intp)
    return [np.flatnonzero(cls == c) for c in np.unique(cls)]


def _band(nch: int, first: _I, length: _I, values: Callable[[_I, _I], _F]) -> Band:
    """Non-zeros of the kernels of all peaks: peak p covers channels first[p] … first[p] +
    length[p] − 1. ``values(sel, ch)`` gets peak indices [k] and channels [k, L] (clipped to the
    spectrum where a shorter window runs past its end) and returns [k, L] values."""
    rows: list[_I] = []
    peaks: list[_I] = []
    vals: list[_F] = []
    live = np.flatnonzero(length > 0)
    for grp in _buckets(length[live]):
        sel = live[grp]
        width = int(length[sel].max())
        j = np.arange(width)
        inside = j[None, :] < length[sel, None]
        ch = np.minimum(first[sel, None] + j[None, :], nch - 1)
        v = values(sel, ch)
        rows.append(ch[inside])
        peaks.append(np.broadcast_to(sel[:, None], ch.shape)[inside])
        vals.append(v[inside])
    if not rows:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    return np.concatenate(rows), np.concatenate(peaks), np.concatenate(vals)


def gaussian_band(edges: _F, centres: _F, sigmas: _F) -> Band:
    """Share of a unit-area Gaussian (centre, σ; keV) in each channel within ±``NSIG`` σ;
    ``edges`` [channels + 1] increasing channel boundaries (keV)."""
    nch = edges.size - 1
    lo = np.clip(np.searchsorted(edges, centres - NSIG * sigmas, side="right") - 1, 0, nch)
    hi = np.clip(np.searchsorted(edges, centres + NSIG * sigmas, side="left"), 0, nch)

    def values(sel: _I, ch: _I) -> _F:
        c = centres[sel, None]
        s = _SQRT2 * sigmas[sel, None]
        upper = 0.5 * erf((edges[ch + 1] - c) / s)
        lower = 0.5 * erf((edges[ch] - c) / s)
        return np.asarray(upper - lower, dtype=np.float64)

    return _band(nch, lo.astype(np.intp), (hi - lo).astype(np.intp), values)


def tail_band(centres_ch: _F, width: _F, energies: _F, betas: _F) -> Band:
    """width · exp((E_ch − E_p)/β_p)/β_p on the channels with centre E_ch < E_p within
    ``TAIL_BETAS`` β_p; ``centres_ch``/``width`` [channels] channel centres and widths (keV)."""
    first = np.searchsorted(centres_ch, energies - TAIL_BETAS * betas, side="left")
    stop = np.searchsorted(centres_ch, energies, side="left")

    def values(sel: _I, ch: _I) -> _F:
        b = betas[sel, None]
        arg = np.minimum((centres_ch[ch] - energies[sel, None]) / b, 0.0)
        return np.asarray(np.exp(arg) / b * width[ch], dtype=np.float64)

    return _band(centres_ch.size, first.astype(np.intp), (stop - first).astype(np.intp), values)


def shelf_sum(centres_ch: _F, width: _F, energies: _F, amps: _F) -> _F:
    """Σ_p amps[p] · width / E_p over channels with 0 < E_ch < E_p [channels] (exact)."""
    nch = centres_ch.size
    k = np.searchsorted(centres_ch, energies, side="left")  # channels below E_p: 0 … k − 1
    acc = np.bincount(k, weights=amps / energies, minlength=nch + 1)
    # channel c collects every photon with k_p > c: reverse cumulative sum from c + 1
    level = np.cumsum(acc[::-1])[::-1][1:]
    return np.asarray(np.where(centres_ch > 0, level * width, 0.0), dtype=np.float64)


class ResponseOperator:
    """Linear map from column rates (photons/s) to counts/s per channel for a fixed photon list.

    Each photon p (energy ``energies[p]`` keV, extra Gaussian σ ``extra_sigma[p]`` keV) carries
    ``share[p]`` of the rate of column ``column[p]`` (e.g. a tube-continuum bin spread over
    sub-points). ``edges`` [channels + 1] are the channel boundaries (keV); ``tails`` adds the
    tail and shelf. Photons outside (edges[0] − 0.5, edges[-1] + 1) keV are dropped."""

    def __init__(self, edges: _F, energies: _F, extra_sigma: _F, column: _I, share: _F,
                 n_columns: int, noise_fwhm_kev: float, fano: float, tails: bool = True) -> None:
        nch = edges.size - 1
        keep = (energies > edges[0] - 0.5) & (energies < edges[-1] + 1.0)
        e, xs, col, sh = energies[keep], extra_sigma[keep], column[keep], share[keep]
        f_esc = escape_fraction(e)
        sig = np.sqrt(sigma_kev(e, noise_fwhm_kev, fano) ** 2 + xs**2)
        amp = sh * (1.0 - f_esc)
        peak_scale = (1.0 - TAIL_FRACTION - SHELF_FRACTION) if tails else 1.0
        parts = [gaussian_band(edges, e, sig)]
        weights = [amp * peak_scale]
        esc = np.flatnonzero(f_esc > 0)
        e_esc = e[esc] - SI_KA_KEV
        sig_esc = np.sqrt(sigma_kev(e_esc, noise_fwhm_kev, fano) ** 2 + xs[esc] ** 2)
        r, p, v = gaussian_band(edges, e_esc, sig_esc)
        parts.append((r, esc[p], v))
        weights.append(sh * f_esc * peak_scale)
        self.centres: _F = 0.5 * (edges[:-1] + edges[1:])
        self.width: _F = np.diff(edges)
        if tails:
            parts.append(tail_band(self.centres, self.width, e, 2.0 * sig + 0.02))
            weights.append(amp * TAIL_FRACTION)
        rows = np.concatenate([q[0] for q in parts])
        cols = np.concatenate([col[q[1]] for q in parts])
        vals = np.concatenate([q[2] * w[q[1]] for q, w in zip(parts, weights, strict=True)])
        self.matrix = csr_matrix((vals, (rows, cols)), shape=(nch, n_columns))
        self.matrix.sum_duplicates()
        self.tails = tails
        self._shelf_e: _F = e
        self._shelf_col: _I = col
        self._shelf_w: _F = amp * SHELF_FRACTION

    def apply(self, column_rates: _F) -> _F:
        """Counts/s per channel [channels] for rates [columns] (photons/s absorbed)."""
        out = np.asarray(self.matrix @ column_rates, dtype=np.float64)
        if self.tails:
            out += shelf_sum(self.centres, self.width, self._shelf_e,
                             self._shelf_w * column_rates[self._shelf_col])
        return out
