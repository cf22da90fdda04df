"""Quantification to mass fractions by fundamental parameters, iterated with the matrix
correction, a balance for what XRF cannot see, per-element uncertainty and 3σ detection limits,
and optional correction of per-element sensitivities from reference standards.

Per element e (quantified from its primary line group g, :func:`lines.primary_group`), the
measured area A_e (counts, pile-up loss corrected) is matched to the FP prediction
k_e · t_live · I_g(w) (:meth:`fp.FPModel.line_rates`, primary + secondary fluorescence) by the
fixed-point iteration w_e ← w_e · A_e / (k_e t I_g(w)), followed by the balance
(:mod:`perception.xrf.balance`), until the largest relative change is < 1e-5. The line ratios of
the fit templates are then recomputed for the estimate and the spectrum refitted once.

Sensitivity factors k_e are 1 on fundamental parameters alone (relative standard uncertainty
``setup.fp_relative_u``), or come from standards: k_e = A_e / (t I_g(w_std)) on each standard
containing e, combined by weight; elements in no standard take the median factor. Standard
uncertainty u(w_e)/w_e = √((u_A/A)² + u(k_e)²/k_e²) (counting ⊕ calibration; matrix coupling is
neglected). Detection limit LOD_e = 3 u_A(blank) / (t k_e ∂I_g/∂w_e).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrf.balance import Balance, oxygen_per_mass
from perception.xrf.errors import QuantificationError
from perception.xrf.fit import FitConfig, FitResult, LineFitter
from perception.xrf.lines import primary_group
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.spectrum import Spectrum

_F = NDArray[np.float64]


@dataclass(frozen=True)
class Standard:
    """A reference sample: its spectrum on this set-up and its certified mass fractions."""

    spectrum: Spectrum
    composition: Mapping[str, float]
    name: str = "standard"


@dataclass(frozen=True)
class ElementResult:
    """One element: group fitted, net counts ± u, mass fraction ± u (k=1), 3σ LOD (fractions)."""

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
    standards' residuals and a note (``fundamental parameters alone`` without standards)."""

    elements: tuple[ElementResult, ...]
    balance_fraction: float
    method: str
    note: str
    chi2_reduced: float
    fit: FitResult
    standards: tuple[StandardCheck, ...] = ()

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
        self.ox = np.array([oxygen_per_mass(s) for s in self.symbols]) if self.balance.oxides \
            else np.zeros(len(self.symbols))
        self.k = np.ones(len(self.symbols))
        self.k_u = np.full(len(self.symbols), self.setup.fp_relative_u)
        self.checks: tuple[StandardCheck, ...] = ()
        self.n_standards = len(standards)
        if standards:
            self._calibrate(standards)

    # --- core -------------------------------------------------------------------------------
    def _group_rates(self, w: _F, secondary: bool = True) -> _F:
        f = self.fitter
        r = self.model.line_rates(w, secondary=secondary).total[f.sel]
        per_group = np.bincount(f.line_group, weights=r, minlength=len(f.group_names))
        return np.asarray(per_group[self.gidx], dtype=np.float64)

    def _apply_balance(self, w: _F) -> float:
        ana = w[self.eidx]
        oxy = float((ana * self.ox).sum())
        visible = float(ana.sum()) + oxy
        if self.balance.oxides:
            w[self.model.index["O"]] = 0.0
        for s, _ in self.balance.matrix:
            w[self.model.index[s]] = 0.0
        dark = 1.0 - visible
        if not self.balance.matrix or dark < 0:
            scale = 1.0 / max(visible, 1e-12)
            w[self.eidx] = ana * scale
            oxy *= scale
            dark = 0.0
        if self.balance.oxides:
            w[self.model.index["O"]] += oxy
        for s, f in self.balance.matrix:
            w[self.model.index[s]] += dark * f
        return dark

    def _iterate(self, areas: _F, areas_u: _F, live: float, w0: _F | None
                 ) -> tuple[_F, float]:
        # only significant peaks (> 2σ) enter the matrix; the others are estimated afterwards
        pos = areas > 2.0 * areas_u
        w = np.zeros(len(self.model.symbols)) if w0 is None else w0.copy()
        if w0 is None:
            w[self.eidx[pos]] = 1e-3
            self._apply_balance(w)
        dark = 0.0
        for _ in range(100):
            pred = self.k * live * self._group_rates(w)
            ana = w[self.eidx]
            new = np.where(pos & (pred > 0), ana * areas / np.maximum(pred, 1e-300), 0.0)
            new = np.where(pos & (ana <= 0), 1e-3, new)
            w[self.eidx] = new
            dark = self._apply_balance(w)
            change = np.abs(w[self.eidx] - ana) / np.maximum(w[self.eidx], 1e-9)
            if np.all(change[pos] < 1e-5):
                break
        return w, dark

    def _areas(self, fit: FitResult, spectrum: Spectrum) -> tuple[_F, _F, _F]:
        pile = fit.extra.get("pile-up", 0.0)
        singles = float(spectrum.counts.sum()) - pile
        p = 2.0 * pile / max(singles + 2.0 * pile, 1.0)
        corr = 1.0 / (1.0 - p)
        gi = np.array(self.gidx, dtype=np.intp)
        return fit.areas[gi] * corr, fit.areas_u[gi] * corr, fit.lod_areas[gi] * corr

    def _solve(self, spectrum: Spectrum) -> tuple[_F, float, FitResult, _F, _F, _F]:
        live = spectrum.live_time_s
        fit = self.fitter.fit(spectrum, None, quick=True)
        a, au, al = self._areas(fit, spectrum)
        w, dark = self._iterate(a, au, live, None)
        comp = {s: float(v) for s, v in zip(self.model.symbols, w, strict=True) if v > 0}
        fit = self.fitter.fit(spectrum, comp)
        a, au, al = self._areas(fit, spectrum)
        w, dark = self._iterate(a, au, live, w)
        return w, dark, fit, a, au, al

    def quantify(self, spectrum: Spectrum) -> QuantResult:
        """Fit and quantify one spectrum."""
        w, dark, fit, a, au, al = self._solve(spectrum)
        live = spectrum.live_time_s
        # sensitivity (counts per unit mass fraction) at the final matrix, primary fluorescence
        probe = w.copy()
        probe[self.eidx] = np.maximum(probe[self.eidx], 1e-4)
        sens = self.k * live * self._group_rates(probe, secondary=False) / probe[self.eidx]
        ana = w[self.eidx].copy()
        weak = ana <= 0
        ana[weak] = np.maximum(a[weak], 0.0) / sens[weak]
        results = []
        for i, s in enumerate(self.symbols):
            rel = float(np.hypot(au[i] / a[i], self.k_u[i])) if a[i] > 0 else 0.0
            u = max(ana[i] * rel, au[i] / sens[i])
            results.append(ElementResult(s, self.fitter.group_names[self.gidx[i]], float(a[i]),
                                         float(au[i]), float(ana[i]), float(u),
                                         float(al[i] / sens[i])))
        if self.n_standards:
            method, note = "fp+standards", f"sensitivities from {self.n_standards} standard(s)"
        else:
            method, note = "fp", "no standards: fundamental parameters alone"
        return QuantResult(tuple(results), float(dark), method, note, fit.chi2_reduced, fit,
                           self.checks)

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
        checks = []
        for st in standards:
            res = self.quantify(st.spectrum)
            total = sum(st.composition.values())
            vals = {e.symbol: (st.composition.get(e.symbol, 0.0) / total, e.mass_fraction)
                    for e in res.elements if st.composition.get(e.symbol, 0.0) > 0}
            checks.append(StandardCheck(st.name, vals))
        self.checks = tuple(checks)


def quantify(spectrum: Spectrum, setup: XrfSetup | None = None,
             balance: Balance | None = None, standards: Sequence[Standard] = ()) -> QuantResult:
    """One-call quantification with the default analytes (see :class:`Quantifier`)."""
    return Quantifier(setup, balance=balance, standards=standards).quantify(spectrum)
