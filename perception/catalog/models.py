"""Pydantic models of the catalog files in ``datasets/catalog`` and the loaded ``Catalog``.

Three YAML files, one model each: ``classes.yaml`` (:class:`ClassesFile`),
``materials.yaml`` (:class:`MaterialsFile`) and ``crma.yaml`` (:class:`CrmaFile`). The
models check what one entry can check on its own (ranges, units, which fields a shape or a
distribution needs); checks across entries and files (contiguous ids, known materials, CRM
flags) are in :mod:`perception.catalog.load`.

Units: lengths in m, densities in kg/m^3, composition as mass fractions 0-1, colours as
linear RGB 0-1, angles in degrees in YAML (``*_deg``) and radians in code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from perception.errors import CatalogError
from perception.sensors.scene import ShapeKind

_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
    "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm "
    "Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U "
    "Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
)
ELEMENTS: frozenset[str] = frozenset(_SYMBOLS.split())
"""The 118 element symbols (IUPAC), case-sensitive."""

PATTERNS = ("plain", "pcb", "keys", "screen", "metal", "rock", "label", "stripes", "cable")
"""Procedural textures the camera simulator knows (see ``perception.sensors.scene.Appearance``)."""

Stream = Literal["weee", "scrap", "slag", "clutter"]
DETECTOR_STREAMS: tuple[str, ...] = ("weee", "scrap", "slag")
"""Streams of detector classes; distractors use the pseudo-stream ``clutter``."""

_SHAPES: dict[str, ShapeKind] = {
    "box": ShapeKind.BOX,
    "cylinder": ShapeKind.CYLINDER,
    "lump": ShapeKind.LUMP,
}


def _element_symbol(value: str) -> str:
    if value not in ELEMENTS:
        raise ValueError(f"{value!r} is not an element symbol (e.g. 'Co', 'Nd')")
    return value


ElementSymbol = Annotated[str, AfterValidator(_element_symbol)]
SnakeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """A closed interval ``[min, max]``; YAML ``[a, b]``, ``{min: a, max: b}`` or a number."""

    min: float
    max: float

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError(f"expected [min, max], got {len(data)} values")
            return {"min": data[0], "max": data[1]}
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"min": data, "max": data}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("must be finite")
        if self.min > self.max:
            raise ValueError(f"min {self.min} must be <= max {self.max}")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        """A value drawn uniformly from the interval."""
        return float(rng.uniform(self.min, self.max))


class PositiveRange(Range):
    """A :class:`Range` whose values are all > 0 (sizes, densities)."""

    @model_validator(mode="after")
    def _positive(self) -> PositiveRange:
        if self.min <= 0:
            raise ValueError("must be > 0")
        return self


class FractionRange(Range):
    """A :class:`Range` inside ``[0, 1]`` (specular, fill factor)."""

    @model_validator(mode="after")
    def _fraction(self) -> FractionRange:
        if self.min < 0 or self.max > 1:
            raise ValueError("must lie in [0, 1]")
        return self


# -- element composition ----------------------------------------------------------------------

_DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "sd"),
    "lognormal": ("mean", "gsd"),
    "uniform": ("min", "max"),
    "balance": ("total",),
}


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


class ElementDist(_Model):
    """Distribution of one element's mass fraction across objects of a class.

    - ``normal``: ``mean``, ``sd``; truncated to [0, 1] by redrawing.
    - ``lognormal``: ``mean`` (of the untruncated lognormal), ``gsd`` (geometric standard
      deviation, >= 1); truncated to <= 1 by redrawing. Suits trace elements (ppm).
    - ``uniform``: ``min``, ``max`` within [0, 1].
    - ``balance``: what is left of ``total`` after every other element (``Fe`` in steel,
      ``Cu`` in brass); at most one per class.

    :meth:`expected_mean` is the exact mean of the truncated distribution.
    """

    dist: Literal["normal", "lognormal", "uniform", "balance"]
    mean: float | None = None
    sd: float | None = None
    gsd: float | None = None
    min: float | None = None
    max: float | None = None
    total: float | None = None

    @model_validator(mode="after")
    def _check(self) -> ElementDist:
        needed = _DIST_PARAMS[self.dist]
        for name in ("mean", "sd", "gsd", "min", "max", "total"):
            value = getattr(self, name)
            if name in needed and value is None:
                raise ValueError(f"{name}: required for dist {self.dist!r}")
            if name not in needed and value is not None:
                raise ValueError(
                    f"{name}: not a parameter of dist {self.dist!r} (takes {', '.join(needed)})"
                )
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name}: must be finite")
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None
            if not 0 <= self.mean <= 1:
                raise ValueError(f"mean: must lie in [0, 1], got {self.mean}")
            if self.sd <= 0:
                raise ValueError("sd: must be > 0")
            if self._normal_mass() < 0.5:
                raise ValueError(
                    f"normal(mean={self.mean}, sd={self.sd}) lies mostly outside [0, 1]; "
                    "use a lognormal for small fractions"
                )
        elif self.dist == "lognormal":
            assert self.mean is not None and self.gsd is not None
            if not 0 < self.mean < 1:
                raise ValueError(f"mean: must lie in (0, 1), got {self.mean}")
            if self.gsd < 1:
                raise ValueError("gsd: must be >= 1")
            mu, sigma = self._lognormal_params()
            if sigma > 0 and 1.0 - _cdf(-mu / sigma) > 1e-3:
                raise ValueError(
                    "lognormal exceeds a mass fraction of 1 too often (> 0.1 %); lower gsd"
                )
        elif self.dist == "uniform":
            assert self.min is not None and self.max is not None
            if not 0 <= self.min <= self.max <= 1:
                raise ValueError(f"need 0 <= min <= max <= 1, got min {self.min}, max {self.max}")
        else:
            assert self.total is not None
            if not 0 < self.total <= 1:
                raise ValueError(f"total: must lie in (0, 1], got {self.total}")
        return self

    def _normal_mass(self) -> float:
        assert self.mean is not None and self.sd is not None
        return _cdf((1 - self.mean) / self.sd) - _cdf(-self.mean / self.sd)

    def _lognormal_params(self) -> tuple[float, float]:
        assert self.mean is not None and self.gsd is not None
        sigma = math.log(self.gsd)
        return math.log(self.mean) - 0.5 * sigma * sigma, sigma

    def expected_mean(self) -> float:
        """Exact mean of the (truncated) distribution; for ``balance`` its ``total``."""
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None
            a, b = -self.mean / self.sd, (1 - self.mean) / self.sd
            return self.mean + self.sd * (_phi(a) - _phi(b)) / (_cdf(b) - _cdf(a))
        if self.dist == "lognormal":
            mu, sigma = self._lognormal_params()
            if sigma == 0:
                return math.exp(mu)
            return (
                math.exp(mu + 0.5 * sigma**2) * _cdf((-mu - sigma**2) / sigma) / _cdf(-mu / sigma)
            )
        if self.dist == "uniform":
            assert self.min is not None and self.max is not None
            return 0.5 * (self.min + self.max)
        assert self.total is not None
        return self.total

    def expected_variance(self) -> float:
        """Exact variance of the (truncated) distribution; 0 for ``balance`` (its spread is
        the others', see :meth:`ClassSpec.sd_composition`)."""
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None
            a, b = -self.mean / self.sd, (1 - self.mean) / self.sd
            z = _cdf(b) - _cdf(a)
            shift = (_phi(a) - _phi(b)) / z
            return self.sd**2 * (1.0 + (a * _phi(a) - b * _phi(b)) / z - shift**2)
        if self.dist == "lognormal":
            mu, sigma = self._lognormal_params()
            if sigma == 0:
                return 0.0
            # raw moments of the lognormal truncated to <= 1
            keep = _cdf(-mu / sigma)
            m1 = math.exp(mu + 0.5 * sigma**2) * _cdf((-mu - sigma**2) / sigma) / keep
            m2 = math.exp(2 * mu + 2 * sigma**2) * _cdf((-mu - 2 * sigma**2) / sigma) / keep
            return max(m2 - m1 * m1, 0.0)
        if self.dist == "uniform":
            assert self.min is not None and self.max is not None
            return (self.max - self.min) ** 2 / 12.0
        return 0.0

    def sample(self, rng: np.random.Generator) -> float:
        """One mass fraction in [0, 1]. ``balance`` returns ``total`` (the caller subtracts)."""
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None
            while True:  # >= 50 % acceptance (checked above), so this ends quickly
                x = float(rng.normal(self.mean, self.sd))
                if 0.0 <= x <= 1.0:
                    return x
        if self.dist == "lognormal":
            mu, sigma = self._lognormal_params()
            while True:  # >= 99.9 % acceptance
                x = float(rng.lognormal(mu, sigma))
                if x <= 1.0:
                    return x
        if self.dist == "uniform":
            assert self.min is not None and self.max is not None
            return float(rng.uniform(self.min, self.max))
        assert self.total is not None
        return self.total


# -- class entries -----------------------------------------------------------------------------


class SizeSpec(_Model):
    """Size ranges in m. Box and lump: ``length``, ``width``, ``height`` (bounding box);
    cylinder: ``length`` and ``diameter``. In ``size_formats`` an entry also has a ``name``
    and a relative ``weight``."""

    name: str | None = None
    weight: float = Field(default=1.0, gt=0)
    length: PositiveRange
    width: PositiveRange | None = None
    height: PositiveRange | None = None
    diameter: PositiveRange | None = None

    def check_shape(self, shape: str) -> None:
        """Raise ``ValueError`` when the dimensions do not fit ``shape``."""
        if shape == "cylinder":
            if self.diameter is None:
                raise ValueError("diameter: required for a cylinder")
            if self.width is not None or self.height is not None:
                raise ValueError("a cylinder takes length and diameter, not width/height")
        else:
            if self.width is None or self.height is None:
                raise ValueError(f"width and height: required for a {shape}")
            if self.diameter is not None:
                raise ValueError(f"diameter: not used by a {shape}")

    def sample(self, rng: np.random.Generator) -> tuple[float, float, float]:
        """``(length, width, height)`` in m; a cylinder gives ``(length, d, d)``."""
        length = self.length.sample(rng)
        if self.diameter is not None:
            d = self.diameter.sample(rng)
            return length, d, d
        assert self.width is not None and self.height is not None
        return length, self.width.sample(rng), self.height.sample(rng)


class LumpSpec(_Model):
    """Shape parameters of a LUMP height field (see ``sorting.sim.spawner.lump_heightmap``).

    ``footprint_exponent``: superellipse exponent of the outline (2 = ellipse, larger = boxier);
    ``dome_exponent``: profile exponent (1 = cone, 2 = ellipsoid, larger = flatter top);
    ``radial_roughness`` / ``height_roughness``: relative amplitude of the smooth random
    perturbations of outline and height (0 = perfectly smooth).
    """

    footprint_exponent: PositiveRange = PositiveRange(min=2.0, max=2.0)
    dome_exponent: PositiveRange = PositiveRange(min=1.5, max=2.5)
    radial_roughness: float = Field(default=0.15, ge=0, le=0.4)
    height_roughness: float = Field(default=0.15, ge=0, le=0.5)


class YawSpec(_Model):
    """Yaw of an object on the belt: ``uniform`` over a full turn, or ``aligned`` to
    ``mean_deg`` (0 = long axis along travel) with a normal spread ``sd_deg``, either end
    first (a 180 degree flip with probability 1/2)."""

    kind: Literal["uniform", "aligned"]
    mean_deg: float = 0.0
    sd_deg: float = Field(default=0.0, ge=0, le=180)

    def sample(self, rng: np.random.Generator) -> float:
        """Yaw in rad, wrapped to [-pi, pi)."""
        if self.kind == "uniform":
            return float(rng.uniform(-math.pi, math.pi))
        yaw = math.radians(self.mean_deg + float(rng.normal(0.0, self.sd_deg)))
        if rng.random() < 0.5:
            yaw += math.pi
        return (yaw + math.pi) % (2 * math.pi) - math.pi


def _rgb(value: tuple[float, float, float]) -> tuple[float, float, float]:
    if any(not 0 <= c <= 1 for c in value):
        raise ValueError(f"components must lie in [0, 1], got {list(value)}")
    return value


Rgb = Annotated[tuple[float, float, float], AfterValidator(_rgb)]


class AppearanceVariant(_Model):
    """One look of a class: linear RGB base colour (jittered by ``rgb_sd`` per channel), an
    accent colour, a pattern from :data:`PATTERNS`, a specular range, and optionally the
    surface ``material`` this look implies (else the class's)."""

    weight: float = Field(default=1.0, gt=0)
    base_rgb: Rgb
    rgb_sd: float = Field(default=0.02, ge=0, le=0.2)
    accent_rgb: Rgb = (0.5, 0.5, 0.5)
    pattern: Literal["plain", "pcb", "keys", "screen", "metal", "rock", "label", "stripes", "cable"]
    specular: FractionRange = FractionRange(min=0.1, max=0.1)
    material: str | None = None


class ClassSpec(_Model):
    """One object class (or distractor) of the catalog. See ``datasets/catalog/README.md``."""

    id: int = Field(ge=0)
    name: SnakeName
    display_name: str = Field(min_length=1)
    stream: Stream
    distractor: bool = False
    abundance: float = Field(default=1.0, gt=0)
    crm_bearing: bool
    crm_targets: list[ElementSymbol] = Field(default_factory=list)
    is_hazard: bool = False
    hazard: str | None = None
    contains_battery: bool = False
    shape: Literal["box", "cylinder", "lump"]
    size_m: SizeSpec | None = None
    size_formats: list[SizeSpec] | None = None
    lump: LumpSpec | None = None
    yaw: YawSpec
    material: SnakeName
    density_kg_m3: PositiveRange | None = None
    fill_factor: FractionRange | None = None
    composition: dict[ElementSymbol, ElementDist]
    appearance: list[AppearanceVariant] = Field(min_length=1)
    source: str = Field(min_length=10)
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ClassSpec:
        if self.distractor != (self.stream == "clutter"):
            raise ValueError("distractor: true goes with stream 'clutter' and only with it")
        if (self.size_m is None) == (self.size_formats is None):
            raise ValueError("give exactly one of size_m and size_formats")
        if self.size_formats is not None and not self.size_formats:
            raise ValueError("size_formats: must not be empty")
        if self.density_kg_m3 is not None and self.fill_factor is not None:
            raise ValueError(
                "give density_kg_m3 (bulk) or fill_factor (x material density), not both"
            )
        if self.fill_factor is not None and self.fill_factor.min <= 0:
            raise ValueError("fill_factor: must be > 0")
        if self.lump is not None and self.shape != "lump":
            raise ValueError(f"lump: only for shape 'lump', not {self.shape!r}")
        if self.is_hazard and not self.hazard:
            raise ValueError("hazard: say what the hazard is when is_hazard is true")
        if self.crm_bearing and not self.crm_targets:
            raise ValueError("crm_targets: name the CRM elements of a crm_bearing class")
        if not self.crm_bearing and self.crm_targets:
            raise ValueError("crm_targets: only for crm_bearing classes")
        for sym in self.crm_targets:
            if sym not in self.composition:
                raise ValueError(f"crm_targets: {sym!r} is not in the composition")
        balances = [s for s, d in self.composition.items() if d.dist == "balance"]
        if len(balances) > 1:
            raise ValueError(f"composition: at most one balance element, got {balances}")
        others = sum(d.expected_mean() for d in self.composition.values() if d.dist != "balance")
        limit = self.composition[balances[0]].expected_mean() if balances else 1.0
        if others > limit + 1e-12:
            what = f"the balance total {limit}" if balances else "1"
            raise ValueError(f"composition: mean fractions sum to {others:.4f} > {what}")
        return self

    @property
    def shape_kind(self) -> ShapeKind:
        return _SHAPES[self.shape]

    @property
    def formats(self) -> list[SizeSpec]:
        """Size formats (one when the class gives ``size_m``)."""
        if self.size_formats is not None:
            return list(self.size_formats)
        assert self.size_m is not None
        return [self.size_m]

    @property
    def lump_spec(self) -> LumpSpec:
        return self.lump if self.lump is not None else LumpSpec()

    def mean_composition(self) -> dict[str, float]:
        """Expected mass fraction of each element (balance = total - the others' means)."""
        out = {s: d.expected_mean() for s, d in self.composition.items() if d.dist != "balance"}
        for s, d in self.composition.items():
            if d.dist == "balance":
                out[s] = max(0.0, d.expected_mean() - sum(out.values()))
        return out

    def sd_composition(self) -> dict[str, float]:
        """Standard deviation of each element's mass fraction over the class's objects (the
        elements are drawn independently; the balance element varies by the others' sum)."""
        var = {s: d.expected_variance() for s, d in self.composition.items()
               if d.dist != "balance"}
        for s, d in self.composition.items():
            if d.dist == "balance":
                var[s] = sum(var.values())
        return {s: math.sqrt(v) for s, v in var.items()}


class ClassesFile(_Model):
    """``classes.yaml``."""

    version: int = Field(ge=1)
    distractor_id_base: int = Field(ge=1)
    classes: list[ClassSpec] = Field(min_length=1)
    distractors: list[ClassSpec] = Field(default_factory=list)


class MaterialSpec(_Model):
    """One entry of ``materials.yaml``."""

    id: SnakeName
    hsi_id: int = Field(ge=0, le=254)
    name: str = Field(min_length=1)
    family: Literal["polymer", "composite", "organic", "mineral", "metal"]
    density_kg_m3: PositiveRange
    nir_active: bool
    notes: str | None = None


class MaterialsFile(_Model):
    """``materials.yaml``."""

    materials: list[MaterialSpec] = Field(min_length=1)


class CrmaEntry(_Model):
    """One line of an annex: a raw material and the element symbols it covers (directly in
    ``elements`` or through a named ``group``)."""

    name: str = Field(min_length=1)
    qualifier: str | None = None
    elements: list[ElementSymbol] = Field(default_factory=list)
    group: str | None = None
    note: str | None = None


class CrmaFile(_Model):
    """``crma.yaml``: Regulation (EU) 2024/1252 Annex I (strategic) and Annex II (critical)."""

    regulation: str
    source: str
    groups: dict[str, list[ElementSymbol]]
    rare_earth_convention: str
    strategic: list[CrmaEntry] = Field(min_length=1)
    critical: list[CrmaEntry] = Field(min_length=1)


# -- loaded objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrmaLists:
    """The CRMA lists resolved to element symbols.

    ``strategic`` / ``critical`` are the annex entries; ``strategic_elements`` and
    ``critical_elements`` the symbols they cover (groups expanded).
    """

    regulation: str
    source: str
    groups: Mapping[str, tuple[str, ...]]
    strategic: tuple[CrmaEntry, ...]
    critical: tuple[CrmaEntry, ...]
    strategic_elements: frozenset[str]
    critical_elements: frozenset[str]

    @classmethod
    def from_file(cls, data: CrmaFile) -> CrmaLists:
        """Resolve groups. Raises ``CatalogError`` for an unknown group name."""
        groups = {k: tuple(v) for k, v in data.groups.items()}

        def covered(entries: list[CrmaEntry], annex: str) -> frozenset[str]:
            out: set[str] = set()
            for i, e in enumerate(entries):
                out.update(e.elements)
                if e.group is not None:
                    if e.group not in groups:
                        raise CatalogError(
                            f"crma.yaml: {annex}[{i}].group: unknown group {e.group!r} "
                            f"(known: {', '.join(sorted(groups))})"
                        )
                    out.update(groups[e.group])
            return frozenset(out)

        return cls(
            regulation=data.regulation,
            source=data.source,
            groups=groups,
            strategic=tuple(data.strategic),
            critical=tuple(data.critical),
            strategic_elements=covered(data.strategic, "strategic"),
            critical_elements=covered(data.critical, "critical"),
        )

    def flags(self, symbol: str) -> set[str]:
        """``{"critical", "strategic"}``, a subset of it, or the empty set."""
        out: set[str] = set()
        if symbol in self.critical_elements:
            out.add("critical")
        if symbol in self.strategic_elements:
            out.add("strategic")
        return out

    def entries_for(self, symbol: str) -> list[tuple[str, CrmaEntry]]:
        """``(annex, entry)`` pairs naming ``symbol`` (annex: ``strategic`` or ``critical``)."""
        out: list[tuple[str, CrmaEntry]] = []
        for annex, entries in (("strategic", self.strategic), ("critical", self.critical)):
            for e in entries:
                if symbol in e.elements or (e.group is not None and symbol in self.groups[e.group]):
                    out.append((annex, e))
        return out


@dataclass(frozen=True)
class Catalog:
    """Everything in ``datasets/catalog``, validated.

    ``classes`` are the detector classes in id order (``classes[i].id == i``);
    ``distractors`` the clutter entries (ids from ``distractor_id_base``).
    """

    root: Path
    classes: tuple[ClassSpec, ...]
    distractors: tuple[ClassSpec, ...]
    materials: Mapping[str, MaterialSpec]
    crma: CrmaLists
    distractor_id_base: int
    _by_name: dict[str, ClassSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_name", {c.name: c for c in (*self.classes, *self.distractors)}
        )

    @property
    def class_names(self) -> list[str]:
        """Detector class names in id order (the detector's ``names`` list)."""
        return [c.name for c in self.classes]

    @property
    def streams(self) -> tuple[str, ...]:
        return DETECTOR_STREAMS

    def get(self, name: str) -> ClassSpec:
        """A class or distractor by name; ``CatalogError`` naming the known ones otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise CatalogError(
                f"unknown class {name!r}; known: {', '.join(sorted(self._by_name))}"
            ) from None

    def by_id(self, class_id: int) -> ClassSpec:
        """A detector class by id (0..N-1) or a distractor by its id."""
        if 0 <= class_id < len(self.classes):
            return self.classes[class_id]
        k = class_id - self.distractor_id_base
        if 0 <= k < len(self.distractors):
            return self.distractors[k]
        raise CatalogError(f"no class with id {class_id}")

    def in_stream(self, stream: str) -> list[ClassSpec]:
        """The entries of a stream (``clutter`` gives the distractors)."""
        return [c for c in (*self.classes, *self.distractors) if c.stream == stream]

    def material(self, material_id: str) -> MaterialSpec:
        try:
            return self.materials[material_id]
        except KeyError:
            raise CatalogError(f"unknown material {material_id!r}") from None
