"""A placeholder spectrum source: Gaussian peaks on a smooth continuum, Poisson-sampled.

This is *not* physics.  It exists so the DP5 emulator and its tests have a spectrum to count
without the fundamental-parameters simulator; a line plugs the real simulator in through the
same :data:`SpectrumSource` signature.

Energy scale: channel ``i`` (0-based) of an ``n``-channel spectrum covers
``offset_kev + [i, i+1) × full_scale_kev / n``, i.e. the gain is ``full_scale_kev / n``
keV/channel, so the same source serves every MCAC setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from perception.sensors.xrf.errors import XrfDeviceError

SpectrumSource = Callable[[float, int], NDArray[np.int64]]
"""``source(live_time_s, channels) -> counts`` (int64, shape (channels,), ≥ 0): the counts the
detector bins during ``live_time_s`` seconds of live time.  Sampling noise (Poisson) is the
source's job; the emulator adds what it returns to the MCA."""

DEFAULT_PEAKS_KEV: tuple[tuple[float, float], ...] = (
    (6.404, 1.0),   # Fe Kα
    (7.058, 0.13),  # Fe Kβ
    (8.048, 0.45),  # Cu Kα
    (8.905, 0.06),  # Cu Kβ
    (17.48, 0.08),  # Mo Kα
)


class SyntheticSource:
    """Callable :data:`SpectrumSource` with Gaussian peaks on an exponential continuum.

    Args:
        peaks_kev: ``(energy_keV, relative_area)`` pairs; areas are normalized to sum 1.
        rate_cps: total expected count rate, counts per live second (peaks + continuum).
        continuum_fraction: share of ``rate_cps`` in the continuum (0–1).
        fwhm_kev: peak full width at half maximum, keV (same for every peak).
        full_scale_kev: energy span of the MCA, keV; gain = ``full_scale_kev / channels``.
        offset_kev: energy of the low edge of channel 0, keV.
        rng: generator for the Poisson sampling.

    Raises ``XrfDeviceError`` for a non-positive rate, width or scale, or a fraction outside 0–1.
    """

    def __init__(
        self,
        peaks_kev: Sequence[tuple[float, float]] = DEFAULT_PEAKS_KEV,
        *,
        rate_cps: float = 20_000.0,
        continuum_fraction: float = 0.3,
        fwhm_kev: float = 0.16,
        full_scale_kev: float = 40.96,
        offset_kev: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        if rate_cps < 0 or fwhm_kev <= 0 or full_scale_kev <= 0:
            raise XrfDeviceError("rate_cps must be ≥ 0 and fwhm_kev, full_scale_kev > 0; got "
                                 f"{rate_cps}, {fwhm_kev}, {full_scale_kev}")
        if not 0.0 <= continuum_fraction <= 1.0:
            raise XrfDeviceError(f"continuum_fraction must be in 0..1, got {continuum_fraction}")
        self.peaks_kev = tuple((float(e), float(a)) for e, a in peaks_kev)
        self.rate_cps = float(rate_cps)
        self.continuum_fraction = float(continuum_fraction)
        self.fwhm_kev = float(fwhm_kev)
        self.full_scale_kev = float(full_scale_kev)
        self.offset_kev = float(offset_kev)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._shape_cache: dict[int, NDArray[np.float64]] = {}

    def gain_kev(self, channels: int) -> float:
        """keV per channel for an MCA of ``channels`` channels."""
        return self.full_scale_kev / channels

    def _shape(self, channels: int) -> NDArray[np.float64]:
        if channels not in self._shape_cache:
            from scipy.special import erf

            edges = self.offset_kev + np.arange(channels + 1) * self.gain_kev(channels)
            sigma = self.fwhm_kev / (2.0 * np.sqrt(2.0 * np.log(2.0)))
            peaks = np.zeros(channels)
            total_area = sum(a for _, a in self.peaks_kev) or 1.0
            for e, a in self.peaks_kev:
                cdf = 0.5 * (1.0 + erf((edges - e) / (np.sqrt(2.0) * sigma)))
                peaks += (a / total_area) * np.diff(cdf)
            centres = 0.5 * (edges[:-1] + edges[1:])
            cont = np.exp(-np.clip(centres, 0.0, None) / 8.0) * (centres > 1.0)
            cont_sum = cont.sum()
            cont = cont / cont_sum if cont_sum > 0 else cont
            f = self.continuum_fraction if self.peaks_kev else 1.0
            self._shape_cache[channels] = (1.0 - f) * peaks + f * cont
        return self._shape_cache[channels]

    def expected(self, live_time_s: float, channels: int) -> NDArray[np.float64]:
        """Expected counts per channel (float64, shape (channels,)) for ``live_time_s``."""
        if live_time_s < 0 or channels <= 0:
            raise XrfDeviceError(f"live_time_s must be ≥ 0 and channels > 0; got {live_time_s}, "
                                 f"{channels}")
        out: NDArray[np.float64] = self.rate_cps * live_time_s * self._shape(channels)
        return out

    def __call__(self, live_time_s: float, channels: int) -> NDArray[np.int64]:
        """Poisson-sampled counts (int64, shape (channels,)) for ``live_time_s`` of live time."""
        out: NDArray[np.int64] = self.rng.poisson(self.expected(live_time_s, channels)).astype(
            np.int64)
        return out


def synthetic_source(
    peaks_kev: Sequence[tuple[float, float]] = DEFAULT_PEAKS_KEV,
    *,
    rng: np.random.Generator | None = None,
    **kwargs: float,
) -> SyntheticSource:
    """Build a :class:`SyntheticSource` (placeholder for the physics simulator); see its args."""
    return SyntheticSource(peaks_kev, rng=rng, **kwargs)
