"""Fundamental-parameters intensities: primary and secondary fluorescence of every line of the
elements of a sample, and Rayleigh/Compton scatter of the tube spectrum, for a homogeneous sample
that is infinitely thick (or of a given areal density), at the set-up's angles.

With ψ1, ψ2 the incidence and take-off angles, N(E) the tube photons per bin (per s·sr·µA),
μ(E) = Σ_k w_k μ_k(E) the sample's mass attenuation (cm²/g), σ_l(E) the production
cross-section of line l of element i (cm²/g, xraylib ``CS_FluorLine_Kissel_Cascade``),
a = μ(E)/sin ψ1,
b = μ(E_l)/sin ψ2,
K = G·I·ε(E_l) (geometry factor sr, current µA, detector efficiency):

* primary   P_l = K w_i Σ_E N σ_l(E) / (sin ψ1 (a + b)) · (1 − e^{−(a+b) ρd})
* secondary S_l = K w_i Σ_E N/sin ψ1 Σ_m w_k σ_m(E) τ_lm / (a + b) · ½ [ln(1 + a/μ_m)/a
  + ln(1 + b/μ_m)/b], τ_lm = σ_l(E_m), μ_m = μ(E_m) (Shiraiwa–Fujino, infinitely thick)
* scatter   R(E) = G·I·4π N (Σ w_k dσ_k/dΩ(E, θ)) / (sin ψ1 (a + μ(E')/sin ψ2)) · ε(E')

All results are detected photons per second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xraylib
from numpy.typing import NDArray

from perception.xrf.detector import efficiency
from perception.xrf.errors import QuantificationError
from perception.xrf.lines import Line, atomic_number, element_lines
from perception.xrf.setup import XrfSetup
from perception.xrf.tube import tube_spectrum

_F = NDArray[np.float64]
SECONDARY_MIN_FRACTION = 1e-3
COARSE = 4


def _cs(f: object, z: int, macro: int, e: float) -> float:
    try:
        return float(f(z, macro, e))  # type: ignore[operator]
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class LineRates:
    """Detected photons/s per line: ``primary`` and ``secondary`` [lines]."""

    primary: _F
    secondary: _F

    @property
    def total(self) -> _F:
        """primary + secondary [lines]."""
        return self.primary + self.secondary


@dataclass(frozen=True)
class _Pairs:
    """Active secondary pairs: indices into the pair arrays, the distinct emitting and exciting
    lines, and each pair's position in them."""

    pairs: NDArray[np.intp]
    l_lines: NDArray[np.intp]
    l_of: NDArray[np.intp]
    m_lines: NDArray[np.intp]
    m_of: NDArray[np.intp]


class FPModel:
    """Precomputed tables for one set-up and one list of element symbols (the possible
    constituents). Build with :func:`fp_model` (cached). Compositions are vectors in
    ``symbols`` order, see :meth:`vector`."""

    def __init__(self, setup: XrfSetup, symbols: Sequence[str]) -> None:
        self.setup = setup
        self.symbols = tuple(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        z = [atomic_number(s) for s in self.symbols]
        tube = tube_spectrum(setup.tube)
        self.exc_e: _F = tube.energies_kev
        self.exc_n: _F = tube.photons
        self.tube = tube
        kv = setup.tube.voltage_kv
        lines: list[Line] = []
        for s in self.symbols:
            lines.extend(element_lines(s, kv))
        self.lines = tuple(lines)
        self.line_elem = np.array([self.index[ln.symbol] for ln in lines], dtype=np.intp)
        self.line_e: _F = np.array([ln.energy_kev for ln in lines], dtype=np.float64)
        ne, nl = self.exc_e.size, len(lines)
        self.mu_exc: _F = np.array([[xraylib.CS_Total(zz, float(e)) for e in self.exc_e]
                                    for zz in z]).reshape(len(z), ne)
        self.mu_line: _F = np.array([[xraylib.CS_Total(zz, float(e)) for e in self.line_e]
                                     for zz in z]).reshape(len(z), nl)
        f = xraylib.CS_FluorLine_Kissel_Cascade
        self.sigma: _F = np.array([[_cs(f, ln.z, ln.macro, float(e)) for e in self.exc_e]
                                   for ln in lines]).reshape(nl, ne)
        tau = np.array([[_cs(f, ln.z, ln.macro, float(em)) for em in self.line_e]
                        for ln in lines]).reshape(nl, nl)
        self.pair_l, self.pair_m = np.nonzero(tau)
        self.pair_tau: _F = tau[self.pair_l, self.pair_m]
        # exciting lines weaker than 2 % of their element's strongest line are left out
        strength = self.sigma.max(axis=1)
        top = np.zeros(len(z))
        np.maximum.at(top, self.line_elem, strength)
        strong = strength >= 0.02 * top[self.line_elem]
        # pairs sorted by (emitting element, exciting element) for fast selection by support
        keep = np.flatnonzero(strong[self.pair_m])
        nel = len(z)
        code = self.line_elem[self.pair_l[keep]] * nel + self.line_elem[self.pair_m[keep]]
        order = keep[np.argsort(code, kind="stable")]
        self.pair_l, self.pair_m = self.pair_l[order], self.pair_m[order]
        self.pair_tau = self.pair_tau[order]
        self._pair_start = np.searchsorted(np.sort(code), np.arange(nel * nel + 1))
        self._pair_cache: dict[tuple[bytes, bytes], _Pairs] = {}
        # secondary fluorescence on a coarser excitation grid (groups of COARSE bins, weighted by
        # the tube photons): the depth integral smooths the spectrum's detail anyway
        order = np.argsort(self.exc_e)
        grp = np.repeat(np.arange(ne), COARSE)[:ne][np.argsort(order)]
        ncg = int(grp.max()) + 1
        self.exc_n_c: _F = np.bincount(grp, weights=self.exc_n, minlength=ncg).astype(np.float64)
        agg = np.zeros((ne, ncg))
        agg[np.arange(ne), grp] = self.exc_n / self.exc_n_c[grp]
        self.sigma_c: _F = self.sigma @ agg
        self.mu_exc_c: _F = self.mu_exc @ agg
        geo = setup.geometry
        self.sin1 = math.sin(math.radians(geo.incidence_deg))
        self.sin2 = math.sin(math.radians(geo.takeoff_deg))
        self.k_const = geo.geometry_factor_sr * setup.tube.current_ua
        self.eff_line: _F = efficiency(setup.detector, geo, self.line_e)
        theta = geo.scatter_angle_rad
        self.e_compton: _F = self.exc_e / (1.0 + self.exc_e / 510.999 * (1.0 - math.cos(theta)))
        self.dcs_rayl: _F = np.array([[xraylib.DCS_Rayl(zz, float(e), theta) for e in self.exc_e]
                                      for zz in z]).reshape(len(z), ne)
        self.dcs_compt: _F = np.array([[xraylib.DCS_Compt(zz, float(e), theta)
                                        for e in self.exc_e] for zz in z]).reshape(len(z), ne)
        self.mu_compt: _F = np.array([[xraylib.CS_Total(zz, float(e)) for e in self.e_compton]
                                      for zz in z]).reshape(len(z), ne)
        self.eff_exc: _F = efficiency(setup.detector, geo, self.exc_e)
        self.eff_compt: _F = efficiency(setup.detector, geo, self.e_compton)

    def vector(self, composition: Mapping[str, float]) -> _F:
        """Mass fractions in ``symbols`` order; ``QuantificationError`` for an unknown symbol or
        a negative / non-finite fraction."""
        w = np.zeros(len(self.symbols))
        for s, v in composition.items():
            if s not in self.index:
                raise QuantificationError(f"element {s!r} not in the FP model {self.symbols}")
            if not math.isfinite(v) or v < 0:
                raise QuantificationError(f"mass fraction of {s} must be ≥ 0, got {v}")
            w[self.index[s]] = v
        return w

    def _active_pairs(self, emit: NDArray[np.bool_], excite: NDArray[np.bool_]) -> _Pairs:
        """Indices of the (strong) secondary pairs whose emitting element is in ``emit`` and
        exciting element in ``excite`` (element masks); cached per support."""
        key = (np.packbits(emit).tobytes(), np.packbits(excite).tobytes())
        hit = self._pair_cache.get(key)
        if hit is not None:
            return hit
        nel = len(self.symbols)
        codes = (np.flatnonzero(emit)[:, None] * nel + np.flatnonzero(excite)[None, :]).ravel()
        start, stop = self._pair_start[codes], self._pair_start[codes + 1]
        n = stop - start
        idx = (np.repeat(start - np.cumsum(n) + n, n) + np.arange(int(n.sum()))).astype(np.intp)
        l_lines, l_of = np.unique(self.pair_l[idx], return_inverse=True)
        m_lines, m_of = np.unique(self.pair_m[idx], return_inverse=True)
        out = _Pairs(idx, l_lines, l_of.astype(np.intp), m_lines, m_of.astype(np.intp))
        if len(self._pair_cache) > 256:
            self._pair_cache.clear()
        self._pair_cache[key] = out
        return out

    def line_rates(self, w: _F, areal_density_g_cm2: float | None = None,
                   secondary: bool = True, emitters: NDArray[np.bool_] | None = None
                   ) -> LineRates:
        """Detected photons/s of every line for the composition vector ``w``; secondary
        fluorescence (``secondary``) for the elements in the mask ``emitters`` (default all)."""
        mu_e = w @ self.mu_exc
        mu_l = w @ self.mu_line
        a = mu_e / self.sin1
        b = mu_l / self.sin2
        k = self.k_const * self.eff_line * w[self.line_elem]
        on = np.flatnonzero(k > 0)
        chi = a[None, :] + b[on, None]
        base = self.exc_n[None, :] * self.sigma[on] / (self.sin1 * chi)
        if areal_density_g_cm2 is not None:
            base = base * -np.expm1(-chi * areal_density_g_cm2)
        prim = np.zeros(k.size)
        prim[on] = k[on] * base.sum(axis=1)
        sec = np.zeros_like(prim)
        if secondary:
            # exciters below 1e-3 mass fraction change no line by more than ~0.1 % relative
            sel = self._active_pairs(w > 0 if emitters is None else (w > 0) & emitters,
                                     w >= SECONDARY_MIN_FRACTION)
            if sel.pairs.size:
                # Σ_E exc_m(E) [ln(1 + a/μ_m)/a + ln(1 + b_l/μ_m)/b_l] / (a + b_l), split into
                # [exciters × E] @ [E × emitters] products (the E sum of each pair)
                ac = (w @ self.mu_exc_c) / self.sin1
                mu_m = mu_l[sel.m_lines]
                exc = self.exc_n_c * w[self.line_elem[sel.m_lines]][:, None] \
                    * self.sigma_c[sel.m_lines]
                first = np.log1p(ac[None, :] / mu_m[:, None]) / ac[None, :]
                inv = 1.0 / (ac[None, :] + b[sel.l_lines][:, None])
                p1 = (exc * first) @ inv.T
                p2 = exc @ inv.T
                bl = b[sel.l_lines][sel.l_of]
                mm = mu_m[sel.m_of]
                second = np.log1p(bl / mm) / bl
                esum = p1[sel.m_of, sel.l_of] + second * p2[sel.m_of, sel.l_of]
                per_pair = self.pair_tau[sel.pairs] * 0.5 * esum / self.sin1
                sec = k * np.bincount(self.pair_l[sel.pairs], weights=per_pair,
                                      minlength=prim.size)
        return LineRates(prim, sec)

    def scatter_rates(self, w: _F, areal_density_g_cm2: float | None = None
                      ) -> tuple[_F, _F]:
        """(Rayleigh at ``exc_e``, Compton at ``e_compton``) detected photons/s per tube bin."""
        a = (w @ self.mu_exc) / self.sin1
        out = []
        for dcs, mu_out, eff in ((self.dcs_rayl, self.mu_exc, self.eff_exc),
                                 (self.dcs_compt, self.mu_compt, self.eff_compt)):
            chi = a + (w @ mu_out) / self.sin2
            r = self.k_const * 4.0 * math.pi * self.exc_n * (w @ dcs) / (self.sin1 * chi) * eff
            if areal_density_g_cm2 is not None:
                r = r * -np.expm1(-chi * areal_density_g_cm2)
            out.append(r)
        return out[0], out[1]


@lru_cache(maxsize=16)
def _cached(setup_json: str, symbols: tuple[str, ...]) -> FPModel:
    return FPModel(XrfSetup.model_validate_json(setup_json), symbols)


def fp_model(setup: XrfSetup, symbols: Sequence[str]) -> FPModel:
    """The (cached) FP model for ``setup`` and the element ``symbols`` (order kept)."""
    return _cached(setup.model_dump_json(), tuple(symbols))
