"""Spectrum simulator: expected counts per MCA channel of a homogeneous sample, and Poisson draws.

Chain (per second of live time): FP line rates (primary + secondary fluorescence, matrix absorption
of incident and emitted radiation, :mod:`perception.xrf.fp`) and Rayleigh/Compton scatter of the
whole tube spectrum (Compton peaks Doppler-broadened, FWHM ``COMPTON_FWHM_KEV_AT_20`` ·(E/20 keV)²)
→ detector response: Si escape peaks at E − 1.740 keV, Gaussian resolution (Fano + noise),
and an incomplete-charge-collection low-energy tail and flat shelf (a sparse response operator
cached per set-up / element set and calibration, :mod:`perception.xrf.response`) → pile-up sum
spectrum (pairs within the pile-up resolving time) → non-paralyzable dead time (real time).
Counts are Poisson draws of the expected counts in the live time.

The analysis (:mod:`perception.xrf.fit`, :mod:`perception.xrf.quantify`) shares the FP physics
(the scattered continuum's shape included, with a nominal Compton width) but does *not* model the
tail/shelf beyond free columns for the strongest groups, the Compton profile shape, the
continuum's level (free smooth factors), or pile-up beyond a sum-spectrum template from the
measurement — these are the effects that make accuracy tests against this simulator meaningful.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrf.detector import channel_edges
from perception.xrf.errors import CompositionError
from perception.xrf.fp import FPModel, fp_model
from perception.xrf.lines import atomic_number
from perception.xrf.response import ResponseOperator
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.spectrum import Spectrum

COMPTON_FWHM_KEV_AT_20 = 0.55
SUBPOINTS = 4
MAX_CACHED_OPERATORS = 64

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
    and (``tails``) the low-energy tail and shelf (see :mod:`perception.xrf.response`)."""
    keep = rates > 0
    n = int(keep.sum())
    op = ResponseOperator(edges, energies[keep], extra_sigma[keep], np.arange(n, dtype=np.intp),
                          np.ones(n), n, noise_fwhm_kev, fano, tails)
    return op.apply(rates[keep])


#: photon list of a response: energies (keV), extra σ (keV), column index, share of the column
Photons = tuple[_F, _F, NDArray[np.intp], _F]
_LINE_OPS: OrderedDict[tuple[object, ...], ResponseOperator] = OrderedDict()
_SCATTER_OPS: OrderedDict[tuple[object, ...], ResponseOperator] = OrderedDict()


def _line_photons(m: FPModel) -> Photons:
    """One photon per fluorescence line (columns: ``m.lines``)."""
    n = m.line_e.size
    return m.line_e, np.zeros(n), np.arange(n, dtype=np.intp), np.ones(n)


def _scatter_photons(m: FPModel) -> Photons:
    """Rayleigh (columns 0…n−1) and Compton (n…2n−1) photons of the n tube bins: anode lines as
    one photon each, continuum bins spread over ``SUBPOINTS`` sub-points across the bin (so that
    no ripple appears); Compton photons Doppler-broadened."""
    step = m.setup.tube.energy_step_kev
    cont = ~m.tube.is_line
    ne = m.exc_e.size
    sub = (np.arange(SUBPOINTS) + 0.5) / SUBPOINTS - 0.5
    n_sub = np.where(cont, SUBPOINTS, 1)
    col = np.repeat(np.arange(ne, dtype=np.intp), n_sub)
    offs = np.zeros(col.size)
    offs[np.repeat(cont, n_sub)] = np.tile(step * sub, int(cont.sum()))
    share = 1.0 / n_sub[col]
    ratio = m.e_compton / m.exc_e
    doppler = COMPTON_FWHM_KEV_AT_20 / 2.3548 * (m.e_compton / 20.0) ** 2
    energies = np.concatenate([m.exc_e[col] + offs, m.e_compton[col] + offs * ratio[col]])
    extra = np.concatenate([np.zeros(col.size), doppler[col]])
    return energies, extra, np.concatenate([col, col + ne]), np.concatenate([share, share])


def _operator(cache: OrderedDict[tuple[object, ...], ResponseOperator], key: tuple[object, ...],
              photons: Callable[[], Photons], channels: int, gain: float, offset: float,
              setup: XrfSetup) -> ResponseOperator:
    """The response operator for ``key`` from ``cache`` (built from ``photons()`` on a miss;
    least recently used entries beyond ``MAX_CACHED_OPERATORS`` are dropped)."""
    op = cache.get(key)
    if op is None:
        e, extra, col, share = photons()
        det = setup.detector
        op = ResponseOperator(channel_edges(channels, gain, offset), e, extra, col, share,
                              int(col.max(initial=-1)) + 1, det.noise_fwhm_ev * 1e-3, det.fano)
        cache[key] = op
        while len(cache) > MAX_CACHED_OPERATORS:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return op


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
        key = (s.model_dump_json(), n, gain, offset)
        rate = (_operator(_LINE_OPS, (*key, m.symbols), lambda: _line_photons(m), n, gain, offset,
                          s).apply(lr.total)
                + _operator(_SCATTER_OPS, key, lambda: _scatter_photons(m), n, gain, offset,
                            s).apply(np.concatenate([ray, com])))
        det = s.detector
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
