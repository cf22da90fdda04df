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
from dataclasses import replace

import numpy as np

from perception.xrt import AttenuationTable, XrtSetup, mass_from_cells
from perception.xrt.physics import bulk_attenuation
from sorting.tracking.priors import ClassPrior
from sorting.tracking.tracker import Track

#: relative u of the X-ray mass scale: calibration, and the partial-volume cells at an object's
#: edge (the log of a mean transmission is below the mean log: ~2.5 % low on dense metal pieces)
XRT_CAL_REL = 0.03
#: above this share of opaque cells the X-ray mass is only a lower bound, and not used
XRT_MAX_OPAQUE = 0.02
#: relative u added when an object's X-ray cells were shared out from a view that held
#: touching neighbours (cells near the boundary may belong to either)
XRT_SHARED_REL = 0.10
#: volume-based and X-ray masses further apart than this many combined u: the X-ray one alone
XRT_CONSISTENT_K = 3.0
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


def xrt_mass(track: Track, prior: ClassPrior) -> tuple[float, float] | None:
    """(mass, u) kg of ``track`` from its X-ray transmission views, were it of ``prior``'s
    class, or None: no view, a view cut by the end of the detector line, or more than
    :data:`XRT_MAX_OPAQUE` of the cells opaque. The views are pieces of one pass (summed);
    each cell's horizontal area is taken at the object's mid-height (from the 3D views, else
    the class's typical height); u: counting noise ⊕ the class's spread of attenuation
    (``prior.xrt_mu_rel_sd``) ⊕ :data:`XRT_CAL_REL` ⊕ a quarter of the mid-height's share of
    the source height ⊕ :data:`XRT_SHARED_REL` for cells shared out among neighbours."""
    views = track.xrt
    if not views or any(v.truncated or v.opaque_share > XRT_MAX_OPAQUE for v in views):
        return None
    key = ("mass", prior.class_name, len(views), len(track.volumes))
    if key not in track.xrt_cache:
        track.xrt_cache[key] = _mass(track, prior)
    out: tuple[float, float] = track.xrt_cache[key]
    return out


def _mass(track: Track, prior: ClassPrior) -> tuple[float, float]:
    views = track.xrt
    whole = [m.height_m for m in track.volumes if not m.truncated]
    if whole:
        z_mid = 0.5 * float(np.median(whole))
    elif math.isfinite(prior.log_height_mean):
        z_mid = 0.5 * math.exp(prior.log_height_mean)
    else:
        z_mid = 0.0
    table = class_table(prior)
    mass = u2 = 0.0
    for v in views:
        scale = max(v.source_height_m - z_mid, 0.5 * v.source_height_m) / v.source_height_m
        r = mass_from_cells(v.a_high, v.cos_theta, v.cell_area_m2 * scale, table,
                            v.noise_a_high)
        mass += r.mass_kg
        u2 += r.u_noise_kg**2
    height_rel = 0.25 * z_mid / views[0].source_height_m
    shared_rel = XRT_SHARED_REL if any(v.shared for v in views) else 0.0
    rel = math.sqrt(prior.xrt_mu_rel_sd**2 + XRT_CAL_REL**2 + height_rel**2 + shared_rel**2)
    return mass, math.sqrt(u2 + (rel * mass) ** 2)


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


RATIO_MIN_A = 0.05
RATIO_MAX_A = 6.0
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
    a_low = np.concatenate([v.a_low for v in track.xrt])
    a_high = np.concatenate([v.a_high for v in track.xrt])
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
