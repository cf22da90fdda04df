"""Detector response: efficiency (Be window, air path, Si absorption), Si escape fraction,
Gaussian resolution (Fano + electronic noise), and peaks integrated over MCA channels.

Escape fraction for normal incidence (Reed & Ware):
f(E) = ½ ω_K (1 − 1/J) [1 − (μ_Kα/μ_E) ln(1 + μ_E/μ_Kα)], for E above the Si K edge, where
μ are the Si photo-absorption coefficients at E and at Si Kα (1.740 keV).
"""

from __future__ import annotations

import numpy as np
import xraylib
from numpy.typing import NDArray
from scipy.special import erf

from perception.xrf.setup import SI_PAIR_ENERGY_KEV, Detector, Geometry

SI_Z = 14
SI_KA_KEV = 1.7398
SI_K_EDGE_KEV = 1.8389
SI_DENSITY = 2.33
BE_DENSITY = 1.848
AIR_DENSITY = 1.205e-3
AIR = {7: 0.7553, 8: 0.2318, 18: 0.0128}


def _mu_vec(z: int, e: NDArray[np.float64], photo: bool = False) -> NDArray[np.float64]:
    f = xraylib.CS_Photo if photo else xraylib.CS_Total
    return np.array([f(z, float(x)) for x in e.ravel()]).reshape(e.shape)


def mu_air(e: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mass attenuation coefficient of dry air (cm²/g)."""
    return sum((w * _mu_vec(z, e) for z, w in AIR.items()), np.zeros_like(e))


def efficiency(det: Detector, geo: Geometry, energies_kev: NDArray[np.float64]
               ) -> NDArray[np.float64]:
    """Probability that a photon leaving the sample towards the detector is absorbed in the Si
    (air path, Be window and photo-absorption in ``si_thickness_um``); shape of the input."""
    e = np.asarray(energies_kev, dtype=np.float64)
    t = np.exp(-mu_air(e) * AIR_DENSITY * geo.air_path_mm * 0.1)
    if det.be_window_um > 0:
        t = t * np.exp(-_mu_vec(4, e) * BE_DENSITY * det.be_window_um * 1e-4)
    absorbed = 1.0 - np.exp(-_mu_vec(SI_Z, e, photo=True) * SI_DENSITY * det.si_thickness_um * 1e-4)
    return np.asarray(t * absorbed, dtype=np.float64)


def escape_fraction(energies_kev: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of absorbed photons whose Si Kα escapes (peak at E − 1.740 keV)."""
    e = np.asarray(energies_kev, dtype=np.float64)
    out = np.zeros_like(e)
    above = e > SI_K_EDGE_KEV
    if not above.any():
        return out
    omega = xraylib.FluorYield(SI_Z, xraylib.K_SHELL)
    jump = xraylib.JumpFactor(SI_Z, xraylib.K_SHELL)
    mu_ka = xraylib.CS_Photo(SI_Z, SI_KA_KEV)
    mu_e = _mu_vec(SI_Z, e[above], photo=True)
    r = mu_ka / mu_e
    out[above] = 0.5 * omega * (1.0 - 1.0 / jump) * (1.0 - r * np.log1p(1.0 / r))
    return out


def sigma_kev(energies_kev: NDArray[np.float64], noise_fwhm_kev: float, fano: float
              ) -> NDArray[np.float64]:
    """Gaussian σ (keV) at ``energies_kev`` for an electronic noise FWHM and a Fano factor."""
    e = np.maximum(np.asarray(energies_kev, dtype=np.float64), 0.0)
    return np.asarray(np.sqrt((noise_fwhm_kev / 2.3548) ** 2 + fano * SI_PAIR_ENERGY_KEV * e))


def channel_edges(channels: int, gain: float, offset: float) -> NDArray[np.float64]:
    """Energies (keV) of the channel boundaries: channel i spans offset + gain·(i ∓ ½)."""
    return offset + gain * (np.arange(channels + 1, dtype=np.float64) - 0.5)


def gaussian_matrix(edges: NDArray[np.float64], centres: NDArray[np.float64],
                    sigmas: NDArray[np.float64]) -> NDArray[np.float64]:
    """[channels, peaks] fraction of a unit-area Gaussian (centre, σ in keV) in each channel."""
    z = (edges[:, None] - centres[None, :]) / (np.sqrt(2.0) * sigmas[None, :])
    cdf = 0.5 * erf(z)
    return np.asarray(np.diff(cdf, axis=0), dtype=np.float64)
