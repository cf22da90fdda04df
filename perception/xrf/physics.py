"""Spectrum simulator: expected counts per MCA channel of a homogeneous sample, and Poisson draws.

Chain (per second of live time): FP line rates (primary + secondary fluorescence, matrix absorption
of incident and emitted radiation, :mod:`perception.xrf.fp`) and Rayleigh/Compton scatter of the
whole tube spectrum (Compton peaks Doppler-broadened, FWHM ``COMPTON_FWHM_KEV_AT_20`` ·(E/20 keV)²)
→ detector response: Si escape peaks at E − 1.740 keV, Gaussian resolution (Fano + noise),
and an incomplete-charge-collection low-energy tail and flat shelf → pile-up sum spectrum
(pairs within the pile-up resolving time) → non-paralyzable dead time (real time). Counts are
Poisson draws of the expected counts in the live time.

The analysis (:mod:`perception.xrf.fit`, :mod:`perception.xrf.quantify`) shares the FP physics but
does *not* model the tail/shelf, the Compton profile shape, the continuum from scatter (it uses
SNIP) or pile-up beyond a free sum-spectrum template — these are the effects that make accuracy
tests against this simulator meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrf.detector import (
    SI_KA_KEV,
    channel_edges,
    escape_fraction,
    gaussian_matrix,
    sigma_kev,
)
from perception.xrf.errors import CompositionError
from perception.xrf.fp import FPModel, fp_model
from perception.xrf.lines import atomic_number
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.spectrum import Spectrum

COMPTON_FWHM_KEV_AT_20 = 0.55
TAIL_FRACTION = 0.004
SHELF_FRACTION = 0.001
SUBPOINTS = 4

_F = NDArray[np.float64]


def check_composition(composition: Mapping[str, float], tol: float = 0.02) -> dict[str, float]:
    """Validate mass fractions (symbols known, ≥ 0, finite, sum within 1 ± ``tol``) and return
    them renormalised to sum 1. Raises ``CompositionError``."""
    out: dict[str, float] = {}
    for s, v in composition.items():
        try:
            atomic_number(s)
        except ValueError as exc:
            raise CompositionError(f"composition: {s!r} is not an element symbol") from exc
        if not math.isfinite(v) or v < 0:
            raise CompositionError(f"composition: {s} = {v} (must be a fraction ≥ 0)")
        if v > 0:
            out[s] = float(v)
    total = sum(out.values())
    if abs(total - 1.0) > tol:
        raise CompositionError(f"composition: fractions sum to {total:.4f}, expected 1 ± {tol}")
    return {s: v / total for s, v in out.items()}


@dataclass(frozen=True)
class ExpectedSpectrum:
    """Expected counts [channels] in ``live_time_s``, with the real time the acquisition takes
    and the input / output count rates (counts/s)."""

    counts: _F
    gain_kev_per_channel: float
    offset_kev: float
    live_time_s: float
    real_time_s: float
    input_rate_cps: float
    output_rate_cps: float


def detector_response(edges: _F, energies: _F, rates: _F, extra_sigma: _F, noise_fwhm_kev: float,
                      fano: float, tails: bool = True) -> _F:
    """Counts/s per channel (``edges``: channel boundaries, keV) of photons absorbed at
    ``energies`` with ``rates``; Gaussian σ widened by ``extra_sigma`` (keV), Si escape peaks,
    and (``tails``) the low-energy tail and shelf."""
    keep = (rates > 0) & (energies > edges[0] - 0.5) & (energies < edges[-1] + 1.0)
    e, r, xs = energies[keep], rates[keep], extra_sigma[keep]
    f_esc = escape_fraction(e)
    sig = np.sqrt(sigma_kev(e, noise_fwhm_kev, fano) ** 2 + xs**2)
    e_esc = e - SI_KA_KEV
    sig_esc = np.sqrt(sigma_kev(e_esc, noise_fwhm_kev, fano) ** 2 + xs**2)
    amp = r * (1.0 - f_esc)
    out = gaussian_matrix(edges, e, sig) @ amp
    esc = f_esc > 0
    if esc.any():
        out += gaussian_matrix(edges, e_esc[esc], sig_esc[esc]) @ (r * f_esc)[esc]
    if tails:
        centres = 0.5 * (edges[:-1] + edges[1:])
        width = np.diff(edges)
        below = centres[:, None] < e[None, :]
        beta = 2.0 * sig + 0.02
        tail = np.where(below, np.exp(np.minimum((centres[:, None] - e) / beta, 0.0)) / beta, 0.0)
        shelf = np.where(below & (centres[:, None] > 0), 1.0 / e, 0.0)
        out = out * (1.0 - TAIL_FRACTION - SHELF_FRACTION)
        out += width * ((tail * TAIL_FRACTION + shelf * SHELF_FRACTION) @ amp)
    return np.asarray(out, dtype=np.float64)


def pileup(rate: _F, gain: float, offset: float, pileup_time_s: float) -> _F:
    """Spectrum (counts/s per channel) after pile-up of pairs within ``pileup_time_s``: singles
    keep (1 − P), pairs (P/2 of the input rate) land at the sum energy; P = 1 − exp(−ICR τ)."""
    icr = float(rate.sum())
    if icr <= 0 or pileup_time_s <= 0:
        return rate
    p = -math.expm1(-icr * pileup_time_s)
    shape = rate / icr
    conv = np.convolve(shape, shape)
    # E(i) + E(j) = 2·offset + gain·(i + j): the sum lands at channel i + j + offset/gain
    shift = round(offset / gain)
    idx = np.arange(rate.size) - shift
    ok = (idx >= 0) & (idx < conv.size)
    summed = np.zeros_like(rate)
    summed[ok] = conv[idx[ok]]
    return np.asarray(rate * (1.0 - p) + 0.5 * p * icr * summed, dtype=np.float64)


class SpectrumSimulator:
    """Simulator for one set-up. ``expected`` gives the mean spectrum, ``sample`` a Poisson
    draw as a :class:`~perception.xrf.spectrum.Spectrum`."""

    def __init__(self, setup: XrfSetup | None = None) -> None:
        self.setup = setup or load_setup()

    def model(self, composition: Mapping[str, float]) -> FPModel:
        """FP model for the composition's elements (cached per element set)."""
        return fp_model(self.setup, sorted(composition))

    def expected(self, composition: Mapping[str, float], live_time_s: float,
                 channels: int | None = None, gain_kev_per_channel: float | None = None,
                 offset_kev: float | None = None, areal_density_g_cm2: float | None = None
                 ) -> ExpectedSpectrum:
        """Expected counts for ``composition`` (mass fractions summing to 1, checked) in
        ``live_time_s``; channel count / calibration default to the set-up's MCA."""
        if not (live_time_s > 0 and math.isfinite(live_time_s)):
            raise CompositionError(f"live_time_s must be > 0, got {live_time_s}")
        comp = check_composition(composition)
        s = self.setup
        n = channels or s.mca.channels
        gain = gain_kev_per_channel or s.mca.gain_kev_per_channel(n)
        offset = s.mca.offset_kev if offset_kev is None else offset_kev
        m = self.model(comp)
        w = m.vector(comp)
        lr = m.line_rates(w, areal_density_g_cm2)
        ray, com = m.scatter_rates(w, areal_density_g_cm2)
        doppler = COMPTON_FWHM_KEV_AT_20 / 2.3548 * (m.e_compton / 20.0) ** 2
        # continuum bins are spread over their width (sub-points) so that no ripple appears
        cont = ~m.tube.is_line
        step = s.tube.energy_step_kev
        sub = (np.arange(SUBPOINTS) + 0.5) / SUBPOINTS - 0.5
        ray_e = np.concatenate([m.exc_e[~cont], (m.exc_e[cont][:, None] + step * sub).ravel()])
        ray_r = np.concatenate([ray[~cont], np.repeat(ray[cont] / SUBPOINTS, SUBPOINTS)])
        ratio = m.e_compton / m.exc_e
        com_e = np.concatenate([m.e_compton[~cont],
                                (m.e_compton[cont][:, None] + step * sub * ratio[cont][:, None])
                                .ravel()])
        com_r = np.concatenate([com[~cont], np.repeat(com[cont] / SUBPOINTS, SUBPOINTS)])
        com_x = np.concatenate([doppler[~cont], np.repeat(doppler[cont], SUBPOINTS)])
        energies = np.concatenate([m.line_e, ray_e, com_e])
        rates = np.concatenate([lr.total, ray_r, com_r])
        extra = np.concatenate([np.zeros(m.line_e.size + ray_e.size), com_x])
        det = s.detector
        edges = channel_edges(n, gain, offset)
        rate = detector_response(edges, energies, rates, extra, det.noise_fwhm_ev * 1e-3, det.fano)
        icr = float(rate.sum())
        rate = pileup(rate, gain, offset, det.pileup_time_s)
        ocr = float(rate.sum())
        real = live_time_s * (1.0 + ocr * det.dead_time_s)
        return ExpectedSpectrum(rate * live_time_s, gain, offset, live_time_s, real, icr, ocr)

    def sample(self, composition: Mapping[str, float], live_time_s: float,
               rng: np.random.Generator, **kwargs: float | int | None) -> Spectrum:
        """A Poisson draw of :meth:`expected` as a ``Spectrum`` (same keyword arguments)."""
        ex = self.expected(composition, live_time_s, **kwargs)  # type: ignore[arg-type]
        counts = rng.poisson(ex.counts).astype(np.float64)
        return Spectrum(counts, ex.gain_kev_per_channel, ex.offset_kev, ex.live_time_s,
                        ex.real_time_s, source="simulated")


def sample_spectrum(composition: Mapping[str, float], live_time_s: float,
                    rng: np.random.Generator, setup: XrfSetup | None = None,
                    **kwargs: float | int | None) -> Spectrum:
    """Simulate one spectrum: Poisson counts of ``composition`` measured for ``live_time_s``."""
    return SpectrumSimulator(setup).sample(composition, live_time_s, rng, **kwargs)
