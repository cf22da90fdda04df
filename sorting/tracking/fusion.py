"""From a track to an object estimate: class, material, volume, mass, composition, CRM grams, value.

Uncertainties are standard (k=1) and propagated to first order:

- volume: median of the 3D measurements, ``u = max(median(u_i), MAD-spread / sqrt(n))``;
  without any, the class prior mean ± its spread;
- mass ``m = V ρ`` with the class bulk density prior ``ρ ± u_ρ``:
  ``(u_m/m)² = (u_V/V)² + (u_ρ/ρ)²``;
- composition per element: the XRF spots combined by inverse variance, each
  weighted by the share of the spot that lay on the object (coverage ``c``),
  then mixed with the class prior: ``f = c f_xrf + (1-c) f_prior``,
  ``u² = c² u_xrf² + (1-c)² u_prior² + c(1-c)(f_xrf - f_prior)²``;
  no XRF → the prior ``f_prior ± sd``;
- element mass ``m_e = m f``: ``u² = (f u_m)² + (m u_f)²``; value ``Σ price_e m_e``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sorting.tracking.priors import ClassPrior
from sorting.tracking.tracker import Track

UNKNOWN = "unknown"


@dataclass(frozen=True)
class ObjectEstimate:
    """What the line reports for one object (all masses kg, fractions 0–1, u at k=1)."""

    track_id: int
    class_name: str
    class_confidence: float
    material: str
    material_confidence: float
    volume_m3: float
    volume_u_m3: float
    mass_kg: float
    mass_u_kg: float
    composition_source: str          # "xrf" or "prior"
    elements: tuple[str, ...]
    fractions: tuple[float, ...]
    fractions_u: tuple[float, ...]
    element_mass_kg: tuple[float, ...]
    element_mass_u_kg: tuple[float, ...]
    value_eur: float
    value_u_eur: float
    sensors: tuple[str, ...]

    def element(self, symbol: str) -> tuple[float, float]:
        """(mass kg, u kg) of one element, (0, 0) if not reported."""
        if symbol not in self.elements:
            return 0.0, 0.0
        i = self.elements.index(symbol)
        return self.element_mass_kg[i], self.element_mass_u_kg[i]


def _vote(votes: Mapping[str, float]) -> tuple[str, float]:
    if not votes:
        return UNKNOWN, 0.0
    name = max(sorted(votes), key=lambda k: votes[k])
    total = sum(votes.values())
    return name, votes[name] / total if total > 0 else 0.0


def _volume(track: Track, prior: ClassPrior | None) -> tuple[float, float]:
    if track.volumes:
        v = np.array([m.volume_m3 for m in track.volumes])
        u = np.array([m.volume_u_m3 for m in track.volumes])
        med = float(np.median(v))
        spread = 1.4826 * float(np.median(np.abs(v - med))) / math.sqrt(len(v))
        return med, max(float(np.median(u)), spread)
    if prior is not None:
        return prior.volume_m3, prior.volume_sd_m3
    return 0.0, 0.0


def _xrf_composition(track: Track) -> tuple[dict[str, float], dict[str, float], float]:
    """Coverage-weighted inverse-variance mean of the spots; returns (f, u, mean coverage)."""
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    coverage = []
    for spot, cov in track.xrf:
        coverage.append(cov)
        for e, fe in spot.fractions.items():
            ue = max(spot.uncertainties.get(e, 0.0), 1e-6)
            w = cov / (ue * ue)
            num[e] = num.get(e, 0.0) + w * fe
            den[e] = den.get(e, 0.0) + w
    f = {e: num[e] / den[e] for e in num}
    # combined u of a weighted mean with weights cov/u²: sqrt(Σ cov² / u² ) / Σ(cov/u²)
    u2: dict[str, float] = {}
    for spot, cov in track.xrf:
        for e in spot.fractions:
            ue = max(spot.uncertainties.get(e, 0.0), 1e-6)
            u2[e] = u2.get(e, 0.0) + (cov / (ue * ue)) ** 2 * ue * ue
    u = {e: math.sqrt(u2[e]) / den[e] for e in f}
    return f, u, float(np.mean(coverage)) if coverage else 0.0


def estimate(
    track: Track,
    priors: Mapping[str, ClassPrior],
    prices_eur_per_kg: Mapping[str, float],
    material_density: Mapping[str, tuple[float, float]] | None = None,
) -> ObjectEstimate:
    """Fuse everything known about ``track`` (see the module docstring for the formulas).

    ``material_density`` (material id → (mean, u) kg/m³) is the density used when the
    class is unknown but the spectral classifier named the material; an unknown class
    otherwise takes the ``"unknown"`` prior (all classes pooled) when ``priors`` has one.
    """
    class_name, class_conf = _vote(track.class_votes)
    material, material_conf = _vote(track.material_votes)
    prior = priors.get(class_name)
    volume, volume_u = _volume(track, prior)
    rho = prior.density_kg_m3 if prior else 0.0
    rho_u = prior.density_sd_kg_m3 if prior else 0.0
    if (prior is None or class_name == UNKNOWN) and material_density and (
            material in material_density):
        rho, rho_u = material_density[material]
    mass = volume * rho
    rel = math.hypot(volume_u / volume if volume > 0 else 0.0, rho_u / rho if rho > 0 else 0.0)
    mass_u = mass * rel

    f_prior = dict(prior.composition) if prior else {}
    u_prior = dict(prior.composition_sd) if prior else {}
    source = "prior"
    if track.xrf:
        f_x, u_x, c = _xrf_composition(track)
        c = min(max(c, 0.0), 1.0)
        source = "xrf"
        elements = sorted(set(f_prior) | set(f_x))
        f_all: dict[str, float] = {}
        u_all: dict[str, float] = {}
        for e in elements:
            fp, up = f_prior.get(e, 0.0), u_prior.get(e, 0.0)
            if e in f_x:
                fx, ux = f_x[e], u_x[e]
                f_all[e] = c * fx + (1 - c) * fp
                u_all[e] = math.sqrt(
                    (c * ux) ** 2 + ((1 - c) * up) ** 2 + c * (1 - c) * (fx - fp) ** 2)
            else:
                f_all[e], u_all[e] = fp, up
    else:
        elements = sorted(f_prior)
        f_all, u_all = f_prior, u_prior

    fr = tuple(float(f_all[e]) for e in elements)
    fu = tuple(float(u_all[e]) for e in elements)
    em = tuple(mass * f for f in fr)
    eu = tuple(math.hypot(f * mass_u, mass * u) for f, u in zip(fr, fu, strict=True))
    value = sum(prices_eur_per_kg.get(e, 0.0) * m for e, m in zip(elements, em, strict=True))
    value_u = math.sqrt(sum((prices_eur_per_kg.get(e, 0.0) * u) ** 2
                            for e, u in zip(elements, eu, strict=True)))
    return ObjectEstimate(
        track_id=track.track_id, class_name=class_name, class_confidence=class_conf,
        material=material, material_confidence=material_conf, volume_m3=volume,
        volume_u_m3=volume_u, mass_kg=mass, mass_u_kg=mass_u, composition_source=source,
        elements=tuple(elements), fractions=fr, fractions_u=fu, element_mass_kg=em,
        element_mass_u_kg=eu, value_eur=value, value_u_eur=value_u,
        sensors=tuple(sorted(track.sensors)),
    )
