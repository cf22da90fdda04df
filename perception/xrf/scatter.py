"""Scatter window: measured and FP-predicted counts around the anode's K scatter peaks, the
measurement that the scatter balance (:mod:`perception.xrf.balance`) estimates the dark matrix
from.

Elements that XRF cannot see still scatter the tube spectrum, and how much they scatter and
absorb depends on what they are: per gram, light elements scatter more (Compton ∝ Z/A, with H
twice the rest) and absorb far less (photo-absorption ∝ Z³⁻⁴). The window W spans the Compton
and Rayleigh peaks of the anode K lines and the scattered continuum beneath them
(:func:`window_kev`). Measured: the counts in W of the spectrum with its pile-up removed and the
singles lost to pile-up restored (:func:`pileup.singles_spectrum`), per live second. Predicted,
for a composition vector w: Σ over tube bins of the FP Rayleigh and Compton rates
(:meth:`fp.FPModel.scatter_rates`) times the share of each bin's detected photons that falls in
W (Gaussian resolution ⊕ a nominal Compton Doppler width ⊕ the bin width, Si escape moved down
by 1.740 keV), plus the FP rates of fluorescence lines in W (Mo, Ag, Sn K…) times their share.
A wide window makes the sum insensitive to the peak shapes (the Compton profile, the detector's
tail and shelf only move counts across its two edges), which the fit's templates do not
reproduce exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import erf

from perception.xrf.continuum import DOPPLER_FWHM_KEV_AT_20
from perception.xrf.detector import SI_KA_KEV, escape_fraction, sigma_kev
from perception.xrf.errors import QuantificationError
from perception.xrf.fp import FPModel
from perception.xrf.pileup import singles_spectrum
from perception.xrf.spectrum import Spectrum

_F = NDArray[np.float64]
#: window margins (keV): below the Compton peak of the lowest and above the highest anode K line
MARGIN_LOW_KEV = 1.5
MARGIN_HIGH_KEV = 1.0
MIN_WIDTH_KEV = 1.0


def window_kev(model: FPModel) -> tuple[float, float]:
    """(low, high) keV of the scatter window for the model's set-up: from MARGIN_LOW_KEV below the
    Compton peak of the lowest anode K line (lines above 10 keV) to MARGIN_HIGH_KEV above the
    highest one; without such lines, 0.6–0.8 × the tube voltage (continuum only). Clipped to the
    fit region; ``QuantificationError`` if less than MIN_WIDTH_KEV is left."""
    setup = model.setup
    tube = model.tube
    k_lines = tube.is_line & (tube.energies_kev > 10.0)
    if k_lines.any():
        theta = setup.geometry.scatter_angle_rad
        e = tube.energies_kev[k_lines]
        ec = e / (1.0 + e / 510.999 * (1.0 - math.cos(theta)))
        lo, hi = float(ec.min()) - MARGIN_LOW_KEV, float(e.max()) + MARGIN_HIGH_KEV
    else:
        lo, hi = 0.6 * setup.tube.voltage_kv, 0.8 * setup.tube.voltage_kv
    lo = max(lo, setup.fit_min_kev)
    hi = min(hi, setup.fit_max_kev, setup.tube.voltage_kv)
    if hi - lo < MIN_WIDTH_KEV:
        raise QuantificationError(
            f"scatter window {lo:.2f}–{hi:.2f} keV is narrower than {MIN_WIDTH_KEV} keV: the "
            f"set-up's fit region ({setup.fit_min_kev}–{setup.fit_max_kev} keV) misses the "
            f"anode's scatter peaks")
    return lo, hi


def _share(e: _F, sig: _F, lo: float, hi: float) -> _F:
    """Share of a unit Gaussian (centre ``e``, σ ``sig``) in [lo, hi), escape included."""
    f = escape_fraction(e)

    def inside(c: _F) -> _F:
        s = math.sqrt(2.0) * sig
        return np.asarray(0.5 * (erf((hi - c) / s) - erf((lo - c) / s)), dtype=np.float64)

    return np.asarray((1.0 - f) * inside(e) + f * inside(e - SI_KA_KEV), dtype=np.float64)


class ScatterWindow:
    """Measured and predicted scatter-window rates for one FP model (see module docstring)."""

    def __init__(self, model: FPModel) -> None:
        self.model = model
        self.lo_kev, self.hi_kev = window_kev(model)
        self._key: tuple[float, float, float] | None = None
        self._shares: tuple[_F, _F, _F] | None = None

    def channels(self, spectrum: Spectrum) -> NDArray[np.intp]:
        """Channels of ``spectrum`` whose centre energy lies in the window."""
        e = spectrum.energies_kev()
        return np.flatnonzero((e >= self.lo_kev) & (e < self.hi_kev))

    def measured(self, spectrum: Spectrum) -> tuple[float, float, tuple[float, float]]:
        """(counts/s in the window without pile-up, relative counting u, (low, high) keV edges
        of the window's channels). ``QuantificationError`` if the window holds no counts."""
        ch = self.channels(spectrum)
        raw = float(spectrum.counts[ch].sum()) if ch.size else 0.0
        if raw <= 0:
            raise QuantificationError(
                f"{spectrum.source}: no counts in the scatter window {self.lo_kev:.2f}–"
                f"{self.hi_kev:.2f} keV; the scatter balance needs the scattered tube spectrum")
        det = self.model.setup.detector
        s = singles_spectrum(spectrum.counts, spectrum.live_time_s, det.pileup_time_s,
                             spectrum.gain_kev_per_channel, spectrum.offset_kev)
        e = spectrum.energies_kev()
        g = spectrum.gain_kev_per_channel
        edges = (float(e[ch[0]] - 0.5 * g), float(e[ch[-1]] + 0.5 * g))
        return float(s[ch].sum()) / spectrum.live_time_s, 1.0 / math.sqrt(raw), edges

    def shares(self, edges: tuple[float, float], noise_fwhm_kev: float) -> tuple[_F, _F, _F]:
        """Shares in the window of the Rayleigh [tube bins], Compton [tube bins] and
        fluorescence [lines] photons (cached per window edges and noise)."""
        key = (edges[0], edges[1], noise_fwhm_kev)
        if self._key == key and self._shares is not None:
            return self._shares
        m = self.model
        fano = m.setup.detector.fano
        step = m.setup.tube.energy_step_kev
        cont = ~m.tube.is_line
        width2 = np.where(cont, step**2 / 12.0, 0.0)
        ratio = m.e_compton / m.exc_e
        doppler = DOPPLER_FWHM_KEV_AT_20 / 2.3548 * (m.e_compton / 20.0) ** 2
        sig_r = np.sqrt(sigma_kev(m.exc_e, noise_fwhm_kev, fano) ** 2 + width2)
        sig_c = np.sqrt(sigma_kev(m.e_compton, noise_fwhm_kev, fano) ** 2 + doppler**2
                        + width2 * ratio**2)
        sig_l = sigma_kev(m.line_e, noise_fwhm_kev, fano)
        lo, hi = edges
        self._shares = (_share(m.exc_e, sig_r, lo, hi), _share(m.e_compton, sig_c, lo, hi),
                        _share(m.line_e, sig_l, lo, hi))
        self._key = key
        return self._shares

    def predicted(self, w: _F, line_rates: _F, line_k: _F, edges: tuple[float, float],
                  noise_fwhm_kev: float) -> float:
        """Predicted counts/s in the window for composition ``w`` with FP line rates
        ``line_rates`` [lines] (photons/s) and per-line sensitivity factors ``line_k``."""
        ray, com = self.model.scatter_rates(w)
        s_ray, s_com, s_line = self.shares(edges, noise_fwhm_kev)
        return float(ray @ s_ray + com @ s_com + (line_rates * line_k) @ s_line)
