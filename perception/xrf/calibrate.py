"""Energy calibration channel → keV from peaks of known energy.

Given approximate channel positions of known lines (or a nominal calibration to find them), each
peak centroid is refined by a Gaussian-weighted centroid in a ±2σ window, then E = offset + gain·ch
(or with a quadratic term) is fitted by least squares; residuals (keV) are reported per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrf.errors import SpectrumError
from perception.xrf.snip import snip_background
from perception.xrf.spectrum import Spectrum


@dataclass(frozen=True)
class EnergyCalibration:
    """E(ch) = offset_kev + gain·ch + quadratic·ch²; per-line channels, keV and residuals."""

    gain_kev_per_channel: float
    offset_kev: float
    quadratic_kev: float
    channels: NDArray[np.float64]
    energies_kev: NDArray[np.float64]
    residuals_kev: NDArray[np.float64]

    @property
    def rms_residual_kev(self) -> float:
        """Root-mean-square residual (keV)."""
        return float(np.sqrt(np.mean(self.residuals_kev**2)))

    def apply(self, spectrum: Spectrum) -> Spectrum:
        """A copy of ``spectrum`` carrying this calibration."""
        return Spectrum(spectrum.counts, self.gain_kev_per_channel, self.offset_kev,
                        spectrum.live_time_s, spectrum.real_time_s,
                        quadratic_kev=self.quadratic_kev, source=spectrum.source)


def fit_calibration(channels: Sequence[float], energies_kev: Sequence[float],
                    quadratic: bool = False) -> EnergyCalibration:
    """Least-squares calibration from (channel, keV) pairs; ``SpectrumError`` if too few points
    or if the result is not increasing."""
    ch = np.asarray(channels, dtype=np.float64)
    en = np.asarray(energies_kev, dtype=np.float64)
    need = 3 if quadratic else 2
    if ch.shape != en.shape or len(np.unique(ch)) < need:
        raise SpectrumError(f"calibration: need ≥ {need} distinct (channel, energy) pairs")
    coef = np.polyfit(ch, en, 2 if quadratic else 1)
    q, g, o = (coef if quadratic else np.concatenate([[0.0], coef]))
    if g <= 0 or g + 2 * q * ch.max() <= 0:
        raise SpectrumError(f"calibration: energy does not increase with channel (gain {g})")
    res = en - (o + g * ch + q * ch * ch)
    return EnergyCalibration(float(g), float(o), float(q), ch, en, res)


def calibrate_from_lines(spectrum: Spectrum, energies_kev: Sequence[float],
                         sigma_kev: float = 0.07, quadratic: bool = False) -> EnergyCalibration:
    """Find the peaks of known ``energies_kev`` near where ``spectrum``'s current calibration
    puts them (searching ±5σ), refine centroids above the SNIP background and fit a new
    calibration. Raises ``SpectrumError`` if a line has no counts above background."""
    width = max(4, int(4 * sigma_kev / spectrum.gain_kev_per_channel))
    y = spectrum.counts - snip_background(spectrum.counts, width)
    g = spectrum.gain_kev_per_channel
    chans: list[float] = []
    for e in energies_kev:
        c0 = spectrum.channel_of(e)
        half = max(2, round(5 * sigma_kev / g))
        lo, hi = max(0, int(c0) - half), min(spectrum.channels, int(c0) + half + 1)
        if hi - lo < 3:
            raise SpectrumError(f"calibration: line at {e} keV is outside the spectrum")
        seg = np.clip(y[lo:hi], 0.0, None)
        if seg.sum() <= 0:
            raise SpectrumError(f"calibration: no counts above background near {e} keV")
        peak = lo + int(np.argmax(seg))
        w = max(2, round(2 * sigma_kev / g))
        a, b = max(0, peak - w), min(spectrum.channels, peak + w + 1)
        idx = np.arange(a, b, dtype=np.float64)
        wt = np.clip(y[a:b], 0.0, None)
        chans.append(float((idx * wt).sum() / wt.sum()))
    return fit_calibration(chans, energies_kev, quadratic=quadratic)
