"""The catalog in datasets/catalog: content, CRMA flags, and validation errors."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from perception.catalog import (
    ELEMENTS,
    Catalog,
    crm_flags,
    default_root,
    is_critical,
    is_strategic,
    load_catalog,
)
from perception.catalog.models import ElementDist
from perception.errors import CatalogError
from perception.sensors.scene import ShapeKind

REPO_CATALOG = Path(__file__).resolve().parents[2] / "datasets" / "catalog"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO_CATALOG)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(REPO_CATALOG, root)
    return root


def _edit(root: Path, name: str, change: Any) -> None:
    path = root / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# -- content ------------------------------------------------------------------------------------


def test_default_root_is_the_repo_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMSORT_DATASETS", raising=False)
    assert default_root() == REPO_CATALOG
    assert load_catalog().class_names == load_catalog(REPO_CATALOG).class_names


def test_env_var_overrides_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][0].update(display_name="Phone from env"))
    monkeypatch.setenv("CRMSORT_DATASETS", str(tmp_path))
    assert load_catalog().classes[0].display_name == "Phone from env"
    monkeypatch.setenv("CRMSORT_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(CatalogError, match="CRMSORT_DATASETS"):
        load_catalog()


def test_at_least_16_classes_in_three_streams_with_contiguous_ids(catalog: Catalog) -> None:
    assert len(catalog.classes) >= 16
    assert [c.id for c in catalog.classes] == list(range(len(catalog.classes)))
    assert {c.stream for c in catalog.classes} == {"weee", "scrap", "slag"}
    assert len(set(catalog.class_names)) == len(catalog.classes)
    assert not any(c.distractor for c in catalog.classes)
    # distractors: their own id range, never a detector id
    assert catalog.distractors
    base = catalog.distractor_id_base
    assert [d.id for d in catalog.distractors] == list(range(base, base + len(catalog.distractors)))
    assert base >= len(catalog.classes)
    assert all(d.distractor and d.stream == "clutter" for d in catalog.distractors)
    assert catalog.by_id(base).name == catalog.distractors[0].name
    assert catalog.by_id(3).name == catalog.classes[3].name


def test_required_classes_are_present(catalog: Catalog) -> None:
    names = set(catalog.class_names)
    for required in (
        "mobile_phone",
        "laptop",
        "tablet",
        "keyboard",
        "computer_mouse",
        "flat_panel_display",
        "pcb_high_grade",
        "pcb_low_grade",
        "li_ion_cylindrical_cell",
        "li_ion_pouch_pack",
        "hdd_vcm_magnet_assembly",
        "tantalum_capacitor",
        "aluminium_electrolytic_capacitor",
        "cable_piece",
        "copper_scrap",
        "aluminium_scrap",
        "brass_fitting",
        "stainless_steel_scrap",
        "ld_slag_lump",
    ):
        assert required in names


def test_sizes_fit_a_small_weee_belt_and_known_formats(catalog: Catalog) -> None:
    for c in (*catalog.classes, *catalog.distractors):
        for f in c.formats:
            assert f.length.max <= 0.45, c.name  # belt 0.8-1.0 m wide, objects at most 0.45 m
    cell = catalog.get("li_ion_cylindrical_cell")
    assert cell.shape_kind == ShapeKind.CYLINDER
    fmt = {f.name: f for f in cell.formats}
    assert fmt["18650"].length.min <= 0.065 <= fmt["18650"].length.max
    assert (
        fmt["18650"].diameter is not None
        and fmt["18650"].diameter.min <= 0.0183 <= fmt["18650"].diameter.max
    )
    phone = catalog.get("mobile_phone").formats[0]
    assert phone.length.min <= 0.150 <= phone.length.max and phone.height is not None
    assert phone.height.min <= 0.008 <= phone.height.max
    assert catalog.get("ld_slag_lump").shape_kind == ShapeKind.LUMP


def test_li_ion_classes_are_hazards(catalog: Catalog) -> None:
    hazards = {c.name for c in catalog.classes if c.is_hazard}
    assert {"li_ion_cylindrical_cell", "li_ion_pouch_pack"} <= hazards
    assert all(catalog.get(n).hazard for n in hazards)


def test_materials_are_known_and_hsi_ids_contiguous(catalog: Catalog) -> None:
    mats = list(catalog.materials.values())
    assert [m.hsi_id for m in mats] == list(range(len(mats)))
    assert max(m.hsi_id for m in mats) < 255  # 255 is MaterialMap.UNKNOWN
    for c in (*catalog.classes, *catalog.distractors):
        assert c.material in catalog.materials
        for look in c.appearance:
            assert look.material is None or look.material in catalog.materials


def test_compositions_are_fractions_with_mean_sum_at_most_1(catalog: Catalog) -> None:
    for c in (*catalog.classes, *catalog.distractors):
        mean = c.mean_composition()
        assert set(mean) <= ELEMENTS
        assert all(0 <= v <= 1 for v in mean.values()), c.name
        assert sum(mean.values()) <= 1 + 1e-9, c.name
        assert len(c.source) > 20, c.name


def test_characteristic_figures(catalog: Catalog) -> None:
    """A few anchors from the literature the catalog cites (see its source notes)."""
    m = catalog.get("hdd_vcm_magnet_assembly").mean_composition()
    assert m["Fe"] > 0.5 and 0.05 < m["Nd"] < 0.15
    pcb = catalog.get("pcb_high_grade").mean_composition()
    assert 0.15 <= pcb["Cu"] <= 0.25 and 1e-4 <= pcb["Au"] <= 1e-3
    assert pcb["Au"] > catalog.get("pcb_low_grade").mean_composition()["Au"]
    assert 0.30 <= catalog.get("tantalum_capacitor").mean_composition()["Ta"] <= 0.40
    ld = catalog.get("ld_slag_lump").mean_composition()
    assert 0.01 <= ld["V"] <= 0.03
    assert ld["V"] > 10 * catalog.get("bf_slag_lump").mean_composition()["V"]


# -- CRMA ---------------------------------------------------------------------------------------


def test_crma_lists_match_the_regulation(catalog: Catalog) -> None:
    assert len(catalog.crma.strategic) == 17  # Annex I, Section 1
    assert len(catalog.crma.critical) == 34  # Annex II, Section 1
    assert catalog.crma.strategic_elements <= catalog.crma.critical_elements
    assert "2024/1252" in catalog.crma.regulation


@pytest.mark.parametrize(
    "symbol", ["Co", "Li", "Nd", "Dy", "Pd", "Ta", "V", "Ga", "Cu", "Ni", "W", "Sb"]
)
def test_critical_elements(catalog: Catalog, symbol: str) -> None:
    assert is_critical(symbol, catalog.crma)
    assert is_critical(symbol)  # default catalog


@pytest.mark.parametrize(
    "symbol", ["Cu", "Ni", "Co", "Li", "Nd", "Pr", "Dy", "Tb", "Pt", "Ga", "Al"]
)
def test_strategic_elements(catalog: Catalog, symbol: str) -> None:
    assert is_strategic(symbol, catalog.crma)
    assert crm_flags(symbol) == {"critical", "strategic"}


@pytest.mark.parametrize("symbol", ["Ta", "V", "Nb", "Sb", "Hf", "La", "Y"])
def test_critical_but_not_strategic(symbol: str) -> None:
    assert crm_flags(symbol) == {"critical"}


@pytest.mark.parametrize("symbol", ["Fe", "Au", "Ag", "Zn", "Sn", "Pb", "Cr", "In", "Ca"])
def test_not_on_the_lists(symbol: str) -> None:
    assert crm_flags(symbol) == set()


def test_crm_flags_rejects_non_symbols() -> None:
    with pytest.raises(CatalogError, match="not an element symbol"):
        crm_flags("co")


def test_crm_bearing_classes_name_flagged_targets(catalog: Catalog) -> None:
    for c in catalog.classes:
        if c.crm_bearing:
            assert c.crm_targets and all(catalog.crma.flags(s) for s in c.crm_targets), c.name
            assert set(c.crm_targets) <= set(c.composition)


# -- validation errors --------------------------------------------------------------------------


def _load_error(root: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(root)
    return str(info.value)


def test_negative_size_names_the_yaml_path(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][3]["size_m"].update(length=[-0.1, 0.2]))
    assert "classes.yaml: classes[3].size_m.length: must be > 0" in _load_error(root)


def test_non_contiguous_ids_are_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][5].update(id=42))
    assert "classes.yaml: classes[5].id: expected 5" in _load_error(root)


def test_duplicate_names_are_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][2].update(name="mobile_phone"))
    assert "classes[2].name: 'mobile_phone' already used by classes[0]" in _load_error(root)


def test_unknown_material_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][2].update(material="unobtainium"))
    assert "classes.yaml: classes[2].material: unknown material 'unobtainium'" in _load_error(root)


def test_fraction_out_of_range_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root,
        "classes.yaml",
        lambda d: d["classes"][7]["composition"].update(
            Cu={"dist": "normal", "mean": 1.2, "sd": 0.1}
        ),
    )
    msg = _load_error(root)
    assert "classes.yaml: classes[7].composition.Cu: mean: must lie in [0, 1]" in msg


def test_mean_sum_above_one_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root,
        "classes.yaml",
        lambda d: d["classes"][0]["composition"].update(
            Fe={"dist": "normal", "mean": 0.9, "sd": 0.01}
        ),
    )
    assert "classes.yaml: classes[0]: composition: mean fractions sum to" in _load_error(root)


def test_unknown_element_symbol_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root,
        "classes.yaml",
        lambda d: d["classes"][0]["composition"].update(
            Xx={"dist": "uniform", "min": 0, "max": 0.01}
        ),
    )
    assert "classes.yaml: classes[0].composition.Xx: 'Xx' is not an element symbol" in _load_error(
        root
    )


def test_crm_target_off_the_lists_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][0]["crm_targets"].append("Au"))
    assert "classes.yaml: classes[0].crm_targets[7]: 'Au' is on neither CRMA list" in _load_error(
        root
    )


def test_strategic_element_missing_from_critical_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root,
        "crma.yaml",
        lambda d: d["critical"].pop(
            next(i for i, e in enumerate(d["critical"]) if e["name"] == "Cobalt")
        ),
    )
    assert "crma.yaml: strategic: ['Co'] are strategic but on no critical entry" in _load_error(
        root
    )


def test_shape_needs_matching_dimensions(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "classes.yaml", lambda d: d["classes"][15].update(shape="box"))  # cable: diameter
    assert "classes.yaml: classes[15].size_m: width and height: required for a box" in _load_error(
        root
    )


def test_material_hsi_ids_must_be_contiguous(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root, "materials.yaml", lambda d: d["materials"][4].update(hsi_id=40))
    assert "materials.yaml: materials[4].hsi_id: expected 4" in _load_error(root)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "materials.yaml"
    lines = path.read_text().splitlines()
    lines.insert(20, "  - {id: broken, hsi_id: [")
    path.write_text("\n".join(lines) + "\n")
    msg = _load_error(root)
    assert msg.startswith("materials.yaml: line") and "invalid YAML" in msg


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "crma.yaml"
    path.write_text(path.read_text().replace("regulation: ", "source: dup\nregulation: ", 1))
    assert "duplicate key 'source'" in _load_error(root)


def test_missing_file_is_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "crma.yaml").unlink()
    assert "crma.yaml: catalog file missing" in _load_error(root)


# -- distributions ------------------------------------------------------------------------------


def test_truncated_means_are_exact() -> None:
    """expected_mean() against a direct numerical integral of the truncated densities."""
    normal = ElementDist(dist="normal", mean=0.01, sd=0.01)
    xs = [i / 200000 for i in range(200001)]
    w = [math.exp(-0.5 * ((x - 0.01) / 0.01) ** 2) for x in xs]
    numeric = sum(x * wi for x, wi in zip(xs, w, strict=True)) / sum(w)
    assert normal.expected_mean() == pytest.approx(numeric, rel=1e-4)  # grid step 5e-6 << sd
    assert normal.expected_mean() > 0.01  # truncation at 0 raises the mean
    logn = ElementDist(dist="lognormal", mean=0.001, gsd=2.0)
    assert logn.expected_mean() == pytest.approx(0.001, rel=1e-9)  # P(X > 1) ~ 1e-22


def test_truncated_variances_are_exact() -> None:
    """expected_variance() against a numerical integral of the truncated normal, the
    lognormal's closed form where truncation is negligible, one truncated hard at 1 against
    the integral of its density, and the uniform's."""
    normal = ElementDist(dist="normal", mean=0.01, sd=0.01)
    xs = [i / 200000 for i in range(200001)]
    w = [math.exp(-0.5 * ((x - 0.01) / 0.01) ** 2) for x in xs]
    m = sum(x * wi for x, wi in zip(xs, w, strict=True)) / sum(w)
    var = sum((x - m) ** 2 * wi for x, wi in zip(xs, w, strict=True)) / sum(w)
    assert normal.expected_variance() == pytest.approx(var, rel=1e-3)
    assert normal.expected_variance() < 0.01**2    # truncation at 0 narrows it
    logn = ElementDist(dist="lognormal", mean=0.001, gsd=2.0)
    s2 = math.log(2.0) ** 2
    assert logn.expected_variance() == pytest.approx(0.001**2 * (math.exp(s2) - 1), rel=1e-9)
    wide = ElementDist(dist="lognormal", mean=0.05, gsd=2.6)   # P(X > 1) just under 0.1 %
    mu, sigma = math.log(0.05) - 0.5 * math.log(2.6) ** 2, math.log(2.6)
    grid = [(i + 0.5) / 400000 for i in range(400000)]
    dens = [math.exp(-0.5 * ((math.log(x) - mu) / sigma) ** 2) / x for x in grid]
    m1 = sum(x * d for x, d in zip(grid, dens, strict=True)) / sum(dens)
    m2 = sum(x * x * d for x, d in zip(grid, dens, strict=True)) / sum(dens)
    assert wide.expected_mean() == pytest.approx(m1, rel=1e-3)
    assert wide.expected_variance() == pytest.approx(m2 - m1 * m1, rel=2e-3)
    uni = ElementDist(dist="uniform", min=0.1, max=0.4)
    assert uni.expected_variance() == pytest.approx(0.09 / 12)


def test_distribution_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="gsd: not a parameter of dist 'normal'"):
        ElementDist(dist="normal", mean=0.1, sd=0.01, gsd=2.0)
    with pytest.raises(ValueError, match="lies mostly outside"):
        ElementDist(dist="normal", mean=0.0, sd=0.5)
    with pytest.raises(ValueError, match="exceeds a mass fraction of 1"):
        ElementDist(dist="lognormal", mean=0.5, gsd=3.0)
