"""How the line's XRF analysis reads each class: factors from reference objects of known
composition (type standards), so that fusion can take a class's analyses at their true level.

The quantification estimates what XRF cannot see from the scattered tube spectrum along a
one-parameter family of light matrices (:mod:`perception.xrf.balance`). Real dark matrices
lie off that family: a polymer holding both H and O scatters like a lighter matrix than it
absorbs, and the analytes of such an object read low, by the same factor for every element
of one spectrum (laptops 0.94, printed circuit boards 0.82-0.90 on the simulated line). XRF
users correct such matrix effects with standards matched to the samples; here the samples
are classes of objects, so the standards are reference objects of each class whose
composition was assayed: each is measured like an object on the line (one spot, the line's
live time), and a class's factor is

    r = Σ_refs Σ_e read_e / Σ_refs Σ_e certified_e
        (e: analysed elements certified at ≥ ``MIN_FRACTION``)

over its references whose own ratio lies within ``OUTLIER_MADS`` robust spreads of the
median, with the ratio estimator's u. A ratio of sums, not the median of the references'
ratios: the line books grams, and the references' ratios are skewed (the median read
laptops, boards and phones 0.2-0.7 % lower than their sums did over 500 simulated
references each). The factor scales analyses of the class that fusion takes at
face value (:mod:`sorting.tracking.fusion`); classes whose analyses fusion rescales to the
class's visible total anyway (metals, objects narrower than the spot) are measured and
reported but need none.

Within an analysis the elements' shares are not always the object's either. A spot only
partly on a narrow object (a cable, a cylindrical cell) reads the belt's rubber too: the
scatter balance takes that for the object's matrix, and the matrix correction it applies
then differs by line energy (a cable's Cl reads 1.7×, its Cu 0.7× their share); and the
fraction fusion scales such an analysis to is the class's mean, not the object's. So each
element gets a factor of its own where its references say so:

    r_e = Σ k · read_e / Σ certified_e   (references certified at ≥ ``MIN_FRACTION``)

with ``k`` the scale fusion applies to the reference's analysis (1 at face value, the
class's visible total over the analysis's sum for metals and narrow objects,
:func:`sorting.tracking.posterior.xrf_scale`), each reference weighed by how much of the
element it holds (grams are what the line books). It is kept where it departs from the
level fusion would otherwise apply (the class factor, or 1 for scaled analyses) by more
than ``ELEMENT_SIGNIFICANCE`` of its u and ``ELEMENT_MIN_DEPARTURE``, and fusion then
divides that element's reading by it instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sorting.errors import ConfigError

#: the calibration store's entry
STORE_NAME = "xrf.class_response"
#: certified fraction from which an analysed element enters a reference's ratio
MIN_FRACTION = 0.005
#: references a class needs for a factor
MIN_REFERENCES = 8
#: an element's own factor is kept where it departs from the class's level by more than this
#: many of its u, and by more than ``ELEMENT_MIN_DEPARTURE`` (relative)
ELEMENT_SIGNIFICANCE = 3.0
ELEMENT_MIN_DEPARTURE = 0.03
#: references whose ratio lies further than this many robust spreads from the median are left
#: out of an element's factor
OUTLIER_MADS = 4.0


@dataclass(frozen=True)
class TypeReading:
    """One reference object: its class, the analysis (analysed elements' fractions) and its
    certified composition (fractions)."""

    class_name: str
    read: Mapping[str, float]
    certified: Mapping[str, float]
    #: the factor fusion applies to this analysis (``xrf_scale``: 1 at face value)
    scale: float = 1.0

    def sums(self) -> tuple[float, float] | None:
        """(Σ read, Σ certified) over the analysed elements certified at ≥ MIN_FRACTION, or
        None if it holds none."""
        keys = [e for e in self.read if self.certified.get(e, 0.0) >= MIN_FRACTION]
        total = sum(self.certified[e] for e in keys)
        if total <= 0:
            return None
        return sum(max(self.read[e], 0.0) for e in keys), total


@dataclass(frozen=True)
class ClassResponse:
    """A class's XRF response factor ± u (relative to 1), the references' robust spread and
    their number."""

    factor: float
    u: float
    spread: float
    n: int


@dataclass(frozen=True)
class ElementResponse:
    """One element's factor ± u in a class's analyses (see the module docstring), the
    references' relative scatter about it and their number."""

    factor: float
    u: float
    spread: float
    n: int


def class_responses(readings: Sequence[TypeReading]) -> dict[str, ClassResponse]:
    """Factor per class from its references (see the module docstring); classes with fewer
    than ``MIN_REFERENCES`` usable references are left out."""
    by: dict[str, list[tuple[float, float]]] = {}
    for r in readings:
        sums = r.sums()
        if sums is not None and sums[0] > 0:
            by.setdefault(r.class_name, []).append(sums)
    out: dict[str, ClassResponse] = {}
    for name, pairs in sorted(by.items()):
        if len(pairs) < MIN_REFERENCES:
            continue
        factor = _ratio_of_sums(np.array(pairs))
        if factor is not None:
            out[name] = ClassResponse(*factor)
    return out


def element_responses(readings: Sequence[TypeReading],
                      classes: Mapping[str, ClassResponse]
                      ) -> dict[str, dict[str, ElementResponse]]:
    """Per class, the elements whose own factor departs from the level fusion applies without
    it (``classes``' factor for analyses taken at face value, 1 for scaled ones) by more than
    ``ELEMENT_SIGNIFICANCE`` u and ``ELEMENT_MIN_DEPARTURE`` (see the module docstring); an
    element needs ``MIN_REFERENCES`` references certified at ≥ ``MIN_FRACTION``."""
    by: dict[tuple[str, str], list[tuple[float, float]]] = {}
    scaled: dict[str, list[bool]] = {}
    for r in readings:
        scaled.setdefault(r.class_name, []).append(r.scale != 1.0)
        for e, c in r.certified.items():
            if c >= MIN_FRACTION and e in r.read:
                by.setdefault((r.class_name, e), []).append(
                    (r.scale * max(r.read[e], 0.0), c))
    out: dict[str, dict[str, ElementResponse]] = {}
    for (name, e), pairs in sorted(by.items()):
        if len(pairs) < MIN_REFERENCES:
            continue
        factor = _ratio_of_sums(np.array(pairs))
        if factor is None:
            continue
        ratio, u, spread, n = factor
        # the level fusion applies otherwise: the class factor at face value, 1 when scaled
        at_face = sum(scaled[name]) * 2 < len(scaled[name])
        level = classes[name].factor if at_face and name in classes else 1.0
        if ratio > 0 and abs(ratio - level) > max(ELEMENT_SIGNIFICANCE * u,
                                                  ELEMENT_MIN_DEPARTURE * level):
            out.setdefault(name, {})[e] = ElementResponse(ratio, u, spread, n)
    return out


def _ratio_of_sums(pairs: np.ndarray) -> tuple[float, float, float, int] | None:
    """``Σ read / Σ certified`` over ``pairs`` (rows: read, certified) whose own ratio lies
    within ``OUTLIER_MADS`` robust spreads of the median ratio: (ratio, u, relative spread
    per reference, references used). Grams are what the line books, so the factor weighs
    each reference by how much of the element it holds: an element that reads high where
    there is little of it and right where there is much (Mn beside Fe in a cell) is not
    corrected by what the many lean references say."""
    q = pairs[:, 0] / pairs[:, 1]
    med = float(np.median(q))
    mad = 1.4826 * float(np.median(np.abs(q - med)))
    keep = np.abs(q - med) <= OUTLIER_MADS * max(mad, 1e-9)
    y, x = pairs[keep, 0], pairs[keep, 1]
    n = int(keep.sum())
    if n < 2 or x.sum() <= 0:
        return None
    ratio = float(y.sum() / x.sum())
    resid = math.sqrt(float(np.sum((y - ratio * x) ** 2)) / (n - 1))
    return ratio, resid / (float(x.mean()) * math.sqrt(n)), resid / float(x.mean()), n


def element_responses_from_results(results: Mapping[str, object]
                                   ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{class: {element: (factor, u)}}`` from a stored ``xrf.class_response`` entry's
    results (``{"elements": {class: {element: {"factor": f, "u": u}}}}``; an entry without
    them has none); ``ConfigError`` naming the class and element for a factor that is not a
    positive finite number."""
    classes = results.get("elements", {})
    if not isinstance(classes, Mapping):
        raise ConfigError("xrf.class_response: results.elements is not a mapping")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, rows in classes.items():
        if not isinstance(rows, Mapping):
            raise ConfigError(f"xrf.class_response: elements of class {name!r}: not a mapping")
        for el, row in rows.items():
            try:
                f, u = float(row["factor"]), float(row["u"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"xrf.class_response: class {name!r} element {el!r}: "
                                  "factor/u missing") from exc
            if not (math.isfinite(f) and f > 0 and math.isfinite(u) and u >= 0):
                raise ConfigError(f"xrf.class_response: class {name!r} element {el!r}: "
                                  f"factor {f}, u {u}")
            out.setdefault(str(name), {})[str(el)] = (f, u)
    return out


def responses_from_results(results: Mapping[str, object]) -> dict[str, tuple[float, float]]:
    """``{class: (factor, u)}`` from a stored ``xrf.class_response`` entry's results
    (``{"classes": {name: {"factor": f, "u": u, ...}}}``); ``ConfigError`` naming the class
    for a factor that is not a positive finite number."""
    classes = results.get("classes")
    if not isinstance(classes, Mapping):
        raise ConfigError("xrf.class_response: results.classes missing")
    out: dict[str, tuple[float, float]] = {}
    for name, row in classes.items():
        try:
            f, u = float(row["factor"]), float(row["u"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"xrf.class_response: class {name!r}: factor/u missing") from exc
        if not (math.isfinite(f) and f > 0 and math.isfinite(u) and u >= 0):
            raise ConfigError(f"xrf.class_response: class {name!r}: factor {f}, u {u}")
        out[str(name)] = (f, u)
    return out
