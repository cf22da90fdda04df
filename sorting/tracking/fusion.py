"""From a track to an object estimate: class, material, volume, mass, composition, CRM grams, value.

The class is uncertain, so every estimate is a mixture over the classes of the track's
posterior (:mod:`sorting.tracking.posterior`): per class the formulas below, then
``mean = Σ p_c μ_c``, ``u² = Σ p_c (u_c² + μ_c²) − mean²``.
Per class, uncertainties are standard (k=1) and propagated to first order:

- volume: median of the whole 3D views, ``u = max(median(u_i), MAD-spread / sqrt(n))``;
  with only views truncated at the sensor's edge, their median ± 40 %;
  without any, the class prior mean ± its spread;
- mass ``m = V ρ`` with the class bulk density prior ``ρ ± u_ρ``:
  ``(u_m/m)² = (u_V/V)² + (u_ρ/ρ)²``; where the X-ray transmission scanner saw the object
  through (:func:`xrt_mass`: its cells' mass thickness for the class's bulk attenuation, at
  the object's height; for the attenuation of the object's own composition where its XRF
  analysis gives one, :func:`~sorting.tracking.xrt_evidence.own_attenuation`), that
  weighing and ``V ρ`` are combined by inverse variance — the
  scanner sees the fill factor and bulk density that the outline hides; where they disagree
  by more than ``XRT_CONSISTENT_K`` combined u, the weighing alone; where the object was
  too thick for the scanner in places, ``V ρ`` is told the scanner's lower bound
  (:func:`sorting.tracking.xrt_evidence.above`: the normal truncated below it);
- composition per element: the XRF spots that lay (almost) wholly on the object
  (coverage ``c`` ≥ :data:`XRF_FULL_COVERAGE`) combined by inverse variance, weighted by
  ``c``, with ``u² = u_xrf² + ((1-c) f_xrf)²`` for the uncovered rest — for a class XRF
  sees whole (metals), the analysis normalised instead (:func:`posterior.xrf_scale`), and
  for a class too narrow for the spot to lie wholly on it (:func:`posterior.narrow_for_spot`:
  cells, cables, small capacitors) its ratios scaled to the class's visible total, whose
  spread joins ``u``; every
  element the XRF analysed is taken from it, combined with the class
  prior by inverse variance (:func:`_with_prior`: noise read as an element the class does
  not hold no longer adds up over a stream); an element the analysis is silent on (the fit
  drops line groups under ``XRF_SILENT_SIGMA`` u, so it reads 0) is not a measured zero but
  an upper bound: :func:`_silent` weighs the class's own objects by how likely each would
  have read silent — read as 0 ± u, a trace most objects hold just under the detection
  limit (Nb in stainless, Ta in laptops) was booked at a fraction of its stream total;
  elements XRF cannot see
  (Li, C, B, ...) and objects without a usable spot → the prior ``f_prior ± sd``;
- element mass ``m_e = m f``: ``u² = (f u_m)² + (m u_f)²``; value ``Σ price_e m_e``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr

from perception.xrf.fit import FitConfig
from sorting.tracking.measurements import XrfMeasurement
from sorting.tracking.posterior import class_posterior, narrow_for_spot, top_classes, xrf_scale
from sorting.tracking.priors import ClassPrior
from sorting.tracking.tracker import Track, top_vote
from sorting.tracking.xrt_evidence import (
    XRT_CONSISTENT_K,
    above,
    own_attenuation,
    pile_mass,
    track_height,
    xrt_footprint,
    xrt_lower_bound,
    xrt_mass,
)

UNKNOWN = "unknown"
XRF_FULL_COVERAGE = 0.9
#: floors of the class prior's spread when it is combined with an XRF reading: relative to its
#: mean, and absolute (an element the class never holds: the reading is mostly noise)
PRIOR_REL_FLOOR = 0.1
PRIOR_ABS_FLOOR = 1e-5
TRUNCATED_REL_U = 0.4
#: the XRF fit drops line groups whose |area| is under this many u; such an element reads 0
XRF_SILENT_SIGMA = FitConfig.prune_sigma
#: a silent reading the class's objects could hardly give (fewer than this many of its drawn
#: objects would have read silent) contradicts the class: it is then taken as 0 ± u
SILENT_MIN_OBJECTS = 1.0


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
    #: the classes the estimate mixes, with their posterior weights (sum 1)
    class_mix: tuple[tuple[str, float], ...] = ()

    def element(self, symbol: str) -> tuple[float, float]:
        """(mass kg, u kg) of one element, (0, 0) if not reported."""
        if symbol not in self.elements:
            return 0.0, 0.0
        i = self.elements.index(symbol)
        return self.element_mass_kg[i], self.element_mass_u_kg[i]


def _vote(votes: Mapping[str, float]) -> tuple[str, float]:
    name = top_vote(votes)
    if name is None:
        return UNKNOWN, 0.0
    total = sum(votes.values())
    return name, votes[name] / total if total > 0 else 0.0


def track_volume(track: Track) -> tuple[float, float] | None:
    """(volume, u) m³ from the 3D views of ``track``, or None without any.

    Whole views (not truncated at the sensor's edge): their median, ``u = max(median(u_i),
    MAD-spread / sqrt(n))``. Only views truncated at the sensor's edge: their median (the
    partial ones are too small, those merged with a touching neighbour too large), with a
    relative u of :data:`TRUNCATED_REL_U` (fusion then weighs it against the class's own
    spread of volumes, :func:`with_log_prior`)."""
    if not track.volumes:
        return None
    whole = [m for m in track.volumes if not m.truncated]
    if not whole:
        v_med = float(np.median([m.volume_m3 for m in track.volumes]))
        return v_med, TRUNCATED_REL_U * v_med
    v = np.array([m.volume_m3 for m in whole])
    u = np.array([m.volume_u_m3 for m in whole])
    med = float(np.median(v))
    spread = 1.4826 * float(np.median(np.abs(v - med))) / math.sqrt(len(v))
    return med, max(float(np.median(u)), spread)


@dataclass(frozen=True)
class _Analysis:
    """The spots' combined analysis: fractions, their u, mean coverage, largest spot radius."""

    f: dict[str, float]
    u: dict[str, float]
    coverage: float
    radius_m: float
    silent: dict[str, float]   # element every spot read 0 -> the smallest u among them


def _xrf_composition(spots: list[tuple[XrfMeasurement, float]]) -> _Analysis:
    """Coverage-weighted inverse-variance mean of the spots."""
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    coverage = []
    for spot, cov in spots:
        coverage.append(cov)
        for e, fe in spot.fractions.items():
            ue = max(spot.uncertainties.get(e, 0.0), 1e-6)
            w = cov / (ue * ue)
            num[e] = num.get(e, 0.0) + w * fe
            den[e] = den.get(e, 0.0) + w
    f = {e: num[e] / den[e] for e in num}
    # combined u of a weighted mean with weights cov/u²: sqrt(Σ cov² / u² ) / Σ(cov/u²)
    u2: dict[str, float] = {}
    for spot, cov in spots:
        for e in spot.fractions:
            ue = max(spot.uncertainties.get(e, 0.0), 1e-6)
            u2[e] = u2.get(e, 0.0) + (cov / (ue * ue)) ** 2 * ue * ue
    u = {e: math.sqrt(u2[e]) / den[e] for e in f}
    silent: dict[str, float] = {}
    for e in f:
        readings = [(spot.fractions[e], spot.uncertainties.get(e, 0.0))
                    for spot, _ in spots if e in spot.fractions]
        if all(fe == 0.0 for fe, _ in readings) and all(ue > 0 for _, ue in readings):
            silent[e] = min(ue for _, ue in readings)
    return _Analysis(f, u, float(np.mean(coverage)) if coverage else 0.0,
                     max((spot.radius_m for spot, _ in spots), default=0.0), silent)


@dataclass(frozen=True)
class _ClassEstimate:
    volume: float
    volume_u: float
    mass: float
    mass_u: float
    fractions: dict[str, tuple[float, float]]       # element -> (f, u)
    element_mass: dict[str, tuple[float, float]]    # element -> (kg, u kg)
    value: float
    value_u: float


def with_log_prior(v: float, u: float, mu: float, sd: float) -> tuple[float, float]:
    """A measured volume ``v ± u``, read as log-normal with that mean and sd, times a
    log-normal prior (log mean ``mu``, log sd ``sd``): the posterior's mean and sd."""
    s2_m = math.log1p((u / v) ** 2)
    mu_m = math.log(v) - 0.5 * s2_m
    w_m, w_p = 1.0 / s2_m, 1.0 / sd**2
    s2 = 1.0 / (w_m + w_p)
    m = (mu_m * w_m + mu * w_p) * s2
    vol = math.exp(m + 0.5 * s2)
    return vol, vol * math.sqrt(math.expm1(s2))


def _for_class(
    track: Track,
    prior: ClassPrior | None,
    rho: tuple[float, float] | None,
    xrf: _Analysis | None,
    prices: Mapping[str, float],
    response: tuple[float, float] | None = None,
    element_response: Mapping[str, tuple[float, float]] | None = None,
) -> _ClassEstimate:
    """Everything under the hypothesis that ``track`` is of ``prior``'s class."""
    measured = track_volume(track)
    area = xrt_footprint(track) if measured is None and prior is not None else None
    if measured is not None:
        volume, volume_u = measured
        if (prior is not None and math.isfinite(prior.log_volume_mean)
                and math.isfinite(prior.log_volume_sd) and prior.log_volume_sd > 0
                and volume > 0 and all(m.truncated for m in track.volumes)):
            # only views cut at the sensor's edge (± 40 %): the class's own spread of
            # volumes says as much about the object for a class of alike objects (laptops,
            # keyboards), little for scrap pieces
            volume, volume_u = with_log_prior(volume, volume_u, prior.log_volume_mean,
                                              prior.log_volume_sd)
    elif prior is not None and area is not None and math.isfinite(prior.log_height_mean):
        # no 3D view, but the X-ray scanner saw its footprint: that area × the class's
        # (log-normal) height, not the class's typical volume
        s2 = prior.log_height_sd**2 if math.isfinite(prior.log_height_sd) else 0.0
        volume = area * math.exp(prior.log_height_mean + 0.5 * s2)
        volume_u = volume * math.sqrt(math.expm1(s2))
    else:
        volume, volume_u = (prior.volume_m3, prior.volume_sd_m3) if prior else (0.0, 0.0)
    if rho is None:
        rho = (prior.density_kg_m3, prior.density_sd_kg_m3) if prior else (0.0, 0.0)
    mass = volume * rho[0]
    rel = math.hypot(volume_u / volume if volume > 0 else 0.0,
                     rho[1] / rho[0] if rho[0] > 0 else 0.0)
    mass_u = mass * rel
    comp = ({e: (f, prior.composition_sd.get(e, 0.0)) for e, f in prior.composition.items()}
            if prior is not None else {})
    if xrf is not None:
        f_x, u_x, c = xrf.f, xrf.u, xrf.coverage
        k = xrf_scale(f_x, prior, xrf.radius_m) if prior is not None else 1.0
        # the spot lay (almost) wholly on the object: its analysis is the object's, the
        # uncovered rest of the spot diluting it by at most (1 - c) -- unless the class is
        # one XRF sees whole (metals) or one the spot cannot lie wholly on (a cell, a cable),
        # where the analysis is scaled to the class's visible total (k != 1) and the
        # dilution gone; for the narrow ones that total is the class's, known to its spread
        level = _level_u(f_x, prior) if prior is not None and k != 1.0 and narrow_for_spot(
            prior, xrf.radius_m) else 0.0
        # taken at face value: at the level the class's reference objects read at
        # (:mod:`sorting.tracking.xrf_response`), its u joining the analysis's
        # an element whose references read it off that level has a factor of its own
        r_class = response if response is not None and k == 1.0 else (1.0, 0.0)
        by_el = element_response or {}
        for e, fx in f_x.items():
            comp[e] = xrf_element(prior, e, fx, u_x[e], xrf.silent.get(e), k, c, level,
                                  by_el.get(e, r_class))
    # the scanner reads the cells for the object's own attenuation where its analysis says
    # what it is made of (not for a narrow class, whose spot reads the belt beside it too)
    own_mu = (own_attenuation(prior, comp) if prior is not None and xrf is not None
              and track.xrt and not narrow_for_spot(prior, xrf.radius_m) else None)
    weighed = xrt_mass(track, prior, own_mu) if prior is not None else None
    if weighed is not None and weighed[1] > 0:
        mass, mass_u = _with_weighing(mass, mass_u, weighed)
        if measured is None and rho[0] > 0:
            # no 3D view (an object the scanner alone saw: a small capacitor): its volume is
            # what it weighs over the class's density, not the class's typical volume
            volume = mass / rho[0]
            volume_u = volume * math.hypot(mass_u / mass if mass > 0 else 0.0, rho[1] / rho[0])
    elif prior is not None:
        # too thick for the scanner in places: it still says how much at least lies there
        bound = xrt_lower_bound(track, prior)
        if bound is not None:
            mass, mass_u = above(mass, mass_u, bound)
    element_mass = {e: (mass * f, math.hypot(f * mass_u, mass * u)) for e, (f, u) in comp.items()}
    value = sum(prices.get(e, 0.0) * m for e, (m, _u) in element_mass.items())
    value_u = math.sqrt(sum((prices.get(e, 0.0) * u) ** 2 for e, (_m, u) in element_mass.items()))
    return _ClassEstimate(volume, volume_u, mass, mass_u, comp, element_mass, value, value_u)


def xrf_element(prior: ClassPrior | None, element: str, fx: float, ux: float,
                silent_u: float | None, k: float, coverage: float, level: float,
                response: tuple[float, float]) -> tuple[float, float]:
    """One element's fraction (f, u) in an object of ``prior``'s class from the XRF analysis's
    ``fx ± ux`` (``silent_u``: the analysis was silent on it, with that u), the scale ``k``
    fusion applies (:func:`posterior.xrf_scale`), the spots' mean ``coverage``, the relative
    ``level`` u of a narrow class's visible total and the reading's factor ``response``
    (r, u_r) from the class's reference objects."""
    r, r_u = response
    below = (_silent(prior, element, k * silent_u / r)
             if prior is not None and silent_u is not None else None)
    if below is not None:
        return below
    dilution = (1.0 - coverage) * fx if k == 1.0 else 0.0
    g = k * fx / r
    return _with_prior(g, math.hypot(k * ux / r, dilution / r, level * g, g * r_u / r),
                       ((prior.composition.get(element, 0.0),
                         prior.composition_sd.get(element, 0.0)) if prior is not None else None))


def _with_weighing(mass: float, mass_u: float, weighed: tuple[float, float]
                   ) -> tuple[float, float]:
    """A mass from the outline (volume × density) ``mass ± mass_u`` and the X-ray scanner's
    weighing ``weighed`` (mass, u > 0) combined by inverse variance; where the two disagree
    beyond ``XRT_CONSISTENT_K`` combined u, the weighing alone: the outline misleads (a
    pile's blob shared out by area, a plate cut in pieces), the scanner weighs all that lies
    in its beam."""
    if mass_u > 0 and mass > 0 and abs(mass - weighed[0]) <= XRT_CONSISTENT_K * math.hypot(
            mass_u, weighed[1]):
        w_v, w_x = 1.0 / mass_u**2, 1.0 / weighed[1] ** 2
        return (w_v * mass + w_x * weighed[0]) / (w_v + w_x), 1.0 / math.sqrt(w_v + w_x)
    return weighed


def _level_u(fractions: Mapping[str, float], prior: ClassPrior) -> float:
    """Relative spread of the class's total of the analysed elements (their sd's taken as
    independent)."""
    total = sum(prior.composition.get(e, 0.0) for e in fractions)
    if total <= 0:
        return 0.0
    return math.sqrt(sum(prior.composition_sd.get(e, 0.0) ** 2 for e in fractions)) / total


def _silent(prior: ClassPrior, element: str, sigma: float) -> tuple[float, float] | None:
    """The fraction of ``element`` (mean, sd) in an object of ``prior``'s class on which the
    XRF analysis was silent, its reading's noise ``sigma`` (in the object's fraction): the
    class's drawn objects, each weighted by the chance that its fraction plus that noise stays
    within ±``XRF_SILENT_SIGMA`` σ, where the fit drops the group. ``None`` where the class
    holds none of the element or its objects would (nearly) all have been seen."""
    f = prior.composition_samples.get(element)
    if f is None or sigma <= 0 or not np.any(f > 0):
        return None
    w = XRF_SILENT_SIGMA * sigma
    weight = ndtr((w - f) / sigma) - ndtr((-w - f) / sigma)
    total = float(weight.sum())
    if total < SILENT_MIN_OBJECTS:
        return None
    mean = float(weight @ f) / total
    return mean, math.sqrt(float(weight @ (f - mean) ** 2) / total)


def _with_prior(f: float, u: float, prior: tuple[float, float] | None) -> tuple[float, float]:
    """An XRF reading ``f ± u`` combined with the class prior ``(mean, sd)`` by inverse
    variance (the prior's sd floored, see ``PRIOR_REL_FLOOR``/``PRIOR_ABS_FLOOR``). The
    analysis reports mass fractions clipped at zero (the fit's areas may go negative, the
    fractions may not), so a reading of an element that is not there is noise clipped at
    zero: over a stream of objects its sum grows without bound (Dy read in steel under Fe K);
    the class prior pulls it back where the class says so, and leaves a precise reading of an
    element the class holds nearly as it is. Without a class prior (``None``) the reading
    stands as it is."""
    if prior is None or u <= 0:
        return max(f, 0.0), max(u, 0.0)
    mean, sd = prior
    sd = max(sd, PRIOR_REL_FLOOR * mean, PRIOR_ABS_FLOOR)
    w_x, w_p = 1.0 / (u * u), 1.0 / (sd * sd)
    return max((w_x * f + w_p * mean) / (w_x + w_p), 0.0), 1.0 / math.sqrt(w_x + w_p)


def _mix(parts: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Mean and standard deviation of a mixture of (weight, mean, sd) components."""
    mean = sum(w * m for w, m, _ in parts)
    second = sum(w * (s * s + m * m) for w, m, s in parts)
    return mean, math.sqrt(max(second - mean * mean, 0.0))


def estimate(
    track: Track,
    priors: Mapping[str, ClassPrior],
    prices_eur_per_kg: Mapping[str, float],
    material_density: Mapping[str, tuple[float, float]] | None = None,
    *,
    feed_weights: Mapping[str, float] | None = None,
    detector_accuracy: float = 0.5,
    xrf_full_coverage: float = XRF_FULL_COVERAGE,
    detector_confusion: Mapping[str, Mapping[str, float]] | None = None,
    xrf_response: Mapping[str, tuple[float, float]] | None = None,
    piles: bool = True,
    xrf_element_response: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> ObjectEstimate:
    """Fuse everything known about ``track`` (see the module docstring for the formulas).

    The class is the posterior of :func:`class_posterior` (detector votes, spectral
    material, size; ``feed_weights`` the expected stream mix, ``detector_accuracy`` the
    detector's measured per-frame accuracy, ``detector_confusion`` its measured confusion
    where known); every estimate is the posterior mixture of
    the per-class estimates, so an uncertain class widens the intervals instead of biasing
    them. Without class priors, ``material_density`` (material id → (mean, u) kg/m³) gives
    the density of the spectral material. XRF spots count when at least
    ``xrf_full_coverage`` of the spot lay on the object (a partly covered spot reads the
    belt too, and its analysis is not the object's). ``xrf_response`` (class → (factor, u),
    from the class's reference objects, :mod:`sorting.tracking.xrf_response`) puts analyses
    taken at face value at their true level; ``xrf_element_response`` (class → element →
    (factor, u)) does so for the elements whose references read off that level (and for
    analyses fusion scales to a class's visible total). A track that lies in a pile the
    X-ray scanner saw through as one (``track.piles``) has its mass held to the pile's
    weighing (:func:`_in_pile`) unless ``piles`` is False.
    """
    material, material_conf = _vote(track.material_votes)
    spots = [(spot, cov) for spot, cov in track.xrf if cov >= xrf_full_coverage]
    posterior = class_posterior(track, priors, feed_weights, detector_accuracy, spots,
                                detector_confusion)
    xrf = _xrf_composition(spots) if spots else None
    mix = top_classes(posterior) if posterior else {}
    if mix:
        class_name = top_vote(posterior) or UNKNOWN
        class_conf = posterior[class_name]
        resp = xrf_response or {}
        per_el = xrf_element_response or {}
        parts = [(p, _for_class(track, priors[c], None, xrf, prices_eur_per_kg, resp.get(c),
                                per_el.get(c)))
                 for c, p in mix.items()]
    else:
        class_name, class_conf = _vote(track.class_votes)
        prior = priors.get(class_name) or priors.get(UNKNOWN)
        rho = None
        if material_density and material in material_density and (
                prior is None or class_name == UNKNOWN):
            rho = material_density[material]
        parts = [(1.0, _for_class(track, prior, rho, xrf, prices_eur_per_kg,
                                  (xrf_response or {}).get(class_name),
                                  (xrf_element_response or {}).get(class_name)))]

    volume, volume_u = _mix([(p, e.volume, e.volume_u) for p, e in parts])
    mass, mass_u = _mix([(p, e.mass, e.mass_u) for p, e in parts])
    value, value_u = _mix([(p, e.value, e.value_u) for p, e in parts])
    elements = sorted({el for _, e in parts for el in e.fractions})
    zero = (0.0, 0.0)
    fr, fu, em, eu = [], [], [], []
    for el in elements:
        f, u = _mix([(p, *e.fractions.get(el, zero)) for p, e in parts])
        m, mu = _mix([(p, *e.element_mass.get(el, zero)) for p, e in parts])
        fr.append(f)
        fu.append(u)
        em.append(m)
        eu.append(mu)
    est = ObjectEstimate(
        track_id=track.track_id, class_name=class_name, class_confidence=class_conf,
        material=material, material_confidence=material_conf, volume_m3=volume,
        volume_u_m3=volume_u, mass_kg=mass, mass_u_kg=mass_u,
        composition_source="xrf" if xrf is not None else "prior",
        elements=tuple(elements), fractions=tuple(fr), fractions_u=tuple(fu),
        element_mass_kg=tuple(em), element_mass_u_kg=tuple(eu), value_eur=value,
        value_u_eur=value_u, sensors=tuple(sorted(track.sensors)),
        class_mix=tuple(mix.items()) if mix else ((class_name, 1.0),),
    )
    if not piles or not track.piles:
        return est

    def alone(t: Track) -> ObjectEstimate:
        return estimate(t, priors, prices_eur_per_kg, material_density,
                        feed_weights=feed_weights, detector_accuracy=detector_accuracy,
                        xrf_full_coverage=xrf_full_coverage,
                        detector_confusion=detector_confusion, xrf_response=xrf_response,
                        piles=False, xrf_element_response=xrf_element_response)

    return _in_pile(est, track, alone, priors)


def _in_pile(est: ObjectEstimate, track: Track, alone: Callable[[Track], ObjectEstimate],
             priors: Mapping[str, ClassPrior]) -> ObjectEstimate:
    """``est`` of ``track`` with its mass held to the X-ray weighing of the pile it lies in
    (its largest :class:`~sorting.tracking.tracker.PileView`), the pile's cells read as the
    members' classes, each weighted by its posterior and its member's share of the mass
    (the pile is as tall as its tallest member): the members' masses, each as
    estimated alone (``m_i ± u_i``, independent), are told that they sum to the pile's
    weighing ``M ± u_M`` (:func:`~sorting.tracking.xrt_evidence.pile_mass`). The Gaussian
    update gives this member ``m + k (M − Σ m_i)`` with ``k = u² / (Σ u_i² + u_M²)`` and
    ``u² (1 − k)``: the shortfall goes to the members whose outline says least (a pile's
    blob shared out by area, an object seen only at its edges), and what lies hidden under
    the pile, seen by no other sensor, is booked with it instead of lost from the mass
    balance. A pile of two objects of two classes that its cells were split between (two
    materials the dual-energy ratio tells apart) weighs each: that weighing is combined
    with the member's own estimate as a track's own X-ray view is (:func:`_with_weighing`).
    Element masses follow the mass (fractions unchanged); ``est`` unchanged where the pile
    cannot be weighed."""
    pile = max(track.piles, key=lambda p: p.view.a_high.size)
    tracks = [track] + [m for m in pile.members if m is not track]
    ests = [est] + [alone(m) for m in tracks[1:]]
    total = sum(max(e.mass_kg, 0.0) for e in ests)
    members: dict[str, float] = {}
    height = 0.0
    for t, e in zip(tracks, ests, strict=True):
        share = max(e.mass_kg, 0.0) / total if total > 0 else 1.0 / len(ests)
        for c, p in e.class_mix:
            prior = priors.get(c)
            if prior is None:
                return est
            members[c] = members.get(c, 0.0) + share * p
            height = max(height, track_height(t, prior))
    weighed = pile_mass(pile, [(priors[c], w) for c, w in members.items()], height)
    if weighed is None or not (math.isfinite(weighed.mass_kg) and math.isfinite(weighed.u_kg)):
        return est
    leads = {e.class_name for e in ests}
    if len(ests) == 2 and len(leads) == 2 and leads == set(weighed.by_class):
        # two objects of the two materials the cells were split into: each is weighed
        own = weighed.by_class[est.class_name]
        mass, mass_u = (_with_weighing(est.mass_kg, est.mass_u_kg, own) if own[1] > 0
                        else own)
    else:
        total_var = sum(e.mass_u_kg**2 for e in ests) + weighed.u_kg**2
        if total_var <= 0:
            return est
        k = est.mass_u_kg**2 / total_var
        mass = max(est.mass_kg + k * (weighed.mass_kg - sum(e.mass_kg for e in ests)), 0.0)
        mass_u = est.mass_u_kg * math.sqrt(max(1.0 - k, 0.0))
    r = mass / est.mass_kg if est.mass_kg > 0 else 1.0
    return replace(
        est, mass_kg=mass, mass_u_kg=mass_u,
        element_mass_kg=tuple(m * r for m in est.element_mass_kg),
        element_mass_u_kg=tuple(math.hypot(f * mass_u, mass * u)
                                for f, u in zip(est.fractions, est.fractions_u, strict=True)),
        value_eur=est.value_eur * r, value_u_eur=est.value_u_eur * r)
