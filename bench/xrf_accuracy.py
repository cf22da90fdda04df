"""XRF quantification accuracy on the issue's unseen compositions: per material and element,
the relative error of FP quantification (no standards) over Poisson draws at several counting
times, the issue's tolerance (≤ 5 % for ≥ 1 wt%, ≤ 15 % for 0.1–1 wt%), the reported 3σ
detection limits, and the coverage of the k=1 intervals (share of |est − true| ≤ 1 u and ≤ 2 u,
nominal 68 % and 95 %).

The compositions and balances are the accuracy test's (``tests/perception/test_xrf_quantify.py``,
loaded from its file so that both evaluate the same cases). The quantifier never sees the truth;
it is used here only to score. ``--family-study`` instead quantifies heavy-element loads in a set
of light matrices that no test uses (polymers, oxides, carbonates, fluorides, light metals and
mixtures) with the scatter balance and with the true dark matrix, which is how the scatter
family's uncertainty ``SCATTER_FAMILY_U`` was sized.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.xrf_accuracy
    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.xrf_accuracy --family-study
"""

from __future__ import annotations

import argparse
import importlib.util
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import xraylib
from rich.table import Table

from perception.xrf.balance import Balance
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.quantify import Quantifier
from perception.xrf.setup import load_setup
from sorting.cli.output import console

TEST_FILE = Path(__file__).resolve().parents[1] / "tests" / "perception" / "test_xrf_quantify.py"


def load_cases() -> ModuleType:
    """The accuracy test module (its ``CASES`` and ``_tolerance``)."""
    spec = importlib.util.spec_from_file_location("xrf_accuracy_cases", TEST_FILE)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(TEST_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _formula(text: str) -> dict[str, float]:
    cp = xraylib.CompoundParser(text)
    return {xraylib.AtomicNumberToSymbol(z): float(m)
            for z, m in zip(cp["Elements"], cp["massFractions"], strict=True)}


def _mix(*parts: tuple[str, float]) -> dict[str, float]:
    total = sum(w for _, w in parts)
    out: dict[str, float] = {}
    for f, w in parts:
        for s, v in _formula(f).items():
            out[s] = out.get(s, 0.0) + w * v / total
    return out


#: light matrices of the family study (none is a test case's dark matrix)
STUDY_DARK: dict[str, dict[str, float]] = {
    **{n: _formula(f) for n, f in (
        ("PE", "CH2"), ("PS", "C8H8"), ("PET", "C10H8O4"), ("PMMA", "C5H8O2"),
        ("nylon 6", "C6H11NO"), ("cellulose", "C6H10O5"), ("PVDF", "C2H2F2"), ("PTFE", "CF2"),
        ("graphite", "C"), ("water", "H2O"), ("Al2O3", "Al2O3"), ("SiO2", "SiO2"),
        ("MgO", "MgO"), ("Li2CO3", "Li2CO3"), ("LiF", "LiF"), ("B2O3", "B2O3"),
        ("Na2CO3", "Na2CO3"), ("Al metal", "Al"), ("Mg metal", "Mg"))},
    "glass fibre": _mix(("SiO2", .55), ("Al2O3", .15), ("B2O3", .08), ("MgO", .05),
                        ("Na2O", .02)),
    "epoxy + glass": _mix(("C21H24O4", .45), ("SiO2", .35), ("Al2O3", .1), ("B2O3", .1)),
    "graphite + LiPF6": _mix(("C", .8), ("LiPF6", .1), ("C2H2F2", .1)),
    "PE + Al2O3": _mix(("CH2", .7), ("Al2O3", .3)),
    "cellulose + SiO2": _mix(("C6H10O5", .6), ("SiO2", .4)),
}
STUDY_LOADS: dict[str, dict[str, float]] = {
    "Fe20Cu10Zn5": {"Fe": .2, "Cu": .1, "Zn": .05},
    "Ni15Co10Mn5": {"Ni": .15, "Co": .1, "Mn": .05},
    "Fe3Cu2Pb1": {"Fe": .03, "Cu": .02, "Pb": .01},
    "Cu40Sn5": {"Cu": .4, "Sn": .05},
}


def accuracy(times: list[float], draws: int, scatter: bool = False,
             verbose: bool = False) -> int:
    """Accuracy and coverage table over the test's cases (see module docstring); ``scatter``:
    every case with a dark matrix takes the scatter balance instead of its own."""
    mod = load_cases()
    setup = load_setup()
    sim = SpectrumSimulator(setup)
    con = console()
    table = Table(title=f"XRF FP quantification, {draws} Poisson draws per counting time: "
                        "mean relative error / largest |relative error| %, largest 3σ LOD")
    for col in ("material", "element", "true wt%", "tol %",
                *[f"{t:g} s mean/max" for t in times], f"LOD wt% ({times[0]:g} s)"):
        table.add_column(col, justify="left" if col in ("material", "element") else "right")
    zs_all: list[float] = []
    worst: list[tuple[str, float, str, float]] = []
    counts: dict[tuple[str, float], list[int]] = {}
    fails = 0
    total = 0
    per_material: dict[str, list[float]] = {}
    for case, (comp, balance) in mod.CASES.items():
        if scatter and (balance.matrix or balance.from_scatter):
            balance = Balance.scatter(balance.oxides)
        q = Quantifier(setup, balance=balance)
        rows: dict[str, list[str]] = {}
        lods: dict[str, float] = {}
        zs: list[float] = []
        for t in times:
            errs: dict[str, list[float]] = {}
            for k in range(draws):
                rng = np.random.default_rng(zlib.crc32(f"{case} {t} {k}".encode()))
                res = q.quantify(sim.sample(comp, t, rng))
                for el, w in comp.items():
                    tol = mod._tolerance(w)
                    if tol is None or el not in q.symbols:
                        continue
                    r = res.element(el)
                    rel = r.mass_fraction / w - 1.0
                    errs.setdefault(el, []).append(rel)
                    zs.append((r.mass_fraction - w) / r.mass_fraction_u)
                    total += 1
                    ok_n = counts.setdefault((case, t), [0, 0])
                    ok_n[0] += abs(rel) <= tol
                    ok_n[1] += 1
                    if abs(rel) > tol:
                        fails += 1
                        worst.append((case, t, el, rel))
                    if t == times[0]:
                        lods[el] = max(lods.get(el, 0.0), r.lod)
            for el, e in errs.items():
                arr = np.array(e)
                rows.setdefault(el, []).append(
                    f"{100 * arr.mean():+.1f} / {100 * np.abs(arr).max():.1f}")
        for el, cells in rows.items():
            w = comp[el]
            table.add_row(case, el, f"{100 * w:.2f}", f"{100 * mod._tolerance(w):.0f}", *cells,
                          f"{100 * lods[el]:.4f}")
        per_material[case] = zs
        zs_all += zs
    con.print(table)
    cov = Table(title="coverage of the k=1 intervals (nominal 68 % within 1 u, 95 % within 2 u)")
    for col in ("material", "n", "≤ 1 u", "≤ 2 u"):
        cov.add_column(col, justify="left" if col == "material" else "right")
    for case, zs in [*per_material.items(), ("all", zs_all)]:
        z = np.abs(np.array(zs))
        cov.add_row(case, str(z.size), f"{100 * np.mean(z <= 1):.0f} %",
                    f"{100 * np.mean(z <= 2):.0f} %")
    con.print(cov)
    passed = Table(title="element estimates within the issue's tolerance")
    passed.add_column("material")
    for t in times:
        passed.add_column(f"{t:g} s", justify="right")
    for case in mod.CASES:
        passed.add_row(case, *[f"{counts[(case, t)][0]}/{counts[(case, t)][1]}" for t in times])
    con.print(passed)
    con.print(f"outside the issue's tolerance: {fails} of {total} element estimates")
    if verbose:
        for case, t, el, rel in worst:
            con.print(f"  {case} {t:g} s {el}: {100 * rel:+.1f} %")
    return 0


def family_study(live_s: float, draws: int) -> int:
    """Scatter balance vs the true dark matrix on light matrices no test uses."""
    setup = load_setup()
    sim = SpectrumSimulator(setup)
    con = console()
    scatter = Quantifier(setup, balance=Balance.scatter())
    table = Table(title=f"scatter balance on unseen light matrices, {live_s:g} s, {draws} "
                        "draws: mean relative error % of the load (scatter | true dark)")
    table.add_column("dark matrix")
    for name in STUDY_LOADS:
        table.add_column(name, justify="right")
    e_sc: list[float] = []
    e_true: list[float] = []
    for dname, dark in STUDY_DARK.items():
        given = Quantifier(setup, balance=Balance.parse(
            ",".join(f"{s}={v:.6f}" for s, v in dark.items())))
        cells = []
        for load in STUDY_LOADS.values():
            rest = 1.0 - sum(load.values())
            comp = dict(load)
            for s, v in dark.items():
                comp[s] = comp.get(s, 0.0) + rest * v
            pair = []
            for q, sink in ((scatter, e_sc), (given, e_true)):
                errs = []
                for k in range(draws):
                    spec = sim.sample(comp, live_s, np.random.default_rng(k))
                    res = q.quantify(spec)
                    errs += [res.element(s).mass_fraction / v - 1.0 for s, v in load.items()]
                sink += errs
                pair.append(100 * float(np.mean(errs)))
            cells.append(f"{pair[0]:+.1f} | {pair[1]:+.1f}")
        table.add_row(dname, *cells)
    con.print(table)
    diff = list(np.array(e_sc) - np.array(e_true))
    for label, e in (("scatter balance", e_sc), ("true dark matrix", e_true),
                     ("scatter − true dark (the family's own error)", diff)):
        a = np.array(e)
        rms = 100 * np.sqrt(np.mean(a**2))
        con.print(f"{label}: rms {rms:.2f} %, mean {100 * a.mean():+.2f} %, "
                  f"max |err| {100 * np.abs(a).max():.1f} % over {a.size} element estimates")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--times", type=float, nargs="+", default=[2.0, 5.0, 10.0, 30.0, 100.0],
                    help="live times, s")
    ap.add_argument("--draws", type=int, default=10, help="Poisson draws per case and time")
    ap.add_argument("--scatter", action="store_true",
                    help="the scatter balance for every case that has a dark matrix")
    ap.add_argument("--verbose", action="store_true", help="list every estimate out of tolerance")
    ap.add_argument("--family-study", action="store_true",
                    help="scatter balance on light matrices no test uses")
    args = ap.parse_args(argv)
    if args.family_study:
        return family_study(30.0, min(args.draws, 2))
    return accuracy(args.times, args.draws, args.scatter, args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
