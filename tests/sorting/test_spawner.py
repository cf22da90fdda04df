"""The object spawner and the arrival sampler of the simulated line."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from perception.catalog import Catalog, ClassSpec, LumpSpec, load_catalog
from perception.sensors.scene import SceneObject, ShapeKind
from sorting.errors import ConfigError
from sorting.sim.spawner import (
    ObjectSpawner,
    lump_heightmap,
    resolve_mix,
    sample_arrivals,
    sample_composition,
)

STREAM_MIX = {"weee": 0.6, "scrap": 0.25, "slag": 0.15}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def spawned(catalog: Catalog) -> list[SceneObject]:
    sp = ObjectSpawner(catalog, np.random.default_rng(11), mix={**STREAM_MIX, "clutter": 0.1})
    return [sp.spawn(i, 0.5, 0.0) for i in range(2000)]


def _same(a: SceneObject, b: SceneObject) -> bool:
    if a != b:
        return False
    if a.heightmap_m is None or b.heightmap_m is None:
        return a.heightmap_m is None and b.heightmap_m is None
    return bool(np.array_equal(a.heightmap_m, b.heightmap_m))


def test_same_seed_same_objects(catalog: Catalog) -> None:
    a = ObjectSpawner(catalog, np.random.default_rng(5), mix=STREAM_MIX)
    b = ObjectSpawner(catalog, np.random.default_rng(5), mix=STREAM_MIX)
    objs_a = [a.spawn(i, 0.1 * i, 0.0) for i in range(300)]
    objs_b = [b.spawn(i, 0.1 * i, 0.0) for i in range(300)]
    assert all(_same(x, y) for x, y in zip(objs_a, objs_b, strict=True))
    assert any(o.shape == ShapeKind.LUMP for o in objs_a)  # heightmaps were compared too
    c = ObjectSpawner(catalog, np.random.default_rng(6), mix=STREAM_MIX)
    objs_c = [c.spawn(i, 0.1 * i, 0.0) for i in range(300)]
    assert sum(_same(x, y) for x, y in zip(objs_a, objs_c, strict=True)) == 0


def _inside(x: float, lo: float, hi: float) -> bool:
    return lo - 1e-12 <= x <= hi + 1e-12


def _size_ok(spec: ClassSpec, size: tuple[float, float, float]) -> bool:
    length, width, height = size
    for f in spec.formats:
        if not _inside(length, f.length.min, f.length.max):
            continue
        if f.diameter is not None:
            if width == height and _inside(width, f.diameter.min, f.diameter.max):
                return True
        elif (
            f.width is not None
            and f.height is not None
            and _inside(width, f.width.min, f.width.max)
            and _inside(height, f.height.min, f.height.max)
        ):
            return True
    return False


def test_sampled_objects_respect_the_catalog(catalog: Catalog, spawned: list[SceneObject]) -> None:
    assert len({o.class_name for o in spawned}) == len(catalog.classes) + len(catalog.distractors)
    for o in spawned:
        spec = catalog.get(o.class_name)
        assert o.stream == spec.stream and o.shape == spec.shape_kind
        assert _size_ok(spec, o.size_m), (o.class_name, o.size_m)
        assert -math.pi <= o.yaw_rad < math.pi
        if spec.density_kg_m3 is not None:
            assert _inside(o.density_kg_m3, spec.density_kg_m3.min, spec.density_kg_m3.max)
        else:
            solid = catalog.material(spec.material).density_kg_m3
            fill = spec.fill_factor
            lo, hi = (fill.min, fill.max) if fill is not None else (1.0, 1.0)
            assert _inside(o.density_kg_m3, solid.min * lo, solid.max * hi)
        assert set(o.composition) == set(spec.composition)
        assert all(0 <= v <= 1 for v in o.composition.values())
        assert sum(o.composition.values()) <= 1 + 1e-12
        assert o.material in catalog.materials
        assert o.material in {spec.material, *(a.material for a in spec.appearance)}
        app = o.appearance
        assert app.pattern in {a.pattern for a in spec.appearance}
        assert all(0 <= c <= 1 for c in app.base_rgb)
        assert any(_inside(app.specular, a.specular.min, a.specular.max) for a in spec.appearance)
        assert o.x_m == 0.5 and o.y_m == 0.0 and o.z_m == 0.0


def test_realistic_masses(spawned: list[SceneObject]) -> None:
    """Median masses against typical real objects (factor-of-two bands)."""
    by_class: dict[str, list[float]] = {}
    for o in spawned:
        by_class.setdefault(o.class_name, []).append(o.mass_kg())
    expect = {"mobile_phone": 0.17, "li_ion_cylindrical_cell": 0.048, "laptop": 2.0}
    for name, kg in expect.items():
        median = float(np.median(by_class[name]))
        assert kg / 2 <= median <= kg * 2, (name, median)


def test_aligned_yaw_follows_the_catalog(spawned: list[SceneObject]) -> None:
    # cells roll to lie across the belt: mean 90 deg, sd 30 deg -> |sin(yaw)| median ~0.9
    cells = [o for o in spawned if o.class_name == "li_ion_cylindrical_cell"]
    assert len(cells) > 30
    assert float(np.median([abs(math.sin(o.yaw_rad)) for o in cells])) > 0.8


def test_mean_composition_matches_the_catalog(catalog: Catalog) -> None:
    """2000 draws per class; each element's sample mean within 4.5 standard errors of the
    exact catalog mean (about 300 comparisons, so a chance failure is < 0.3 % for any seed),
    plus 0.5 % of the mean for the rare renormalizations when a draw sums above 1."""
    rng = np.random.default_rng(2024)
    n = 2000
    for spec in (*catalog.classes, *catalog.distractors):
        draws = [sample_composition(spec, rng) for _ in range(n)]
        for el, mu in spec.mean_composition().items():
            x = np.array([d[el] for d in draws])
            se = float(x.std(ddof=1)) / math.sqrt(n)
            assert abs(float(x.mean()) - mu) <= 4.5 * se + 0.005 * mu, (spec.name, el, x.mean(), mu)


def test_balance_element_takes_the_rest(catalog: Catalog) -> None:
    spec = catalog.get("stainless_steel_scrap")
    rng = np.random.default_rng(3)
    for _ in range(200):
        comp = sample_composition(spec, rng)
        assert sum(comp.values()) == pytest.approx(0.999, abs=1e-12)  # total of the Fe balance
        assert 0.6 < comp["Fe"] < 0.8


def test_composition_renormalized_when_above_one(catalog: Catalog) -> None:
    spec = catalog.get("cable_piece")
    rng = np.random.default_rng(0)
    sums = [sum(sample_composition(spec, rng).values()) for _ in range(3000)]
    assert max(sums) <= 1 + 1e-12


# -- lumps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_lump_volume_is_the_heightmap_integral_inside_its_box(catalog: Catalog, seed: int) -> None:
    sp = ObjectSpawner(catalog, np.random.default_rng(seed), mix={"ld_slag_lump": 1.0})
    o = sp.spawn(1, 1.0, 0.1)
    assert o.shape == ShapeKind.LUMP and o.heightmap_m is not None
    hm, cell = o.heightmap_m, o.cell_m
    length, width, height = o.size_m
    assert cell == 0.002
    assert o.volume_m3() == pytest.approx(float(hm.sum()) * cell**2, rel=1e-12)
    assert (hm.shape[0] - 1) * cell <= length + 1e-12 and (hm.shape[1] - 1) * cell <= width + 1e-12
    assert float(hm.min()) >= 0 and float(hm.max()) == pytest.approx(height, rel=1e-12)
    # flat base, rounded: a real solid between 15 % and 75 % of its bounding box
    assert 0.15 * length * width * height <= o.volume_m3() <= 0.75 * length * width * height
    # the outline spans the box: occupied cells reach within 2 cells of each side
    rows = np.flatnonzero(hm.max(axis=1) > 0)
    cols = np.flatnonzero(hm.max(axis=0) > 0)
    assert rows[0] <= 2 and rows[-1] >= hm.shape[0] - 3
    assert cols[0] <= 2 and cols[-1] >= hm.shape[1] - 3
    # rendered surface: the lump is seen above its centre, nothing outside its box
    centre = o.top_height(np.array([o.x_m]), np.array([o.y_m]))
    assert 0 < float(centre[0]) <= height
    far = o.top_height(np.array([o.x_m + length]), np.array([o.y_m]))
    assert np.isnan(far[0])


def test_smooth_lump_is_nearly_symmetric() -> None:
    rng = np.random.default_rng(1)
    smooth = LumpSpec(radial_roughness=0.0, height_roughness=0.0)
    hm = lump_heightmap(rng, (0.1, 0.06, 0.03), smooth, 0.002)
    # no perturbation: the dome is mirror-symmetric along and across (to rounding)
    assert np.allclose(hm, hm[::-1, :], atol=1e-12) and np.allclose(hm, hm[:, ::-1], atol=1e-12)


# -- the mix ------------------------------------------------------------------------------------


def test_stream_mix_weights_are_respected(catalog: Catalog) -> None:
    """Chi-square goodness of fit of 6000 draws, per class, at p = 0.001."""
    sp = ObjectSpawner(catalog, np.random.default_rng(99), mix=STREAM_MIX)
    n = 6000
    counts = Counter(sp.sample_class().name for _ in range(n))
    names = [c.name for c in sp.entries]
    observed = np.array([counts[k] for k in names], dtype=float)
    expected = n * sp.probabilities
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2.ppf(0.999, len(names) - 1)
    stream_share = {s: sum(counts[c.name] for c in catalog.in_stream(s)) / n for s in STREAM_MIX}
    for s, w in STREAM_MIX.items():
        # binomial sd <= sqrt(0.25/6000) = 0.0065; 4 sd
        assert abs(stream_share[s] - w) < 0.026
    # within a stream, classes follow their abundance
    weee = catalog.in_stream("weee")
    phone = catalog.get("mobile_phone")
    assert sp.class_probability("mobile_phone") == pytest.approx(
        0.6 * phone.abundance / sum(c.abundance for c in weee)
    )
    assert sp.class_probability("cardboard_piece") == 0.0


def test_class_mix_and_mixed_keys(catalog: Catalog) -> None:
    entries, p = resolve_mix(catalog, {"li_ion_cylindrical_cell": 1.0, "copper_scrap": 3.0})
    assert [e.name for e in entries] == ["li_ion_cylindrical_cell", "copper_scrap"]
    assert p.tolist() == pytest.approx([0.25, 0.75])
    entries, p = resolve_mix(catalog, {"slag": 1.0, "ld_slag_lump": 1.0})
    prob = dict(zip([e.name for e in entries], p, strict=True))
    assert prob["ld_slag_lump"] == pytest.approx((0.7 + 1.0) / 2.0)  # abundances 0.7 / 0.3
    entries, _ = resolve_mix(catalog, {"clutter": 1.0})
    assert entries and all(e.distractor for e in entries)
    entries, p = resolve_mix(catalog, None)
    assert [e.name for e in entries] == catalog.class_names
    assert p.sum() == pytest.approx(1.0)


def test_bad_mix_is_a_config_error(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match=r"mix\.gold_bars"):
        ObjectSpawner(catalog, np.random.default_rng(0), mix={"gold_bars": 1.0})
    with pytest.raises(ConfigError, match="must not all be 0"):
        ObjectSpawner(catalog, np.random.default_rng(0), mix={"weee": 0.0})
    with pytest.raises(ConfigError, match=r"mix\.slag"):
        ObjectSpawner(catalog, np.random.default_rng(0), mix={"slag": -1.0})


def test_spawn_a_named_class(catalog: Catalog) -> None:
    sp = ObjectSpawner(catalog, np.random.default_rng(0), mix={"weee": 1.0})
    assert sp.spawn(7, 0.0, 0.0, class_name="brass_fitting").class_name == "brass_fitting"


# -- arrivals -----------------------------------------------------------------------------------


def test_arrivals_rate_gap_and_width() -> None:
    rng = np.random.default_rng(4)
    span, rate = 400.0, 2.5
    a = sample_arrivals(rng, span, rate, 0.8, min_gap_m=0.1, edge_margin_m=0.05, start_x_m=2.0)
    # count of a renewal process with spacing 0.1 + Exp(0.3): sd = sqrt(n) * 0.3/0.4 ~ 24
    assert abs(len(a) - span * rate) < 4 * 24
    assert np.all(np.diff(a.x_m) >= 0.1 - 1e-12)
    assert a.x_m.min() >= 2.0 and a.x_m.max() < 402.0
    assert np.all(np.abs(a.y_m) <= 0.35)
    assert not a.touching.any()


def test_arrivals_overlap_fraction() -> None:
    rng = np.random.default_rng(8)
    a = sample_arrivals(
        rng, 400.0, 2.5, 0.8, min_gap_m=0.05, overlap_fraction=0.2, touch_distance_m=0.04
    )
    # rate kept: mean spacing compensated for the short touching steps (same bound as above)
    assert abs(len(a) - 1000) < 4 * 35
    # binomial sd sqrt(0.2*0.8/1000) = 0.013; 4 sd
    assert abs(float(a.touching.mean()) - 0.2) < 0.052
    dx = np.diff(a.x_m)
    close = a.touching[1:]
    assert np.all(dx[close] < 0.04) and np.all(dx[~close] >= 0.05)
    assert np.all(np.abs(np.diff(a.y_m)[close]) <= 0.04 + 1e-12)


def test_arrivals_are_deterministic_and_checked() -> None:
    a = sample_arrivals(np.random.default_rng(1), 10.0, 3.0, 1.0, overlap_fraction=0.1)
    b = sample_arrivals(np.random.default_rng(1), 10.0, 3.0, 1.0, overlap_fraction=0.1)
    assert np.array_equal(a.x_m, b.x_m) and np.array_equal(a.y_m, b.y_m)
    with pytest.raises(ConfigError, match="too large"):
        sample_arrivals(np.random.default_rng(1), 10.0, 3.0, 1.0, min_gap_m=0.5)
    with pytest.raises(ConfigError, match="edge_margin_m"):
        sample_arrivals(np.random.default_rng(1), 10.0, 3.0, 1.0, edge_margin_m=0.6)
