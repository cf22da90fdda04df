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
live time), and a class's factor is the median over its references of

    r = Σ_e read_e / Σ_e certified_e   (e: analysed elements certified at ≥ ``MIN_FRACTION``)

with ``u = 1.4826 · MAD / √n``. The factor scales analyses of the class that fusion takes at
face value (:mod:`sorting.tracking.fusion`); classes whose analyses fusion rescales to the
class's visible total anyway (metals, objects narrower than the spot) are measured and
reported but need none.
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


@dataclass(frozen=True)
class TypeReading:
    """One reference object: its class, the analysis (analysed elements' fractions) and its
    certified composition (fractions)."""

    class_name: str
    read: Mapping[str, float]
    certified: Mapping[str, float]

    def ratio(self) -> float | None:
        """Σ read / Σ certified over the analysed elements certified at ≥ MIN_FRACTION, or
        None if it holds none."""
        keys = [e for e in self.read if self.certified.get(e, 0.0) >= MIN_FRACTION]
        total = sum(self.certified[e] for e in keys)
        if total <= 0:
            return None
        return sum(max(self.read[e], 0.0) for e in keys) / total


@dataclass(frozen=True)
class ClassResponse:
    """A class's XRF response factor ± u (relative to 1), the references' robust spread and
    their number."""

    factor: float
    u: float
    spread: float
    n: int


def class_responses(readings: Sequence[TypeReading]) -> dict[str, ClassResponse]:
    """Factor per class from its references (see the module docstring); classes with fewer
    than ``MIN_REFERENCES`` usable references are left out."""
    by: dict[str, list[float]] = {}
    for r in readings:
        q = r.ratio()
        if q is not None and q > 0:
            by.setdefault(r.class_name, []).append(q)
    out: dict[str, ClassResponse] = {}
    for name, qs in sorted(by.items()):
        if len(qs) < MIN_REFERENCES:
            continue
        a = np.array(qs)
        med = float(np.median(a))
        spread = 1.4826 * float(np.median(np.abs(a - med)))
        out[name] = ClassResponse(med, spread / math.sqrt(a.size), spread, int(a.size))
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
