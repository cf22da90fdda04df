"""Quantification to mass fractions by fundamental parameters, iterated with the matrix
correction, a balance for what XRF cannot see, per-element uncertainty and 3σ detection limits,
and optional correction of per-element sensitivities from reference standards.

Per element e (quantified from its primary line group g, :func:`lines.primary_group`), the
measured area A_e (counts, pile-up loss corrected, and the share of every line's counts that
incomplete charge collection moved into its low-energy tail and shelf given back: that share
is measured on the strongest groups, whose tail and shelf the fit gives free columns,
:func:`charge_loss_share`) is matched to the FP prediction
k_e · t_live · I_g(w) (:meth:`fp.FPModel.line_rates`, primary + secondary fluorescence), with the
balance (:mod:`perception.xrf.balance`) closing the composition, by Newton's method on the
fixed point of w_e ← w_e · A_e / (k_e t I_g(w)) (:mod:`perception.xrf.solve`) until the largest
relative change is < 1e-5. With the scatter balance, the dark matrix's composition is a further
unknown, fixed by the counts in the scatter window (:mod:`perception.xrf.scatter`). The line
ratios and continuum of the fit are then recomputed for the estimate and the spectrum refitted,
``REFITS`` times. Net areas are signed (an absent element's scatter about zero, see
:mod:`perception.xrf.lsq`); mass fractions are clipped at zero.

Sensitivity factors k_e are 1 on fundamental parameters alone (relative standard uncertainty
``setup.fp_relative_u``), or come from standards: k_e = A_e / (t I_g(w_std)) on each standard
containing e, combined by weight; elements in no standard take the median factor. Standard
uncertainty u(w_e)/w_e = √((u_A/A)² + u(k_e)²/k_e²) (counting ⊕ calibration; matrix coupling is
neglected); the scatter balance adds (∂ln w_e/∂ln S · u_S/S)² — u_S the window's counting ⊕ the
scatter sensitivity's u (``fp_relative_u``, or from standards: k_S = S/S_pred(w_std)) — and
``SCATTER_FAMILY_U``² for real dark matrices off the family. A *given* dark matrix is a guess
(a generic FR-4 for a ground PCB reads −2.4 %, outside its counting u): each spectrum is solved a
second time with the scatter balance and u adds ((w_given − w_scatter)/w)² ⊕ ``SCATTER_FAMILY_U``²
(twice the work for such set-ups; none when the scatter cannot be used). Detection limit
LOD_e = 3 u_A(blank) / (t k_e ∂I_g/∂w_e).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from perception.xrf.balance import SCATTER_FAMILY_U, Balance, oxygen_per_mass
from perception.xrf.errors import QuantificationError
from perception.xrf.fit import FitConfig, FitResult, LineFitter
from perception.xrf.lines import primary_group
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.solve import MatrixSolver, ScatterMeasurement, Solution
from perception.xrf.spectrum import Spectrum

_F = NDArray[np.float64]
#: refits with the line ratios and continuum of the latest estimate: the quick fit's estimate
#: (SNIP background, areas ≥ 0) is off enough that after one refit a magnet's Dy read +2.8 %
#: without noise, +1.4 % after a second; a third changes nothing measurable (< 0.01 %)
REFITS = 2


@dataclass(frozen=True)
class Standard:
    """A reference sample: its spectrum on this set-up and its certified mass fractions."""

    spectrum: Spectrum
    composition: Mapping[str, float]
    name: str = "standard"


@dataclass(frozen=True)
class ElementResult:
    """One element: group fitted, net counts ± u (signed), mass fraction ± u (k=1, ≥ 0), 3σ LOD
    (fractions)."""

    symbol: str
    group: str
    net_counts: float
    net_counts_u: float
    mass_fraction: float
    mass_fraction_u: float
    lod: float

    @property
    def detected(self) -> bool:
        """Net area above its 3σ detection limit."""
        return self.mass_fraction > self.lod


@dataclass(frozen=True)
class StandardCheck:
    """Residuals of one standard quantified with the calibrated factors: element → (true, est)."""

    name: str
    values: dict[str, tuple[float, float]]

    def max_relative_error(self, min_fraction: float = 0.01) -> float:
        """Largest |est − true|/true over elements with true ≥ ``min_fraction``."""
        errs = [abs(e - t) / t for t, e in self.values.values() if t >= min_fraction]
        return max(errs, default=0.0)


@dataclass(frozen=True)
class QuantResult:
    """Elements (analytes with a fitted group), balance fraction, method, fit χ², the fit, the
    standards' residuals, a note (``fundamental parameters alone`` without standards) and the
    dark matrix's composition (fractions of the balance part; empty without one)."""

    elements: tuple[ElementResult, ...]
    balance_fraction: float
    method: str
    note: str
    chi2_reduced: float
    fit: FitResult
    standards: tuple[StandardCheck, ...] = ()
    dark_matrix: dict[str, float] = field(default_factory=dict)

    def mass_fractions(self, detected_only: bool = False) -> dict[str, float]:
        """symbol → mass fraction."""
        return {e.symbol: e.mass_fraction for e in self.elements
                if e.detected or not detected_only}

    def element(self, symbol: str) -> ElementResult:
        """The result of one element; ``QuantificationError`` if it was not analysed."""
        for e in self.elements:
            if e.symbol == symbol:
                return e
        raise QuantificationError(f"element {symbol!r} not analysed")


class Quantifier:
    """FP quantifier for one set-up, analyte list and balance; optionally calibrated on
    ``standards`` (raises ``QuantificationError`` if a standard's composition is invalid)."""

    def __init__(self, setup: XrfSetup | None = None, elements: Sequence[str] | None = None,
                 balance: Balance | None = None, standards: Sequence[Standard] = (),
                 fit_config: FitConfig | None = None) -> None:
        self.setup = setup or load_setup()
        cfg = fit_config or FitConfig()
        if elements is not None:
            cfg = FitConfig(**{**cfg.__dict__, "elements": tuple(elements)})
        self.balance = balance or Balance()
        extra: list[str] = list(self.balance.symbols)
        for st in standards:
            extra += [s for s in st.composition if s not in extra]
        self.fitter = LineFitter(self.setup, cfg, tuple(s for s in extra
                                                        if s not in cfg.elements))
        self.model = self.fitter.model
        kv, fmax = self.setup.tube.voltage_kv, self.fitter.max_kev
        groups = self.fitter.group_names
        self.symbols: list[str] = []
        self.gidx: list[int] = []
        for s in cfg.elements:
            g = f"{s} {primary_group(s, kv, fmax)}"
            if g in groups:
                self.symbols.append(s)
                self.gidx.append(groups.index(g))
        self.eidx = np.array([self.model.index[s] for s in self.symbols], dtype=np.intp)
        both = sorted(set(self.balance.symbols) & set(self.symbols))
        if both:
            raise QuantificationError(f"balance {self.balance.label!r}: {', '.join(both)} also "
                                      "analysed; a dark-matrix element cannot be an analyte")
        self.ox = np.array([oxygen_per_mass(s) for s in self.symbols]) if self.balance.oxides \
            else np.zeros(len(self.symbols))
        self.solver = MatrixSolver(self.model, self.eidx, self.fitter.sel,
                                   self.fitter.line_group, np.array(self.gidx, dtype=np.intp),
                                   len(groups), self.ox, self.balance)
        self.k = self.solver.k  # shared: calibration updates the solver's factors
        self.k_u = np.full(len(self.symbols), self.setup.fp_relative_u)
        self.k_scatter_u = self.setup.fp_relative_u
        self.checks: tuple[StandardCheck, ...] = ()
        # a given dark matrix is a guess: each spectrum is also solved with the dark matrix
        # estimated from the scatter, and the difference is carried in u (see quantify)
        self._guess_check: Quantifier | None = None
        if self.balance.matrix and not self.balance.from_scatter:
            try:
                self._guess_check = Quantifier(self.setup, cfg.elements,
                                               Balance.scatter(self.balance.oxides),
                                               standards, cfg)
            except QuantificationError:
                self._guess_check = None
        self.n_standards = len(standards)
        if standards:
            self._calibrate(standards)

    # --- core -------------------------------------------------------------------------------
    def _group_rates(self, w: _F, secondary: bool = True) -> _F:
        return self.solver.group_rates(self.model.line_rates(w, secondary=secondary).total)

    def _areas(self, fit: FitResult, spectrum: Spectrum) -> tuple[_F, _F, _F]:
        pile = fit.extra.get("pile-up", 0.0)
        singles = float(spectrum.counts.sum()) - pile
        p = 2.0 * pile / max(singles + 2.0 * pile, 1.0)
        corr = 1.0 / ((1.0 - p) * (1.0 - charge_loss_share(fit, self.fitter.group_names)))
        gi = np.array(self.gidx, dtype=np.intp)
        return fit.areas[gi] * corr, fit.areas_u[gi] * corr, fit.lod_areas[gi] * corr

    def _scatter(self, spectrum: Spectrum, noise_fwhm_kev: float) -> ScatterMeasurement | None:
        window = self.solver.window
        if window is None:
            return None
        rate, rate_u, edges = window.measured(spectrum)
        return ScatterMeasurement(rate, rate_u, edges, noise_fwhm_kev)

    def _solve(self, spectrum: Spectrum
               ) -> tuple[Solution, FitResult, _F, _F, _F, ScatterMeasurement | None]:
        live = spectrum.live_time_s
        scatter = self._scatter(spectrum, self.setup.detector.noise_fwhm_ev * 1e-3)
        fit = self.fitter.fit(spectrum, None, quick=True)
        a, au, al = self._areas(fit, spectrum)
        sol = self.solver.solve(a, au, live, scatter)
        for _ in range(REFITS):
            comp = {s: float(v) for s, v in zip(self.model.symbols, sol.w, strict=True) if v > 0}
            fit = self.fitter.fit(spectrum, comp)
            a, au, al = self._areas(fit, spectrum)
            if scatter is not None and fit.refined:
                scatter = replace(scatter, noise_fwhm_kev=fit.noise_fwhm_kev)
            sol = self.solver.solve(a, au, live, scatter, warm=sol)
        return sol, fit, a, au, al, scatter

    def quantify(self, spectrum: Spectrum) -> QuantResult:
        """Fit and quantify one spectrum. With the scatter balance, raises
        ``QuantificationError`` if the scatter window holds no counts; raises it too when the
        matrix solution is not finite (never a NaN result)."""
        sol, fit, a, au, al, scatter = self._solve(spectrum)
        w = sol.w
        live = spectrum.live_time_s
        # sensitivity (counts per unit mass fraction) at the final matrix, primary fluorescence
        probe = w.copy()
        probe[self.eidx] = np.maximum(probe[self.eidx], 1e-4)
        sens = self.k * live * self._group_rates(probe, secondary=False) / probe[self.eidx]
        ana = w[self.eidx].copy()
        weak = ana <= 0
        ana[weak] = np.maximum(a[weak], 0.0) / sens[weak]
        # the scatter balance adds the scatter's counting and FP u, carried by d ln w/d ln S,
        # and the spread of real dark matrices about the family (SCATTER_FAMILY_U)
        scatter_u = np.zeros(len(self.symbols))
        if scatter is not None and sol.dark > 0:
            u_s = float(np.hypot(scatter.rate_u, self.k_scatter_u))
            scatter_u = np.hypot(sol.scatter_sensitivity * u_s, SCATTER_FAMILY_U)
        if not (np.all(np.isfinite(ana)) and np.all(np.isfinite(sens))
                and math.isfinite(float(sol.dark))):
            bad = [s for s, v in zip(self.symbols, ana, strict=True) if not math.isfinite(v)]
            raise QuantificationError(
                f"matrix solution not finite (balance {self.balance.label!r}, "
                f"dark fraction {float(sol.dark)!r}, elements {', '.join(bad) or '-'})")
        guess_u, guess_note = self._guess_u(spectrum, ana)
        results = []
        for i, s in enumerate(self.symbols):
            rel = float(np.hypot(au[i] / a[i], self.k_u[i])) if a[i] > 0 else 0.0
            rel = float(np.hypot(rel, scatter_u[i])) if not weak[i] else rel
            rel = float(np.hypot(rel, guess_u[i])) if not weak[i] else rel
            u = max(ana[i] * rel, au[i] / sens[i])
            results.append(ElementResult(s, self.fitter.group_names[self.gidx[i]], float(a[i]),
                                         float(au[i]), float(ana[i]), float(u),
                                         float(al[i] / sens[i])))
        if self.n_standards:
            method, note = "fp+standards", f"sensitivities from {self.n_standards} standard(s)"
        else:
            method, note = "fp", "no standards: fundamental parameters alone"
        dark_vec = self.solver.dark_vector(sol.x)
        dark = ({s: float(dark_vec[j]) for j, s in enumerate(self.model.symbols)
                 if dark_vec[j] > 0} if dark_vec is not None and sol.dark > 0 else {})
        if scatter is not None:
            if sol.dark > 0:
                note += "; dark matrix from the scatter: " + ", ".join(
                    f"{s} {v:.2f}" for s, v in sorted(dark.items(), key=lambda t: -t[1]))
                if sol.at_edge:
                    note += " (end of the family: scatter not matched)"
            else:
                note += "; no dark matrix (analytes sum to ≥ 1), scatter unused"
        note += guess_note
        return QuantResult(tuple(results), float(sol.dark), method, note, fit.chi2_reduced, fit,
                           self.checks, dark)

    def _guess_u(self, spectrum: Spectrum, ana: _F) -> tuple[_F, str]:
        """Relative u of each analyte from a given (guessed) dark matrix: its difference
        from the solution with the dark matrix estimated from the scatter, ⊕ that estimate's
        own family spread (``SCATTER_FAMILY_U``); zeros when there is no guess to check (or
        the scatter cannot be used on this spectrum)."""
        zero = np.zeros(len(self.symbols))
        if self._guess_check is None:
            return zero, ""
        try:
            other = self._guess_check.quantify(spectrum)
        except QuantificationError as exc:
            return zero, f"; given dark matrix not checked ({exc})"
        alt = np.array([other.element(s).mass_fraction for s in self.symbols])
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(ana > 0, np.abs(ana - alt) / ana, 0.0)
        major = int(np.argmax(ana))
        return (np.hypot(diff, SCATTER_FAMILY_U),
                f"; given dark matrix vs the scatter's estimate: {self.symbols[major]} "
                f"{100 * (alt[major] / ana[major] - 1):+.1f} % (in u)")

    # --- standards --------------------------------------------------------------------------
    def _calibrate(self, standards: Sequence[Standard]) -> None:
        n = len(self.symbols)
        ks: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        for st in standards:
            total = sum(st.composition.values())
            if not 0.98 <= total <= 1.02:
                raise QuantificationError(
                    f"standard {st.name}: composition sums to {total:.4f}, expected 1 ± 0.02")
            comp = {s: v / total for s, v in st.composition.items()}
            w = self.model.vector(comp)
            fit = self.fitter.fit(st.spectrum, comp)
            a, au, _ = self._areas(fit, st.spectrum)
            pred = st.spectrum.live_time_s * self._group_rates(w)
            for i, s in enumerate(self.symbols):
                if comp.get(s, 0.0) >= 1e-3 and a[i] > 10 * au[i] and pred[i] > 0:
                    ks[i].append((a[i] / pred[i], au[i] / a[i]))
        all_k = [k for lst in ks for k, _ in lst]
        if not all_k:
            raise QuantificationError("standards: no analyte measured in any standard")
        med = float(np.median(all_k))
        spread = float(np.std(np.log(all_k))) if len(all_k) > 1 else self.setup.fp_relative_u
        for i in range(n):
            if ks[i]:
                k = np.array([x for x, _ in ks[i]])
                r = np.array([x for _, x in ks[i]])
                wt = 1.0 / np.maximum(r, 1e-4) ** 2
                mean = float(np.exp((np.log(k) * wt).sum() / wt.sum()))
                stat = float(1.0 / np.sqrt(wt.sum()))
                between = float(np.std(np.log(k), ddof=1) / np.sqrt(k.size)) if k.size > 1 else 0
                self.k[i], self.k_u[i] = mean, float(np.hypot(stat, between))
            else:
                self.k[i] = med
                self.k_u[i] = float(np.hypot(self.setup.fp_relative_u, spread))
        if self.solver.window is not None:
            self._calibrate_scatter(standards)
        checks = []
        for st in standards:
            res = self.quantify(st.spectrum)
            total = sum(st.composition.values())
            vals = {e.symbol: (st.composition.get(e.symbol, 0.0) / total, e.mass_fraction)
                    for e in res.elements if st.composition.get(e.symbol, 0.0) > 0}
            checks.append(StandardCheck(st.name, vals))
        self.checks = tuple(checks)

    def _calibrate_scatter(self, standards: Sequence[Standard]) -> None:
        """Scatter sensitivity k_S = S_meas / S_pred(w_std), combined over the standards by
        weight like the k_e (the standards' compositions were checked by ``_calibrate``)."""
        line_k = self.solver.line_k()
        logs, rel = [], []
        window = self.solver.window
        assert window is not None
        for st in standards:
            total = sum(st.composition.values())
            w = self.model.vector({s: v / total for s, v in st.composition.items()})
            sc = self._scatter(st.spectrum, self.setup.detector.noise_fwhm_ev * 1e-3)
            assert sc is not None
            pred = window.predicted(w, self.model.line_rates(w).total, line_k, sc.edges,
                                    sc.noise_fwhm_kev)
            logs.append(float(np.log(sc.rate / pred)))
            rel.append(sc.rate_u)
        wt = 1.0 / np.maximum(np.array(rel), 1e-4) ** 2
        lg = np.array(logs)
        self.solver.k_scatter = float(np.exp((lg * wt).sum() / wt.sum()))
        between = float(np.std(lg, ddof=1) / np.sqrt(lg.size)) if lg.size > 1 else 0.0
        self.k_scatter_u = float(np.hypot(1.0 / np.sqrt(wt.sum()), between))


#: at most this share of a line's counts is taken to lie in its tail and shelf (a fit that
#: gives the tail columns more is fitting something else: a neighbour's edge, the continuum)
CHARGE_LOSS_MAX = 0.05


def charge_loss_share(fit: FitResult, group_names: Sequence[str]) -> float:
    """The share of a line's counts that incomplete charge collection moves out of its peak,
    as the fit measured it: Σ (tail + shelf) / Σ (peak + tail + shelf) over the groups that
    got tail and shelf columns (:mod:`perception.xrf.tails`; 0 for a fit without them, at
    most :data:`CHARGE_LOSS_MAX`). The peak areas of the other groups miss the same share."""
    lost = peaks = 0.0
    for j, name in enumerate(group_names):
        t = fit.extra.get(f"tail {name}")
        if t is None:
            continue
        lost += max(t, 0.0) + max(fit.extra.get(f"shelf {name}", 0.0), 0.0)
        peaks += max(float(fit.areas[j]), 0.0)
    if lost <= 0.0 or peaks <= 0.0:
        return 0.0
    return min(lost / (peaks + lost), CHARGE_LOSS_MAX)


def quantify(spectrum: Spectrum, setup: XrfSetup | None = None,
             balance: Balance | None = None, standards: Sequence[Standard] = ()) -> QuantResult:
    """One-call quantification with the default analytes (see :class:`Quantifier`)."""
    return Quantifier(setup, balance=balance, standards=standards).quantify(spectrum)
