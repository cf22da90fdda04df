"""Class posterior from all sensors, and the posterior-mixture estimates of fusion."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sorting.tracking.fusion import estimate
from sorting.tracking.measurements import VolumeMeasurement, XrfMeasurement
from sorting.tracking.posterior import class_posterior, top_classes
from sorting.tracking.priors import ClassPrior, class_priors
from sorting.tracking.tracker import Track


def _track(votes: dict[str, float] | None = None, materials: dict[str, float] | None = None,
           volume: float | None = None, height: float = 0.0) -> Track:
    # no camera box (0 x 0): the box's bound on the footprint is tested on its own
    tr = Track(1, 0.0, 0.0, 0.0, 0.0, born_ns=0)
    tr.class_votes.update(votes or {})
    tr.material_votes.update(materials or {})
    if volume is not None:
        tr.volumes.append(VolumeMeasurement(0, 0.0, 0.0, 0.1, 0.1, volume, volume * 0.03,
                                            height))
    return tr


def test_without_evidence_the_posterior_is_the_feed_mix() -> None:
    priors = class_priors()
    weights = {"copper_scrap": 3.0, "laptop": 1.0}
    post = class_posterior(_track(), priors, weights)
    assert post["copper_scrap"] == pytest.approx(0.75)
    assert post["laptop"] == pytest.approx(0.25)
    assert sum(post.values()) == pytest.approx(1.0)


def test_spectral_material_and_size_tell_a_class_the_detector_missed() -> None:
    priors = class_priors()
    # a slag-coloured, slag-sized lump that the detector never boxed: the NIR classifier
    # says BOF slag, the 3D sensor a fist-sized lump
    p = priors["ld_slag_lump"]
    tr = _track(materials={"slag_bof": 40.0, "unknown": 0.0},
                volume=math.exp(p.log_volume_mean), height=math.exp(p.log_height_mean))
    post = class_posterior(tr, priors)
    assert max(post, key=lambda c: post[c]) == "ld_slag_lump"
    assert post["ld_slag_lump"] > 0.9
    # the same lump without the spectral evidence is much less certain
    assert class_posterior(_track(volume=math.exp(p.log_volume_mean),
                                  height=math.exp(p.log_height_mean)), priors)[
        "ld_slag_lump"] < post["ld_slag_lump"]


def test_detector_votes_count_by_the_detectors_accuracy() -> None:
    priors = class_priors()
    tr = _track(votes={"laptop": 0.9})
    weak = class_posterior(tr, priors, detector_accuracy=0.2)["laptop"]
    strong = class_posterior(tr, priors, detector_accuracy=0.9)["laptop"]
    assert 0 < weak < strong
    assert strong > 0.8


def test_top_classes_keep_the_mass_and_renormalize() -> None:
    out = top_classes({"a": 0.6, "b": 0.3, "c": 0.0999, "d": 0.0001}, mass=0.99)
    assert list(out) == ["a", "b", "c"]
    assert sum(out.values()) == pytest.approx(1.0)


def _prior(name: str, co: float, density: float) -> ClassPrior:
    return ClassPrior(class_name=name, volume_m3=1e-4, volume_sd_m3=1e-5,
                      density_kg_m3=density, density_sd_kg_m3=density * 0.05, mass_kg=0.1,
                      mass_sd_kg=0.01, composition={"Co": co, "Li": 0.02},
                      composition_sd={"Co": co * 0.1, "Li": 0.002})


def test_an_uncertain_class_widens_the_interval_around_the_mixture_mean() -> None:
    priors = {"a": _prior("a", 0.10, 2000.0), "b": _prior("b", 0.0, 2000.0)}
    tr = _track(volume=1e-4)
    sure = estimate(tr, priors, {}, feed_weights={"a": 1.0, "b": 1e-9})
    split = estimate(tr, priors, {}, feed_weights={"a": 1.0, "b": 1.0})
    co_sure, u_sure = sure.element("Co")
    co_split, u_split = split.element("Co")
    assert co_sure == pytest.approx(0.2 * 0.10, rel=1e-6)      # 0.2 kg x 10 %
    assert co_split == pytest.approx(0.5 * co_sure, rel=1e-6)  # mixture mean
    assert u_split > 2 * u_sure                                # and the spread between
    assert split.class_confidence == pytest.approx(0.5)


def test_xrf_counts_only_when_the_spot_lay_on_the_object() -> None:
    priors = {"a": _prior("a", 0.10, 2000.0)}
    spot = XrfMeasurement(0, 0.0, 0.0, 0.012, fractions={"Co": 0.03, "Ta": 0.0001},
                          uncertainties={"Co": 0.001, "Ta": 0.0002}, lod={"Co": 1e-4,
                                                                           "Ta": 6e-4})
    full = _track(volume=1e-4)
    full.xrf.append((spot, 1.0))
    part = _track(volume=1e-4)
    part.xrf.append((spot, 0.5))
    est_full = estimate(full, priors, {})
    est_part = estimate(part, priors, {})
    assert est_full.composition_source == "xrf"
    # the reading 0.030 ± 0.001 against the class prior 0.10 ± 0.01, by inverse variance
    assert est_full.fractions[est_full.elements.index("Co")] == pytest.approx(
        (0.03 / 0.001**2 + 0.10 / 0.01**2) / (1 / 0.001**2 + 1 / 0.01**2))
    # an element analysed below its detection limit that the class never holds: near zero
    assert est_full.fractions[est_full.elements.index("Ta")] == pytest.approx(0.0, abs=1e-6)
    assert est_full.fractions[est_full.elements.index("Li")] == pytest.approx(0.02)  # prior
    assert est_part.composition_source == "prior"
    assert est_part.fractions[est_part.elements.index("Co")] == pytest.approx(0.10)


def test_a_metal_analysis_diluted_by_the_belt_is_normalised_a_plastic_one_is_not() -> None:
    """A spot's rim on the belt: the scatter balance books the rubber as dark matrix and a
    brass reads Cu 43 % / Zn 30 % (true 59 / 41). Under a class XRF sees whole (brass) the
    analysis is normalised to the class's visible share; under a class with a light matrix of
    its own (a keyboard's plastics) it stands as measured."""
    from sorting.tracking.posterior import xrf_scale

    priors = class_priors()
    diluted = {"Cu": 0.43, "Zn": 0.30, "Pb": 0.011, "Fe": 0.002, "Ni": 0.0005}
    k = xrf_scale(diluted, priors["brass_fitting"])
    assert k * diluted["Cu"] == pytest.approx(0.43 / 0.7435, rel=0.03)
    assert xrf_scale(diluted, priors["keyboard"]) == 1.0
    tr = _track({"brass_fitting": 3.0}, {"metal": 1.0}, volume=2e-5, height=0.02)
    spot = XrfMeasurement(0, 0.0, 0.0, 0.012, diluted, {e: 0.01 for e in diluted})
    tr.xrf.append((spot, 0.95))
    est = estimate(tr, priors, {}, detector_accuracy=0.66)
    assert est.class_name == "brass_fitting" and est.composition_source == "xrf"
    f = dict(zip(est.elements, est.fractions, strict=True))
    assert f["Cu"] == pytest.approx(0.578, rel=0.03) and f["Zn"] == pytest.approx(0.403, rel=0.03)


#: the elements the line's XRF analysis reports (each, 0 when not found)
ANALYSED = ("Cl", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
            "As", "Se", "Br", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Pd", "Ag", "Cd", "In", "Sn",
            "Sb", "Ba", "La", "Ce", "Pr", "Nd", "Sm", "Gd", "Dy", "Hf", "Ta", "W", "Ir", "Pt",
            "Au", "Hg", "Pb", "Bi")


def _analysis(found: dict[str, tuple[float, float]]) -> XrfMeasurement:
    """A spot analysis listing every analysed element: ``found`` as (fraction, u), the rest
    0 ± 0.0001."""
    f = {e: found.get(e, (0.0, 0.0001))[0] for e in ANALYSED}
    u = {e: found.get(e, (0.0, 0.0001))[1] for e in ANALYSED}
    return XrfMeasurement(0, 0.0, 0.0, 0.012, f, u)


def test_a_thin_copper_piece_read_at_a_few_percent_is_copper_not_aluminium() -> None:
    """A 2 mm copper strip on the belt (a seed-7 line run, 0.08 kg): the spot lay wholly on
    it, yet the analysis reads Cu 6.9 % (the rubber under the thin piece is booked as dark
    matrix). Copper diluted to 7 % explains it; an aluminium alloy holds 0.1 % Cu. Before
    the analysis was scored as measured, aluminium won this by 10 nats on XRF alone."""
    priors = class_priors()
    tr = _track(volume=8e-6, height=0.004)
    tr.xrf.append((_analysis({"Cu": (0.0688, 0.0032), "Zn": (0.0005, 0.0001)}), 1.0))
    post = class_posterior(tr, priors, xrf_spots=tr.xrf)
    # (scored with the stretched errors: aluminium 0.87, copper 0.006)
    assert max(post, key=lambda c: post[c]) == "copper_scrap"
    assert post["copper_scrap"] > 0.8 and post["aluminium_scrap"] < 0.05


def test_one_analysis_of_something_else_does_not_veto_every_other_sensor() -> None:
    """A copper bar lying on an aluminium plate, the spot inside the bar's box but on the
    plate: the analysis reads nothing heavy. Scored as the bar's, that vetoed copper by
    ~220 nats against four frames of copper from the detector; a reading of something else
    lying there (``XRF_MISS``) now costs copper about ``-log XRF_MISS``, and the detector's
    frames decide. A reading that fits the class still counts in full."""
    from sorting.tracking.posterior import XRF_MISS

    priors = class_priors()
    blank = _analysis({"Ag": (0.0001, 0.0001)})
    votes = {"copper_scrap": 3.7}
    alone = class_posterior(_track(votes), priors)
    tr = _track(votes)
    tr.xrf.append((blank, 1.0))
    post = class_posterior(tr, priors, xrf_spots=tr.xrf)
    assert max(post, key=lambda c: post[c]) == "copper_scrap"
    # the blank reading moves copper against aluminium by at most about -log XRF_MISS
    shift = (math.log(alone["copper_scrap"] / alone["aluminium_scrap"])
             - math.log(post["copper_scrap"] / post["aluminium_scrap"]))
    assert 0 < shift < -math.log(XRF_MISS) + 3.0
    # a copper reading on the same track makes it certain
    cu = _track(votes)
    cu.xrf.append((_analysis({"Cu": (0.97, 0.02), "Zn": (0.002, 0.0005)}), 1.0))
    certain = class_posterior(cu, priors, xrf_spots=cu.xrf)["copper_scrap"]
    assert certain > max(alone["copper_scrap"], 0.99)


def test_noise_read_as_an_absent_element_does_not_add_up_over_a_stream() -> None:
    """200 steel-like objects whose class holds no Dy; the fit's non-negative areas turn the
    Dy reading under Fe K into |noise| (0 … 0.6 %, u 0.3 %). Summed raw, that books ~0.24 % of
    the stream as Dy; combined with the class prior it stays below 0.001 %."""
    import numpy as np

    priors = {"a": _prior("a", 0.0, 7900.0)}
    rng = np.random.default_rng(5)
    raw, fused = 0.0, 0.0
    for _ in range(200):
        f = abs(float(rng.normal(0.0, 0.003)))
        tr = _track(volume=1e-4)
        tr.xrf.append((XrfMeasurement(0, 0.0, 0.0, 0.012, {"Dy": f}, {"Dy": 0.003}), 1.0))
        est = estimate(tr, priors, {})
        raw += f
        fused += est.fractions[est.elements.index("Dy")]
    assert raw / 200 > 0.002
    assert fused / 200 < 1e-5


def test_a_measured_confusion_weighs_votes_by_what_the_detector_mixes_up(tmp_path: Path) -> None:
    """Votes 'aluminium scrap' on an object: with the symmetric model they all but rule out
    stainless; with a confusion measured to name stainless pieces aluminium half the time
    they do not, and the posterior follows the other evidence (here: none, the feed mix)."""
    from perception.detector.confusion import load_confusion, save_confusion
    from perception.detector.errors import ModelFileError

    names = ["aluminium_scrap", "stainless_steel_scrap", "laptop"]
    # rows named, columns true, background last
    cm = [[40, 30, 1, 0], [5, 30, 0, 0], [1, 0, 50, 0], [2, 3, 1, 0]]
    path = tmp_path / "confusion.json"
    saved = save_confusion(path, names, cm, model="m.onnx", source="held-out", command="x")
    conf = load_confusion(path)
    assert conf.names == tuple(names) and conf.accuracy == pytest.approx(saved.accuracy)
    lik = conf.likelihoods(alpha=0.5)
    for c in names:
        assert sum(lik[c].values()) == pytest.approx(1.0)
    assert lik["stainless_steel_scrap"]["aluminium_scrap"] == pytest.approx(30.5 / 61.5)
    priors = {n: p for n, p in class_priors().items() if n in names}
    weights = {"aluminium_scrap": 1.0, "stainless_steel_scrap": 1.0, "laptop": 1.0}
    track = _track(votes={"aluminium_scrap": 3.0})
    sym = class_posterior(track, priors, weights, detector_accuracy=0.7)
    meas = class_posterior(track, priors, weights, confusion=lik)
    assert sym["stainless_steel_scrap"] < 0.05
    assert 0.15 < meas["stainless_steel_scrap"] < 0.5
    assert meas["laptop"] < 0.01
    merged = save_confusion(tmp_path / "merged.json", names, cm, model="m.onnx", source="line",
                            command="x", merge=(conf,))
    assert merged.counts.sum() == 2 * conf.counts.sum() and "held-out" in merged.source
    with pytest.raises(ModelFileError, match="classes differ"):
        save_confusion(tmp_path / "bad.json", ["a", "b", "c"], cm, model="m", source="s",
                       command="x", merge=(conf,))
    path.write_text("{}")
    with pytest.raises(ModelFileError, match="not a detector confusion file"):
        load_confusion(path)
    with pytest.raises(ModelFileError, match="cannot read"):
        load_confusion(tmp_path / "missing.json")


def test_a_cell_narrower_than_the_spot_keeps_its_xrf_ratios_not_the_belts_dilution() -> None:
    """A Li-ion cell (18-21 mm across) under a 12 mm-radius spot aimed at its centre: part of
    the spot lies on the belt, whose rubber scatters without lines, and the scatter balance
    reads the cell's metals at about a quarter of what it holds (simulated head, real
    quantification). Under the cell's class, too narrow for the spot, the analysis is
    scaled to the class's visible total: the booked Co is the cell's within its class
    spread, and its ratio to Ni is the analysis's."""
    import numpy as np

    from perception.catalog import load_catalog
    from perception.xrf import Balance, Quantifier, Spectrum, load_setup
    from sorting.sim.spawner import ObjectSpawner
    from sorting.sim.xrf_sensor import XrfSpotSim
    from sorting.tracking.posterior import narrow_for_spot, xrf_scale

    priors = class_priors()
    assert narrow_for_spot(priors["li_ion_cylindrical_cell"], 0.012)
    assert not narrow_for_spot(priors["keyboard"], 0.012)
    cell = ObjectSpawner(load_catalog(), np.random.default_rng(5)).spawn(
        1, 2.6, 0.0, class_name="li_ion_cylindrical_cell")
    head = XrfSpotSim(2.6, 0.012, lambda: [cell], None, np.random.default_rng(0))
    assert 0.8 < head.coverage()[1] < 0.95
    setup = load_setup()
    spec = Spectrum(head(1.0, 2048).astype(float), setup.mca.gain_kev_per_channel(),
                    setup.mca.offset_kev, 1.0, 1.0)
    res = Quantifier(setup, balance=Balance.parse("scatter")).quantify(spec)
    read = {e.symbol: e.mass_fraction for e in res.elements}
    u = {e.symbol: e.mass_fraction_u for e in res.elements}
    true_co = cell.composition["Co"]
    assert read["Co"] < 0.5 * true_co  # the belt's dilution, as measured
    assert xrf_scale(read, priors["li_ion_cylindrical_cell"], 0.012) > 2.0
    assert xrf_scale(read, priors["li_ion_cylindrical_cell"]) == 1.0  # a point spot fits
    tr = _track({"li_ion_cylindrical_cell": 4.0}, volume=cell.volume_m3(), height=0.02)
    tr.xrf.append((XrfMeasurement(0, 0.0, 0.0, 0.012, read, u), 1.0))
    est = estimate(tr, priors, {}, detector_accuracy=0.66)
    assert est.class_name == "li_ion_cylindrical_cell" and est.composition_source == "xrf"
    f = dict(zip(est.elements, est.fractions, strict=True))
    assert f["Co"] == pytest.approx(true_co, rel=0.25)
    assert f["Co"] / f["Ni"] == pytest.approx(read["Co"] / read["Ni"], rel=0.15)


def test_a_box_the_camera_alone_saw_bounds_the_footprint() -> None:
    """A tantalum capacitor too flat for the 3D sensor, boxed by the camera at 6 x 8 mm in two
    frames: without a volume the posterior kept a few per cent of every large class, and the
    mixture booked the 0.3 g part at hundreds of grams. The box holds the footprint, so
    classes whose objects are larger than it are out."""
    priors = class_priors()
    tr = Track(1, 0.0, 0.0, 0.006, 0.008, born_ns=0)
    tr.class_votes.update({"tantalum_capacitor": 1.2})
    post = class_posterior(tr, priors, detector_accuracy=0.66)
    assert post["tantalum_capacitor"] > 0.9
    assert post["laptop"] < 1e-4
    est = estimate(tr, priors, {}, detector_accuracy=0.66)
    assert est.mass_kg < 0.005
    # a box as large as a laptop tells nothing against a laptop
    big = Track(2, 0.0, 0.0, 0.35, 0.3, born_ns=0)
    big.class_votes.update({"laptop": 1.2})
    assert class_posterior(big, priors, detector_accuracy=0.66)["laptop"] > 0.5


def test_class_priors_carry_the_catalogs_exact_mean_composition() -> None:
    """A class's mean composition and its sd are the catalog's exact ones, not those of the
    prior's few hundred draws: for a lognormal trace element (gsd 4) the mean was off by up
    to ~30 % (stainless Nb and Ti +26 / +29 %) and the sd by up to ~55 % (high-grade PCB Ta),
    and every object booked from the class prior would carry the error into the stream's
    grade and its u. The unknown class averages the classes (a mixture's moments)."""
    from perception.catalog import load_catalog

    catalog = load_catalog()
    priors = class_priors()
    for spec in catalog.classes:
        exact, sd = spec.mean_composition(), spec.sd_composition()
        got = priors[spec.name]
        for e, v in exact.items():
            assert got.composition[e] == pytest.approx(v, rel=1e-9), (spec.name, e)
            assert got.composition_sd[e] == pytest.approx(sd[e], rel=1e-9), (spec.name, e)
    unknown = next(p for name, p in priors.items()
                   if name not in {c.name for c in catalog.classes})
    cu = [spec.mean_composition().get("Cu", 0.0) for spec in catalog.classes]
    assert unknown.composition["Cu"] == pytest.approx(sum(cu) / len(cu), rel=1e-9)
    spread = [spec.sd_composition().get("Cu", 0.0) for spec in catalog.classes]
    second = sum(s * s + m * m for s, m in zip(spread, cu, strict=True)) / len(cu)
    assert unknown.composition_sd["Cu"] == pytest.approx(
        math.sqrt(second - (sum(cu) / len(cu)) ** 2), rel=1e-9)
