"""Spectrum fit: line-group templates from xraylib line energies and FP line ratios, fitted with
non-negative weighted linear least squares over a background, with an optional nonlinear
refinement of gain, offset and electronic noise (variable projection: the areas are re-solved
linearly inside each step).

Model in the fit region (channels with E in [min_kev, max_kev]):
y ≈ B + Σ_g a_g T_g + Σ_s a_s R_s + a_p P, a ≥ 0, weights 1/max(y, 1) (Poisson), where T_g is
the unit-area template of line group g ("Fe K", "Pb L": Σ_l r_l [(1−f_esc) G(E_l) + f_esc
G(E_l − 1.740)], with r_l the line's share of the group's FP intensity — primary and secondary
fluorescence — in the current matrix estimate), R_s Rayleigh and Compton (three Doppler widths)
templates of the anode lines, and P the pile-up template (:mod:`perception.xrf.pileup`: the sum
spectrum of the whole measured spectrum with its own pile-up removed). Tail and shelf columns
follow for the strongest groups.

Background B: without a composition estimate (the quick first fit), SNIP, with P clipped by SNIP
like the data. With one (``continuum_model``), B = c(E) Σ_k b_k β_k(E), fitted with the peaks:
c the FP scattered tube continuum of the estimate (:mod:`perception.xrf.continuum`, with the
steps at the matrix's absorption edges), β_k cubic B-splines ``continuum_knot_kev`` apart, b_k ≥ 0
free (the level, and any slow deviation of the real continuum from the model). SNIP clips to
the lower envelope of the noise (−1σ per channel: at 40 counts a channel, −6 counts under every
channel of a wide peak), bridges steps narrower than its window and sits on the overlap of dense
lines; all three bias areas, and in the Compton region the bias was taken up by "detections" of
absent K lines (Mo…Sb). Without the continuum model, SNIP is re-run on the spectrum with the
fitted peaks stripped (divided by c when ``edge_aware``).

The linear solves use the normal equations (:meth:`LineFitter._solve`). Areas are detected
photons (counts) of the group in its Gaussian peaks and escape peaks; their standard
uncertainties come from the weighted normal matrix, scaled by √χ² of the residuals under the
group's template where that exceeds 1 (:meth:`LineFitter._misfit_scale`); the 3σ detection
limit of an area is 3·u.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import BSpline
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import least_squares, nnls
from scipy.sparse import csr_matrix

from perception.xrf.continuum import ContinuumShape
from perception.xrf.detector import (
    SI_KA_KEV,
    channel_edges,
    efficiency,
    escape_fraction,
    gaussian_matrix,
    sigma_kev,
)
from perception.xrf.errors import FitError
from perception.xrf.fp import FPModel, fp_model
from perception.xrf.lines import DEFAULT_ANALYTES
from perception.xrf.pileup import pileup_spectrum
from perception.xrf.response import gaussian_band
from perception.xrf.setup import XrfSetup
from perception.xrf.snip import snip_background
from perception.xrf.spectrum import Spectrum

_F = NDArray[np.float64]
TAIL_GROUPS = 3
COMPTON_FWHM_KEV = (0.3, 0.6, 1.0)  # Doppler FWHM of the Compton templates at 20 keV


@dataclass(frozen=True)
class FitConfig:
    """Fit options: analytes, region (keV; default from the set-up), SNIP width (keV),
    refinement policy (``auto``: when reduced χ² > ``refine_chi2``), pile-up template, tail
    columns, and the background (see the module docstring): ``continuum_model`` (FP continuum ×
    B-splines ``continuum_knot_kev`` apart) or SNIP re-run after stripping the peaks
    (``background_passes``, on the quotient by the FP continuum when ``edge_aware``)."""

    elements: tuple[str, ...] = DEFAULT_ANALYTES
    min_kev: float | None = None
    max_kev: float | None = None
    snip_width_kev: float = 0.45
    refine: Literal["auto", "always", "never"] = "auto"
    refine_chi2: float = 5.0
    pileup: bool = True
    tails: bool = True
    min_group_fraction: float = 0.2
    background_passes: int = 1
    strip_smooth: int = 9
    edge_aware: bool = True
    continuum_model: bool = True
    continuum_knot_kev: float = 2.0


@dataclass(frozen=True)
class FitResult:
    """Areas (counts) ± u and 3σ detection-limit areas per group, background and model
    [channels], reduced χ², the calibration and noise used, and whether they were refined."""

    groups: tuple[str, ...]
    areas: _F
    areas_u: _F
    lod_areas: _F
    background: _F
    model: _F
    chi2_reduced: float
    gain_kev_per_channel: float
    offset_kev: float
    noise_fwhm_kev: float
    refined: bool
    extra: dict[str, float] = field(default_factory=dict)

    def area(self, group: str) -> tuple[float, float]:
        """(area, u) of a group such as ``"Fe K"``; ``FitError`` if it was not fitted."""
        try:
            i = self.groups.index(group)
        except ValueError as exc:
            raise FitError(f"group {group!r} not in the fit ({len(self.groups)} groups)") from exc
        return float(self.areas[i]), float(self.areas_u[i])


class LineFitter:
    """Fitter for one set-up; ``matrix_symbols`` are extra (invisible) elements that may appear
    in the composition estimates passed to :meth:`fit`."""

    def __init__(self, setup: XrfSetup, config: FitConfig | None = None,
                 matrix_symbols: tuple[str, ...] = ()) -> None:
        self.setup = setup
        self.config = config or FitConfig()
        syms = list(self.config.elements) + [s for s in matrix_symbols
                                             if s not in self.config.elements]
        self.model: FPModel = fp_model(setup, syms)
        self.min_kev = self.config.min_kev or setup.fit_min_kev
        self.max_kev = min(self.config.max_kev or setup.fit_max_kev, setup.tube.voltage_kv)
        m = self.model
        self.analyte_idx = np.array([m.index[s] for s in self.config.elements])
        ana_lines = np.isin(m.line_elem, self.analyte_idx)
        in_view = ((m.line_e > self.min_kev - 0.3) & (m.line_e < self.max_kev + 0.3)) | (
            (m.line_e - SI_KA_KEV > self.min_kev) & (m.line_e - SI_KA_KEV < self.max_kev))
        self.sel = np.flatnonzero(ana_lines & in_view)
        self._set_lines(self.sel)
        # drop groups whose nominal intensity lies mostly outside the region
        r = self.ratios(None)
        inside = (m.line_e[self.sel] >= self.min_kev) & (m.line_e[self.sel] <= self.max_kev)
        frac = np.bincount(self.line_group, weights=r * inside, minlength=len(self.group_names))
        keep_group = frac >= self.config.min_group_fraction
        self._set_lines(self.sel[keep_group[self.line_group]])
        tube = m.tube
        self.tube_e = tube.energies_kev[tube.is_line]
        self.tube_n = tube.photons[tube.is_line] * efficiency(setup.detector, setup.geometry,
                                                             self.tube_e)
        theta = setup.geometry.scatter_angle_rad
        self._lm_key: tuple[float, float, int, float] | None = None
        self._lm: csr_matrix | None = None
        self._sm_key: tuple[float, float, int, float] | None = None
        self._sm: tuple[list[str], _F] | None = None
        self.tube_ec = self.tube_e / (1.0 + self.tube_e / 510.999 * (1.0 - np.cos(theta)))
        self._continuum = ContinuumShape(m)

    def _vector(self, composition: Mapping[str, float]) -> _F:
        """Composition vector in ``model`` order (symbols outside the model ignored)."""
        return self.model.vector({s: v for s, v in composition.items() if s in self.model.index})

    def _set_lines(self, sel: NDArray[np.intp]) -> None:
        m = self.model
        self.sel = sel
        self.f_esc = escape_fraction(m.line_e[sel])
        gid = [m.lines[i].group_id for i in sel]
        self.group_names = tuple(dict.fromkeys(gid))
        self.line_group = np.array([self.group_names.index(g) for g in gid], dtype=np.intp)

    def ratios(self, composition: Mapping[str, float] | None) -> _F:
        """Share r_l of each selected line in its group for a composition estimate (every analyte
        given at least 1e-4 so absent elements still have a template)."""
        m = self.model
        w = m.vector(composition) if composition else np.zeros(len(m.symbols))
        floor = 1e-4 if composition else 0.01  # no estimate yet: an analyte-average matrix
        w[self.analyte_idx] = np.maximum(w[self.analyte_idx], floor)
        r = m.line_rates(w, secondary=composition is not None).total[self.sel]
        tot = np.bincount(self.line_group, weights=r, minlength=len(self.group_names))
        return np.asarray(r / np.maximum(tot[self.line_group], 1e-300), dtype=np.float64)

    def _line_matrix(self, edges: _F, noise: float) -> csr_matrix:
        key = (edges[0], edges[-1], edges.size, noise)
        if self._lm_key == key and self._lm is not None:
            return self._lm
        self._lm_key, self._lm = key, self._line_matrix_uncached(edges, noise)
        return self._lm

    def _line_matrix_uncached(self, edges: _F, noise: float) -> csr_matrix:
        """Sparse [channels × lines]: each line's channel-integrated Gaussian (1 − f_esc) plus
        its escape peak (f_esc), windowed to ±8σ (:func:`response.gaussian_band`)."""
        det = self.setup.detector
        e = self.model.line_e[self.sel]
        esc = np.flatnonzero(self.f_esc > 0)
        e_esc = e[esc] - SI_KA_KEV
        r1, p1, v1 = gaussian_band(edges, e, sigma_kev(e, noise, det.fano))
        r2, p2, v2 = gaussian_band(edges, e_esc, sigma_kev(e_esc, noise, det.fano))
        rows = np.concatenate([r1, r2])
        cols = np.concatenate([p1, esc[p2]])
        vals = np.concatenate([v1 * (1.0 - self.f_esc[p1]), v2 * self.f_esc[esc[p2]]])
        return csr_matrix((vals, (rows, cols)), shape=(edges.size - 1, e.size))

    def _scatter_matrix(self, edges: _F, noise: float) -> tuple[list[str], _F]:
        key = (edges[0], edges[-1], edges.size, noise)
        if self._sm_key == key and self._sm is not None:
            return self._sm
        self._sm_key, self._sm = key, self._scatter_matrix_uncached(edges, noise)
        return self._sm

    def _scatter_matrix_uncached(self, edges: _F, noise: float) -> tuple[list[str], _F]:
        fano = self.setup.detector.fano
        names: list[str] = []
        cols: list[_F] = []
        for label, sel in (("K", self.tube_e > 10.0), ("L", self.tube_e <= 10.0)):
            if not sel.any():
                continue
            e, n = self.tube_e[sel], self.tube_n[sel]
            for kind, centres, widths in (("Rayleigh", e, (0.0,)),
                                          ("Compton", self.tube_ec[sel], COMPTON_FWHM_KEV)):
                if kind == "Compton" and label == "L":
                    continue
                for fw in widths:
                    extra = fw / 2.3548 * (centres / 20.0) ** 2
                    sig = np.sqrt(sigma_kev(centres, noise, fano) ** 2 + extra**2)
                    f = escape_fraction(centres)
                    col = (gaussian_matrix(edges, centres, sig) @ (n * (1 - f))
                           + gaussian_matrix(edges, centres - SI_KA_KEV, sig) @ (n * f))
                    if col.sum() > 0:
                        names.append(f"{kind} {label}" + (f" {fw:g}" if kind == "Compton" else ""))
                        cols.append(col / col.sum())
        return names, np.array(cols).T if cols else np.zeros((edges.size - 1, 0))

    def fit(self, spectrum: Spectrum, composition: Mapping[str, float] | None = None,
            quick: bool = False) -> FitResult:
        """Fit ``spectrum``; ``composition`` (mass fractions, may be partial) sets the line ratios.
        ``quick``: one linear solve (no tail columns, background pass or refinement), for a
        first estimate. Raises ``FitError`` if the fit region holds no channels or no lines."""
        cfg = self.config
        y = spectrum.counts
        gain, offset = spectrum.gain_kev_per_channel, spectrum.offset_kev
        noise = self.setup.detector.noise_fwhm_ev * 1e-3
        e = spectrum.energies_kev()
        region = np.flatnonzero((e >= self.min_kev) & (e <= self.max_kev))
        if region.size < 16 or not self.group_names:
            raise FitError(f"{spectrum.source}: fit region {self.min_kev}–{self.max_kev} keV holds "
                           f"{region.size} channels and {len(self.group_names)} line groups")
        width = max(3, round(cfg.snip_width_kev / gain))
        bg = snip_background(y, width)
        yr, br = y[region], bg[region]
        wts = 1.0 / np.sqrt(np.maximum(yr, 1.0))
        ratios = self.ratios(composition)
        ratio_matrix = csr_matrix((ratios, (np.arange(ratios.size), self.line_group)),
                                  shape=(ratios.size, len(self.group_names)))
        pile: _F | None = None
        pile_total = 0.0

        def design(g: float, o: float, nz: float, groups: NDArray[np.intp] | None = None
                   ) -> tuple[list[str], _F]:
            edges = channel_edges(spectrum.channels, g, o)[region[0]: region[-1] + 2]
            gm = np.asarray((self._line_matrix(edges, nz) @ ratio_matrix).toarray())
            names = list(self.group_names)
            if groups is not None:
                gm = gm[:, groups]
                names = [names[i] for i in groups]
            sn, sm = self._scatter_matrix(edges, nz)
            cols = [gm, sm]
            names += sn
            if pile is not None and pile.sum() > 0:
                cols.append(pile[:, None])
                names.append("pile-up")
            return names, np.hstack(cols)

        if cfg.pileup:
            # expected sum spectrum (counts) from the whole measured spectrum (every absorbed
            # photon can pile up, inside the fit region or not); the SNIP background takes its
            # smooth part (continuum ∗ continuum) with it, so the template is clipped the same way
            pile_full = pileup_spectrum(y, spectrum.live_time_s,
                                        self.setup.detector.pileup_time_s, gain, offset)
            pile = (pile_full - snip_background(pile_full, width))[region]
            pile_total = float(pile_full.sum())
        model_bg = bool(composition) and cfg.continuum_model and not quick
        if model_bg:
            assert composition is not None
            # background = FP scattered continuum × a smooth correction (cubic B-splines), fitted
            # with the peaks: no clipping bias at low counts, the edges' steps in the shape
            shape = self._continuum.shape(self._vector(composition), channel_edges(
                spectrum.channels, gain, offset), noise, region)[region]
            bg_cols = shape[:, None] * self._spline_basis(e[region], cfg.continuum_knot_kev)
            if pile is not None:
                pile = pile_full[region]
            peaks_design = design

            def design(g: float, o: float, nz: float, groups: NDArray[np.intp] | None = None
                       ) -> tuple[list[str], _F]:
                names, a = peaks_design(g, o, nz, groups)
                return (names + [f"continuum {k}" for k in range(bg_cols.shape[1])],
                        np.hstack([a, bg_cols]))

            br = np.zeros_like(yr)
        names, a = design(gain, offset, noise)
        x, chi2, u = self._solve(a, yr - br, wts)
        if cfg.tails and not quick:
            strong = self._strong_groups(x[: len(self.group_names)])
            design = self._with_tails(design, strong, spectrum.channels, region, ratios)
            names, a = design(gain, offset, noise)
            x, chi2, u = self._solve(a, yr - br, wts)
        if cfg.background_passes > 0 and not quick and not model_bg:
            # SNIP clips to the lower envelope of what it sees, which between dense peaks (an
            # L-line forest beside Fe K) is the peaks' overlap, not the continuum: re-estimate
            # the background from the spectrum with the fitted fluorescence peaks (and their
            # tails) removed, then refit; the broad scatter peaks stay SNIP's as before
            lines = np.array([i < len(self.group_names) or n.startswith(("tail", "shelf"))
                              for i, n in enumerate(names)])
            # with a composition estimate, SNIP works on the quotient by the FP shape of the
            # scattered continuum, whose absorption-edge steps it could not follow alone
            shape = (self._continuum.shape(self._vector(composition), channel_edges(
                spectrum.channels, gain, offset), noise, region)
                     if composition and cfg.edge_aware else np.ones_like(y))
            for _ in range(cfg.background_passes):
                stripped = y.copy()
                stripped[region] = np.clip(yr - a[:, lines] @ x[lines], 0.0, None)
                bg = shape * snip_background(stripped / shape, width, smooth=cfg.strip_smooth)
                br = bg[region]
                x, chi2, u = self._solve(a, yr - br, wts)
        refined = False
        if not quick and (cfg.refine == "always"
                          or (cfg.refine == "auto" and chi2 > cfg.refine_chi2)):
            ng = len(self.group_names)
            active = np.flatnonzero(x[:ng] > 0)

            def resid(p: _F) -> _F:
                _, ap = design(p[0] * gain, offset + p[1] * gain, p[2] * noise, active)
                xp, _, _ = self._solve(ap, yr - br, wts, with_u=False)
                return np.asarray(((yr - br) - ap @ xp) * wts, dtype=np.float64)

            sol = least_squares(resid, np.array([1.0, 0.0, 1.0]), diff_step=1e-4,
                                bounds=([0.98, -5.0, 0.5], [1.02, 5.0, 2.0]), max_nfev=40)
            gain, offset, noise = sol.x[0] * gain, offset + sol.x[1] * gain, sol.x[2] * noise
            names, a = design(gain, offset, noise)
            x, chi2, u = self._solve(a, yr - br, wts)
            refined = True
        ng = len(self.group_names)
        if model_bg:
            is_bg = np.array([n.startswith("continuum ") for n in names])
            bg = bg.copy()
            bg[region] = a[:, is_bg] @ x[is_bg]
            model = bg.copy()
            model[region] += a[:, ~is_bg] @ x[~is_bg]
        else:
            model = bg.copy()
            model[region] += a @ x
        u = u.copy()
        u[:ng] *= self._misfit_scale(a[:, :ng], ((yr - br - a @ x) * wts) ** 2)
        extra = {n: float(v) for n, v in zip(names[ng:], x[ng:], strict=True)}
        if "pile-up" in extra:  # amplitude → pile-up counts in the whole spectrum
            extra["pile-up"] *= pile_total
        return FitResult(self.group_names, x[:ng], u[:ng], 3.0 * u[:ng], bg, model, chi2,
                         float(gain), float(offset), float(noise), refined, extra)

    @staticmethod
    def _spline_basis(e: _F, knot_kev: float) -> _F:
        """Cubic B-splines [channels × bases] on uniform knots ``knot_kev`` apart over ``e``."""
        lo, hi = float(e[0]), float(e[-1])
        n = max(1, int(np.ceil((hi - lo) / knot_kev)))
        h = (hi - lo) / n
        t = lo + h * np.arange(-3, n + 4)
        basis = BSpline.design_matrix(np.clip(e, t[3], t[-4]), t, 3).toarray()
        return np.asarray(basis, dtype=np.float64)

    @staticmethod
    def _misfit_scale(templates: _F, r2: _F) -> _F:
        """√max(1, χ²_g) per group: χ²_g is the mean squared normalised residual r² [channels]
        weighted by the group's template [channels × groups]. Where the model misses the data
        (a Compton profile, a continuum step) the counting u understates an area's error, and
        an absent element's line there would pass as detected."""
        mass = templates.sum(axis=0)
        chi2 = (templates.T @ r2) / np.where(mass > 0, mass, 1.0)
        return np.asarray(np.sqrt(np.maximum(chi2, 1.0)), dtype=np.float64)

    def _strong_groups(self, areas: _F) -> list[int]:
        tot = areas.sum()
        order = np.argsort(-areas)[:TAIL_GROUPS]
        return [int(i) for i in order if tot > 0 and areas[i] > 0.01 * tot]

    def _with_tails(self, design: Callable[..., tuple[list[str], _F]], strong: list[int],
                    channels: int, region: NDArray[np.intp], ratios: _F
                    ) -> Callable[..., tuple[list[str], _F]]:
        """Wrap ``design`` to append a low-energy tail and a flat-shelf column per strong
        group (incomplete charge collection; free non-negative amplitudes)."""
        fano = self.setup.detector.fano
        e_all = self.model.line_e[self.sel]

        def wrapped(g: float, o: float, nz: float, groups: NDArray[np.intp] | None = None
                    ) -> tuple[list[str], _F]:
            names, a = design(g, o, nz, groups)
            edges = channel_edges(channels, g, o)[region[0]: region[-1] + 2]
            c = 0.5 * (edges[:-1] + edges[1:])[:, None]
            width = np.diff(edges)[:, None]
            cols, extra = [], []
            for j in strong:
                li = np.flatnonzero(self.line_group == j)
                e = e_all[li][None, :]
                beta = 2.0 * sigma_kev(e_all[li], nz, fano)[None, :] + 0.02
                below = c < e
                tail = np.where(below, np.exp(np.minimum((c - e) / beta, 0.0)) / beta, 0.0)
                shelf = np.where(below & (c > 0), 1.0 / e, 0.0)
                cols += [(tail * width) @ ratios[li], (shelf * width) @ ratios[li]]
                extra += [f"tail {self.group_names[j]}", f"shelf {self.group_names[j]}"]
            if not cols:
                return names, a
            return names + extra, np.hstack([a, np.array(cols).T])

        return wrapped

    @staticmethod
    def _solve(a: _F, b: _F, wts: _F, with_u: bool = True) -> tuple[_F, float, _F]:
        """Non-negative weighted least squares min ‖W(a x − b)‖, x ≥ 0, through the normal
        equations: with the column-scaled Gram matrix G = RᵀR (Cholesky, ridge 1e-9), the problem
        is NNLS on the small [columns × columns] system R x = R⁻ᵀ aᵀW²b. Returns x, the reduced
        χ² and (``with_u``) the standard uncertainties √diag(G⁻¹) of x."""
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
            xs, _ = nnls(rr, q, maxiter=50 * a.shape[1])
            u = np.zeros(0)
            if with_u:
                rinv = solve_triangular(rr, np.eye(rr.shape[0]), check_finite=False)
                u = np.sqrt((rinv**2).sum(axis=1))
        resid = bw - an @ xs
        x = xs / scale
        dof = max(1, b.size - int((x > 0).sum()))
        return x, float(resid @ resid / dof), np.asarray(u / scale if with_u else u)


def fit_spectrum(spectrum: Spectrum, setup: XrfSetup, config: FitConfig | None = None,
                 composition: Mapping[str, float] | None = None) -> FitResult:
    """One-call fit with a fresh :class:`LineFitter` (the FP tables are cached per set-up)."""
    return LineFitter(setup, config, tuple(composition or ())).fit(spectrum, composition)


__all__ = ["FitConfig", "FitResult", "LineFitter", "fit_spectrum"]
