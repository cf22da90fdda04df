"""``crmsort calibrate xrf-types``: how the line's XRF analysis reads each class, from reference
objects of known composition (type standards, :mod:`sorting.tracking.xrf_response`).

Each reference object is measured like an object on the line: one spot on its centre, the
line's live time, the line's quantification (set-up, balance, the store's ``xrf.energy``
scale; a lump's hollow or the belt beside a narrow object under part of the spot, as on the
line). A class's factor is Σ read / Σ certified summed over its references (those past
4 robust spreads from the median left out); an
element whose own factor (Σ k · read / Σ certified, ``k`` the scale fusion applies) departs
from that level gets one too. Both are stored as ``xrf.class_response`` and the tracker node
applies them. Run ``calibrate xrf`` first (the energy scale).

Sources: ``--sim`` (``--per-class`` objects of each catalog class drawn from the catalog,
measured by the simulated head; a seed of its own, so none is an object of a demo run) or
``--csv FILE`` with one row per reference spectrum: ``class,spectrum,composition`` (a
spectrum file ``crmsort xrf quant`` reads, and the assay as ``Fe=0.05,Cu=0.2,...``).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calibration.records import xrf_class_response_entry, xrf_energy_from_store
from perception.xrf import Balance, Quantifier, Spectrum, XrfError, load_setup
from perception.xrf.spectrum import read_spectrum
from sorting.cli import calibrate_sim as sim
from sorting.cli.calibrate_xrt import RunLike
from sorting.cli.xrf_cmd import parse_composition
from sorting.errors import ConfigError
from sorting.tracking.posterior import xrf_scale
from sorting.tracking.priors import class_priors
from sorting.tracking.xrf_response import (
    STORE_NAME,
    TypeReading,
    class_responses,
    element_responses,
)


def add_parser(cs: Any, common: Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
               ) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = cs.add_parser(
        "xrf-types", help="XRF response per class from reference objects of known composition",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(c, ("csv",))
    c.add_argument("--per-class", type=int, default=16,
                   help="--sim: reference objects per class (default: %(default)s)")
    c.add_argument("--classes", nargs="+", help="--sim: only these classes")
    return c


def _read_csv(path: str, gain: float, offset: float
              ) -> list[tuple[str, Spectrum, dict[str, float]]]:
    """The references of a CSV file; ``ConfigError`` naming the file and row."""
    try:
        rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            # an unquoted assay's commas split it over the rest of the row: join it again
            name, spec_path = row["class"], row["spectrum"]
            comp = ",".join([row["composition"], *(row.get(None) or [])])
        except (KeyError, TypeError):
            raise ConfigError(f"{path}:{i}: columns class, spectrum, composition expected") \
                from None
        spec_file = Path(spec_path)
        if not spec_file.is_absolute():
            spec_file = Path(path).parent / spec_file
        try:
            out.append((name, read_spectrum(spec_file, (gain, offset)), parse_composition(comp)))
        except XrfError as exc:
            raise ConfigError(f"{path}:{i}: {exc}") from None
    if not out:
        raise ConfigError(f"{path}: no reference rows")
    return out


def run(args: argparse.Namespace, r: RunLike) -> int:
    cfg = r.line.sensors.xrf
    setup = load_setup(Path(cfg.setup) if cfg.setup else None)
    gain = setup.mca.gain_kev_per_channel(cfg.channels)
    offset = setup.mca.offset_kev
    energy = "nominal"
    scale = xrf_energy_from_store(r.store(), cfg.channels, setup.mca.channels)
    if scale is not None:
        (gain, offset), energy = scale, "xrf.energy"
    else:
        r.con.print("[yellow]no xrf.energy in the store: the set-up's nominal energy scale[/] "
                    "(run `crmsort calibrate xrf` first)")
    if args.sim:
        r.con.print(f"measuring {args.per_class} simulated reference objects per class "
                    f"({cfg.live_time_s:g} s each) ...")
        # the simulated head labels its spectra with the MCA's nominal scale, as a real one
        # does: the line's measured scale replaces it
        refs = [(x.class_name, Spectrum(x.spectrum.counts, gain, offset, x.spectrum.live_time_s,
                                        x.spectrum.real_time_s, source=x.spectrum.source),
                 x.certified)
                for x in sim.xrf_type_references(args.seed, r.line, args.per_class,
                                                 args.classes, setup)]
    else:
        # files keep the energy scale they carry; the line's is the default for those without
        refs = _read_csv(args.csv, gain, offset)
    quant = Quantifier(setup, balance=Balance.parse(cfg.balance))
    priors = class_priors()
    readings = []
    failed = 0
    for name, spec, certified in refs:
        prior = priors.get(name)
        try:
            result = quant.quantify(spec)
        except XrfError as exc:
            failed += 1
            r.con.print(f"[yellow]{name}: {spec.source}: not quantified: {exc}[/]")
            continue
        read = result.mass_fractions()
        k = xrf_scale(read, prior, cfg.spot_radius_m) if prior is not None else 1.0
        readings.append(TypeReading(name, read, certified, k))
    resp = class_responses(readings)
    if not resp:
        raise ConfigError("xrf-types: no class has enough usable references")
    per_element = element_responses(readings, resp)
    r.con.print(f"[bold]XRF response per class[/] ({len(readings)} references, {failed} "
                f"not quantified; energy scale: {energy})")
    for name in sorted(set(resp) | set(per_element)):
        c = resp.get(name)
        level = (f"{c.factor:6.3f} ± {c.u:.3f}  (spread {c.spread:.3f}, n {c.n})"
                 if c is not None else "     –")
        els = "  ".join(f"{e} {x.factor:.3f}±{x.u:.3f}"
                        for e, x in per_element.get(name, {}).items())
        r.con.print(f"  {name:34s} {level}" + (f"  elements: {els}" if els else ""))
    r.con.print("  next: the tracker node applies it on the next start")
    r.save(STORE_NAME, xrf_class_response_entry(r.source, cfg.live_time_s, cfg.balance, energy,
                                          resp, elements=per_element))
    return 0
