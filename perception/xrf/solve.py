"""Matrix-correction solve of the FP quantification: the composition whose predicted line-group
intensities match the measured areas, with the balance closing the sum, and — with the scatter
balance — the dark-matrix composition whose predicted scatter matches the measured scatter.

Unknowns z: v_i = ln w_i of the detected analytes (area > 3σ, the detection limit's level:
an absent element's 2–3σ misfit area would enter the matrix) and, with the scatter balance,
the position x ∈ [0, n − 1] on the family ladder (dark matrix = (1 − f) F_⌊x⌋ + f F_⌊x⌋+1,
f = x − ⌊x⌋). For a given z the full composition is: analytes exp(v), oxygen of their oxides,
and the dark matrix filling 1 − Σ visible; without a dark matrix, or when the visible part
exceeds 1, the analytes are normalised instead (the areas then fix only their ratios). The
classic update T_i(z) = ln(w_i A_i / (k_i t I_i(w))) has the solution as its fixed point; the
scatter equation is T_x(z) = x + ln S_meas − ln S_pred(w). Fixed-point iteration of T converges
slowly where a group's intensity barely depends on its own fraction (heavy analytes in a light
matrix: 100 iterations for a brass with a dark matrix), so R(z) = T(z) − z is solved by Newton's
method instead: the Jacobian by forward differences for the analytes above ``MAJOR`` (and x), the
others' columns −e_i (a minor element changes no intensity measurably: its column of ∂T/∂z is
≈ 0), then updated by Broyden's rank-one formula after each step, recomputed only when a step
grows, and passed on to the refit's solve; steps capped at a factor e² per iteration. Where x
would leave [0, n − 1] it is held at that end and the analytes solved alone (``at_edge``: the
scatter is not matched). Convergence: every |Δz| < ``TOL`` (relative change of w below 1e-5, as
the fixed-point iteration had): 10–25 FP evaluations for the first solve, 4–9 for the refit's,
where the fixed-point iteration took up to 100 each. Without convergence in ``MAX_NEWTON`` steps
the fixed-point iteration finishes the job.

Light matrices make the problem ill-conditioned: with heavy analytes absorbing most of the
radiation, scaling every analyte up (and the dark matrix down) barely changes their intensities
(∂ln I/∂ln w ≈ the dark matrix's share of the absorption, 0.1–0.2), so a 0.3 % area bias is a
2–3 % composition bias. The scatter equation is what pins that direction down.

The scatter sensitivity d ln w / d ln S_meas = −J⁻¹ e_x (J the Jacobian at the solution) carries
the scatter's uncertainty into the analytes'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrf.balance import Balance
from perception.xrf.fp import FPModel
from perception.xrf.scatter import ScatterWindow

_F = NDArray[np.float64]
_I = NDArray[np.intp]
DETECTED_SIGMA = 3.0
MAJOR = 0.005
TOL = 1e-5
MAX_NEWTON = 30
MAX_FIXED_POINT = 100
MAX_STEP = 2.0
FD_STEP = 1e-4


@dataclass(frozen=True)
class ScatterMeasurement:
    """Measured scatter-window rate (counts/s) ± relative u, the window's channel edges (keV)
    and the detector noise FWHM (keV) to predict it with."""

    rate: float
    rate_u: float
    edges: tuple[float, float]
    noise_fwhm_kev: float


@dataclass(frozen=True)
class Solution:
    """Composition vector (model order), dark fraction, family position x (None without the
    scatter balance), whether x ended at a family end without matching the scatter, d ln w /
    d ln S_meas [analytes], the evaluations spent, and the warm-start state (unknowns z,
    Jacobian, significant analytes)."""

    w: _F
    dark: float
    x: float | None
    at_edge: bool
    scatter_sensitivity: _F
    evaluations: int
    z: _F
    jacobian: _F | None
    pos: NDArray[np.bool_]


class MatrixSolver:
    """Solver for one FP model, analyte set and balance (see module docstring). ``sel`` and
    ``line_group`` map the fit's lines to its groups; ``gidx`` gives each analyte's quantified
    group; ``eidx`` each analyte's index in the model; ``ox`` its oxide oxygen per gram."""

    def __init__(self, model: FPModel, eidx: _I, sel: _I, line_group: _I, gidx: _I,
                 n_groups: int, ox: _F, balance: Balance) -> None:
        self.model = model
        self.eidx, self.sel, self.line_group, self.gidx = eidx, sel, line_group, gidx
        self.n_groups = n_groups
        self.ox = ox
        self.balance = balance
        n = len(model.symbols)
        self.dark_idx = np.array(sorted({model.index[s] for s in balance.symbols}), dtype=np.intp)
        self.o_idx = model.index["O"] if balance.oxides else -1
        comps = balance.family or ((balance.matrix,) if balance.matrix else ())
        self.anchors = np.zeros((len(comps), n))
        for i, comp in enumerate(comps):
            for s, f in comp:
                self.anchors[i, model.index[s]] += f
        self.window = ScatterWindow(model) if balance.from_scatter else None
        self.k = np.ones(eidx.size)
        self.k_scatter = 1.0

    # --- composition ------------------------------------------------------------------------
    def dark_vector(self, x: float | None) -> _F | None:
        """Dark-matrix composition (fractions summing to 1, model order) at family position x."""
        if self.anchors.shape[0] == 0:
            return None
        if x is None or self.anchors.shape[0] == 1:
            return np.asarray(self.anchors[0], dtype=np.float64)
        i = min(int(np.floor(x)), self.anchors.shape[0] - 2)
        f = x - i
        return np.asarray((1.0 - f) * self.anchors[i] + f * self.anchors[i + 1], dtype=np.float64)

    def compose(self, ana: _F, x: float | None) -> tuple[_F, float]:
        """Full composition vector and dark fraction for analyte fractions ``ana`` [analytes]."""
        w = np.zeros(len(self.model.symbols))
        oxy = float((ana * self.ox).sum())
        visible = float(ana.sum()) + oxy
        dark_vec = self.dark_vector(x)
        dark = 1.0 - visible
        if dark_vec is None or dark < 0:
            scale = 1.0 / max(visible, 1e-12)
            ana = ana * scale
            oxy *= scale
            dark = 0.0
        w[self.eidx] = ana
        if self.o_idx >= 0:
            w[self.o_idx] += oxy
        if dark_vec is not None and dark > 0:
            w += dark * dark_vec
        return w, dark

    def group_rates(self, line_rates: _F) -> _F:
        """Rates (photons/s) of each analyte's quantified group from rates of all model lines."""
        per_group = np.bincount(self.line_group, weights=line_rates[self.sel],
                                minlength=self.n_groups)
        return np.asarray(per_group[self.gidx], dtype=np.float64)

    def line_k(self) -> _F:
        """Sensitivity factor of every model line (its analyte's k; 1 for other elements)."""
        k = np.ones(self.model.line_e.size)
        for i, e in enumerate(self.eidx):
            k[self.model.line_elem == e] = self.k[i]
        return k

    # --- solve ------------------------------------------------------------------------------
    def solve(self, areas: _F, areas_u: _F, live_s: float,
              scatter: ScatterMeasurement | None, warm: Solution | None = None) -> Solution:
        """Solve for the composition (see module docstring); ``warm``: a previous solution of
        the same spectrum (start point and Jacobian)."""
        # a detection needs a positive, finite area above DETECTED_SIGMA of its u (a sparse
        # spectrum can give zero areas with zero or undefined u)
        pos = np.isfinite(areas) & (areas > 0) & (areas > DETECTED_SIGMA * areas_u)
        idx = np.flatnonzero(pos)
        use_x = self.window is not None and scatter is not None
        nv = idx.size
        if nv == 0:
            w, dark = self.compose(np.zeros(self.eidx.size), 0.0 if use_x else None)
            return Solution(w, dark, None, False, np.zeros(self.eidx.size), 0, np.zeros(0), None,
                            pos)
        n_anchor = self.anchors.shape[0]
        x_hi = float(n_anchor - 1)
        log_a = np.log(areas[idx])
        line_k = self.line_k()
        evals = 0

        def unpack(z: _F) -> tuple[_F, float | None]:
            ana = np.zeros(self.eidx.size)
            ana[idx] = np.exp(z[:nv])
            return ana, (float(z[nv]) if use_x else None)

        def residual(z: _F) -> tuple[_F, _F, float]:
            nonlocal evals
            evals += 1
            ana, x = unpack(z)
            w, dark = self.compose(ana, x)
            rates = self.model.line_rates(w).total
            pred = self.k[idx] * live_s * self.group_rates(rates)[idx]
            r = np.empty(z.size)
            r[:nv] = np.log(np.maximum(w[self.eidx[idx]], 1e-300)) + log_a \
                - np.log(np.maximum(pred, 1e-300)) - z[:nv]
            if use_x:
                assert scatter is not None and self.window is not None
                if dark > 0:
                    s_pred = self.k_scatter * self.window.predicted(
                        w, rates, line_k, scatter.edges, scatter.noise_fwhm_kev)
                    r[nv] = np.log(scatter.rate) - np.log(max(s_pred, 1e-300))
                else:
                    r[nv] = 0.0  # normalised: no dark matrix for the scatter to weigh
            return r, w, dark

        def jacobian(z: _F, r0: _F, w: _F) -> _F:
            jac = -np.eye(z.size)
            cols = [j for j in range(nv) if w[self.eidx[idx[j]]] >= MAJOR]
            if use_x:
                cols.append(nv)
            for j in cols:
                h = FD_STEP
                if j == nv and z[j] + h > x_hi:
                    h = -h
                zp = z.copy()
                zp[j] += h
                jac[:, j] = (residual(zp)[0] - r0) / h
            if use_x and abs(jac[nv, nv]) < 1e-12:
                jac[nv, nv] = -1.0  # no dark matrix at this point: hold x
            return jac

        # start: the warm solution (its Jacobian entries for analytes still significant), or
        # 1e-3 of each analyte and two fixed-point steps
        jac: _F | None = None
        if warm is not None and warm.z.size:
            prev = np.flatnonzero(warm.pos)
            z = np.log(np.maximum(warm.w[self.eidx[idx]], 1e-6))
            if use_x:
                z = np.append(z, warm.x if warm.x is not None else 0.5 * x_hi)
            if warm.jacobian is not None and warm.jacobian.shape[0] == prev.size + use_x:
                old = {int(e): k for k, e in enumerate(prev)}
                where = [old.get(int(e), -1) for e in idx] + ([prev.size] if use_x else [])
                jac = -np.eye(z.size)
                for a_new, a_old in enumerate(where):
                    for b_new, b_old in enumerate(where):
                        if a_old >= 0 and b_old >= 0:
                            jac[a_new, b_new] = warm.jacobian[a_old, b_old]
        else:
            z = np.full(nv, np.log(1e-3))
            if use_x:
                z = np.append(z, 0.5 * x_hi)
            for _ in range(2):
                r, _, _ = residual(z)
                z[:nv] += r[:nv]
        r, w, dark = residual(z)
        at_edge = False
        converged = False
        last_step = np.inf
        for _ in range(MAX_NEWTON):
            if jac is None:
                jac = jacobian(z, r, w)
            try:
                step = -np.linalg.solve(jac, r)
                at_edge = use_x and not 0.0 <= z[nv] + step[nv] <= x_hi
                if at_edge:
                    # x would leave the family: hold it at the nearer end, solve the analytes
                    end = 0.0 if z[nv] + step[nv] < 0.0 else x_hi
                    if z[nv] != end:
                        z[nv] = end
                        r, w, dark = residual(z)
                    step = np.zeros(z.size)
                    step[:nv] = -np.linalg.solve(jac[:nv, :nv], r[:nv])
            except np.linalg.LinAlgError:
                jac = None
                break
            big = float(np.abs(step[:nv]).max())
            if big > MAX_STEP:
                step *= MAX_STEP / big
            size = float(np.abs(step).max())
            z = z + step
            r_new, w, dark = residual(z)
            if size < TOL:
                r = r_new
                converged = True
                break
            if size > last_step:
                jac = None  # not contracting: a fresh Jacobian
            else:  # Broyden's rank-one update of the Jacobian along the step
                jac += np.outer(r_new - r - jac @ step, step) / float(step @ step)
            r = r_new
            last_step = size
        if not converged:
            for _ in range(MAX_FIXED_POINT):
                z[:nv] += r[:nv]
                r, w, dark = residual(z)
                if float(np.abs(r[:nv]).max()) < TOL:
                    break
        sens = np.zeros(self.eidx.size)
        if use_x and jac is not None and not at_edge and dark > 0:
            e_x = np.zeros(z.size)
            e_x[nv] = 1.0
            # R(z; ln S) = 0 with ∂R_x/∂ln S = 1: dz/d ln S = −J⁻¹ e_x
            sens[idx] = -np.linalg.solve(jac, e_x)[:nv]
        x_out = float(z[nv]) if use_x else None
        return Solution(w, dark, x_out, at_edge, sens, evals, z, jac, pos)
