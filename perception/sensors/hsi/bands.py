"""Camera band models: which wavelengths a line-scan camera samples and how it blurs them.

A :class:`BandModel` is a list of band centres (nm) with a Gaussian spectral response
function (SRF) of given FWHM (nm) each. :meth:`BandModel.resample` turns a spectrum
sampled on any fine grid (e.g. the 5 nm spectral library) into the camera's bands:

    s_b = sum_i w_bi * r(lambda_i) / sum_i w_bi,
    w_bi = exp(-(lambda_i - c_b)^2 / (2 sigma_b^2)) * dlambda_i,   sigma_b = FWHM_b / 2.3548

after linear interpolation of the input onto a 1 nm grid, so the weights of every band
sum to one and a flat spectrum comes out flat (exactly, up to float rounding).

Two cameras are modelled on public data sheets:

- :func:`fx17`: Specim FX17-like InGaAs camera, 900-1700 nm, 224 bands, ~8 nm FWHM;
- :func:`swir_1000_2500`: MCT/InGaAs extended SWIR camera (Specim SWIR-like), 1000-2500 nm,
  288 bands, ~12 nm FWHM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from perception.sensors.hsi.errors import BandMismatchError, NonFiniteDataError

FloatArray = NDArray[np.float64]
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class BandModel:
    """A camera's spectral sampling: ``centres_nm`` (B,), ``fwhm_nm`` (B,), a ``name``."""

    name: str
    centres_nm: FloatArray
    fwhm_nm: FloatArray
    _cache: dict[tuple[float, float, int], FloatArray] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        c = np.asarray(self.centres_nm, dtype=np.float64)
        f = np.asarray(self.fwhm_nm, dtype=np.float64)
        if c.ndim != 1 or c.shape != f.shape or c.size < 2:
            raise BandMismatchError(
                f"band model {self.name!r}: centres_nm and fwhm_nm must be 1-D of equal length "
                f">= 2, got {c.shape} and {f.shape}"
            )
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(f)) and np.all(f > 0)):
            raise BandMismatchError(f"band model {self.name!r}: centres/FWHM must be finite, > 0")
        if np.any(np.diff(c) <= 0):
            raise BandMismatchError(f"band model {self.name!r}: centres_nm must increase")
        object.__setattr__(self, "centres_nm", c)
        object.__setattr__(self, "fwhm_nm", f)

    @property
    def bands(self) -> int:
        return int(self.centres_nm.size)

    @property
    def range_nm(self) -> tuple[float, float]:
        """Wavelength span (nm) that the SRFs cover out to 3 sigma."""
        s = 3 * FWHM_TO_SIGMA * self.fwhm_nm
        return float(self.centres_nm[0] - s[0]), float(self.centres_nm[-1] + s[-1])

    def weights(self, grid_nm: FloatArray) -> FloatArray:
        """Row-normalized SRF matrix ``(B, len(grid_nm))`` on an increasing grid (nm)."""
        grid = np.asarray(grid_nm, dtype=np.float64)
        key = (float(grid[0]), float(grid[-1]), int(grid.size))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        dl = np.gradient(grid)
        sig = (FWHM_TO_SIGMA * self.fwhm_nm)[:, None]
        w: FloatArray = np.exp(-0.5 * ((grid[None, :] - self.centres_nm[:, None]) / sig) ** 2)
        w *= dl[None, :]
        tot = w.sum(axis=1, keepdims=True)
        if np.any(tot <= 0):
            raise BandMismatchError(f"band model {self.name!r}: grid misses some bands")
        w /= tot
        self._cache[key] = w
        return w

    def resample(self, wavelengths_nm: FloatArray, spectra: FloatArray) -> FloatArray:
        """Spectra ``(..., N)`` on ``wavelengths_nm`` (N,) -> camera bands ``(..., B)``.

        The input must cover :attr:`range_nm`; raises :class:`BandMismatchError` if it does
        not or if shapes disagree, :class:`NonFiniteDataError` on NaN/inf.
        """
        wl = np.asarray(wavelengths_nm, dtype=np.float64)
        sp = np.asarray(spectra, dtype=np.float64)
        if wl.ndim != 1 or sp.shape[-1] != wl.size:
            raise BandMismatchError(
                f"resample to {self.name!r}: spectra have {sp.shape[-1]} samples but "
                f"wavelengths_nm has {wl.size}"
            )
        if not np.all(np.isfinite(sp)):
            raise NonFiniteDataError(f"resample to {self.name!r}: spectra contain NaN/inf")
        lo, hi = self.range_nm
        if wl[0] > lo + 1e-6 or wl[-1] < hi - 1e-6:
            raise BandMismatchError(
                f"resample to {self.name!r}: input covers {wl[0]:.1f}-{wl[-1]:.1f} nm, the "
                f"camera's responses need {lo:.1f}-{hi:.1f} nm"
            )
        grid = np.arange(np.floor(lo), np.ceil(hi) + 1.0, 1.0)
        flat = sp.reshape(-1, wl.size)
        fine = np.empty((flat.shape[0], grid.size))
        for i, row in enumerate(flat):
            fine[i] = np.interp(grid, wl, row)
        out = fine @ self.weights(grid).T
        return out.reshape(*sp.shape[:-1], self.bands)


def fx17(binning: int = 1) -> BandModel:
    """Specim FX17-like camera: 224 bands evenly over 900-1700 nm, FWHM 8 nm.

    ``binning`` (1, 2, 4, 8) merges adjacent bands as the camera's spectral binning does
    (224/binning bands, FWHM grown in quadrature with the binned width).
    """
    if binning not in (1, 2, 4, 8):
        raise BandMismatchError(f"fx17: binning must be 1, 2, 4 or 8, got {binning}")
    full = np.linspace(900.0, 1700.0, 224)
    c = full.reshape(-1, binning).mean(axis=1)
    step = full[1] - full[0]
    fwhm = np.sqrt(8.0**2 + ((binning - 1) * step) ** 2) * np.ones_like(c)
    name = "fx17" if binning == 1 else f"fx17_bin{binning}"
    return BandModel(name, c, fwhm)


def swir_1000_2500() -> BandModel:
    """Extended-SWIR camera: 288 bands evenly over 1000-2500 nm, FWHM 12 nm."""
    c = np.linspace(1000.0, 2500.0, 288)
    return BandModel("swir_1000_2500", c, np.full_like(c, 12.0))


CAMERAS = {"fx17": fx17, "swir_1000_2500": swir_1000_2500}
"""Band models by name (factories without arguments)."""


def band_model(name: str) -> BandModel:
    """The band model called ``name`` (see :data:`CAMERAS`); raises :class:`BandMismatchError`."""
    factory = CAMERAS.get(name)
    if factory is None:
        raise BandMismatchError(f"unknown camera band model {name!r}; known: {sorted(CAMERAS)}")
    return factory()
