"""Make objects for the simulated belt from the catalog: class, shape, size, pose, density,
composition, appearance; and sample where they arrive on the belt.

Everything random comes from the ``numpy.random.Generator`` passed in, in a fixed order, so
the same seed gives the same objects. Units: m, rad, kg/m^3, mass fractions 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.catalog.models import DETECTOR_STREAMS, Catalog, ClassSpec, LumpSpec
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.errors import ConfigError

FloatArray = NDArray[np.float64]

LUMP_CELL_M = 0.002
"""Cell size of LUMP height fields (m)."""


class ObjectSpawner:
    """Draws :class:`SceneObject` s from the catalog.

    ``mix`` maps keys to non-negative weights. A key is a stream (``weee``, ``scrap``,
    ``slag``, or ``clutter`` for the distractors), whose weight is shared among its classes
    in proportion to their catalog ``abundance``, or a class/distractor name, whose weight
    goes to that class; weights of both kinds add up. ``None`` means every detector class
    in proportion to its abundance. Unknown keys or all-zero weights raise ``ConfigError``.

    ``spawn(object_id, x_m, y_m)`` matches ``sorting.sim.world.SpawnFn``.
    """

    def __init__(
        self,
        catalog: Catalog,
        rng: np.random.Generator,
        mix: Mapping[str, float] | None = None,
        *,
        lump_cell_m: float = LUMP_CELL_M,
    ) -> None:
        if lump_cell_m <= 0:
            raise ConfigError(f"lump_cell_m must be > 0, got {lump_cell_m}")
        self.catalog = catalog
        self.rng = rng
        self.lump_cell_m = lump_cell_m
        self.entries, self.probabilities = resolve_mix(catalog, mix)

    def class_probability(self, name: str) -> float:
        """Probability that one spawn is of class ``name`` (0 if not in the mix)."""
        for entry, p in zip(self.entries, self.probabilities, strict=True):
            if entry.name == name:
                return float(p)
        return 0.0

    def sample_class(self) -> ClassSpec:
        """One class drawn by the mix weights."""
        k = int(self.rng.choice(len(self.entries), p=self.probabilities))
        return self.entries[k]

    def spawn(
        self, object_id: int, x_m: float, y_m: float, *, class_name: str | None = None
    ) -> SceneObject:
        """A new object at belt position (``x_m``, ``y_m``) resting on the belt (z = 0).

        The class is drawn from the mix unless ``class_name`` is given (``CatalogError`` if
        unknown). Then, in this order: size format and size, yaw, density, composition,
        appearance, and for LUMP shapes the height field.
        """
        spec = self.catalog.get(class_name) if class_name is not None else self.sample_class()
        rng = self.rng
        fmt = _pick_weighted(rng, [f.weight for f in spec.formats])
        size = spec.formats[fmt].sample(rng)
        yaw = spec.yaw.sample(rng)
        density = self._density(spec)
        composition = sample_composition(spec, rng)
        appearance, material = self._appearance(spec)
        heightmap = None
        if spec.shape_kind == ShapeKind.LUMP:
            heightmap = lump_heightmap(rng, size, spec.lump_spec, self.lump_cell_m)
        return SceneObject(
            object_id=object_id,
            class_name=spec.name,
            stream=spec.stream,
            shape=spec.shape_kind,
            size_m=size,
            x_m=float(x_m),
            y_m=float(y_m),
            yaw_rad=yaw,
            material=material,
            density_kg_m3=density,
            composition=composition,
            appearance=appearance,
            heightmap_m=heightmap,
            cell_m=self.lump_cell_m,
        )

    def _density(self, spec: ClassSpec) -> float:
        if spec.density_kg_m3 is not None:
            return spec.density_kg_m3.sample(self.rng)
        solid = self.catalog.material(spec.material).density_kg_m3.sample(self.rng)
        fill = spec.fill_factor.sample(self.rng) if spec.fill_factor is not None else 1.0
        return solid * fill

    def _appearance(self, spec: ClassSpec) -> tuple[Appearance, str]:
        rng = self.rng
        look = spec.appearance[_pick_weighted(rng, [a.weight for a in spec.appearance])]
        jitter = rng.normal(0.0, look.rgb_sd, 3) if look.rgb_sd > 0 else np.zeros(3)
        base = np.clip(np.asarray(look.base_rgb) + jitter, 0.0, 1.0)
        appearance = Appearance(
            base_rgb=(float(base[0]), float(base[1]), float(base[2])),
            accent_rgb=look.accent_rgb,
            pattern=look.pattern,
            specular=look.specular.sample(rng),
            texture_seed=int(rng.integers(0, 2**31 - 1)),
        )
        return appearance, look.material or spec.material


def resolve_mix(
    catalog: Catalog, mix: Mapping[str, float] | None
) -> tuple[list[ClassSpec], FloatArray]:
    """Entries with non-zero probability and their probabilities (summing to 1).

    See :class:`ObjectSpawner` for what the keys mean. Raises ``ConfigError``.
    """
    if mix is None:
        mix = {s: sum(c.abundance for c in catalog.in_stream(s)) for s in DETECTOR_STREAMS}
    weights: dict[str, float] = {}
    streams = (*DETECTOR_STREAMS, "clutter")
    known = {c.name for c in (*catalog.classes, *catalog.distractors)}
    for key, w in mix.items():
        if not math.isfinite(w) or w < 0:
            raise ConfigError(f"mix.{key}: weight must be a finite number >= 0, got {w}")
        if key in streams:
            members = catalog.in_stream(key)
            if not members and w > 0:
                raise ConfigError(f"mix.{key}: the catalog has no classes in stream {key!r}")
            total = sum(c.abundance for c in members)
            for c in members:
                weights[c.name] = weights.get(c.name, 0.0) + w * c.abundance / total
        elif key in known:
            weights[key] = weights.get(key, 0.0) + w
        else:
            raise ConfigError(
                f"mix.{key}: not a stream ({', '.join(streams)}) or a catalog class name"
            )
    order = [c for c in (*catalog.classes, *catalog.distractors) if weights.get(c.name, 0.0) > 0]
    if not order:
        raise ConfigError("mix: weights must not all be 0")
    p = np.array([weights[c.name] for c in order], dtype=np.float64)
    return order, p / p.sum()


def sample_composition(spec: ClassSpec, rng: np.random.Generator) -> dict[str, float]:
    """Mass fractions for one object: each element from its distribution (in catalog order),
    the balance element (if any) takes ``total`` minus the others (at least 0), and the whole
    is scaled down to sum to 1 if it exceeds 1."""
    out: dict[str, float] = {}
    balance: tuple[str, float] | None = None
    for sym, dist in spec.composition.items():
        x = dist.sample(rng)
        if dist.dist == "balance":
            balance = (sym, x)
        else:
            out[sym] = x
    if balance is not None:
        out[balance[0]] = max(0.0, balance[1] - sum(out.values()))
    total = sum(out.values())
    if total > 1.0:
        out = {s: v / total for s, v in out.items()}
    return {s: out[s] for s in spec.composition}


def lump_heightmap(
    rng: np.random.Generator,
    size_m: tuple[float, float, float],
    spec: LumpSpec,
    cell_m: float = LUMP_CELL_M,
) -> FloatArray:
    """An irregular rounded lump with a flat base, as a height field (m).

    Returns an array of shape ``(rows, cols)`` = ``(floor(L/cell) + 1, floor(W/cell) + 1)``
    (at least 3 x 3) whose cell centres span ``(rows-1)*cell <= L`` along the object and
    ``(cols-1)*cell <= W`` across, so the lump lies inside its ``size_m = (L, W, H)``
    bounding box: the outline touches the box's sides and the highest cell is exactly ``H``.

    Outline: a superellipse (exponent ``p``) whose radius is modulated by a random smooth
    function of angle (harmonics 2-5, amplitude ``radial_roughness``), shifted and rescaled
    so it touches all four sides of the box. Profile: ``(1 - t**q)**(1/q)`` with ``t`` the
    normalized radius and ``q`` the dome exponent, times ``1 +`` a smooth random field
    (amplitude ``height_roughness``).
    """
    length, width, height = size_m
    rows = max(3, math.floor(length / cell_m + 1e-9) + 1)
    cols = max(3, math.floor(width / cell_m + 1e-9) + 1)
    p = spec.footprint_exponent.sample(rng)
    q = spec.dome_exponent.sample(rng)
    harmonics = np.arange(2, 6, dtype=np.float64)
    amp = spec.radial_roughness * rng.normal(0.0, 1.0, harmonics.size) / harmonics
    phase = rng.uniform(0.0, 2 * math.pi, harmonics.size)
    n_waves = 4
    freq = rng.uniform(0.3, 1.2, (n_waves, 2)) * rng.choice([-1.0, 1.0], (n_waves, 2))
    wave_amp = spec.height_roughness * rng.normal(0.0, 0.5, n_waves)
    wave_phase = rng.uniform(0.0, 2 * math.pi, n_waves)

    def radius(theta: FloatArray) -> FloatArray:
        r = 1.0 + np.cos(np.multiply.outer(theta, harmonics) + phase) @ amp
        return np.maximum(r, 0.4)

    def superellipse_norm(x: FloatArray, y: FloatArray) -> FloatArray:
        return np.power(np.abs(x) ** p + np.abs(y) ** p, 1.0 / p)

    # extent of the (possibly lopsided) outline, so that it can be shifted and stretched to
    # touch all four sides of the box
    t_dense = np.linspace(-math.pi, math.pi, 1441)
    c, s = np.cos(t_dense), np.sin(t_dense)
    boundary = radius(t_dense) / superellipse_norm(c, s)
    bx, by = boundary * c, boundary * s
    x_mid, x_half = 0.5 * float(bx.max() + bx.min()), 0.5 * float(bx.max() - bx.min())
    y_mid, y_half = 0.5 * float(by.max() + by.min()), 0.5 * float(by.max() - by.min())

    # normalized cell-centre coordinates; +-1 at the box sides
    u = (np.arange(rows) - (rows - 1) / 2) * cell_m / (length / 2)
    v = (np.arange(cols) - (cols - 1) / 2) * cell_m / (width / 2)
    un, vn = np.meshgrid(u, v, indexing="ij")
    xq, yq = x_mid + un * x_half, y_mid + vn * y_half
    theta = np.arctan2(yq, xq)
    t = superellipse_norm(xq, yq) / radius(theta)
    profile = np.where(t < 1.0, np.power(np.clip(1.0 - t**q, 0.0, 1.0), 1.0 / q), 0.0)
    field = np.ones_like(profile)
    for k in range(n_waves):
        field += wave_amp[k] * np.cos(math.pi * (freq[k, 0] * un + freq[k, 1] * vn) + wave_phase[k])
    hm = profile * np.clip(field, 0.2, None)
    return np.asarray(hm * (height / hm.max()), dtype=np.float64)


@dataclass(frozen=True)
class Arrivals:
    """Arrival positions on the belt: ``x_m``, ``y_m`` of shape ``(n,)`` (belt frame, m), in
    increasing ``x``; ``touching[i]`` is True where arrival ``i`` was placed against arrival
    ``i - 1`` (it may touch or overlap it, depending on the two objects' sizes)."""

    x_m: FloatArray
    y_m: FloatArray
    touching: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.x_m.size)


def sample_arrivals(
    rng: np.random.Generator,
    span_m: float,
    objects_per_m: float,
    belt_width_m: float,
    *,
    min_gap_m: float = 0.0,
    overlap_fraction: float = 0.0,
    touch_distance_m: float = 0.05,
    edge_margin_m: float = 0.0,
    start_x_m: float = 0.0,
) -> Arrivals:
    """Where objects land along ``[start_x_m, start_x_m + span_m)`` of a belt.

    A renewal process along x with mean ``1 / objects_per_m`` between arrivals. With
    probability ``overlap_fraction`` an arrival is placed against the previous one: x
    offset uniform in ``[0, touch_distance_m)`` and y within ``touch_distance_m`` of it (so
    the two touch or overlap). Otherwise the spacing is ``min_gap_m`` plus an exponential
    whose mean keeps the overall rate at ``objects_per_m``, and y is uniform across the
    belt minus ``edge_margin_m`` on each side. Positions are of centres; which objects truly
    touch depends on their footprints.

    Raises ``ConfigError`` when the parameters are inconsistent (e.g. ``min_gap_m`` leaves
    no room for the requested rate).
    """
    if span_m < 0 or objects_per_m <= 0 or belt_width_m <= 0:
        raise ConfigError(
            f"need span_m >= 0, objects_per_m > 0, belt_width_m > 0; got {span_m}, "
            f"{objects_per_m}, {belt_width_m}"
        )
    if not 0 <= overlap_fraction < 1:
        raise ConfigError(f"overlap_fraction must lie in [0, 1), got {overlap_fraction}")
    if min_gap_m < 0 or touch_distance_m < 0 or edge_margin_m < 0:
        raise ConfigError("min_gap_m, touch_distance_m and edge_margin_m must be >= 0")
    half = belt_width_m / 2 - edge_margin_m
    if half <= 0:
        raise ConfigError(f"edge_margin_m {edge_margin_m} leaves no belt of width {belt_width_m}")
    # mean spacing = (1-f) (gap + e) + f * touch/2 = 1 / rate
    free_mean = (1.0 / objects_per_m - overlap_fraction * touch_distance_m / 2) / (
        1 - overlap_fraction
    )
    exp_mean = free_mean - min_gap_m
    if exp_mean <= 0:
        raise ConfigError(
            f"min_gap_m {min_gap_m} m is too large for {objects_per_m} objects/m "
            f"(mean free spacing {free_mean:.4f} m)"
        )
    xs: list[float] = []
    ys: list[float] = []
    touch: list[bool] = []
    end = start_x_m + span_m
    x = start_x_m + float(rng.exponential(exp_mean))
    y = float(rng.uniform(-half, half))
    touching = False
    while x < end:
        xs.append(x)
        ys.append(y)
        touch.append(touching)
        touching = bool(rng.random() < overlap_fraction)
        if touching:
            x += float(rng.uniform(0.0, touch_distance_m))
            y = float(np.clip(y + rng.uniform(-touch_distance_m, touch_distance_m), -half, half))
        else:
            x += min_gap_m + float(rng.exponential(exp_mean))
            y = float(rng.uniform(-half, half))
    return Arrivals(
        np.asarray(xs, dtype=np.float64),
        np.asarray(ys, dtype=np.float64),
        np.asarray(touch, dtype=bool),
    )


def _pick_weighted(rng: np.random.Generator, weights: list[float]) -> int:
    if len(weights) == 1:
        return 0
    w = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(w.size, p=w / w.sum()))
