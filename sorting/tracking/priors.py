"""Class priors from the catalog: what we expect of an object when we only know its class.

Besides the moments of volume, density, mass and composition, each prior carries what the
class posterior (:mod:`sorting.tracking.posterior`) needs to weigh the sensors' evidence:
the log-volume and log-height spread, and how often each surface material (as the
hyperspectral classifier names it: metals as one group ``"metal"``) occurs.

The priors are moments of the catalog's own per-class distributions (sizes,
densities, compositions), estimated by drawing ``n`` objects per class from
the spawner with a fixed seed — the same distributions the simulator uses,
which is exactly what a class prior is. Nothing here sees a particular
object's truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from perception.catalog import Catalog, load_catalog
from perception.sensors.scene import SceneObject, ShapeKind
from perception.xrt.materials import class_rest, effective_attenuation
from perception.xrt.physics import DEFAULT_REST, AttenuationTable, XrtSetup, log_attenuation
from sorting.sim.spawner import ObjectSpawner

UNKNOWN_CLASS = "unknown"


@dataclass(frozen=True)
class ClassPrior:
    """Moments of one class: volume (m³), density (kg/m³), mass (kg), composition (fractions)."""

    class_name: str
    volume_m3: float
    volume_sd_m3: float
    density_kg_m3: float
    density_sd_kg_m3: float
    mass_kg: float
    mass_sd_kg: float
    composition: dict[str, float]
    composition_sd: dict[str, float]
    log_volume_mean: float = math.nan
    log_volume_sd: float = math.nan
    log_height_mean: float = math.nan
    log_height_sd: float = math.nan
    log_area_mean: float = math.nan           # footprint seen from above (m², log)
    log_area_sd: float = math.nan
    short_side_m: float = math.inf            # median smaller side of the footprint (m)
    surface: dict[str, float] | None = None   # HSI material name -> share of objects
    xrt_rest: str = DEFAULT_REST              # light compound filling the composition (XRT)
    xrt_mu_rel_sd: float = 0.0                # relative spread of objects' X-ray attenuation
    xrt_ratio_sd: float = 0.0                 # spread of ln(A_low / class's A_low) (XRT)
    #: the class's objects have steep sides (boxes): X-ray rim cells are read as steps
    #: (:func:`perception.xrt.step_edges`)
    xrt_step_edges: bool = False
    #: element -> the drawn objects' fractions, sorted: the class's distribution itself, for
    #: what a silent XRF analysis says (an element below the level the fit keeps)
    composition_samples: dict[str, np.ndarray] = field(default_factory=dict, compare=False,
                                                       repr=False)


@cache
def class_priors(n: int = 300, seed: int = 20261127) -> dict[str, ClassPrior]:
    """Priors for every detector class of the default catalog (cached)."""
    return priors_for(load_catalog(), n=n, seed=seed)


def priors_for(catalog: Catalog, n: int = 300, seed: int = 20261127) -> dict[str, ClassPrior]:
    """Priors for every detector class of ``catalog`` from ``n`` seeded draws per class."""
    spawner = ObjectSpawner(catalog, np.random.default_rng(seed))
    rest = class_rest(catalog)
    out: dict[str, ClassPrior] = {}
    pooled: list[SceneObject] = []
    means: list[dict[str, float]] = []
    sds: list[dict[str, float]] = []
    for spec in catalog.classes:
        objs = [spawner.spawn(i, 0.0, 0.0, class_name=spec.name) for i in range(n)]
        pooled.extend(objs)
        means.append(spec.mean_composition())
        sds.append(spec.sd_composition())
        out[spec.name] = _moments(spec.name, objs, catalog, rest, means[-1], sds[-1])
    # an object whose class the detector could not tell: any class of the catalog, equally
    # likely -- wide, but honest intervals instead of none (the mixture's moments)
    elements = {e for m in means for e in m}
    pooled_mean = {e: sum(m.get(e, 0.0) for m in means) / len(means) for e in elements}
    pooled_sd = {e: math.sqrt(max(sum(sd.get(e, 0.0) ** 2 + m.get(e, 0.0) ** 2
                                      for m, sd in zip(means, sds, strict=True)) / len(means)
                                  - pooled_mean[e] ** 2, 0.0)) for e in elements}
    out[UNKNOWN_CLASS] = _moments(UNKNOWN_CLASS, pooled, catalog, rest, pooled_mean, pooled_sd)
    return out


def hsi_name(catalog: Catalog, material: str) -> str:
    """The name the hyperspectral classifier gives a catalog material (metals: ``"metal"``)."""
    spec = catalog.materials.get(material)
    return "metal" if spec is not None and spec.family == "metal" else material


def _footprint_m2(o: SceneObject) -> float:
    """The object's footprint seen from above (m²): length × width, a lump's covered cells."""
    if o.heightmap_m is not None:
        return float(np.count_nonzero(o.heightmap_m > 1e-5)) * o.cell_m**2
    return o.size_m[0] * o.size_m[1]


def _moments(name: str, objs: list[SceneObject], catalog: Catalog,
             rest: dict[str, str], mean_composition: dict[str, float],
             sd_composition: dict[str, float]) -> ClassPrior:
    """The class's moments from its drawn ``objs``; its composition's mean and sd are the
    catalog's exact ones (``mean_composition``, ``sd_composition``): of a few hundred draws
    of a lognormal trace element (gsd 3-4) the mean is off by 10-30 % and the sd by up to
    ~50 %, which every object of the class would carry into the stream's grade and its u."""
    vol = np.array([o.volume_m3() for o in objs])
    rho = np.array([o.density_kg_m3 for o in objs])
    mass = vol * rho
    elements = sorted({e for o in objs for e in o.composition})
    comp = np.array([[o.composition.get(e, 0.0) for e in elements] for o in objs])
    log_v = np.log(vol)
    log_h = np.log([o.height_m for o in objs])
    log_a = np.log([_footprint_m2(o) for o in objs])
    short = np.median([min(o.size_m[0], o.size_m[1]) for o in objs])
    surface: dict[str, float] = {}
    for o in objs:
        key = hsi_name(catalog, o.material)
        surface[key] = surface.get(key, 0.0) + 1.0 / len(objs)
    # X-ray attenuation: the class's mean composition stands for all its objects; how far an
    # object's own attenuation (its high-layer slope) departs from the class's is the spread
    mean_comp = {e: float(mean_composition.get(e, 0.0)) for e in elements}
    xrt_rest = rest.get(name, DEFAULT_REST)
    mu_class, slope_class = effective_attenuation(mean_comp, xrt_rest)
    table = AttenuationTable(XrtSetup(), mu_class)
    slopes, ratio_dev = [], []
    for o in objs:
        mu_o, slope_o = effective_attenuation(o.composition, rest.get(o.class_name, DEFAULT_REST))
        slopes.append(slope_o)
        # the object at a typical chord (60 % of its height): its A_low against the class's
        rho_t = 0.6 * o.height_m * 100.0 * o.density_kg_m3 / 1000.0
        a_low, a_high = log_attenuation(XrtSetup(), mu_o, np.array(rho_t))
        pred = float(table.a_low(table.rho_t(np.array([a_high]))[0]))
        if pred > 0 and a_low > 0:
            ratio_dev.append(math.log(float(a_low) / pred))
    rel_slope = np.array(slopes) / slope_class - 1.0
    return ClassPrior(
        class_name=name,
        volume_m3=float(vol.mean()),
        volume_sd_m3=float(vol.std(ddof=1)),
        density_kg_m3=float(rho.mean()),
        density_sd_kg_m3=float(rho.std(ddof=1)),
        mass_kg=float(mass.mean()),
        mass_sd_kg=float(mass.std(ddof=1)),
        composition={e: float(mean_composition.get(e, 0.0)) for e in elements},
        composition_sd={e: float(sd_composition.get(e, 0.0)) for e in elements},
        log_volume_mean=float(log_v.mean()),
        log_volume_sd=float(log_v.std(ddof=1)),
        log_height_mean=float(log_h.mean()),
        log_height_sd=float(log_h.std(ddof=1)),
        log_area_mean=float(log_a.mean()),
        log_area_sd=float(log_a.std(ddof=1)),
        short_side_m=float(short),
        surface=surface,
        xrt_rest=xrt_rest,
        xrt_mu_rel_sd=float(np.sqrt(np.mean(rel_slope**2))),
        xrt_ratio_sd=float(np.sqrt(np.mean(np.square(ratio_dev)))) if ratio_dev else 0.0,
        xrt_step_edges=all(o.shape == ShapeKind.BOX for o in objs),
        composition_samples={e: np.sort(comp[:, j]) for j, e in enumerate(elements)},
    )
