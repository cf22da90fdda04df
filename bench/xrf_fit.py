"""XRF benchmark: our whole quantification chain beside PyMca's in an equivalent configuration,
on the same simulated 2048-channel spectra of the issue's six materials (the accuracy test's
compositions and balances, ``tests/perception/test_xrf_quantify.py``).

Ours: ``Quantifier.quantify`` — quick fit, FP matrix solve, line ratios, refit (FP continuum
background, tails), FP solve with secondary fluorescence and the case's balance.

PyMca (``ClassMcaTheory`` + ``ConcentrationsTool``), configured to match:

* lines: the same element list and, per element, the same shells our fitter keeps (K, L);
* excitation: our tube spectrum (the same Kramers + anode-line model), continuum in
  ``--pymca-bin-kev`` bins, anode lines as they are, scatter peaks at the anode lines;
* detector: gain, zero, electronic noise and Fano fixed at the set-up's values, escape on,
  pile-up factor τ/(2 t_live) from the set-up's resolving time, Si thickness, Be window and air
  path as attenuators; geometry 45°/45°;
* matrix / FP: fundamental parameters with the instrument constant converted to flux × solid
  angle (G · I · Σ tube photons), secondary fluorescence (fisx), the matrix iterated from the
  concentrations (``SingleLayerStrategy``, PyMca's default 3 iterations) with the case's balance
  as the completer (normalised for metals, the FR-4 guess for the PCB, SiO2 with oxides for the
  slag; for the black mass, which we estimate from the scatter and PyMca cannot, the generic
  "C=0.6,O=0.4" guess), concentrations normalised to 100 % where ours are;
* fit: linear in the areas like ours (``linearfitflag`` 1), Gaussian peaks (ours adds free tail
  and shelf columns for the three strongest groups, which PyMca's linear mode cannot: its
  hypermet tail ratios are fixed unless fitted nonlinearly);
* continuum: SNIP of the same width (ours: the FP scattered continuum × cubic B-splines, fitted
  with the peaks — PyMca has no such option).

What still differs: PyMca's own FP database (EPDL97/Scofield cross-sections and its yields)
instead of xraylib, the continuum model, the tail columns, and the black mass's dark matrix.

Errors: wt% — mean |relative error| over the elements ≥ 1 wt% (and the largest over ≥ 0.1 wt%);
areas — mean |relative error| of the net areas of groups with > 2000 true counts against the
simulator's line counts × the pile-up survival factor. Times: ours best of ``--repeat``,
PyMca best of ``--peer-repeat`` (whole chain), and PyMca's single linear fit alone (no matrix
iteration, no concentrations: a lower bound, not an equivalent). Single-threaded BLAS:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.xrf_fit
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import math
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from rich.table import Table

from bench.xrf_accuracy import load_cases
from perception.xrf.balance import OXIDES, Balance
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.quantify import Quantifier
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.spectrum import Spectrum
from perception.xrf.tube import tube_spectrum
from sorting.cli.output import console

ELEMENTS = ("Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Br", "Mo", "Ag", "Sn",
            "Sb", "Pr", "Nd", "Dy", "Au", "Pb")
#: PyMca's completer for the black mass: it has no scatter-based dark-matrix estimate
GENERIC_DARK = (("C", 0.6), ("O", 0.4))


def _truth_areas(sim: SpectrumSimulator, comp: Mapping[str, float], live: float
                 ) -> dict[str, float]:
    m = sim.model(comp)
    rates = m.line_rates(m.vector(comp)).total * live
    ex = sim.expected(comp, live)
    keep = math.exp(-ex.input_rate_cps * sim.setup.detector.pileup_time_s)
    out: dict[str, float] = {}
    for ln, r in zip(m.lines, rates, strict=True):
        if ln.symbol in ELEMENTS:
            out[ln.group_id] = out.get(ln.group_id, 0.0) + r * keep
    return out


def _oxide(symbol: str) -> str:
    """PyMca formula of the element's oxide (counts always written: ``Ca1O1``)."""
    n_el, n_o = OXIDES[symbol]
    return f"{symbol}{n_el}O{n_o}"


PeerResult = tuple[dict[str, float], dict[str, float]]


def pymca_peer(setup: XrfSetup, shells: Mapping[str, list[str]], primary: list[str],
               balance: Balance, live_s: float, bin_kev: float, iterations: int,
               secondary: bool = True
               ) -> tuple[Callable[[Spectrum], PeerResult], Callable[[Spectrum], None]]:
    """(whole chain: spectrum → (symbol → mass fraction, group → area), single fit alone) for
    PyMca configured as the module docstring says."""
    from PyMca5.PyMcaIO import ConfigDict
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory, ConcentrationsTool

    tube = tube_spectrum(setup.tube)
    cont = ~tube.is_line
    e, n = tube.energies_kev[cont], tube.photons[cont]
    edges = np.arange(math.floor(float(e.min())), setup.tube.voltage_kv + bin_kev, bin_kev)
    idx = np.digitize(e, edges) - 1
    cn = np.bincount(idx, weights=n)
    ce = np.bincount(idx, weights=n * e) / np.where(cn > 0, cn, 1.0)
    keep = cn > 0
    energies = [*ce[keep].tolist(), *tube.energies_kev[tube.is_line].tolist()]
    weights = [*cn[keep].tolist(), *tube.photons[tube.is_line].tolist()]
    total = float(sum(weights))
    gain = setup.mca.gain_kev_per_channel()
    det, geo = setup.detector, setup.geometry
    xmin, xmax = round(setup.fit_min_kev / gain), round(setup.fit_max_kev / gain)

    def config(strategy: bool) -> Any:
        cfg = ConfigDict.ConfigDict(copy.deepcopy(ClassMcaTheory.McaTheory().config))
        cfg["fit"].update({
            "energy": energies, "energyweight": [w / total for w in weights],
            "energyflag": [1] * len(energies),
            "energyscatter": [0] * int(keep.sum()) + [1] * int(tube.is_line.sum()),
            "scatterflag": 1, "stripflag": 1, "stripalgorithm": 1,
            "snipwidth": max(3, round(0.45 / gain)), "stripfilterwidth": 3, "escapeflag": 1,
            "sumflag": 1, "hypermetflag": 1, "xmin": xmin, "xmax": xmax, "linearfitflag": 1,
            "continuum": 0, "strategyflag": int(strategy), "strategy": "SingleLayerStrategy"})
        cfg["detector"].update({
            "zero": setup.mca.offset_kev, "gain": gain, "noise": det.noise_fwhm_ev * 1e-3,
            "fano": det.fano, "sum": det.pileup_time_s / (2.0 * live_s), "fixedzero": 1,
            "fixedgain": 1, "fixednoise": 1, "fixedfano": 1, "fixedsum": 1})
        dark = balance.matrix or (GENERIC_DARK if balance.from_scatter else ())
        syms = list(shells)
        cfg["materials"]["DarkMatrix"] = {
            "Comment": "balance", "CompoundList": [s for s, _ in dark] or ["C"],
            "CompoundFraction": [f for _, f in dark] or [1.0], "Density": 1.0, "Thickness": 10.0}
        cfg["materials"]["AnalyteAverage"] = {
            "Comment": "first matrix", "CompoundList": syms,
            "CompoundFraction": [1.0 / len(syms)] * len(syms), "Density": 1.0, "Thickness": 10.0}
        att = cfg["attenuators"]
        for k in att:
            att[k][0] = 0
        att["Detector"] = [1, "Si1", 2.33, det.si_thickness_um * 1e-4]
        att["window"] = [1, "Be1", 1.848, det.be_window_um * 1e-4]
        att["atmosphere"] = [1, "Air", 0.0012048, geo.air_path_mm * 0.1]
        att["Matrix"] = [1, "DarkMatrix" if dark else "AnalyteAverage", 1.0, 10.0,
                         geo.incidence_deg, geo.takeoff_deg]
        cfg["peaks"] = {el: list(sh) for el, sh in shells.items()}
        cfg["SingleLayerStrategy"] = {
            "layer": "Auto", "iterations": iterations,
            "completer": "DarkMatrix" if dark else "-", "flags": [1] * len(primary),
            "peaks": list(primary),
            "materials": [_oxide(g.split()[0]) if balance.oxides and g.split()[0] in OXIDES
                          else "-" for g in primary]}
        # flux × solid angle = G · I · Σ N (our instrument constant), with a 1 cm² detector at
        # 1 cm: PyMca's solid-angle factor ½(1 − d/√(d² + r²))
        solid = 0.5 * (1.0 - 1.0 / math.sqrt(1.0 + 1.0 / math.pi))
        cfg["concentrations"].update({
            "usematrix": 0, "useattenuators": 1, "reference": "Auto", "mmolarflag": 0,
            "flux": geo.geometry_factor_sr * setup.tube.current_ua * total / solid,
            "time": live_s, "area": 1.0, "distance": 1.0,
            "usemultilayersecondary": int(secondary)})
        return cfg

    theory = ClassMcaTheory.McaTheory()
    theory.configure(config(True))
    single = ClassMcaTheory.McaTheory()
    single.configure(config(False))
    tool = ConcentrationsTool.ConcentrationsTool()
    tcfg = tool.configure()
    tcfg.update(config(True)["concentrations"])
    normalise = not balance.matrix and not balance.from_scatter

    def chain(spec: Spectrum) -> PeerResult:
        x = np.arange(spec.channels, dtype=float)
        with contextlib.redirect_stdout(io.StringIO()):
            theory.setData(x=x, y=spec.counts, xmin=xmin, xmax=xmax)
            theory.estimate()
            _, result = theory.startfit(digest=1)
            conc = tool.processFitResult(config=tcfg, fitresult={"result": result},
                                         elementsfrommatrix=False,
                                         fluorates=theory._fluoRates, addinfo=False)
        frac = {g.split()[0]: float(conc["mass fraction"][g]) for g in primary
                if g in conc["mass fraction"]}
        if normalise:
            tot = sum(frac.values())
            frac = {s: v / tot for s, v in frac.items()}
        return frac, {g: float(result[g]["fitarea"]) for g in result["groups"]}

    def fit_only(spec: Spectrum) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            single.setData(x=np.arange(spec.channels, dtype=float), y=spec.counts,
                           xmin=xmin, xmax=xmax)
            single.estimate()
            single.startfit(digest=1)

    return chain, fit_only


def _errors(frac: Mapping[str, float], areas: Mapping[str, float], comp: Mapping[str, float],
            truth: Mapping[str, float]) -> tuple[float, float, float]:
    """(mean |rel err| % of elements ≥ 1 wt%, max over ≥ 0.1 wt%, mean area |rel err| %)."""
    major = [abs(frac.get(s, 0.0) / w - 1) for s, w in comp.items()
             if s in ELEMENTS and w >= 0.01]
    minor = [abs(frac.get(s, 0.0) / w - 1) for s, w in comp.items()
             if s in ELEMENTS and w >= 0.001]
    big = [abs(areas.get(g, 0.0) / t - 1) for g, t in truth.items() if t > 2000]
    return (100 * float(np.mean(major)), 100 * max(minor, default=0.0),
            100 * float(np.mean(big)))


def _best(fn: Callable[[Spectrum], object], spec: Spectrum, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(spec)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats of ours")
    ap.add_argument("--peer-repeat", type=int, default=1, help="timing repeats of PyMca")
    ap.add_argument("--live-time", type=float, default=10.0)
    ap.add_argument("--pymca-bin-kev", type=float, default=2.0,
                    help="tube-continuum bin of PyMca's excitation energies, keV")
    ap.add_argument("--pymca-iterations", type=int, default=3,
                    help="PyMca SingleLayerStrategy matrix iterations")
    ap.add_argument("--pymca-no-secondary", action="store_true",
                    help="PyMca without secondary fluorescence (lighter, no longer equivalent)")
    args = ap.parse_args(argv)
    mod = load_cases()
    setup = load_setup()
    sim = SpectrumSimulator(setup)
    have_pymca = importlib.util.find_spec("PyMca5") is not None
    con = console()
    peer = (f"PyMca: {args.pymca_iterations} matrix iterations, {args.pymca_bin_kev:g} keV tube "
            f"bins, secondary {'off' if args.pymca_no_secondary else 'on'}")
    table = Table(title=f"XRF quantification, 2048 channels, {args.live_time:g} s live, {peer} "
                        f"({platform.processor() or platform.machine()}): ms per spectrum; "
                        "error % (wt%: mean ≥ 1 wt% / max ≥ 0.1 wt%; net areas)")
    for col in ("spectrum", "ours ms", "ours wt% err", "ours area err", "PyMca ms",
                "PyMca wt% err", "PyMca area err", "speed-up", "PyMca fit-only ms"):
        table.add_column(col, justify="left" if col == "spectrum" else "right")
    tot_o = tot_p = 0.0
    for k, (name, (comp, balance)) in enumerate(mod.CASES.items()):
        spec = sim.sample(comp, args.live_time, np.random.default_rng(k))
        truth = _truth_areas(sim, comp, args.live_time)
        ours = Quantifier(setup, ELEMENTS, balance)
        res = ours.quantify(spec)
        t_o = _best(ours.quantify, spec, args.repeat)
        frac = {e.symbol: e.mass_fraction for e in res.elements}
        areas = dict(zip(res.fit.groups, res.fit.areas.tolist(), strict=True))
        mo, xo, ao = _errors(frac, areas, comp, truth)
        tot_o += t_o
        cells = [name, f"{1e3 * t_o:.1f}", f"{mo:.1f} / {xo:.1f}", f"{ao:.2f}"]
        if have_pymca:
            shells: dict[str, list[str]] = {}
            for g in ours.fitter.group_names:
                el, sh = g.split()
                shells.setdefault(el, []).append(sh)
            primary = [ours.fitter.group_names[i] for i in ours.gidx]
            chain, fit_only = pymca_peer(setup, shells, primary, balance, args.live_time,
                                         args.pymca_bin_kev, args.pymca_iterations,
                                         not args.pymca_no_secondary)
            pf, pa = chain(spec)
            t_p = _best(chain, spec, args.peer_repeat)
            t_f = _best(fit_only, spec, max(args.peer_repeat, 3))
            mp, xp, ap_ = _errors(pf, pa, comp, truth)
            tot_p += t_p
            cells += [f"{1e3 * t_p:.0f}", f"{mp:.1f} / {xp:.1f}", f"{ap_:.2f}",
                      f"{t_p / t_o:.0f}×", f"{1e3 * t_f:.0f}"]
        else:
            cells += ["—"] * 5
        table.add_row(*cells)
    con.print(table)
    if not have_pymca:
        con.print("[yellow]PyMca5 is not installed[/]: the peer columns are empty "
                  "(pip install PyMca5 — a bench extra, it builds fisx).")
    else:
        con.print(f"total: ours {1e3 * tot_o:.0f} ms, PyMca {1e3 * tot_p:.0f} ms, "
                  f"speed-up {tot_p / tot_o:.0f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
