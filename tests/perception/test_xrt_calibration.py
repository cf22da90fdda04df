"""XRT calibration on the perception side: dark/flat reference checks, finding reference plates
in a scan, fitting the set-up correction to them, and remapping measured attenuations.

The simulated scanner renders with a true set-up that departs from the nominal one by a known
:class:`SetupCorrection`; the fit sees only the lines and the plates' weighed mass and area.
"""

from __future__ import annotations

import numpy as np
import pytest

from perception.sensors.xrt import XrtConditions, XrtGeometry, XrtLineSim
from perception.sensors.xrt.plates_sim import SIM_PLATES, plate_objects, scan_objects
from perception.xrt import AttenuationTable, XrtSetup, bulk_attenuation, log_attenuation_of
from perception.xrt.errors import XrtPlateError, XrtReferenceError, XrtSetupError
from perception.xrt.physics import log_attenuation
from perception.xrt.plates import PlateSpec, find_plates
from perception.xrt.references import xrt_references
from perception.xrt.remap import AttenuationRemap
from perception.xrt.setup_fit import PlateReading, SetupCorrection, fit_setup_correction
from perception.xrt.transmission import FLAG_DEAD

GEO = XrtGeometry(x_m=0.0, y0_m=-0.4 + 0.8 / 512, pixel_pitch_m=0.8 / 256, width_px=256)
TRUE = SetupCorrection(tube_kv_delta=-12.0, filter_scale=1.3, interlayer_scale=1.1)


def _sim(dev: SetupCorrection = TRUE, seed: int = 3) -> XrtLineSim:
    return XrtLineSim(np.random.default_rng(seed), rest=lambda o: "C", geometry=GEO,
                      conditions=XrtConditions(deviation=dev), pattern_seed=seed)


def _cos() -> np.ndarray:
    h, d = GEO.source_height_m, GEO.detector_depth_m
    return (h + d) / np.sqrt((h + d) ** 2 + GEO.pixel_y() ** 2)


def _readings(sim: XrtLineSim) -> list[PlateReading]:
    cal = xrt_references(sim.dark_reference(16), sim.flat_reference(16)).calibrator()
    out = [cal.apply(r) for r in scan_objects(sim, plate_objects(SIM_PLATES))]
    a = np.stack([log_attenuation_of(t) for t, _ in out])
    plates = find_plates(a, _cos(), np.stack([f for _, f in out]))
    assert len(plates) == len(SIM_PLATES)
    return [PlateReading(s.name, s.composition, s.mass_g / s.area_cm2, p.a_low, p.a_high,
                         p.cos_theta, p.cells) for s, p in zip(SIM_PLATES, plates, strict=True)]


def test_fit_recovers_the_true_deviation_and_removes_the_mass_error() -> None:
    fit = fit_setup_correction(_readings(_sim()))
    c = fit.correction
    # noise on ~250 cells per plate: the parameters come back within a fraction of their shift
    assert c.tube_kv_delta == pytest.approx(TRUE.tube_kv_delta, abs=1.0)
    assert c.filter_scale == pytest.approx(TRUE.filter_scale, abs=0.05)
    assert c.interlayer_scale == pytest.approx(TRUE.interlayer_scale, abs=0.05)
    assert fit.max_error_before_pct > 5.0          # copper reads ~7-9 % heavy uncorrected
    assert fit.max_error_after_pct < 0.5


def test_no_deviation_fits_identity_within_noise() -> None:
    fit = fit_setup_correction(_readings(_sim(SetupCorrection())))
    assert abs(fit.correction.tube_kv_delta) < 1.0
    assert fit.max_error_before_pct < 0.5 and fit.max_error_after_pct < 0.5


def test_remap_brings_measured_attenuation_back_to_the_nominal_model() -> None:
    nominal = XrtSetup()
    true = TRUE.apply(nominal)
    remap = AttenuationRemap(nominal, true)
    for comp in ({"Al": 1.0}, {"Cu": 0.3, "Fe": 0.2}, {"Co": 0.2, "Ni": 0.1}):
        rt = np.array([0.5, 2.0, 5.0])
        a = log_attenuation(true, bulk_attenuation(comp, "C5H8O2", true), rt)
        lo, hi = remap.apply(a[:, 0], a[:, 1])
        table = AttenuationTable(nominal, bulk_attenuation(comp, "C5H8O2", nominal))
        before = table.rho_t(a[:, 1]) / rt - 1
        after = table.rho_t(hi) / rt - 1
        assert np.max(np.abs(before)) > 0.02
        assert np.max(np.abs(after)) < 0.005       # interpolation between family members
        assert np.allclose(lo / table.a_low(rt), 1.0, atol=0.01)


def test_dead_and_saturated_pixels_are_reported_by_index() -> None:
    sim = _sim()
    dark, flat = sim.dark_reference(12), sim.flat_reference(12)
    flat[:, 37, 1] = dark[:, 37, 1] - 5.0           # flat not above dark
    flat[:, 200, :] = 65535.0                       # saturated
    flat[:, 90, 0] += np.linspace(-3000, 3000, 12)  # noisy
    ref = xrt_references(dark, flat)
    assert list(np.flatnonzero(ref.not_above_dark)) == [37]
    assert list(np.flatnonzero(ref.saturated)) == [200]
    assert list(np.flatnonzero(ref.noisy)) == [90]
    text = " ".join(ref.guidance())
    assert "37" in text and "200" in text and "90" in text
    t, flags = ref.calibrator().apply(sim.render([]))
    assert flags[37] == FLAG_DEAD and flags[200] == FLAG_DEAD
    assert np.all(np.abs(t[~ref.bad] - 1.0) < 0.05)


def test_reference_errors_name_what_is_wrong() -> None:
    sim = _sim()
    dark, flat = sim.dark_reference(10), sim.flat_reference(10)
    with pytest.raises(XrtReferenceError, match="capture 3 more"):
        xrt_references(dark[:5], flat[:5])
    with pytest.raises(XrtReferenceError, match="swapped"):
        xrt_references(flat, dark)
    with pytest.raises(XrtReferenceError, match=r"expected N lines x W pixels x 2"):
        xrt_references(dark[..., 0], flat)
    bad = flat.copy()
    bad[3, 12, 0] = np.nan
    with pytest.raises(XrtReferenceError, match="pixels 12"):
        xrt_references(dark, bad)
    many = flat.copy()
    many[:, 10:40, :] = dark[:, 10:40, :]
    with pytest.raises(XrtReferenceError, match="30 of 256 pixels dead"):
        xrt_references(dark, many)


def test_plate_and_fit_input_errors() -> None:
    with pytest.raises(XrtPlateError, match="no plates found"):
        find_plates(np.random.default_rng(0).normal(0, 0.003, (40, 64, 2)), np.ones(64))
    with pytest.raises(XrtPlateError, match="cos_theta"):
        find_plates(np.zeros((10, 64, 2)), np.ones(63))
    with pytest.raises(XrtPlateError, match="non-finite"):
        find_plates(np.full((10, 8, 2), np.inf), np.ones(8))
    with pytest.raises(XrtPlateError, match="mass_g and area_cm2"):
        PlateSpec("x", {"Al": 1.0}, mass_g=0.0, area_cm2=36.0)
    one = [PlateReading(f"Al{k}", {"Al": 1.0}, 0.5 * k, 0.2 * k, 0.1 * k) for k in range(1, 6)]
    with pytest.raises(XrtPlateError, match="one material"):
        fit_setup_correction(one)
    with pytest.raises(XrtPlateError, match="need >= 4"):
        fit_setup_correction(one[:2])
    with pytest.raises(XrtPlateError, match="not > 0"):
        PlateReading("empty", {"Al": 1.0}, 1.0, 0.0, 0.0)
    with pytest.raises(XrtSetupError):
        SetupCorrection(filter_scale=0.0)
