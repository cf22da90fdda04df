"""XRF response per class from reference objects (`crmsort calibrate xrf-types`), and fusion
putting face-value analyses at their true level with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.store import load_store
from perception.xrf import load_setup
from perception.xrf.physics import SpectrumSimulator
from sorting.cli.main import main
from sorting.errors import ConfigError
from sorting.tracking.fusion import estimate
from sorting.tracking.measurements import VolumeMeasurement, XrfMeasurement
from sorting.tracking.priors import class_priors
from sorting.tracking.tracker import Track
from sorting.tracking.xrf_response import (
    MIN_REFERENCES,
    STORE_NAME,
    TypeReading,
    class_responses,
    element_responses,
    element_responses_from_results,
    responses_from_results,
)


def test_a_class_factor_is_read_over_certified_summed_over_its_references() -> None:
    rows = [TypeReading("pcb", {"Cu": 0.8 * c, "Fe": 0.8 * 0.05, "Au": 0.01},
                        {"Cu": c, "Fe": 0.05, "Au": 0.0002, "C": 0.3})
            for c in np.linspace(0.1, 0.3, MIN_REFERENCES)]
    rows[0] = TypeReading("pcb", {"Cu": 0.5, "Fe": 0.0}, {"Cu": 0.1, "Fe": 0.05})  # an outlier
    rows += [TypeReading("few", {"Cu": 0.5}, {"Cu": 1.0})] * (MIN_REFERENCES - 1)
    rows += [TypeReading("blind", {"Cu": 0.0}, {"C": 1.0})] * MIN_REFERENCES
    resp = class_responses(rows)
    # Au is certified below MIN_FRACTION: its noise does not enter the ratio; the outlier is
    # left out
    assert resp["pcb"].factor == pytest.approx(0.8, abs=1e-9)
    assert resp["pcb"].n == MIN_REFERENCES - 1 and resp["pcb"].u >= 0
    assert "few" not in resp and "blind" not in resp
    # skewed ratios: each reference weighs by what it holds (grams are what the line books),
    # not as one vote for the median
    rng = np.random.default_rng(1)
    c = rng.uniform(0.05, 0.35, 20)
    q = 0.95 - 0.8 * (c - 0.05) + rng.normal(0.0, 0.01, 20)   # the richer read lower
    skew = [TypeReading("board", {"Cu": qi * ci}, {"Cu": ci}) for qi, ci in zip(q, c, strict=True)]
    got = class_responses(skew)["board"]
    assert got.factor == pytest.approx(float((q * c).sum() / c.sum())) and got.n == 20
    assert got.factor < float(np.median(q)) - 0.02
    assert 0 < got.u < 0.05


def test_an_element_read_off_its_class_level_gets_a_factor_of_its_own() -> None:
    """A narrow class (spot partly on the belt, analyses scaled by k): Cu reads 0.7 of its
    share, Cl 1.6; Fe at the level gets none, nor an element certified below MIN_FRACTION.
    At face value an element is compared with the class factor: one reading at it gets
    none."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(2 * MIN_REFERENCES):
        cu, cl = rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.2)
        k = 5.0
        read = {"Cu": 0.7 * cu * rng.normal(1, 0.01) / k, "Cl": 1.6 * cl / k, "Fe": 0.01 / k,
                "Sb": 0.003 / k}
        rows.append(TypeReading("cable", read, {"Cu": cu, "Cl": cl, "Fe": 0.01, "Sb": 0.001},
                                scale=k))
    rows += [TypeReading("pcb", {"Cu": 0.8 * 0.2, "Fe": 0.8 * 0.05, "Br": 0.6 * 0.01},
                         {"Cu": 0.2, "Fe": 0.05, "Br": 0.01})] * MIN_REFERENCES
    levels = class_responses(rows)
    assert levels["pcb"].factor == pytest.approx(
        (0.8 * 0.25 + 0.6 * 0.01) / 0.26)
    per = element_responses(rows, levels)
    assert set(per["cable"]) == {"Cu", "Cl"}
    assert per["cable"]["Cu"].factor == pytest.approx(0.7, rel=0.01)
    assert per["cable"]["Cl"].factor == pytest.approx(1.6, rel=1e-6)
    assert per["cable"]["Cu"].n == 2 * MIN_REFERENCES and per["cable"]["Cu"].u > 0
    # at face value: Cu and Fe read 0.8, Br 0.6, against the class's 0.79
    assert set(per["pcb"]) == {"Br"} and per["pcb"]["Br"].factor == pytest.approx(0.6)


def test_stored_element_factors_are_checked_by_class_and_element() -> None:
    good = {"classes": {}, "elements": {"cable_piece": {"Cu": {"factor": 0.73, "u": 0.02}}}}
    assert element_responses_from_results(good) == {"cable_piece": {"Cu": (0.73, 0.02)}}
    assert element_responses_from_results({"classes": {}}) == {}
    with pytest.raises(ConfigError, match="'cable_piece' element 'Cu'"):
        element_responses_from_results(
            {"elements": {"cable_piece": {"Cu": {"factor": 0.0, "u": 0.02}}}})
    with pytest.raises(ConfigError, match=r"'cable_piece' element 'Cl'.*missing"):
        element_responses_from_results({"elements": {"cable_piece": {"Cl": {"u": 0.02}}}})
    with pytest.raises(ConfigError, match="not a mapping"):
        element_responses_from_results({"elements": ["Cu"]})


def test_fusion_puts_an_element_a_narrow_spot_misreads_at_its_level() -> None:
    """A cable's spot lies mostly on the belt: its analysis, scaled to the class's visible
    total, reads Cu low and Cl high. With the elements' factors fusion books the cable's Cu
    and Cl near the truth, their u grown by the factors' own."""
    priors = class_priors()
    truth = {"Cu": 0.45, "Cl": 0.15}
    read = {"Cu": 0.73 * truth["Cu"] / 15.0, "Cl": 1.65 * truth["Cl"] / 15.0,
            "Ca": 0.03 / 15.0}

    def cable() -> Track:
        tr = Track(1, 0.0, 0.0, 0.3, 0.03, born_ns=0)
        tr.class_votes["cable_piece"] = 4.0
        tr.volumes.append(VolumeMeasurement(0, 0.0, 0.0, 0.3, 0.006, 8e-6, 4e-7, 0.006))
        tr.xrf.append((XrfMeasurement(0, 0.0, 0.0, 0.012, read, {e: 1e-4 for e in read}), 1.0))
        return tr

    plain = estimate(cable(), priors, {}, detector_accuracy=0.66)
    fixed = estimate(cable(), priors, {}, detector_accuracy=0.66, xrf_element_response={
        "cable_piece": {"Cu": (0.73, 0.02), "Cl": (1.65, 0.04)}})
    assert plain.class_name == fixed.class_name == "cable_piece"
    f0 = dict(zip(plain.elements, plain.fractions, strict=True))
    f1 = dict(zip(fixed.elements, fixed.fractions, strict=True))
    for e in truth:
        assert abs(f1[e] / truth[e] - 1) < abs(f0[e] / truth[e] - 1) - 0.1, (e, f0[e], f1[e])
        assert abs(f1[e] / truth[e] - 1) < 0.12, (e, f1[e])


def test_stored_factors_are_checked_by_class() -> None:
    good = {"classes": {"laptop": {"factor": 0.95, "u": 0.01, "spread": 0.05, "n": 48}}}
    assert responses_from_results(good) == {"laptop": (0.95, 0.01)}
    with pytest.raises(ConfigError, match="'laptop'"):
        responses_from_results({"classes": {"laptop": {"factor": -1.0, "u": 0.01}}})
    with pytest.raises(ConfigError, match=r"'tablet'.*missing"):
        responses_from_results({"classes": {"tablet": {"u": 0.01}}})
    with pytest.raises(ConfigError, match="classes missing"):
        responses_from_results({})


def _pcb_track(read: dict[str, float]) -> Track:
    tr = Track(1, 0.0, 0.0, 0.15, 0.1, born_ns=0)
    tr.class_votes["pcb_high_grade"] = 4.0
    tr.volumes.append(VolumeMeasurement(0, 0.0, 0.0, 0.15, 0.1, 4e-5, 2e-6, 0.003))
    tr.xrf.append((XrfMeasurement(0, 0.0, 0.0, 0.012, read, {e: 0.002 for e in read}), 1.0))
    return tr


def test_fusion_puts_a_face_value_analysis_at_its_class_level() -> None:
    """A high-grade PCB whose spot read Cu 16.6 % where the board holds 20 %: with the class's
    measured response (0.83 ± 0.01) fusion books about 20 %; a metal class, whose analyses
    are normalised to its visible total anyway, is left as it was."""
    priors = class_priors()
    read = {"Cu": 0.166, "Fe": 0.033, "Sn": 0.025, "Ni": 0.010}
    plain = estimate(_pcb_track(read), priors, {}, detector_accuracy=0.66)
    fixed = estimate(_pcb_track(read), priors, {}, detector_accuracy=0.66,
                     xrf_response={"pcb_high_grade": (0.83, 0.01)})
    assert plain.class_name == fixed.class_name == "pcb_high_grade"
    cu = dict(zip(plain.elements, plain.fractions, strict=True))["Cu"]
    cu_fixed = dict(zip(fixed.elements, fixed.fractions, strict=True))["Cu"]
    assert cu == pytest.approx(0.166, rel=0.03)
    assert cu_fixed == pytest.approx(0.20, rel=0.03)
    u_plain = dict(zip(plain.elements, plain.fractions_u, strict=True))["Cu"]
    u_fixed = dict(zip(fixed.elements, fixed.fractions_u, strict=True))["Cu"]
    assert u_fixed > u_plain  # the factor's own u is carried
    tr = Track(2, 0.0, 0.0, 0.05, 0.05, born_ns=0)
    tr.class_votes["brass_fitting"] = 4.0
    tr.volumes.append(VolumeMeasurement(0, 0.0, 0.0, 0.05, 0.05, 2e-5, 1e-6, 0.02))
    brass = {"Cu": 0.45, "Zn": 0.30, "Pb": 0.01}
    tr.xrf.append((XrfMeasurement(0, 0.0, 0.0, 0.012, brass, {e: 0.005 for e in brass}), 1.0))
    a = estimate(tr, priors, {}, detector_accuracy=0.66)
    b = estimate(tr, priors, {}, detector_accuracy=0.66,
                 xrf_response={"brass_fitting": (0.8, 0.01)})
    assert a.fractions == pytest.approx(b.fractions)


def test_cli_measures_the_classes_response_on_the_simulated_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """High-grade PCBs (C, H, O, Si, Al under their metals) read low through the scatter
    balance: the procedure finds it and stores it; a bad CSV row is a typed error naming
    the file and line."""
    store = tmp_path / "line1.calibration.yaml"
    common = ["--store", str(store), "--run-dir", str(tmp_path / "run")]
    assert main(["calibrate", "xrf-types", "--sim", "--per-class", "10", "--classes",
                 "pcb_high_grade", "tablet", *common]) == 0
    out = capsys.readouterr().out
    assert "pcb_high_grade" in out and "nominal energy scale" in out
    res = responses_from_results(load_store(store).get(STORE_NAME).results)
    assert set(res) == {"pcb_high_grade", "tablet"}
    # a cable is narrower than the spot, its analyses scaled: its Cu and Cl read off
    assert main(["calibrate", "xrf-types", "--sim", "--per-class", "10", "--classes",
                 "cable_piece", "tablet", *common]) == 0
    per = element_responses_from_results(load_store(store).get(STORE_NAME).results)
    assert per["cable_piece"]["Cu"][0] < 0.9 < 1.2 < per["cable_piece"]["Cl"][0]
    capsys.readouterr()
    assert res["pcb_high_grade"][0] < 0.92 < res["tablet"][0] < 1.05
    # a reference from files: a spectrum and its assay
    setup = load_setup()
    comp = {"Cu": 0.2, "Fe": 0.05, "Sn": 0.03, "C": 0.45, "O": 0.2, "H": 0.07}
    spec = SpectrumSimulator(setup).sample(comp, 1.0, np.random.default_rng(0))
    np.savez(tmp_path / "ref.npz", counts=spec.counts,
             gain_kev_per_channel=spec.gain_kev_per_channel, offset_kev=spec.offset_kev,
             live_time_s=spec.live_time_s, real_time_s=spec.real_time_s)
    row = f"pcb_low_grade,ref.npz,{','.join(f'{k}={v}' for k, v in comp.items())}\n"
    (tmp_path / "refs.csv").write_text("class,spectrum,composition\n" + row * MIN_REFERENCES)
    assert main(["calibrate", "xrf-types", "--csv", str(tmp_path / "refs.csv"), *common]) == 0
    res = responses_from_results(load_store(store).get(STORE_NAME).results)
    assert 0.7 < res["pcb_low_grade"][0] < 1.0 and set(res) == {"pcb_low_grade"}
    (tmp_path / "refs.csv").write_text("class,spectrum,composition\n" + row * 3
                                       + "pcb_low_grade,missing.npz,Cu=0.1\n")
    assert main(["calibrate", "xrf-types", "--csv", str(tmp_path / "refs.csv"), *common]) == 2
    err = capsys.readouterr().err
    assert "refs.csv:5" in err and len(err.strip().splitlines()) == 1


def test_a_reference_csv_reads_the_whole_assay_quoted_or_not(tmp_path: Path) -> None:
    from sorting.cli.calibrate_xrf_types import _read_csv

    setup = load_setup()
    spec = SpectrumSimulator(setup).sample({"Cu": 0.5, "C": 0.5}, 0.5, np.random.default_rng(1))
    np.savez(tmp_path / "s.npz", counts=spec.counts,
             gain_kev_per_channel=spec.gain_kev_per_channel, offset_kev=spec.offset_kev,
             live_time_s=spec.live_time_s, real_time_s=spec.real_time_s)
    (tmp_path / "r.csv").write_text('class,spectrum,composition\n'
                                    'laptop,s.npz,"Cu=0.5,Fe=0.1,C=0.4"\n'
                                    'laptop,s.npz,Cu=0.5,Fe=0.1,C=0.4\n')
    rows = _read_csv(str(tmp_path / "r.csv"), 0.02, 0.0)
    assert [r[2] for r in rows] == [{"Cu": 0.5, "Fe": 0.1, "C": 0.4}] * 2
    assert rows[0][1].live_time_s == pytest.approx(0.5)


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)


class _Ctx:
    def __init__(self) -> None:
        self.log = _Log()

    def get_logger(self) -> _Log:
        return self.log


def test_the_tracker_warns_when_the_line_runs_another_live_time_than_the_standards() -> None:
    """The stored factors were measured at the shipped line's 0.3 s: a line set to 0.15 s is
    told to re-measure them (they still load); the shipped line is not."""
    from typing import Any, cast

    from sorting.config import load_line, parse_line
    from sorting.nodes.tracker_node import _load_xrf_response

    ctx = _Ctx()
    classes, _ = _load_xrf_response(load_line(None), cast(Any, ctx))
    assert classes and not ctx.log.warnings
    faster = parse_line({"sensors": {"xrf": {"live_time_s": 0.15}}}, "fast.yaml")
    classes, _ = _load_xrf_response(faster, cast(Any, ctx))
    assert classes
    assert len(ctx.log.warnings) == 1 and "measured at 0.3 s" in ctx.log.warnings[0]
    assert "runs 0.15 s" in ctx.log.warnings[0]
