"""Spectrum files round-trip (.npz, .mca, .csv) and bad input raises typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perception.errors import PerceptionError
from perception.xrf.errors import SetupError, SpectrumError
from perception.xrf.setup import load_setup
from perception.xrf.spectrum import Spectrum, read_spectrum, write_spectrum


def _spec() -> Spectrum:
    counts = np.random.default_rng(0).poisson(50.0, 512).astype(float)
    return Spectrum(counts, 0.04, -0.01, 2.0, 2.2)


@pytest.mark.parametrize("suffix", [".npz", ".mca", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    s = _spec()
    p = tmp_path / f"s{suffix}"
    write_spectrum(s, p)
    r = read_spectrum(p)
    assert np.array_equal(r.counts, s.counts)
    assert r.gain_kev_per_channel == pytest.approx(s.gain_kev_per_channel, rel=1e-6)
    assert r.offset_kev == pytest.approx(s.offset_kev, abs=1e-5)
    assert r.live_time_s == pytest.approx(2.0) and r.real_time_s == pytest.approx(2.2)


def test_mca_without_calibration_uses_default(tmp_path: Path) -> None:
    p = tmp_path / "a.mca"
    p.write_text("<<PMCA SPECTRUM>>\nLIVE_TIME - 1.5\nREAL_TIME - 1.6\n<<DATA>>\n"
                 + "\n".join(["3"] * 20) + "\n<<END>>\n")
    with pytest.raises(SpectrumError, match="no energy calibration"):
        read_spectrum(p)
    s = read_spectrum(p, default_calibration=(0.02, 0.0))
    assert s.channels == 20 and s.live_time_s == 1.5


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Spectrum(np.r_[np.ones(20), -1.0], 0.02, 0.0, 1, 1), "negative counts at ch"),
        (lambda: Spectrum(np.r_[np.ones(20), np.nan], 0.02, 0.0, 1, 1), "not finite at channel 20"),
        (lambda: Spectrum(np.ones(32), -0.02, 0.0, 1, 1), "not increasing"),
        (lambda: Spectrum(np.ones(32), 0.02, 0.0, 1, 1, quadratic_kev=-0.001), "not increasing"),
        (lambda: Spectrum.from_energies(np.ones(32), np.linspace(0, 1, 31), 1.0), "31 calibration"),
        (lambda: Spectrum.from_energies(np.ones(32), np.r_[np.linspace(0, 1, 31), 0.5], 1.0),
         "not strictly increasing"),
        (lambda: Spectrum(np.ones(32), 0.02, 0.0, 0.0, 1), "live_time_s"),
    ],
)
def test_bad_spectra_raise_typed_errors(make: object, match: str) -> None:
    with pytest.raises(SpectrumError, match=match) as ei:
        make()  # type: ignore[operator]
    assert isinstance(ei.value, PerceptionError)


def test_channel_count_disagreeing_with_calibration(tmp_path: Path) -> None:
    p = tmp_path / "b.mca"
    p.write_text("<<PMCA SPECTRUM>>\nLIVE_TIME - 1\n<<CALIBRATION>>\nLABEL - keV\n0 0\n10 0.2\n"
                 "<<DATA>>\n" + "\n".join(["1"] * 30) + "\n<<END>>\n<<DP5 CONFIGURATION>>\n"
                 "MCAC=2048;\n<<DP5 CONFIGURATION END>>\n")
    with pytest.raises(SpectrumError, match=r"MCAC=2048.*30 data"):
        read_spectrum(p)
    q = tmp_path / "c.npz"
    np.savez(q, counts=np.ones(64), live_time_s=1.0, energies_kev=np.linspace(0, 1, 65))
    with pytest.raises(SpectrumError, match="64 channels of counts but 65"):
        read_spectrum(q)
    c = tmp_path / "d.mca"
    c.write_text("<<PMCA SPECTRUM>>\nLIVE_TIME - 1\n<<CALIBRATION>>\n0 1.0\n10 0.5\n<<DATA>>\n"
                 + "\n".join(["1"] * 30) + "\n")
    with pytest.raises(SpectrumError, match="not increasing"):
        read_spectrum(c)


def test_setup_errors_name_the_yaml_path(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("tube:\n  voltage_kv: -5\ndetector:\n  fwhm_mn_ka_ev: 120\n  bogus: 1\n")
    with pytest.raises(SetupError) as ei:
        load_setup(p)
    msg = str(ei.value)
    assert "tube.voltage_kv" in msg and "detector.bogus" in msg
    assert load_setup().tube.anode == "Rh"
