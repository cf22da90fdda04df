"""Spectrum simulator: tube, FP line rates, detector effects, counting, and the emulator source."""

from __future__ import annotations

import numpy as np
import pytest

from perception.xrf.errors import CompositionError
from perception.xrf.fp import fp_model
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.setup import load_setup
from perception.xrf.source import simulator_source
from perception.xrf.tube import tube_spectrum

SETUP = load_setup()
SIM = SpectrumSimulator(SETUP)
STEEL = {"Fe": 0.70, "Cr": 0.19, "Ni": 0.11}


def test_tube_spectrum_has_anode_lines_and_ends_at_kv() -> None:
    t = tube_spectrum(SETUP.tube)
    assert t.energies_kev.max() <= SETUP.tube.voltage_kv + 1e-9
    assert np.all(t.photons > 0)
    assert abs(t.line_energies_kev[0] - 20.216) < 0.01  # Rh Kα1 strongest


def test_secondary_fluorescence_only_above_the_edge() -> None:
    m = fp_model(SETUP, sorted(STEEL))
    r = m.line_rates(m.vector(STEEL))
    ratio = {ln.group_id: s / p for ln, p, s in zip(m.lines, r.primary, r.secondary, strict=True)
             if ln.name == "KL3"}
    assert ratio["Cr K"] > 0.2          # Fe and Ni K lines lie above the Cr K edge (5.99 keV)
    assert ratio["Fe K"] > 0.01         # Ni K lines excite Fe
    assert ratio["Ni K"] == 0.0         # nothing heavier than Ni in the sample


def test_expected_spectrum_peaks_escape_pileup_dead_time() -> None:
    ex = SIM.expected(STEEL, 10.0)
    e = ex.gain_kev_per_channel * np.arange(ex.counts.size) + ex.offset_kev
    peak = e[np.argmax(ex.counts)]
    assert abs(peak - 6.40) < 0.03                          # Fe Kα
    def near(kev: float) -> float:
        return float(ex.counts[np.abs(e - kev) < 0.05].max())
    assert near(6.40 - 1.74) > 3 * near(4.3)                 # Fe Kα escape peak above continuum
    assert near(12.80) > 3 * near(12.3)                      # Fe Kα + Fe Kα sum peak
    assert ex.real_time_s > ex.live_time_s * (1 + 0.5 * ex.output_rate_cps * 1.5e-6)
    ex2 = SIM.expected(STEEL, 20.0)
    assert np.allclose(ex2.counts, 2 * ex.counts)


def test_poisson_sample_matches_expectation() -> None:
    ex = SIM.expected(STEEL, 1.0)
    s = SIM.sample(STEEL, 1.0, np.random.default_rng(1))
    total = ex.counts.sum()
    assert abs(s.counts.sum() - total) < 5 * np.sqrt(total)   # 5σ of a Poisson total
    assert np.all(s.counts == np.round(s.counts))


@pytest.mark.parametrize("channels", [256, 1024, 8192])
def test_source_for_the_emulator(channels: int) -> None:
    src = simulator_source(STEEL, SETUP, np.random.default_rng(2))
    c = src(0.5, channels)
    assert c.dtype == np.int64 and c.shape == (channels,)
    assert c.sum() > 1000
    assert src.real_time_s(1.0) > 1.0 and src.input_rate_cps > 0
    assert src(0.0, channels).sum() == 0


def test_bad_compositions() -> None:
    with pytest.raises(CompositionError, match="sum"):
        SIM.expected({"Fe": 0.5}, 1.0)
    with pytest.raises(CompositionError, match="Xx"):
        SIM.expected({"Xx": 1.0}, 1.0)
    with pytest.raises(CompositionError, match="≥ 0"):
        SIM.expected({"Fe": 1.1, "Cr": -0.1}, 1.0)
