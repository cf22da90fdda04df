"""Reflectance calibration, band resampling and line sources of the HSI camera."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from perception.hsi.library import load_library, panel_reflectance
from perception.sensors.hsi.bands import BandModel, fx17, swir_1000_2500
from perception.sensors.hsi.errors import (
    BandMismatchError,
    CalibrationReferenceError,
    NonFiniteDataError,
)
from perception.sensors.hsi.reflectance import (
    FLAG_DEAD,
    FLAG_SATURATED,
    ReflectanceCalibrator,
)
from perception.sensors.hsi.sim import HsiConditions, HsiGeometry, HsiLineSim, ObjectVariation
from perception.sensors.hsi.source import EnviCubeSource, HsiLine, save_envi_cube
from perception.sensors.scene import Appearance, SceneObject, ShapeKind

BANDS = fx17()
LIB = load_library()
PANEL = panel_reflectance(BANDS)
GEO = HsiGeometry(width_px=64, y0_m=-0.1, pixel_pitch_m=0.003125)


def _sheet(material: str, oid: int = 1) -> SceneObject:
    """A thin sheet covering the whole line (no edge pixels, no height gain)."""
    return SceneObject(oid, "sheet", "weee", ShapeKind.BOX, (0.5, 0.5, 1e-4), GEO.x_m, 0.0, 0.0,
                       material, 1000.0, {}, Appearance((0.5, 0.5, 0.5)))


def _sim(seed: int = 0, **kw: object) -> HsiLineSim:
    plain = ObjectVariation(brightness=(1, 1), metal_brightness=(1, 1), depth=(1, 1),
                            tilt_per_um=(0, 0), texture_sd=0.0, metal_texture_sd=0.0)
    cond = HsiConditions(stray_fraction=0.0)
    args: dict[str, object] = dict(geometry=GEO, conditions=cond, ref_conditions=cond,
                                   variation=plain)
    args.update(kw)
    return HsiLineSim(BANDS, LIB, PANEL, np.random.default_rng(seed), **args)  # type: ignore[arg-type]


def test_flat_spectrum_is_conserved_by_band_resampling() -> None:
    wl = np.arange(850.0, 2551.0, 5.0)
    for bands in (fx17(), swir_1000_2500(), fx17(binning=4)):
        out = bands.resample(wl, np.full((3, wl.size), 0.37))
        assert out.shape == (3, bands.bands)
        np.testing.assert_allclose(out, 0.37, rtol=1e-12)  # weights sum to 1 exactly
    assert fx17().bands == 224 and swir_1000_2500().bands == 288


def test_resampling_keeps_a_narrow_line_at_its_band() -> None:
    wl = np.arange(850.0, 2551.0, 1.0)
    line = np.exp(-0.5 * ((wl - 1400.0) / 2.0) ** 2)
    out = BANDS.resample(wl, line)
    # the brightest band is the one whose centre is nearest 1400 nm (3.6 nm spacing)
    assert abs(BANDS.centres_nm[np.argmax(out)] - 1400.0) <= 1.8


def test_resampling_rejects_too_short_input() -> None:
    wl = np.arange(950.0, 1700.0, 5.0)
    with pytest.raises(BandMismatchError, match=r"covers 950\.0-1695\.0 nm"):
        BANDS.resample(wl, np.ones(wl.size))
    with pytest.raises(BandMismatchError):
        BandModel("bad", np.array([1000.0, 900.0]), np.array([8.0, 8.0]))


def test_calibration_recovers_known_reflectance_from_raw_counts() -> None:
    sim = _sim(dead_pixels=(3,))
    cal = ReflectanceCalibrator(sim.dark_reference(32), sim.white_reference(32), PANEL)
    for material in ("pe", "paper", "slag_bf"):
        raws = [sim.render([_sheet(material)])[0] for _ in range(8)]
        refl, flags = cal.apply(np.stack(raws))
        assert np.all(flags[:, 3] == FLAG_DEAD) and np.all(np.isnan(refl[:, 3]))
        live = np.delete(refl, 3, axis=1)
        truth = LIB.resampled(BANDS)[LIB.index(material)]
        # the raw counts carry a falloff (x0.8 at the ends), a 3000 K lamp, an InGaAs QE,
        # 2 % PRNU and a dark offset; calibrated, what is left is noise: shot noise at
        # >= 300 counts is <= 6 % per sample, averaged over 8 x 63 pixels < 0.3 % -> 0.01
        np.testing.assert_allclose(live.mean(axis=(0, 1)), truth, atol=0.01)
        assert np.abs(raws[0][10] - raws[0][32]).max() > 50  # the raw counts differed


def test_saturated_pixels_are_flagged() -> None:
    hot = replace(HsiConditions(stray_fraction=0.0), lamp_scale=2.0)
    sim = _sim()
    cal = ReflectanceCalibrator(sim.dark_reference(), sim.white_reference(), PANEL)
    raw, _ = sim.render([_sheet("pvc")], hot)
    refl, flags = cal.apply(raw)
    assert np.all(flags[20:40] == FLAG_SATURATED) and np.isnan(refl[20:40]).all()


def test_bad_references_raise_typed_errors() -> None:
    sim = _sim()
    dark, white = sim.dark_reference(4), sim.white_reference(4)
    with pytest.raises(CalibrationReferenceError, match="white reference is missing"):
        ReflectanceCalibrator(dark, None, PANEL)  # type: ignore[arg-type]
    with pytest.raises(CalibrationReferenceError, match="darker than the dark"):
        ReflectanceCalibrator(white, dark, PANEL)
    bad = white.copy()
    bad[0, 5, 7] = np.nan
    with pytest.raises(NonFiniteDataError, match="pixel 5, band 7"):
        ReflectanceCalibrator(dark, bad, PANEL)
    with pytest.raises(BandMismatchError, match=r"dark reference has shape \(64, 223\)"):
        ReflectanceCalibrator(dark[:, :, :-1], white, PANEL)
    cal = ReflectanceCalibrator(dark, white, PANEL)
    with pytest.raises(BandMismatchError, match=r"\(64, 100\)"):
        cal.apply(np.zeros((64, 100)))
    raw = sim.render([_sheet("pe")])[0]
    raw[2, 2] = np.inf
    with pytest.raises(NonFiniteDataError):
        cal.apply(raw)


def test_simulator_is_deterministic_with_a_seed() -> None:
    a = _sim(seed=5).render([_sheet("abs")])[0]
    b = _sim(seed=5).render([_sheet("abs")])[0]
    c = _sim(seed=6).render([_sheet("abs")])[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_edge_pixels_are_mixtures() -> None:
    sim = _sim()
    box = SceneObject(1, "b", "weee", ShapeKind.BOX, (0.3, 0.05 + 0.5 * GEO.pixel_pitch_m, 1e-4),
                      GEO.x_m, 0.0, 0.0, "pe", 1000.0, {}, Appearance((0.5, 0.5, 0.5)))
    _, truth = sim.render([box])
    partial = truth.coverage[(truth.coverage > 0.3) & (truth.coverage < 0.95)]
    assert partial.size >= 2  # both edges fall inside a pixel


def test_envi_cube_round_trip(tmp_path: Path) -> None:
    sim = _sim()
    lines = [
        HsiLine(sim.render([_sheet("pa")])[0].astype(np.float32), BANDS.centres_nm, 0.01 * i,
                0.02 * i, "raw", line_index=i, y0_m=GEO.y0_m, pixel_pitch_m=GEO.pixel_pitch_m)
        for i in range(5)
    ]
    hdr = save_envi_cube(tmp_path / "cube", lines)
    src = EnviCubeSource(hdr)
    back = list(src.lines())
    assert len(back) == 5
    np.testing.assert_allclose(src.wavelengths_nm, BANDS.centres_nm, atol=1e-4)
    for a, b in zip(lines, back, strict=True):
        assert np.array_equal(a.data, b.data) and b.encoding == "raw"
        assert b.belt_position_m == pytest.approx(a.belt_position_m)
        assert b.t_s == pytest.approx(a.t_s) and b.y0_m == pytest.approx(GEO.y0_m)
