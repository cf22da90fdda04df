"""Dual-energy X-ray transmission (DE-XRT) physics: tube spectrum, detector layers, mass
attenuation of a composition, and the polychromatic log-attenuation of each detector layer.

A fan-beam X-ray tube above the belt shines through the objects and the belt onto a line of
sandwich detectors under it: a thin front scintillator (the low-energy layer), a copper
filter, a thick rear scintillator (the high-energy layer). Each layer integrates energy: its
signal behind a path of mass thickness ``ρt`` (g/cm²) through a material of mass attenuation
``μ(E)`` (cm²/g) is

    S(ρt) = Σ_E N(E) · E · η(E) · exp(−μ(E) ρt),        A = −ln(S(ρt) / S(0))

with ``N(E)`` the tube's photons per energy bin (Kramers' law, ``∝ (E₀ − E)/E``; the
anode's characteristic lines are left out) after its filter and the belt, and ``η(E)`` the
layer's absorbed fraction behind whatever lies in front of it. ``A`` grows with ``ρt`` a
little less than linearly (beam hardening). At the high layer's energies Compton scattering
dominates, so ``μ`` depends weakly on the element and ``A_high`` measures mass per area — the
reason XRT sorters weigh what a camera can only measure the outline of; ``A_low / A_high``
rises with atomic number (photo-absorption ∝ Z⁴/E³) and tells aluminium from copper.

Mass attenuation coefficients are xraylib's (``CS_Total``). Units: keV, g/cm², cm²/g, mm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import xraylib
from numpy.typing import NDArray

from perception.xrt.errors import XrtSetupError

FloatArray = NDArray[np.float64]

#: what fills the rest of a composition (1 − Σ listed fractions) by catalog material family:
#: plastics' hydrocarbons, laminates' epoxy, cellulose, oxides' oxygen, a metal's traces
REST_BY_FAMILY: dict[str, str] = {
    "polymer": "C8H8",
    "composite": "C5H8O2",
    "organic": "C6H10O5",
    "mineral": "O",
    "metal": "C",
}
DEFAULT_REST = "C5H8O2"


def rest_formula(family: str | None) -> str:
    """The light-element formula that fills a composition of catalog material ``family``."""
    return REST_BY_FAMILY.get(family or "", DEFAULT_REST)


@dataclass(frozen=True)
class Layer:
    """A slab in the beam: xraylib compound ``formula``, density (g/cm³), thickness (mm)."""

    formula: str
    density_g_cm3: float
    thickness_mm: float

    def __post_init__(self) -> None:
        if self.density_g_cm3 <= 0 or self.thickness_mm < 0:
            raise XrtSetupError(f"layer {self.formula!r}: density must be > 0 and thickness "
                                f">= 0, got {self.density_g_cm3} g/cm3, {self.thickness_mm} mm")
        _formula_fractions(self.formula)


@dataclass(frozen=True)
class XrtSetup:
    """Tube, filter, belt and the two detector layers of a DE-XRT line (defaults: an
    industrial scrap sorter's 160 kV tube behind 2 mm Al, a 6 mm rubber belt, 0.3 mm CsI front
    layer, 0.6 mm Cu, 2 mm CsI rear layer). Energies are binned ``e_step_kev`` wide from
    ``e_min_kev`` up to the tube voltage. Raises :class:`XrtSetupError` on nonsense."""

    tube_kv: float = 160.0
    tube_filter: Layer = field(default_factory=lambda: Layer("Al", 2.70, 2.0))
    belt: Layer = field(default_factory=lambda: Layer("C5H8", 1.15, 6.0))
    low_layer: Layer = field(default_factory=lambda: Layer("CsI", 4.51, 0.3))
    interlayer: Layer = field(default_factory=lambda: Layer("Cu", 8.96, 0.6))
    high_layer: Layer = field(default_factory=lambda: Layer("CsI", 4.51, 2.0))
    e_min_kev: float = 15.0
    e_step_kev: float = 2.0

    def __post_init__(self) -> None:
        if not 20.0 <= self.tube_kv <= 600.0:
            raise XrtSetupError(f"tube_kv: expected 20-600 kV, got {self.tube_kv}")
        if not 1.0 <= self.e_min_kev < self.tube_kv - self.e_step_kev or self.e_step_kev <= 0:
            raise XrtSetupError(f"energy grid: e_min_kev {self.e_min_kev}, e_step_kev "
                                f"{self.e_step_kev} do not fit below {self.tube_kv} kV")

    def energies(self) -> FloatArray:
        """Bin centres (keV) from ``e_min_kev`` to the tube voltage."""
        return np.arange(self.e_min_kev + self.e_step_kev / 2, self.tube_kv, self.e_step_kev)


def _formula_fractions(formula: str) -> tuple[tuple[int, float], ...]:
    try:
        cp = xraylib.CompoundParser(formula)
    except ValueError as exc:
        raise XrtSetupError(f"not a chemical formula: {formula!r} ({exc})") from exc
    return tuple((int(z), float(w)) for z, w in zip(cp["Elements"], cp["massFractions"],
                                                     strict=True))


@lru_cache(maxsize=512)
def _element_mu(z: int, e_min: float, e_step: float, n: int) -> FloatArray:
    e = e_min + e_step * np.arange(n)
    mu = np.array([xraylib.CS_Total(z, float(x)) for x in e])
    mu.setflags(write=False)
    return mu


def element_attenuation(symbol: str, energies: FloatArray) -> FloatArray:
    """μ(E) (cm²/g) of one element on an evenly spaced energy grid."""
    try:
        z = xraylib.SymbolToAtomicNumber(symbol) if symbol else 0
    except ValueError:
        z = 0
    if z <= 0:
        raise XrtSetupError(f"unknown element symbol {symbol!r}")
    step = float(energies[1] - energies[0]) if energies.size > 1 else 1.0
    return _element_mu(int(z), float(energies[0]), step, int(energies.size))


def compound_attenuation(formula: str, energies: FloatArray) -> FloatArray:
    """μ(E) (cm²/g) of a compound given as an xraylib formula (``"CsI"``, ``"C5H8O2"``)."""
    out = np.zeros(energies.size)
    for z, w in _formula_fractions(formula):
        out += w * element_attenuation(xraylib.AtomicNumberToSymbol(z), energies)
    return out


def bulk_attenuation(composition: Mapping[str, float], rest: str,
                     setup: XrtSetup | None = None) -> FloatArray:
    """μ(E) (cm²/g, on ``setup.energies()``) of a bulk material: the listed element mass
    fractions (0–1; above a sum of 1 they are scaled down to it), the rest filled by the
    compound ``rest``. Raises :class:`XrtSetupError` for unknown symbols or negative
    fractions."""
    e = (setup or XrtSetup()).energies()
    total = 0.0
    mu = np.zeros(e.size)
    for sym, w in composition.items():
        if not math.isfinite(w) or w < 0:
            raise XrtSetupError(f"composition {sym}: fraction must be finite and >= 0, got {w}")
        total += w
    scale = 1.0 / total if total > 1.0 else 1.0
    for sym, w in composition.items():
        if w > 0:
            mu += scale * w * element_attenuation(sym, e)
    rest_share = max(1.0 - total * scale, 0.0)
    if rest_share > 0:
        mu += rest_share * compound_attenuation(rest, e)
    return mu


def _transmission(layer: Layer, energies: FloatArray) -> FloatArray:
    mu = compound_attenuation(layer.formula, energies)
    out: FloatArray = np.exp(-mu * layer.density_g_cm3 * layer.thickness_mm * 0.1)
    return out


@dataclass(frozen=True)
class LayerSpectra:
    """What each detector layer absorbs with nothing but the belt in the beam, per energy bin:
    ``photons`` (relative, summing to 1 per layer, shape (2, E)) and ``energies`` (keV)."""

    energies: FloatArray
    photons: FloatArray

    @property
    def mean_energy(self) -> FloatArray:
        """Mean absorbed photon energy of each layer (keV), shape (2,)."""
        out: FloatArray = self.photons @ self.energies
        return out

    @property
    def signal_weights(self) -> FloatArray:
        """Energy-integrating weights ``N E η / Σ N E η`` per layer, shape (2, E)."""
        w = self.photons * self.energies[None, :]
        out: FloatArray = w / w.sum(axis=1, keepdims=True)
        return out


@lru_cache(maxsize=16)
def layer_spectra(setup: XrtSetup) -> LayerSpectra:
    """The absorbed spectra of the low and high layers of ``setup`` (cached)."""
    e = setup.energies()
    n = np.maximum(setup.tube_kv - e, 0.0) / e
    n = n * _transmission(setup.tube_filter, e) * _transmission(setup.belt, e)
    t_low = _transmission(setup.low_layer, e)
    eta_low = 1.0 - t_low
    eta_high = t_low * _transmission(setup.interlayer, e) * (
        1.0 - _transmission(setup.high_layer, e))
    photons = np.vstack([n * eta_low, n * eta_high])
    photons /= photons.sum(axis=1, keepdims=True)
    photons.setflags(write=False)
    return LayerSpectra(e, photons)


def log_attenuation(setup: XrtSetup, mu: FloatArray, rho_t: FloatArray) -> FloatArray:
    """``A`` of both layers (shape (..., 2)) behind mass thickness ``rho_t`` (g/cm², any
    shape) of a material of attenuation ``mu`` (cm²/g on ``setup.energies()``)."""
    w = layer_spectra(setup).signal_weights
    rt = np.asarray(rho_t, dtype=np.float64)
    t = np.exp(-rt[..., None] * mu)                      # (..., E)
    out: FloatArray = -np.log(np.maximum(t @ w.T, 1e-300))
    return out


#: mass thicknesses the inversion table spans (g/cm²): 200 g/cm² is 25 cm of steel
RHO_T_MAX = 200.0


class AttenuationTable:
    """``A_low(ρt)``, ``A_high(ρt)`` of one material and the inverse ``ρt(A_high)``.

    ``ρt`` on a grid from 0 to :data:`RHO_T_MAX` g/cm²; the inverse interpolates the monotone
    ``A_high`` curve. A negative ``A_high`` (noise on bare belt) maps linearly through the
    slope at zero, so that noise averages out instead of being clipped into a bias; beyond the
    grid the inverse returns ``RHO_T_MAX``.

    Example::

        >>> t = AttenuationTable(XrtSetup(), bulk_attenuation({"Fe": 1.0}, "C"))
        >>> round(float(t.rho_t(np.array([t.a_high(7.87 * 0.5)]))[0]), 3)   # 5 mm of steel
        3.935
    """

    def __init__(self, setup: XrtSetup, mu: FloatArray) -> None:
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape != setup.energies().shape or not np.all(np.isfinite(mu)) or np.any(mu <= 0):
            raise XrtSetupError(f"mu: expected {setup.energies().size} finite values > 0, "
                                f"got shape {mu.shape}")
        self.setup = setup
        self.mu = mu
        self.grid = np.concatenate([[0.0], np.geomspace(1e-3, RHO_T_MAX, 700)])
        a = log_attenuation(setup, mu, self.grid)
        self.a_low_grid = a[:, 0]
        self.a_high_grid = a[:, 1]
        w = layer_spectra(setup).signal_weights
        self.slope0 = w @ mu                               # dA/dρt at ρt = 0, per layer

    def a_high(self, rho_t: float | FloatArray) -> FloatArray:
        """``A_high`` behind ``rho_t`` g/cm²."""
        out: FloatArray = np.asarray(np.interp(rho_t, self.grid, self.a_high_grid))
        return out

    def a_low(self, rho_t: float | FloatArray) -> FloatArray:
        """``A_low`` behind ``rho_t`` g/cm²."""
        out: FloatArray = np.asarray(np.interp(rho_t, self.grid, self.a_low_grid))
        return out

    def rho_t(self, a_high: FloatArray) -> FloatArray:
        """Mass thickness (g/cm²) behind high-layer log-attenuations ``a_high``."""
        a = np.asarray(a_high, dtype=np.float64)
        out: FloatArray = np.where(a < 0, a / self.slope0[1],
                                   np.interp(a, self.a_high_grid, self.grid))
        return out

    def drho_da(self, a_high: FloatArray) -> FloatArray:
        """``dρt/dA_high`` (g/cm²) at ``a_high``: how noise on ``A`` propagates."""
        a = np.maximum(np.asarray(a_high, dtype=np.float64), 0.0)
        slope = np.gradient(self.a_high_grid, self.grid)
        out: FloatArray = 1.0 / np.interp(a, self.a_high_grid, slope)
        return out


class LayeredTable(AttenuationTable):
    """A material behind a fixed layer of another (``over_mu`` cm²/g, ``over_rho_t`` g/cm²:
    an object lying on it): ``A`` of both together against the material's ``ρt``, and the
    inverse. At ``ρt = 0`` it reads the layer alone; an ``A_high`` below that maps to 0."""

    def __init__(self, setup: XrtSetup, mu: FloatArray, over_mu: FloatArray,
                 over_rho_t: float) -> None:
        super().__init__(setup, mu)
        over = np.asarray(over_mu, dtype=np.float64)
        if over.shape != self.mu.shape or not np.all(np.isfinite(over)) or not (
                math.isfinite(over_rho_t) and over_rho_t >= 0):
            raise XrtSetupError(f"layer: expected {self.mu.size} finite attenuations and "
                                f"rho_t >= 0, got shape {over.shape}, rho_t {over_rho_t}")
        w = layer_spectra(setup).signal_weights
        t = np.exp(-self.grid[:, None] * self.mu[None, :] - over_rho_t * over[None, :])
        a = -np.log(np.maximum(t @ w.T, 1e-300))
        self.a_low_grid = a[:, 0]
        self.a_high_grid = a[:, 1]

    def rho_t(self, a_high: FloatArray) -> FloatArray:
        a = np.asarray(a_high, dtype=np.float64)
        out: FloatArray = np.interp(a, self.a_high_grid, self.grid)
        return out
