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
  against the class's log-normal footprint area, and where its cells were opaque the mass
  they hold at least (:func:`~sorting.tracking.xrt_evidence.xrt_lower_bound`) against the
  class's log-normal mass (survival function: a phone-sized footprint under a laptop that
  stops the beam is not a phone);
- ``L_xrf``: the XRF analysis of spots that lay on the object, element by element against
  the class's composition (Student-t, variance ``u_xrf² + sd_c² + (XRF_ABS + XRF_REL f)²``,
  the last term for what the quantification itself gets wrong, e.g. matrix effects). For a
  class whose elements XRF nearly all sees (metals: less than ``XRF_LIGHT_MAX`` of light
  elements), or one too narrow for the spot to lie wholly on it (:func:`narrow_for_spot`),
  what the scatter balance books as dark matrix is belt or air under the rim of
  the spot or under a thin piece, not part of the object: the class's composition is
  diluted to the analysis's visible total (:func:`xrf_scale`) and scored against the
  numbers as measured, the fitted dilution paying its Occam factor; each analysis may also
  have read something else lying there (``XRF_MISS``, a mixture with the feed's predictive
  density), so that one reading caps what it says against a class;
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
from sorting.tracking.xrt_evidence import xrt_footprint, xrt_loglik, xrt_lower_bound

DETECTOR_TEMPER = 0.5
XRF_ABS = 0.002
XRF_REL = 0.12
HSI_ERROR = 0.05
SIZE_SD_LOG = 0.15
STUDENT_DOF = 3.0
XRF_LIGHT_MAX = 0.1
#: how far a spot's centre may lie from where the tracker put it (m): on a seed-7 line run the
#: spots on Li-ion cells lay 1-9 mm off the cells' true centres across the belt
XRF_AIM_MARGIN_M = 0.005
#: chance that an analysis counted as the object's read something else lying there. On a
#: seed-7 line run (422 analyses of reported tracks) 0.7 % of such spots lay off the object's
#: true box and 16 % on its rim; 0.01 and 0.03 book the same classes there, 0.1 lets
#: neighbours' readings lose two right ones
XRF_MISS = 0.03
#: floor of a measured confusion probability (a class name the measurement never saw)
MIN_CONFUSION = 1e-3


def narrow_for_spot(prior: ClassPrior, radius_m: float) -> bool:
    """Whether a spot of ``radius_m`` cannot lie wholly on a typical object of ``prior``'s
    class: its footprint's smaller side is under the spot's diameter plus ``XRF_AIM_MARGIN_M``
    each side. Part of such a spot lies on the belt, whose rubber adds scatter and no lines:
    the scatter balance then reads that excess as a lighter, larger dark matrix, and the
    analysis is diluted far beyond the belt's share (a cell 86 % under the spot reads 0.27 of
    its metals); the elements' ratios survive."""
    return prior.short_side_m < 2.0 * (radius_m + XRF_AIM_MARGIN_M)


def xrf_scale(fractions: Mapping[str, float], prior: ClassPrior,
              radius_m: float = 0.0) -> float:
    """Factor that turns an XRF analysis (the analysed elements' mass fractions) into the
    object's under ``prior``'s class: for a class with less than ``XRF_LIGHT_MAX`` of elements
    the XRF does not analyse, or one too narrow for a spot of ``radius_m``
    (:func:`narrow_for_spot`), the analysed ones sum to what the class leaves them; else 1
    (a light matrix the scatter balance estimated is the object's own)."""
    total = sum(max(f, 0.0) for f in fractions.values())
    light = 1.0 - sum(prior.composition.get(e, 0.0) for e in fractions)
    if total <= 0 or (light >= XRF_LIGHT_MAX and not narrow_for_spot(prior, radius_m)):
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
        if not math.isfinite(prior.log_area_mean):
            return 0.0
        s = math.hypot(prior.log_area_sd, SIZE_SD_LOG)
        # no 3D view: what the X-ray scanner saw through is the object's footprint
        area = xrt_footprint(track)
        if area is not None:
            return _log_student((math.log(area) - prior.log_area_mean) / s) - math.log(s)
        # seen by the camera alone (too flat for the 3D sensor: a tantalum capacitor): its
        # axis-aligned box holds the footprint, so the footprint is at most the box's area,
        # P(A <= box | c); without it a few per cent of laptop in the posterior booked such a
        # 0.3 g capacitor at 0.4 kg
        box = track.length_m * track.width_m
        if box <= 0:
            return 0.0
        return _log_sf_student3((prior.log_area_mean - math.log(box)) / s)
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


def _bound_loglik(track: Track, prior: ClassPrior) -> float:
    """``log P(M >= bound | c)`` for a track seen by no 3D sensor whose X-ray cells were
    opaque (``bound``: the mass those cells hold at least, read as ``c``), 0 otherwise."""
    if track.volumes or prior.mass_kg <= 0 or not track.xrt:
        return 0.0
    bound = xrt_lower_bound(track, prior)
    if bound is None or bound <= 0:
        return 0.0
    s2 = math.log1p((prior.mass_sd_kg / prior.mass_kg) ** 2)
    mean = math.log(prior.mass_kg) - 0.5 * s2
    s = math.hypot(math.sqrt(s2), SIZE_SD_LOG)
    return _log_sf_student3((math.log(bound) - mean) / s)


def _xrf_hit_loglik(spot: XrfMeasurement, prior: ClassPrior) -> float:
    """Log-likelihood of one analysis as measured, were it of ``prior``'s class: under a
    class that XRF sees nearly whole, or one too narrow for the spot, the analysis is the
    class's composition diluted by ``1/k`` (:func:`xrf_scale`), so each element is scored
    against ``mu/k`` with the class's spread ``sd/k``, the analysis's own ``u`` and the
    quantification's error on what was read (its absolute floor not diluted); the dilution
    is fitted, which costs its Occam factor ``log(√(2π) XRF_REL / k)`` (a visible share
    ``1/k`` uniform a priori, known to ``XRF_REL``). Every class is scored on the same
    numbers: scoring ``k f`` against ``mu`` instead stretched a diluted reading's errors by
    ``k`` without the Jacobian, which made a thin copper piece read at 7 % Cu likelier
    aluminium than copper."""
    k = xrf_scale(spot.fractions, prior, spot.radius_m)
    out = 0.0 if k == 1.0 else math.log(math.sqrt(2.0 * math.pi) * XRF_REL / k)
    for e, f in spot.fractions.items():
        mu = prior.composition.get(e, 0.0) / k
        sd = prior.composition_sd.get(e, 0.0) / k
        u = spot.uncertainties.get(e, 0.0)
        var = u * u + sd * sd + (XRF_ABS + XRF_REL * max(f, mu)) ** 2
        out += _log_student((f - mu) / math.sqrt(var)) - 0.5 * math.log(var)
    return out


def _xrf_loglik(spots: Sequence[tuple[XrfMeasurement, float]], classes: Sequence[str],
                priors: Mapping[str, ClassPrior], log_w: Sequence[float]) -> list[float]:
    """Per class of ``classes``, the log-likelihood of all ``spots``: each spot read the
    object (:func:`_xrf_hit_loglik`) or, with probability ``XRF_MISS``, something else
    lying there (a neighbour inside a turned or bent object's box, an object under a thin
    one): its reading then has the feed mix's predictive density (``log_w`` the classes'
    log feed shares). One reading far off a class thus costs it about ``-log XRF_MISS``, not
    hundreds of nats, and the detector, the X-ray scanner and the size still count."""
    out = [0.0] * len(classes)
    live = [i for i, w in enumerate(log_w) if math.isfinite(w)]
    if not live:
        return out
    log_total = _logsumexp([log_w[i] for i in live])
    for spot, _cov in spots:
        hit = {i: _xrf_hit_loglik(spot, priors[classes[i]]) for i in live}
        other = _logsumexp([log_w[i] + hit[i] for i in live]) - log_total
        for i in live:
            out[i] += float(np.logaddexp(math.log1p(-XRF_MISS) + hit[i],
                                         math.log(XRF_MISS) + other))
    return out


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


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
    log_w = []
    for c in classes:
        w = (weights or {}).get(c, 1.0 if not weights else 0.0)
        log_w.append(math.log(w) if w > 0 else -math.inf)
    xrf = _xrf_loglik(xrf_spots, classes, priors, log_w) if xrf_spots else None
    logp = []
    for i, c in enumerate(classes):
        prior = priors[c]
        if not math.isfinite(log_w[i]):
            logp.append(-math.inf)
            continue
        lp = log_w[i]
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
        lp += _size_loglik(track, prior) + _bound_loglik(track, prior)
        if xrf is not None:
            lp += xrf[i]
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
