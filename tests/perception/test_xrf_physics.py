"""Spectrum simulator: tube, FP line rates, detector effects, counting, and the emulator source."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from perception.xrf.detector import channel_edges, escape_fraction, sigma_kev
from perception.xrf.errors import CompositionError
from perception.xrf.fp import fp_model
from perception.xrf.physics import SpectrumSimulator, pileup
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


# --- the banded response against the dense reference it replaced ----------------------------

def _dense_gaussians(edges: np.ndarray, centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    z = (edges[:, None] - centres[None, :]) / (np.sqrt(2.0) * sigmas[None, :])
    return np.diff(0.5 * erf(z), axis=0)


def _reference_expected(composition: dict[str, float]) -> np.ndarray:
    """The simulator's expected counts/s (2048 channels) as first written: photon list with
    sub-points, dense [channels × photons] Gaussian, escape, tail and shelf matrices, pile-up."""
    m = SIM.model(composition)
    w = m.vector(composition)
    lr = m.line_rates(w)
    ray, com = m.scatter_rates(w)
    doppler = 0.55 / 2.3548 * (m.e_compton / 20.0) ** 2
    cont = ~m.tube.is_line
    step = SETUP.tube.energy_step_kev
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    ray_e = np.concatenate([m.exc_e[~cont], (m.exc_e[cont][:, None] + step * sub).ravel()])
    ray_r = np.concatenate([ray[~cont], np.repeat(ray[cont] / 4, 4)])
    ratio = m.e_compton / m.exc_e
    com_e = np.concatenate([m.e_compton[~cont], (m.e_compton[cont][:, None]
                                                 + step * sub * ratio[cont][:, None]).ravel()])
    com_r = np.concatenate([com[~cont], np.repeat(com[cont] / 4, 4)])
    com_x = np.concatenate([doppler[~cont], np.repeat(doppler[cont], 4)])
    energies = np.concatenate([m.line_e, ray_e, com_e])
    rates = np.concatenate([lr.total, ray_r, com_r])
    extra = np.concatenate([np.zeros(m.line_e.size + ray_e.size), com_x])
    det = SETUP.detector
    noise = det.noise_fwhm_ev * 1e-3
    gain = SETUP.mca.gain_kev_per_channel(2048)
    edges = channel_edges(2048, gain, 0.0)
    keep = (rates > 0) & (energies > edges[0] - 0.5) & (energies < edges[-1] + 1.0)
    e, r, xs = energies[keep], rates[keep], extra[keep]
    f_esc = escape_fraction(e)
    sig = np.sqrt(sigma_kev(e, noise, det.fano) ** 2 + xs**2)
    e_esc = e - 1.7398
    sig_esc = np.sqrt(sigma_kev(e_esc, noise, det.fano) ** 2 + xs**2)
    amp = r * (1.0 - f_esc)
    out = _dense_gaussians(edges, e, sig) @ amp
    esc = f_esc > 0
    out += _dense_gaussians(edges, e_esc[esc], sig_esc[esc]) @ (r * f_esc)[esc]
    centres = 0.5 * (edges[:-1] + edges[1:])
    below = centres[:, None] < e[None, :]
    beta = 2.0 * sig + 0.02
    tail = np.where(below, np.exp(np.minimum((centres[:, None] - e) / beta, 0.0)) / beta, 0.0)
    shelf = np.where(below & (centres[:, None] > 0), 1.0 / e, 0.0)
    out = out * (1.0 - 0.004 - 0.001) + np.diff(edges) * ((tail * 0.004 + shelf * 0.001) @ amp)
    return pileup(out, gain, 0.0, det.pileup_time_s)


@pytest.mark.parametrize("comp", [STEEL, {"Nd": 0.25, "Pr": 0.06, "Dy": 0.03, "Fe": 0.64,
                                          "Co": 0.02}])
def test_banded_response_matches_the_dense_reference(comp: dict[str, float]) -> None:
    """The cached sparse response (windowed Gaussians ±8σ, tails over 30 β, exact shelf) gives
    the dense result to 1e-6 relative in every channel (the truncated tails are < 1e-12 of a
    peak; the smallest channels hold ~1e-9 of the largest)."""
    ref = _reference_expected(comp)
    fast = SIM.expected(comp, 1.0, channels=2048).counts
    assert np.all(ref > 0)
    assert np.max(np.abs(fast - ref) / ref) < 1e-6


def test_secondary_fluorescence_matches_the_per_pair_formula() -> None:
    """The factored secondary-fluorescence sum (exciter × emitter matrix products) equals the
    per-pair evaluation of the Shiraiwa–Fujino term to 1e-10 relative."""
    comp = {"Fe": 0.5, "Cr": 0.2, "Ni": 0.2, "Mo": 0.05, "Cu": 0.05}
    m = fp_model(SETUP, sorted(comp))
    w = m.vector(comp)
    fast = m.line_rates(w).secondary
    mu_l = w @ m.mu_line
    b = mu_l / m.sin2
    k = m.k_const * m.eff_line * w[m.line_elem]
    on = (w[m.line_elem[m.pair_l]] > 0) & (w[m.line_elem[m.pair_m]] >= 1e-3)
    pl, pm = m.pair_l[on], m.pair_m[on]
    ac = (w @ m.mu_exc_c)[None, :] / m.sin1
    mu_m = mu_l[pm][:, None]
    bl = b[pl][:, None]
    lfac = np.log1p(ac / mu_m) / ac + np.log1p(bl / mu_m) / bl
    exc = m.exc_n_c[None, :] * w[m.line_elem[pm]][:, None] * m.sigma_c[pm]
    term = (0.5 * exc * lfac / (m.sin1 * (ac + bl))).sum(axis=1)
    ref = k * np.bincount(pl, weights=m.pair_tau[on] * term, minlength=k.size)
    assert ref.max() > 0
    assert np.allclose(fast, ref, rtol=1e-10, atol=1e-12 * ref.max())
