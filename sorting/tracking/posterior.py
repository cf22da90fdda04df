"""Which class is a track? A posterior over the catalog classes from every sensor's evidence.

The detector alone decides badly when it is weak or an object is seen in few frames; the
other sensors know a lot about the class too. Bayes' rule over the detector classes:

    p(c | data) ∝ w_c · L_det(c) · L_hsi(c) · L_size(c) · L_xrf(c) · L_xrt(c)

- ``w_c``: the class's share of the feed the line is set up for (the line YAML's feed mix,
  an operating parameter, not a look at any object);
- ``L_det``: the detector's votes (score sums per class ``v_k``) through its confusion
  ``P(k | c)``: measured on held-out data where given
  (:mod:`perception.detector.confusion`: a detector confuses grey metals with one another
  far more than metals with phones), else a symmetric model ``P(k | c) = a`` for ``k = c``
  and ``(1 - a)/(K - 1)`` otherwise, with the detector's measured accuracy ``a``; frames of
  one object are not independent, so in the
  log-likelihood ``Σ_k v_k log P(k | c)`` the votes beyond the first unit count by
  ``DETECTOR_TEMPER`` (total weight ``min(V, 1) + τ max(V - 1, 0)`` for ``V = Σ v_k``);
- ``L_hsi``: the hyperspectral classifier's votes as shares ``q_m``,
  ``Σ_m q_m [(1 - ε) s_c(m) + ε / M]`` with ``s_c(m)`` the class's surface-material shares
  and ``ε`` the classifier's error rate (soft evidence, one observation);
- ``L_size``: the measured volume and height against the class's log-normal spread
  (Student-t with 3 degrees of freedom, so a merged or partial blob does not veto a class),
  the measurement's own spread ``SIZE_SD_LOG`` added; with only views truncated at the 3D
  sensor's edge the volume is a lower bound (likelihood: the t survival function) and the
  height still counts; without any 3D view, the footprint the X-ray scanner saw through
  against the class's log-normal footprint area;
- ``L_xrf``: the XRF analysis of spots that lay on the object, element by element against
  the class's composition (Student-t, variance ``u_xrf² + sd_c² + (XRF_ABS + XRF_REL f)²``,
  the last term for what the quantification itself gets wrong, e.g. matrix effects). For a
  class whose elements XRF nearly all sees (metals: less than ``XRF_LIGHT_MAX`` of light
  elements), the analysis is first normalised to what the class leaves visible
  (:func:`xrf_scale`): what the scatter balance books as dark matrix there is belt or air
  under the rim of the spot, not part of the object;
- ``L_xrt``: the X-ray transmission's dual-energy ratio against the class's bulk attenuation
  (:func:`sorting.tracking.xrt_evidence.xrt_loglik`): light and heavy metals, which look
  alike to the camera and the NIR, absorb the low layer's photons very differently.

With no evidence the posterior is the feed mix; with one class in ``priors`` it is that
class. :func:`top_classes` keeps the few classes that carry the posterior mass, for the
mixture estimates of :mod:`sorting.tracking.fusion`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from sorting.tracking.measurements import XrfMeasurement
from sorting.tracking.priors import UNKNOWN_CLASS, ClassPrior
from sorting.tracking.tracker import Track
from sorting.tracking.xrt_evidence import xrt_footprint, xrt_loglik

DETECTOR_TEMPER = 0.5
XRF_ABS = 0.002
XRF_REL = 0.12
HSI_ERROR = 0.05
SIZE_SD_LOG = 0.15
STUDENT_DOF = 3.0
XRF_LIGHT_MAX = 0.1
#: floor of a measured confusion probability (a class name the measurement never saw)
MIN_CONFUSION = 1e-3


def xrf_scale(fractions: Mapping[str, float], prior: ClassPrior) -> float:
    """Factor that turns an XRF analysis (the analysed elements' mass fractions) into the
    object's under ``prior``'s class: for a class with less than ``XRF_LIGHT_MAX`` of elements
    the XRF does not analyse, the analysed ones sum to what the class leaves them; else 1
    (a light matrix the scatter balance estimated is the object's own)."""
    total = sum(max(f, 0.0) for f in fractions.values())
    light = 1.0 - sum(prior.composition.get(e, 0.0) for e in fractions)
    if total <= 0 or light >= XRF_LIGHT_MAX:
        return 1.0
    return (1.0 - max(light, 0.0)) / total


def _log_sf_student3(z: float) -> float:
    """log P(T > z) for Student's t with 3 degrees of freedom (closed form: this runs for
    every class of every live track at the publish rate, where scipy's per-call overhead
    would dominate)."""
    r = z / math.sqrt(3.0)
    cdf = 0.5 + (r / (1.0 + r * r) + math.atan(r)) / math.pi
    return math.log(max(1.0 - cdf, 1e-300))


def _log_student(z: float, dof: float = STUDENT_DOF) -> float:
    return -0.5 * (dof + 1.0) * math.log1p(z * z / dof)


def _size_loglik(track: Track, prior: ClassPrior) -> float:
    if not track.volumes:
        # no 3D view: what the X-ray scanner saw through is the object's footprint
        area = xrt_footprint(track)
        if area is None or not math.isfinite(prior.log_area_mean):
            return 0.0
        s = math.hypot(prior.log_area_sd, SIZE_SD_LOG)
        return _log_student((math.log(area) - prior.log_area_mean) / s) - math.log(s)
    if not math.isfinite(prior.log_volume_mean):
        return 0.0
    whole = [m for m in track.volumes if not m.truncated]
    views = whole or track.volumes
    # truncated views only: the smallest is a safe lower bound (a larger one may be two
    # touching objects segmented as one)
    v = float(np.median([m.volume_m3 for m in whole])) if whole else min(
        m.volume_m3 for m in views)
    h = float(np.median([m.height_m for m in views]))
    out = 0.0
    for value, mean, sd, bound in ((v, prior.log_volume_mean, prior.log_volume_sd, not whole),
                                   (h, prior.log_height_mean, prior.log_height_sd, False)):
        if value <= 0 or not math.isfinite(mean):
            continue
        s = math.hypot(sd, SIZE_SD_LOG)
        z = (math.log(value) - mean) / s
        if bound:  # the true volume is at least this: P(V >= v | c)
            out += _log_sf_student3(z)
        else:
            out += _log_student(z) - math.log(s)
    return out


def _xrf_loglik(spots: Sequence[tuple[XrfMeasurement, float]], prior: ClassPrior) -> float:
    out = 0.0
    for spot, _cov in spots:
        k = xrf_scale(spot.fractions, prior)
        for e, f0 in spot.fractions.items():
            f = k * f0
            mu = prior.composition.get(e, 0.0)
            sd = prior.composition_sd.get(e, 0.0)
            u = k * spot.uncertainties.get(e, 0.0)
            var = u * u + sd * sd + (XRF_ABS + XRF_REL * max(f, mu)) ** 2
            out += _log_student((f - mu) / math.sqrt(var)) - 0.5 * math.log(var)
    return out


def class_posterior(
    track: Track,
    priors: Mapping[str, ClassPrior],
    weights: Mapping[str, float] | None = None,
    detector_accuracy: float = 0.5,
    xrf_spots: Sequence[tuple[XrfMeasurement, float]] = (),
    confusion: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Posterior probability of each class of ``priors`` (the pooled ``"unknown"`` prior
    excluded) for ``track``; ``weights`` are the feed shares (missing → equal);
    ``xrf_spots`` the (spot, coverage) pairs that count as analyses of the object;
    ``confusion`` the detector's measured ``{true: {named: P}}`` (else the symmetric model)."""
    classes = sorted(c for c in priors if c != UNKNOWN_CLASS)
    if not classes:
        return {}
    k = max(len(classes), 2)
    a = min(max(detector_accuracy, 1.0 / k), 0.999)
    log_hit, log_miss = math.log(a), math.log((1.0 - a) / (k - 1))
    votes = {name: v for name, v in track.class_votes.items() if v > 0}
    total = sum(votes.values())
    if total > 0:
        scale = (min(total, 1.0) + DETECTOR_TEMPER * max(total - 1.0, 0.0)) / total
        votes = {name: v * scale for name, v in votes.items()}
    mat_total = sum(v for v in track.material_votes.values() if v > 0)
    materials = {m: v / mat_total for m, v in track.material_votes.items()
                 if v > 0} if mat_total > 0 else {}
    n_materials = max(len({m for p in priors.values() for m in (p.surface or {})}), 1)
    logp = []
    for c in classes:
        prior = priors[c]
        w = (weights or {}).get(c, 1.0 if not weights else 0.0)
        if w <= 0:
            logp.append(-math.inf)
            continue
        lp = math.log(w)
        row = confusion.get(c) if confusion else None
        if row is not None:
            lp += sum(v * math.log(max(row.get(name, 0.0), MIN_CONFUSION))
                      for name, v in votes.items())
        else:
            lp += sum(v * (log_hit if name == c else log_miss) for name, v in votes.items())
        if materials and prior.surface is not None:
            lik = sum(q * ((1.0 - HSI_ERROR) * prior.surface.get(m, 0.0)
                           + HSI_ERROR / n_materials) for m, q in materials.items())
            lp += math.log(lik)
        lp += _size_loglik(track, prior)
        if xrf_spots:
            lp += _xrf_loglik(xrf_spots, prior)
        lp += xrt_loglik(track, prior)
        logp.append(lp)
    arr = np.array(logp)
    if not np.isfinite(arr).any():
        arr = np.zeros(len(classes))
    arr = np.exp(arr - arr.max())
    arr /= arr.sum()
    return {c: float(p) for c, p in zip(classes, arr, strict=True)}


def top_classes(posterior: Mapping[str, float], mass: float = 0.995, limit: int = 6
                ) -> dict[str, float]:
    """The most probable classes holding ``mass`` of the posterior (at most ``limit``),
    renormalized."""
    ranked = sorted(posterior.items(), key=lambda kv: (-kv[1], kv[0]))
    out: dict[str, float] = {}
    acc = 0.0
    for c, p in ranked[:limit]:
        out[c] = p
        acc += p
        if acc >= mass:
            break
    total = sum(out.values())
    return {c: p / total for c, p in out.items()} if total > 0 else {}
