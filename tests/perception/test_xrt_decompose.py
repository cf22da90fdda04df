"""Two-material decomposition of dual-energy cells (perception/xrt/decompose.py): round trips
through the forward model, the noise it states, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from perception.xrt import XrtDataError, XrtSetup, bulk_attenuation, decompose_two, separability
from perception.xrt.physics import log_attenuation

SETUP = XrtSetup()
AL = bulk_attenuation({"Al": 1.0}, "C", SETUP)
CU = bulk_attenuation({"Cu": 1.0}, "C", SETUP)
PE = bulk_attenuation({}, "C2H4", SETUP)
PMMA = bulk_attenuation({}, "C5H8O2", SETUP)


def _cells(t_a: np.ndarray, t_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = t_a[:, None] * AL[None, :] + t_b[:, None] * CU[None, :]
    # log_attenuation takes one material per call: a composite is one "material" of
    # thickness 1 with attenuation t_a mu_a + t_b mu_b
    a = np.array([log_attenuation(SETUP, m, np.array(1.0)) for m in mu])
    return a[:, 0], a[:, 1]


def test_round_trip_through_the_forward_model() -> None:
    """Noise-free cells of aluminium and copper, apart and stacked, from nothing to 5 g/cm²
    of aluminium under 2 g/cm² of copper (beam hardening throughout): both thicknesses come
    back within 1e-4 g/cm²."""
    t_a = np.array([0.0, 0.5, 0.0, 1.0, 5.0, 0.2, 3.0])
    t_b = np.array([0.0, 0.0, 0.3, 0.5, 2.0, 1.5, 0.05])
    lo, hi = _cells(t_a, t_b)
    r = decompose_two(lo, hi, AL, CU, SETUP)
    assert np.allclose(r.t_a, t_a, atol=1e-4) and np.allclose(r.t_b, t_b, atol=1e-4)


def test_stated_noise_of_the_sum_matches_its_spread() -> None:
    """400 noisy draws of one stacked cell (noise 0.01 at A = 0, growing as e^{A/2}): the
    spread of t_a + t_b is the stated sd within 20 % (binomial-free: sd of an sd from 400
    draws is ~3.5 %), and the mean of the sum is unbiased within 3 stated standard errors."""
    rng = np.random.default_rng(5)
    lo, hi = _cells(np.array([1.5]), np.array([0.4]))
    n, noise = 400, 0.01
    lo_n = lo[0] + rng.normal(0, noise * np.exp(lo[0] / 2), n)
    hi_n = hi[0] + rng.normal(0, noise * np.exp(hi[0] / 2), n)
    r = decompose_two(lo_n, hi_n, AL, CU, SETUP, noise_a=noise)
    total = r.t_a + r.t_b
    stated = float(np.sqrt(np.mean(r.var_sum)))
    assert 0.8 < float(np.std(total)) / stated < 1.2
    assert abs(float(np.mean(total)) - 1.9) < 3 * stated / np.sqrt(n)


def test_separability_tells_metals_from_plastics() -> None:
    assert separability(AL, CU, SETUP) > 0.3
    assert separability(PE, PMMA, SETUP) < 0.1


def test_bad_input_is_named() -> None:
    with pytest.raises(XrtDataError, match="equal 1-D"):
        decompose_two(np.zeros(3), np.zeros(4), AL, CU, SETUP)
    with pytest.raises(XrtDataError, match="finite"):
        decompose_two(np.array([np.nan]), np.array([0.1]), AL, CU, SETUP)
    with pytest.raises(XrtDataError, match="mu_a, mu_b"):
        decompose_two(np.zeros(2), np.zeros(2), AL[:-1], CU, SETUP)
