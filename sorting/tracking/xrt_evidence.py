"""What the X-ray transmission scanner says of a track under a class hypothesis.

Two pieces of evidence, both against the class's bulk attenuation (its mean composition from
the catalog, the rest filled by the light compound of its material family):

- the **mass** (:func:`xrt_mass`): each cell's high-layer log-attenuation is the mass
  thickness of that material along its ray (:mod:`perception.xrt.mass`);
- the **dual-energy ratio** (:func:`xrt_loglik`): at the measured ``A_high`` the class
  predicts ``A_low``; heavy elements absorb the low layer's photons far more (photo-effect ∝
  Z⁴/E³), so copper read as aluminium predicts too little. Over the object's interior cells
  (A_high at least half its median and ``RATIO_MIN_A``, at most ``RATIO_MAX_A``)
  ``d = ln(Σ A_low / Σ A_low,pred)`` is scored
  with a Student-t against the class's own spread (``ClassPrior.xrt_ratio_sd``, objects of
  the class at typical thickness) ⊕ ``RATIO_MODEL_SD`` (the beam model: what a step-wedge
  calibration of a real scanner leaves, ~2 %).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from perception.xrt import (
    AttenuationTable,
    StepEdges,
    XrtSetup,
    attenuation_ratio,
    cell_grid,
    decompose_two,
    mass_from_cells,
    separability,
    step_edges,
)
from perception.xrt.materials import effective_attenuation
from perception.xrt.physics import LayeredTable, bulk_attenuation
from perception.xrt.stack import RATIO_MAX_A, RATIO_MIN_A, ForeignRegion, foreign_region
from sorting.tracking.measurements import XrtMeasurement
from sorting.tracking.priors import ClassPrior
from sorting.tracking.tracker import PileView, Track

#: relative u of the X-ray mass scale: calibration, and the partial-volume cells at an object's
#: edge (the log of a mean transmission is below the mean log: read as steps on boxes, left
#: ~1-3 % low on cylinders and lumps, :mod:`perception.xrt.edges`)
XRT_CAL_REL = 0.03
#: above this share of opaque cells the X-ray mass is only a lower bound, and not used
XRT_MAX_OPAQUE = 0.02
#: relative u added when an object's X-ray cells were shared out from a view that held
#: touching neighbours (cells near the boundary may belong to either)
XRT_SHARED_REL = 0.10
#: volume-based and X-ray masses further apart than this many combined u: the X-ray one alone
XRT_CONSISTENT_K = 3.0
#: relative u of an object's own attenuation built from its XRF analysis that the analysis's
#: own u does not hold: the spot sees part of one face, not the bulk. The simulator's objects
#: are homogeneous, so there it is an allowance for real, layered objects, not a measured figure
XRT_OWN_REL = 0.02
_TABLES: dict[tuple[str, str, tuple[tuple[str, float], ...]], AttenuationTable] = {}


def class_table(prior: ClassPrior) -> AttenuationTable:
    """The attenuation table of ``prior``'s class: its mean bulk composition (cached)."""
    key = (prior.class_name, prior.xrt_rest, tuple(sorted(prior.composition.items())))
    table = _TABLES.get(key)
    if table is None:
        setup = XrtSetup()
        table = AttenuationTable(setup, bulk_attenuation(prior.composition, prior.xrt_rest,
                                                         setup))
        _TABLES[key] = table
    return table


@dataclass(frozen=True)
class OwnAttenuation:
    """An object's bulk attenuation from its own analysis (:func:`own_attenuation`): the
    ``table``, the relative u of the mass it reads (``rel``) and a ``key`` for caches."""

    table: AttenuationTable
    rel: float
    key: tuple[tuple[str, float], ...]


def own_attenuation(prior: ClassPrior, composition: Mapping[str, tuple[float, float]]
                    ) -> OwnAttenuation | None:
    """The attenuation of an object of ``prior``'s class whose composition (element → (mass
    fraction, u)) the XRF measured, the rest filled by the class's light compound, or None
    where it would weigh no better than the class's mean attenuation. The mass a cell reads
    scales with the inverse of the high layer's slope ``s = Σ f_e s_e + (1 − Σ f_e) s_rest``;
    its relative u is ``sqrt(Σ ((s_e − s_rest) u_e)²) / s`` ⊕ :data:`XRT_OWN_REL`, against the
    class's spread ``prior.xrt_mu_rel_sd`` of its objects' slopes."""
    f = {e: max(v[0], 0.0) for e, v in composition.items() if v[0] > 0}
    total = sum(f.values())
    if total <= 0:
        return None
    if total > 1.0:
        f = {e: x / total for e, x in f.items()}
    s_rest = _slope(prior.xrt_rest, None)
    slope = sum(x * _slope(prior.xrt_rest, e) for e, x in f.items()) + (
        1.0 - sum(f.values())) * s_rest
    u2 = sum(((_slope(prior.xrt_rest, e) - s_rest) * composition[e][1]) ** 2 for e in f)
    rel = math.hypot(math.sqrt(u2) / slope, XRT_OWN_REL)
    if rel >= prior.xrt_mu_rel_sd:
        return None
    key = tuple(sorted((e, round(x, 5)) for e, x in f.items()))
    return OwnAttenuation(_own_table(prior.xrt_rest, key), rel, key)


@lru_cache(maxsize=512)
def _own_table(rest: str, composition: tuple[tuple[str, float], ...]) -> AttenuationTable:
    setup = XrtSetup()
    return AttenuationTable(setup, bulk_attenuation(dict(composition), rest, setup))


@lru_cache(maxsize=256)
def _slope(rest: str, element: str | None) -> float:
    """High-layer slope at zero thickness (cm²/g) of pure ``element`` (None: the rest)."""
    return effective_attenuation({element: 1.0} if element else {}, rest)[1]


def xrt_mass(track: Track, prior: ClassPrior, own: OwnAttenuation | None = None
             ) -> tuple[float, float] | None:
    """(mass, u) kg of ``track`` from its X-ray transmission views, were it of ``prior``'s
    class, or None: no view, a view cut by the end of the detector line, or more than
    :data:`XRT_MAX_OPAQUE` of the cells opaque. The views are pieces of one pass (summed);
    each cell's horizontal area is taken at the object's mid-height (from the 3D views, else
    the class's typical height); u: counting noise ⊕ the class's spread of attenuation
    (``prior.xrt_mu_rel_sd``) ⊕ :data:`XRT_CAL_REL` ⊕ a quarter of the mid-height's share of
    the source height ⊕ :data:`XRT_SHARED_REL` for cells shared out among neighbours. With
    ``own`` (:func:`own_attenuation`) the cells are read for the object's own attenuation, and
    its u stands for the class's spread."""
    views = track.xrt
    if not views or any(v.truncated or v.opaque_share > XRT_MAX_OPAQUE for v in views):
        return None
    key = ("mass", prior.class_name, len(views), len(track.volumes),
           own.key if own is not None else None)
    if key not in track.xrt_cache:
        track.xrt_cache[key] = _mass(track, prior, own)
    out: tuple[float, float] = track.xrt_cache[key]
    return out


def track_height(track: Track, prior: ClassPrior) -> float:
    """The track's height (m): median of its whole 3D views, else its class's typical one
    (0 when the class has none)."""
    whole = [m.height_m for m in track.volumes if not m.truncated]
    if whole:
        return float(np.median(whole))
    return math.exp(prior.log_height_mean) if math.isfinite(prior.log_height_mean) else 0.0


def _area_scale(v: XrtMeasurement, z_mid: float) -> float:
    """A cell's horizontal area at height ``z_mid`` over its area at belt level (the beam
    fans out from the source above; at most halved)."""
    return max(v.source_height_m - z_mid, 0.5 * v.source_height_m) / v.source_height_m


def _mass(track: Track, prior: ClassPrior, own: OwnAttenuation | None = None
          ) -> tuple[float, float]:
    views = track.xrt
    z_mid = 0.5 * track_height(track, prior)
    mass = u2 = 0.0
    for v in views:
        m, u = _view_mass(v, prior, z_mid, own.table if own is not None else None)
        mass += m
        u2 += u**2
    height_rel = 0.25 * z_mid / views[0].source_height_m
    shared_rel = XRT_SHARED_REL if any(v.shared for v in views) else 0.0
    mu_rel = own.rel if own is not None else prior.xrt_mu_rel_sd
    rel = math.sqrt(mu_rel**2 + XRT_CAL_REL**2 + height_rel**2 + shared_rel**2)
    return mass, math.sqrt(u2 + (rel * mass) ** 2)


_EDGES: weakref.WeakKeyDictionary[XrtMeasurement, StepEdges | None] = (
    weakref.WeakKeyDictionary())


def view_edges(v: XrtMeasurement) -> StepEdges | None:
    """The rim of ``v``'s cells read as steps (:func:`perception.xrt.step_edges`; cached per
    view), or None where its cells have no positions or lie in one row or column."""
    if v in _EDGES:
        return _EDGES[v]
    edges = None
    if v.cell_s_m is not None and v.cell_y_m is not None:
        grid = cell_grid(v.cell_s_m, v.cell_y_m, v.cell_area_m2)
        if grid is not None:
            edges = step_edges(v.a_high, grid[0], grid[1], v.noise_a_high)
    _EDGES[v] = edges
    return edges


def _view_mass(v: XrtMeasurement, prior: ClassPrior, z_mid: float,
               table: AttenuationTable | None = None) -> tuple[float, float]:
    """(mass, counting u) kg of one view's cells for ``prior``'s bulk attenuation (or
    ``table``, the object's own), each cell's area taken at height ``z_mid``; the rim read as
    steps for a class of steep-sided objects (``prior.xrt_step_edges``)."""
    v = alone(v, prior)
    edges = view_edges(v) if prior.xrt_step_edges else None
    r = mass_from_cells(v.a_high, v.cos_theta, v.cell_area_m2 * _area_scale(v, z_mid),
                        table or class_table(prior), v.noise_a_high, edges=edges)
    return r.mass_kg, r.u_noise_kg


#: two classes' bulk attenuations this far apart (:func:`perception.xrt.separability`) are
#: told apart cell by cell in a pile; closer ones are read as one weighted material
PILE_MIN_SEPARABILITY = 0.3
#: classes of a pile under this weight are left out of the choice of the two materials
PILE_MIN_CLASS_WEIGHT = 0.05
#: relative u of a two-material reading: the pile's other materials, and the classes' bulk
#: attenuations being means of their objects'
PILE_BASIS_REL = 0.03


@dataclass(frozen=True)
class PileWeighing:
    """What the X-ray scanner weighs of a pile: ``mass_kg`` ± ``u_kg`` in all, and where its
    cells were split between two materials, the mass (kg, u kg) of each of the two classes
    (``by_class``, empty otherwise)."""

    mass_kg: float
    u_kg: float
    by_class: dict[str, tuple[float, float]] = field(default_factory=dict)


def pile_mass(pile: PileView, classes: list[tuple[ClassPrior, float]], height_m: float
              ) -> PileWeighing | None:
    """What a pile's X-ray view weighs of everything it saw through, or None where it cannot
    weigh it (cut by the end of the detector line, or more than :data:`XRT_MAX_OPAQUE` of its
    cells opaque). ``classes``: (class prior, weight), the members' classes by their share of
    the pile; the cells' area is taken at half ``height_m``, the pile's height.

    Where the two extreme classes (lowest and highest low/high attenuation ratio, among
    those over :data:`PILE_MIN_CLASS_WEIGHT`) are told apart (:data:`PILE_MIN_SEPARABILITY`),
    every cell is split between their bulk attenuations (:func:`perception.xrt.decompose_two`)
    and each class's mass is reported; u: counting through the split ⊕ :data:`XRT_CAL_REL` ⊕
    :data:`PILE_BASIS_REL` ⊕ the two classes' spread of attenuation. Otherwise the cells are
    read as each class and the readings averaged by weight; u: counting ⊕ the readings'
    spread ⊕ :data:`XRT_CAL_REL` ⊕ the classes' spread of attenuation. Both ⊕ a quarter of
    the mid-height's share of the source height."""
    v = pile.view
    if v.truncated or v.opaque_share > XRT_MAX_OPAQUE or not classes:
        return None
    z_mid = 0.5 * height_m
    height_rel = 0.25 * z_mid / v.source_height_m
    total = sum(w for _p, w in classes)
    weights = [w / total if total > 0 else 1.0 / len(classes) for _p, w in classes]
    main = [p for p, w in zip(classes, weights, strict=True) if w >= PILE_MIN_CLASS_WEIGHT]
    if not main:   # many classes, none of them likely: the likeliest alone
        main = [max(zip(classes, weights, strict=True), key=lambda pw: pw[1])[0]]
    ratio = {p.class_name: attenuation_ratio(class_table(p).mu, class_table(p).setup)
             for p, _w in main}
    lo = min(main, key=lambda p: ratio[p[0].class_name])[0]
    hi = max(main, key=lambda p: ratio[p[0].class_name])[0]
    ta, tb = class_table(lo), class_table(hi)
    setup = ta.setup
    if lo is not hi and separability(ta.mu, tb.mu, setup) >= PILE_MIN_SEPARABILITY:
        key = ("split", lo.class_name, hi.class_name)
        if key not in pile.cache:
            split = decompose_two(v.a_low, v.a_high, ta.mu, tb.mu, setup, v.noise_a_high)
            pile.cache[key] = (float(np.sum(split.t_a * v.cos_theta)),
                               float(np.sum(split.t_b * v.cos_theta)),
                               math.sqrt(float(np.sum(split.var_sum * v.cos_theta**2))))
        sum_a, sum_b, sum_u = pile.cache[key]
        area_g = v.cell_area_m2 * _area_scale(v, z_mid) * 1e4 / 1000.0  # kg per g/cm²
        m_a, m_b, noise = sum_a * area_g, sum_b * area_g, sum_u * area_g
        by_class = {}
        for p, m in ((lo, m_a), (hi, m_b)):
            rel = math.sqrt(p.xrt_mu_rel_sd**2 + XRT_CAL_REL**2 + PILE_BASIS_REL**2
                            + height_rel**2)
            by_class[p.class_name] = (m, math.hypot(rel * m, noise))
        rel = math.sqrt(0.5 * (lo.xrt_mu_rel_sd**2 + hi.xrt_mu_rel_sd**2) + XRT_CAL_REL**2
                        + PILE_BASIS_REL**2 + height_rel**2)
        mass = m_a + m_b
        return PileWeighing(mass, math.hypot(noise, rel * mass), by_class)
    readings = [_view_mass(v, p, z_mid) for p, _w in classes]
    mass = sum(w * r[0] for w, r in zip(weights, readings, strict=True))
    spread2 = sum(w * (r[0] - mass) ** 2 for w, r in zip(weights, readings, strict=True))
    noise2 = sum(w * r[1] ** 2 for w, r in zip(weights, readings, strict=True))
    mu_rel = sum(w * p.xrt_mu_rel_sd for w, (p, _w) in zip(weights, classes, strict=True))
    rel = math.sqrt(mu_rel**2 + XRT_CAL_REL**2 + height_rel**2)
    return PileWeighing(mass, math.sqrt(noise2 + spread2 + (rel * mass) ** 2))


#: a cell is part of the footprint above this low-layer log-attenuation (the segmenter's seed)
FOOTPRINT_A_LOW = 0.03


def xrt_footprint(track: Track) -> float | None:
    """Area (m²) the track's X-ray views covered (cells above ``FOOTPRINT_A_LOW`` in the low
    layer, the views' edge rings left out), or None without a whole view."""
    views = track.xrt
    if not views or any(v.truncated for v in views):
        return None
    area = sum(float(np.count_nonzero(v.a_low > FOOTPRINT_A_LOW)) * v.cell_area_m2
               for v in views)
    return area if area > 0 else None


#: where the driver flags a pixel opaque: T_high below 1e-3
A_OPAQUE = -math.log(1e-3)


def xrt_lower_bound(track: Track, prior: ClassPrior) -> float | None:
    """A lower bound (kg) on the mass of a track whose X-ray views have opaque cells (more
    than :data:`XRT_MAX_OPAQUE`, where :func:`xrt_mass` gives up): each opaque cell holds at
    least the mass thickness behind ``A_OPAQUE``; None without such views."""
    views = track.xrt
    if not views or any(v.truncated for v in views) or not any(
            v.opaque_share > XRT_MAX_OPAQUE for v in views):
        return None
    key = ("bound", prior.class_name, len(views), len(track.volumes))
    if key not in track.xrt_cache:
        capped = [replace(v, a_high=np.minimum(v.a_high, A_OPAQUE), opaque_cells=0)
                  for v in views]
        probe = replace(track, xrt=capped, xrt_cache={})
        track.xrt_cache[key] = _mass(probe, prior)[0]
    bound: float = track.xrt_cache[key]
    return bound


def above(mean: float, sd: float, bound: float) -> tuple[float, float]:
    """Mean and sd of a normal ``(mean, sd)`` told that the value is at least ``bound`` (the
    normal truncated below it). Far below the bound the normal itself is wrong (a fill factor
    or density far off its class's), so the sd keeps at least half the prior's relative sd
    instead of collapsing onto the bound."""
    if sd <= 0 or mean <= 0:
        return max(mean, bound), sd
    a = (bound - mean) / sd
    tail = 0.5 * math.erfc(a / math.sqrt(2.0))            # P(X > bound)
    # the inverse Mills ratio (its asymptote far out in the tail)
    lam = a + 1.0 / a if tail < 1e-12 else math.exp(-0.5 * a * a) / math.sqrt(
        2.0 * math.pi) / tail
    out_mean = mean + sd * lam
    out_sd = sd * math.sqrt(max(1.0 + a * lam - lam * lam, 0.0))
    return out_mean, max(out_sd, 0.5 * (sd / mean) * out_mean)


RATIO_MODEL_SD = 0.02
STUDENT_DOF = 3.0


def xrt_loglik(track: Track, prior: ClassPrior) -> float:
    """Log-likelihood of the track's dual-energy ratio under ``prior``'s class (0 without
    informative cells; see the module docstring)."""
    if not track.xrt:
        return 0.0
    key = ("ratio", prior.class_name, len(track.xrt))
    hit = track.xrt_cache.get(key)
    if hit is None:
        hit = _ratio_loglik(track, prior)
        track.xrt_cache[key] = hit
    return float(hit)


def _ratio_loglik(track: Track, prior: ClassPrior) -> float:
    views = [alone(v, prior) for v in track.xrt]
    a_low = np.concatenate([v.a_low for v in views])
    a_high = np.concatenate([v.a_high for v in views])
    # an edge cell averages object and belt transmissions, and the log of that mean is not
    # the mean log: both layers read low there, the low one more (its A is larger), which
    # makes every object look lighter. Interior cells only: at least half the median A.
    floor = max(RATIO_MIN_A, 0.5 * float(np.median(a_high)))
    sel = (a_high >= floor) & (a_high <= RATIO_MAX_A)
    if np.count_nonzero(sel) < 4:
        return 0.0
    table = class_table(prior)
    pred = float(np.sum(table.a_low(table.rho_t(a_high[sel]))))
    meas = float(np.sum(a_low[sel]))
    if pred <= 0 or meas <= 0:
        return 0.0
    d = math.log(meas / pred)
    sd = math.hypot(prior.xrt_ratio_sd, RATIO_MODEL_SD)
    z = d / sd
    return -0.5 * (STUDENT_DOF + 1.0) * math.log1p(z * z / STUDENT_DOF) - math.log(sd)


#: a view's cell counts as inside its track's footprint this far beyond the outline
FOOTPRINT_MARGIN_M = 0.01


def foreign_cells(track: Track, v: XrtMeasurement, prior: ClassPrior
                  ) -> tuple[ForeignRegion, NDArray[np.float64]] | None:
    """Another object in ``track``'s X-ray view ``v``: the cells whose dual-energy ratio
    reads another material than the track's own cells (:func:`perception.xrt.stack.
    foreign_region`, read against ``prior``'s class's table), with that class's bulk
    attenuation (the track's layer over the stacked cells), or None."""
    if v.cell_s_m is None or v.cell_y_m is None or v.truncated:
        return None
    grid = cell_grid(v.cell_s_m, v.cell_y_m, v.cell_area_m2)
    if grid is None:
        return None
    inside = (np.abs(v.cell_s_m - track.s_m) <= track.length_m / 2 + FOOTPRINT_MARGIN_M) & (
        np.abs(v.cell_y_m - track.y_m) <= track.width_m / 2 + FOOTPRINT_MARGIN_M)
    table = class_table(prior)
    region = foreign_region(v.a_low, v.a_high, grid[0], grid[1], inside, table, v.noise_a_high)
    return None if region is None else (region, table.mu)


def alone(v: XrtMeasurement, prior: ClassPrior) -> XrtMeasurement:
    """``v`` with the cells another object's layer covers (``v.layer``) read as ``prior``'s
    material alone: each such cell's ``ρt`` behind the layer
    (:class:`perception.xrt.physics.LayeredTable`), and the log-attenuations that ``ρt``
    gives alone, ``A_low`` keeping its measured departure from the layered prediction (which
    the dual-energy ratio test reads). ``v`` itself where it has no layer."""
    layer = v.layer
    if layer is None or not layer.cells.any():
        return v
    table = class_table(prior)
    behind = LayeredTable(table.setup, table.mu, layer.mu, layer.rho_t)
    sel = layer.cells
    rt = behind.rho_t(v.a_high[sel])
    a_low, a_high = v.a_low.copy(), v.a_high.copy()
    a_high[sel] = table.a_high(rt)
    a_low[sel] = table.a_low(rt) + (v.a_low[sel] - behind.a_low(rt))
    return replace(v, a_low=a_low, a_high=a_high, layer=None)
