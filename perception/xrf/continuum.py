"""Shape of the scattered tube continuum on the MCA channels, for the fit's background.

The continuum under an XRF spectrum is mostly tube bremsstrahlung scattered by the sample
(Rayleigh and Compton). Its intensity follows 1/μ of the sample, so it drops in a step at every
absorption edge of a major element (the Fe K edge at 7.11 keV under the Dy L lines of a magnet).
:class:`ContinuumShape` gives the FP scatter of the tube continuum for a composition estimate
(:meth:`fp.FPModel.scatter_rates`, anode lines left out: the fit has templates for them),
through a Gaussian detector response (Fano + noise, a nominal Compton Doppler width, the width of
a tube bin) and the Si escape. The fit multiplies it by free smooth factors (B-splines) to model
the background (:mod:`perception.xrf.fit`), or divides the peak-stripped spectrum by it before
SNIP, which alone could not follow the steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import BSpline
from scipy.sparse import csr_matrix

from perception.xrf.detector import SI_KA_KEV, escape_fraction, sigma_kev
from perception.xrf.fp import FPModel
from perception.xrf.response import gaussian_band

_F = NDArray[np.float64]
#: Doppler FWHM (keV) of the Compton-scattered continuum at 20 keV, scaled as (E/20 keV)²
DOPPLER_FWHM_KEV_AT_20 = 0.6
#: the shape is floored at this fraction of its mean over the fit region (no division by ~0)
FLOOR = 0.05


class ContinuumShape:
    """Scattered-continuum response of one FP model (tube grid, angles, detector): a sparse
    [channels × 2 bins] map, cached per channel grid, from the Rayleigh and Compton rates of the
    tube bins to counts/s per channel."""

    def __init__(self, model: FPModel) -> None:
        self.model = model
        self._key: tuple[float, float, int, float] | None = None
        self._op: csr_matrix | None = None

    def _operator(self, edges: _F, noise_fwhm_kev: float) -> csr_matrix:
        key = (float(edges[0]), float(edges[-1]), edges.size, noise_fwhm_kev)
        if self._key == key and self._op is not None:
            return self._op
        m = self.model
        fano = m.setup.detector.fano
        cont = ~m.tube.is_line
        step = m.setup.tube.energy_step_kev
        e = np.concatenate([m.exc_e[cont], m.e_compton[cont]])
        stretch = np.concatenate([np.ones(int(cont.sum())),
                                  m.e_compton[cont] / m.exc_e[cont]])
        fwhm = DOPPLER_FWHM_KEV_AT_20 * (m.e_compton[cont] / 20.0) ** 2
        doppler = np.concatenate([np.zeros(int(cont.sum())), fwhm / 2.3548])
        sig = np.sqrt(sigma_kev(e, noise_fwhm_kev, fano) ** 2 + doppler**2
                      + (step * stretch) ** 2 / 12.0)
        f_esc = escape_fraction(e)
        r1, p1, v1 = gaussian_band(edges, e, sig)
        r2, p2, v2 = gaussian_band(edges, e - SI_KA_KEV, sig)
        col = np.concatenate([np.flatnonzero(cont), np.flatnonzero(cont) + m.exc_e.size])
        rows = np.concatenate([r1, r2])
        cols = np.concatenate([col[p1], col[p2]])
        vals = np.concatenate([v1 * (1.0 - f_esc[p1]), v2 * f_esc[p2]])
        self._op = csr_matrix((vals, (rows, cols)), shape=(edges.size - 1, 2 * m.exc_e.size))
        self._key = key
        return self._op

    def counts_per_s(self, w: _F, edges: _F, noise_fwhm_kev: float) -> _F:
        """Scattered continuum (counts/s per channel) of composition vector ``w`` (``model``
        order) on channels with boundaries ``edges`` [channels + 1] (keV)."""
        ray, com = self.model.scatter_rates(w)
        op = self._operator(edges, noise_fwhm_kev)
        return np.asarray(op @ np.concatenate([ray, com]), dtype=np.float64)

    def shape(self, w: _F, edges: _F, noise_fwhm_kev: float, region: NDArray[np.intp]) -> _F:
        """:meth:`counts_per_s` divided by its mean over the channels ``region``, floored at
        ``FLOOR`` (a positive divisor on every channel)."""
        c = self.counts_per_s(w, edges, noise_fwhm_kev)
        mean = float(c[region].mean()) if region.size else 0.0
        if not mean > 0:
            return np.ones_like(c)
        return np.asarray(np.maximum(c / mean, FLOOR), dtype=np.float64)


def spline_basis(e: _F, knot_kev: float) -> _F:
    """Cubic B-splines [channels × bases] on uniform knots ``knot_kev`` apart over the channel
    energies ``e`` (keV): the smooth factors the fit puts on the continuum's shape."""
    lo, hi = float(e[0]), float(e[-1])
    n = max(1, int(np.ceil((hi - lo) / knot_kev)))
    h = (hi - lo) / n
    t = lo + h * np.arange(-3, n + 4)
    basis = BSpline.design_matrix(np.clip(e, t[3], t[-4]), t, 3).toarray()
    return np.asarray(basis, dtype=np.float64)
