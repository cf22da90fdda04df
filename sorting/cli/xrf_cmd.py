"""``crmsort xrf quant|simulate`` — quantify XRF spectra from files; simulate test spectra.

``crmsort xrf quant SPECTRUM... [--standard SPECTRUM=COMPOSITION ...] [--setup FILE]
[--balance scatter|CH2O] [--oxides]`` prints wt% ± u and the 3σ LOD per element with CRM flags.
``crmsort xrf simulate --composition Fe=0.7,Cr=0.18,Ni=0.08 --live-time 5 -o spec.npz``
writes a simulated spectrum (.npz, .mca or .csv).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rich.table import Table

from perception.catalog.crma import crm_flags
from perception.xrf.balance import Balance
from perception.xrf.errors import CompositionError
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.quantify import Quantifier, Standard
from perception.xrf.setup import load_setup
from perception.xrf.spectrum import read_spectrum, write_spectrum
from sorting.cli.output import console


def register(sub: Any) -> None:
    p = sub.add_parser("xrf", help="XRF spectra: quantify files, simulate spectra")
    xs = p.add_subparsers(dest="xrf_command", metavar="ACTION", required=True)
    q = xs.add_parser("quant", help="quantify spectra (.npz, .mca, .csv) to wt%% ± u and LOD")
    q.add_argument("spectra", nargs="+", help="spectrum files")
    q.add_argument("--standard", action="append", default=[], metavar="SPECTRUM=COMPOSITION",
                   help="reference standard, e.g. std.mca=Fe=0.7,Cr=0.2,Ni=0.1 (repeatable)")
    q.add_argument("--setup", default=None, help="set-up YAML (default: datasets/xrf/)")
    q.add_argument("--balance", default=None,
                   help="dark matrix for what XRF cannot see: 'scatter' (estimated from "
                        "the tube's Compton/Rayleigh scatter), a formula (CH2O, SiO2) or "
                        "C=0.6,O=0.4; default: normalise the analytes to 100 %%")
    q.add_argument("--oxides", action="store_true", help="analytes bound as their oxides")
    q.add_argument("--all", action="store_true", help="also list elements below the LOD")
    q.set_defaults(func=_quant)
    s = xs.add_parser("simulate", help="simulate a spectrum of a composition")
    s.add_argument("--composition", required=True, help="e.g. Fe=0.7,Cr=0.18,Ni=0.08 "
                   "(renormalised to 1 if it does not sum to 1)")
    s.add_argument("--live-time", type=float, default=5.0, help="live time, s")
    s.add_argument("--channels", type=int, default=None, help="MCA channels")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--setup", default=None)
    s.add_argument("-o", "--output", required=True, help="output file (.npz, .mca, .csv)")
    s.set_defaults(func=_simulate)


def parse_composition(text: str) -> dict[str, float]:
    """``"Fe=0.7,Cr=0.18"`` → {"Fe": 0.7, "Cr": 0.18}; ``CompositionError`` otherwise."""
    out: dict[str, float] = {}
    for part in text.split(","):
        try:
            sym, val = part.split("=")
            out[sym.strip()] = float(val)
        except ValueError as exc:
            raise CompositionError(
                f"composition {text!r}: {part!r} is not SYMBOL=FRACTION") from exc
    return out


def _normalised(comp: dict[str, float], what: str) -> dict[str, float]:
    total = sum(comp.values())
    if total <= 0:
        raise CompositionError(f"{what}: fractions sum to {total}")
    if abs(total - 1.0) > 1e-6:
        console().print(f"[yellow]note[/] {what}: fractions sum to {total:.4f}; renormalised to 1")
    return {k: v / total for k, v in comp.items()}


def _simulate(args: argparse.Namespace) -> int:
    setup = load_setup(args.setup)
    comp = _normalised(parse_composition(args.composition), "composition")
    spec = SpectrumSimulator(setup).sample(comp, args.live_time, np.random.default_rng(args.seed),
                                           channels=args.channels)
    write_spectrum(spec, args.output)
    console().print(f"[bold green]ok[/] {args.output}: {spec.channels} channels, "
                    f"{int(spec.counts.sum())} counts in {spec.live_time_s:g} s live "
                    f"({spec.real_time_s:.3f} s real)")
    return 0


def _quant(args: argparse.Namespace) -> int:
    setup = load_setup(args.setup)
    default_cal = (setup.mca.gain_kev_per_channel(), setup.mca.offset_kev)
    standards = []
    for item in args.standard:
        path, sep, comp = item.partition("=")
        if not sep:
            raise CompositionError(f"--standard {item!r}: expected SPECTRUM=COMPOSITION")
        standards.append(Standard(read_spectrum(path, default_cal),
                                  _normalised(parse_composition(comp), f"standard {path}"),
                                  name=path))
    q = Quantifier(setup, balance=Balance.parse(args.balance, args.oxides), standards=standards)
    con = console()
    for check in q.checks:
        worst = check.max_relative_error()
        con.print(f"standard {check.name}: largest residual {100 * worst:.1f} % "
                  f"(elements ≥ 1 wt%)")
    for path in args.spectra:
        res = q.quantify(read_spectrum(path, default_cal))
        t = Table(title=f"{path} — {res.method}: {res.note}; χ²ᵣ {res.chi2_reduced:.2f}; "
                        f"balance {q.balance.label} {100 * res.balance_fraction:.2f} wt%")
        for col in ("element", "line", "wt%", "± u (wt%)", "LOD (wt%)", "net counts", "CRM"):
            t.add_column(col, justify="left" if col in ("element", "line", "CRM") else "right")
        for e in res.elements:
            if not (e.detected or args.all):
                continue
            flags = ", ".join(sorted(crm_flags(e.symbol)))
            wt = f"{100 * e.mass_fraction:.4f}" if e.detected else f"< {100 * e.lod:.4f}"
            t.add_row(e.symbol, e.group, wt, f"{100 * e.mass_fraction_u:.4f}",
                      f"{100 * e.lod:.4f}", f"{e.net_counts:.0f} ± {e.net_counts_u:.0f}", flags)
        con.print(t)
    return 0
