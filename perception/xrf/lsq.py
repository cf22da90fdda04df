"""Weighted linear least squares for the spectrum fit: sign-constrained solves through the normal
equations, Poisson (model-variance) weights and the misfit scale of an area's uncertainty.

Why the line-group areas are not constrained to be ≥ 0 and the weights come from the model, not
the data (:mod:`perception.xrf.fit` uses both; measured on the accuracy cases, ``python -m
bench.xrf_accuracy``):

* Clipping an absent element's area at zero keeps its positive fluctuations and drops its
  negative ones; where its lines overlap a present element's (Ni K, Gd L, Hf L beside the Dy L
  lines under Fe K in a magnet) the present element's area is biased by the same asymmetry,
  the more the fewer the counts: NdFeB Dy read +3.0 % at 5 s with the areas ≥ 0, against
  +1.5 % without noise or with the fit restricted to the elements present (1.3 % of it the
  normalised balance). Signed areas are the unbiased linear estimate; an absent element's area
  then scatters about zero, and its mass fraction is clipped there by the quantifier
  (:mod:`perception.xrf.quantify`).
* Weights 1/y (Neyman's χ²) give a channel that fluctuated low more weight than one that
  fluctuated high, which biases every amplitude low where counts per channel are few (a ground
  PCB's Sb, with its true dark matrix, −5.5 % at 2 s against −2.1 % without noise). Weights
  1/μ from the fitted model, iterated, converge to the Poisson maximum-likelihood estimate (its
  score equations Σ (y − μ)/μ ∂μ = 0 are the fixed point of least squares weighted by 1/μ);
  from the data-weighted solve one pass gets there (a second changed nothing measurable).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import nnls

_F = NDArray[np.float64]
#: model counts per channel below which the Poisson weight is held (no division by ~0 where the
#: model is empty; far below any channel of a fitted region)
MU_FLOOR = 0.5


def poisson_weights(mu: _F) -> _F:
    """Weights 1/√μ [channels] of the residuals for the model counts ``mu`` [channels] (floored
    at ``MU_FLOOR``)."""
    return np.asarray(1.0 / np.sqrt(np.maximum(mu, MU_FLOOR)), dtype=np.float64)


def data_weights(y: _F) -> _F:
    """Weights 1/√max(y, 1) [channels] from the counts themselves (first pass, no model yet)."""
    return np.asarray(1.0 / np.sqrt(np.maximum(y, 1.0)), dtype=np.float64)


def solve(a: _F, b: _F, wts: _F, with_u: bool = True, signed: int = 0
          ) -> tuple[_F, float, _F]:
    """Weighted least squares min ‖W(a x − b)‖ with x[signed:] ≥ 0 and the first ``signed``
    columns free, through the normal equations: with the column-scaled Gram matrix G = RᵀR
    (Cholesky, ridge 1e-9) the problem is solved on the small [columns × columns] system
    R x = R⁻ᵀ aᵀW²b (:func:`nnls_signed`). ``a`` [channels × columns], ``b`` and ``wts``
    [channels]. Returns x, the reduced χ² and (``with_u``) the standard uncertainties
    √diag(G⁻¹) of x (those of the unconstrained problem). Where G is singular, NNLS on every
    column with u from its pseudo-inverse."""
    aw = a * wts[:, None]
    bw = b * wts
    scale = np.sqrt((aw**2).sum(axis=0))
    scale[scale == 0] = 1.0
    an = aw / scale
    g = an.T @ an
    g[np.diag_indices_from(g)] += 1e-9
    rhs = an.T @ bw
    try:
        rr = cholesky(g, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        xs, _ = nnls(an, bw, maxiter=50 * a.shape[1])
        cov = np.linalg.pinv(g, rcond=1e-10, hermitian=True)
        u = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    else:
        q = solve_triangular(rr, rhs, trans="T", check_finite=False)
        xs = nnls_signed(rr, q, signed)
        u = np.zeros(0)
        if with_u:
            rinv = solve_triangular(rr, np.eye(rr.shape[0]), check_finite=False)
            u = np.sqrt((rinv**2).sum(axis=1))
    resid = bw - an @ xs
    x = xs / scale
    dof = max(1, b.size - int((x != 0).sum()))
    return x, float(resid @ resid / dof), np.asarray(u / scale if with_u else u)


def nnls_signed(r: _F, q: _F, signed: int) -> _F:
    """min ‖r x − q‖ with x[signed:] ≥ 0 and x[:signed] free (``r`` [m × n], ``q`` [m]): the
    free columns are projected out (QR), NNLS on the rest, then the free part by
    back-substitution."""
    if signed <= 0:
        return np.asarray(nnls(r, q, maxiter=50 * r.shape[1])[0], dtype=np.float64)
    qf, rf = np.linalg.qr(r[:, :signed])
    rc = r[:, signed:]
    pc = rc - qf @ (qf.T @ rc)
    pq = q - qf @ (qf.T @ q)
    xc = nnls(pc, pq, maxiter=50 * r.shape[1])[0] if rc.shape[1] else np.zeros(0)
    xf = solve_triangular(rf, qf.T @ (q - rc @ xc), check_finite=False)
    return np.asarray(np.concatenate([xf, xc]), dtype=np.float64)


def misfit_scale(templates: _F, r2: _F) -> _F:
    """√max(1, χ²_g) per group: χ²_g is the mean squared normalised residual r² [channels]
    weighted by the group's template [channels × groups]. Where the model misses the data (a
    Compton profile, a continuum step) the counting u understates an area's error, and an
    absent element's line there would pass as detected."""
    mass = templates.sum(axis=0)
    chi2 = (templates.T @ r2) / np.where(mass > 0, mass, 1.0)
    return np.asarray(np.sqrt(np.maximum(chi2, 1.0)), dtype=np.float64)
