"""Two-material decomposition of dual-energy cells: how much of each of two known materials
lies along a ray, from the ray's two log-attenuations.

A pile of objects of different materials (a copper piece lying on an aluminium plate) gives
cells that no single material's table reads right: copper read as aluminium weighs too much,
aluminium read as copper too little. With two detector layers each cell gives two numbers,
``A_low`` and ``A_high``, and two unknowns can be solved for: the mass thicknesses
``t_a, t_b`` (g/cm² along the ray) of materials ``a`` and ``b`` such that

.. math::

    A_k(t_a, t_b) = -\\ln \\sum_E w_k(E)\\, e^{-t_a \\mu_a(E) - t_b \\mu_b(E)}, \\quad k \\in
    \\{\\text{low}, \\text{high}\\}

with ``w_k`` the layers' energy-integrating signal weights (:func:`layer_spectra`), beam
hardening included. This is dual-energy basis-material decomposition (Alvarez & Macovski,
1976) with the two basis materials taken as the pile's own. It is solved cell by cell with a
projected Newton iteration (``t ≥ 0``). It is well posed only where the two materials'
low/high attenuation ratios differ (:func:`separability`): two plastics cannot be told apart,
and then a single table reads the pile well anyway.

Example::

    >>> import numpy as np
    >>> from perception.xrt import XrtSetup, bulk_attenuation
    >>> from perception.xrt.physics import log_attenuation
    >>> s = XrtSetup()
    >>> al, cu = bulk_attenuation({"Al": 1.0}, "C", s), bulk_attenuation({"Cu": 1.0}, "C", s)
    >>> a = log_attenuation(s, al * 1.0 + cu * 0.5, np.array([1.0]))[0]  # 1 g Al + 0.5 g Cu
    >>> r = decompose_two(np.array([a[0]]), np.array([a[1]]), al, cu, s)
    >>> [round(float(r.t_a[0]), 3), round(float(r.t_b[0]), 3)]
    [1.0, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrt.errors import XrtDataError
from perception.xrt.physics import RHO_T_MAX, XrtSetup, layer_spectra

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TwoMaterial:
    """Per cell: mass thickness of material ``a`` and ``b`` along the ray (g/cm², ≥ 0), and
    the variance (g²/cm⁴) of their sum from the cells' noise on both layers (0 where a cell
    lets (nearly) nothing through: its thickness is then only a lower bound, capped at
    ``RHO_T_MAX``)."""

    t_a: FloatArray
    t_b: FloatArray
    var_sum: FloatArray


def attenuation_ratio(mu: FloatArray, setup: XrtSetup) -> float:
    """A material's low/high log-attenuation ratio at small thickness,
    ``(w_low · μ) / (w_high · μ)``: larger for heavier elements (photo-effect ∝ Z⁴/E³)."""
    w = layer_spectra(setup).signal_weights
    return float(w[0] @ mu) / float(w[1] @ mu)


def separability(mu_a: FloatArray, mu_b: FloatArray, setup: XrtSetup) -> float:
    """How far apart the two materials' :func:`attenuation_ratio` lie, relative:
    ``|r_a / r_b − 1|``. Under ~0.1 the decomposition's noise swamps it (two plastics, two
    steels)."""
    return abs(attenuation_ratio(mu_a, setup) / attenuation_ratio(mu_b, setup) - 1.0)


def decompose_two(a_low: FloatArray, a_high: FloatArray, mu_a: FloatArray, mu_b: FloatArray,
                  setup: XrtSetup, noise_a: float = 0.0, iterations: int = 30) -> TwoMaterial:
    """Mass thicknesses of materials ``a`` and ``b`` (attenuation ``mu_*`` in cm²/g on
    ``setup.energies()``) behind each cell's ``a_low``, ``a_high`` (see the module
    docstring). ``noise_a``: the sd of a log-attenuation at zero (it grows as ``e^{A/2}``),
    propagated to the variance of ``t_a + t_b``. Raises :class:`XrtDataError` on arrays of
    different shapes, non-finite input or an ``mu`` off the energy grid."""
    lo = np.asarray(a_low, dtype=np.float64)
    hi = np.asarray(a_high, dtype=np.float64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise XrtDataError(f"a_low {lo.shape} and a_high {hi.shape}: expected equal 1-D")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise XrtDataError("a_low and a_high must be finite")
    n_e = setup.energies().size
    mus = [np.asarray(m, dtype=np.float64) for m in (mu_a, mu_b)]
    if any(m.shape != (n_e,) for m in mus):
        raise XrtDataError(f"mu_a, mu_b: expected {n_e} finite values > 0 each, got shapes "
                           f"{mus[0].shape} and {mus[1].shape}")
    mu = np.vstack(mus)
    if not np.all(np.isfinite(mu)) or np.any(mu <= 0):
        raise XrtDataError(f"mu_a, mu_b: expected {n_e} finite values > 0 each")
    w = layer_spectra(setup).signal_weights                   # (2 layers, E)
    target = np.stack([lo, hi], axis=1)                        # (N, 2)
    # start: the linearised solution at small thickness (slopes w_k · mu_j), clipped at 0
    slope0 = w @ mu.T                                          # (layer, material)
    t = np.clip(np.linalg.solve(slope0, np.maximum(target, 0.0).T).T, 0.0, RHO_T_MAX)
    jac = np.broadcast_to(slope0, (lo.size, 2, 2)).copy()
    # a cell behind which (nearly) nothing passes has no gradient: keep J invertible
    ridge = 1e-9 * np.eye(2)
    for _ in range(iterations):
        trans = np.exp(-(t @ mu))                              # (N, E)
        s = np.maximum(trans @ w.T, 1e-300)                    # (N, layer)
        model = -np.log(s)
        # dA_k/dt_j = Σ_E w_k μ_j T / Σ_E w_k T
        jac = np.einsum("ne,ke,je->nkj", trans, w, mu) / s[:, :, None] + ridge
        step = np.linalg.solve(jac, (target - model)[:, :, None])[:, :, 0]
        t_new = np.clip(t + step, 0.0, RHO_T_MAX)
        if np.max(np.abs(t_new - t), initial=0.0) < 1e-7:
            t = t_new
            break
        t = t_new
    # d(t_a + t_b) = [1 1] J⁻¹ dA, dA_k ~ noise_a e^{A_k/2} independent per layer
    g = np.linalg.solve(np.transpose(jac, (0, 2, 1)), np.ones((lo.size, 2, 1)))[:, :, 0]
    sd = noise_a * np.exp(np.maximum(target, 0.0) / 2)
    var_sum = np.nan_to_num(np.sum((g * sd) ** 2, axis=1), nan=0.0, posinf=0.0)
    # a cell whose ratio lies beyond either material's (a plastic part lighter than the light
    # class's mean, a cell noisier than its contrast) has no solution with both t >= 0; the
    # projected iteration then leaves it wherever the clip stopped it, often far too thick.
    # Such a cell is read as the one material it lies nearest, from its high layer alone.
    beyond = (t[:, 0] <= 0.0) | (t[:, 1] <= 0.0)
    if np.any(beyond):
        which = (t[beyond, 1] > t[beyond, 0]).astype(int)     # 0: a, 1: b
        alone, var_alone = _one_material(hi[beyond], mu[which], w[1], noise_a)
        t_out = np.zeros((int(np.count_nonzero(beyond)), 2))
        t_out[np.arange(t_out.shape[0]), which] = alone
        t[beyond] = t_out
        var_sum[beyond] = var_alone
    return TwoMaterial(t[:, 0], t[:, 1], var_sum)


def _one_material(a_high: FloatArray, mu: FloatArray, w_high: FloatArray, noise_a: float,
                  iterations: int = 30) -> tuple[FloatArray, FloatArray]:
    """Per cell, the thickness of its own material (rows of ``mu``) behind ``a_high``, and
    its variance; a negative ``a_high`` (noise on bare belt) maps linearly through the slope
    at zero, so that noise averages out."""
    slope0 = mu @ w_high                                       # (N,)
    t = np.maximum(a_high, 0.0) / slope0
    deriv = slope0
    for _ in range(iterations):
        trans = np.exp(-t[:, None] * mu)
        s = np.maximum(trans @ w_high, 1e-300)
        deriv = np.maximum((trans * mu) @ w_high / s, 1e-12)
        step = (a_high - (-np.log(s))) / deriv
        t_new = np.clip(t + step, 0.0, RHO_T_MAX)
        if np.max(np.abs(t_new - t), initial=0.0) < 1e-7:
            t = t_new
            break
        t = t_new
    t = np.where(a_high < 0, a_high / slope0, t)
    sd = noise_a * np.exp(np.maximum(a_high, 0.0) / 2) / deriv
    return t, sd**2
