"""``crmsort calibrate xrt``: the XRT scanner's dark/flat references and its mass scale.

1. References: N tube-off and N empty-belt lines are averaged and checked (dead, saturated,
   noisy pixels and pixels whose flat is not above their dark, by index); they are written to
   ``<line>.xrt_reference.npz`` next to the store (entry ``xrt.reference``), from where the
   XRT node flat-fields raw-count lines.
2. Mass scale: weighed reference plates (known material, mass and face area) pass under the
   scanner; the set-up correction (tube kV, tube-filter and inter-layer thickness) that makes
   the attenuation model reproduce their log-attenuations is fitted
   (:func:`perception.xrt.setup_fit.fit_setup_correction`) and stored as ``xrt.mass_scale``;
   the XRT node maps every line through it. Each plate's areal-density error is printed
   before and after.

Sources: ``--sim`` (the line's simulated scanner, with the true set-up deviation of
``sensors.xrt.sim_deviation`` or ``--sim-kv-delta/--sim-filter-pct/--sim-interlayer-pct``;
the truth comparison is printed) or ``--bag`` (raw-count ``xrt/line`` messages recorded as:
tube off, empty belt, then the plates in the order of ``--plates``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from numpy.typing import NDArray

from calibration.store import CalibrationEntry, CalibrationStore
from calibration.xrt_records import MASS_SCALE, REFERENCE, xrt_mass_scale_entry, xrt_reference_entry
from calibration.xrt_report import xrt_mass_scale_report, xrt_reference_report
from perception.sensors.xrt import XrtConditions
from perception.sensors.xrt.plates_sim import SIM_PLATES, plate_objects, scan_objects
from perception.xrt import XrtSetup, log_attenuation_of
from perception.xrt.errors import XrtDataError, XrtPlateError
from perception.xrt.plates import PlateSpec, find_plates
from perception.xrt.references import split_takes, xrt_references
from perception.xrt.setup_fit import PlateReading, SetupCorrection, fit_setup_correction
from sorting.bags import read_decoded
from sorting.config.line import LineConfig
from sorting.errors import ConfigError
from sorting.nodes.xrt_node import ENCODING_RAW_COUNTS, xrt_line_arrays
from sorting.sim.xrt_sensor import XrtSensorSim, true_deviation

FloatArray = NDArray[np.float64]
SIM_DEAD_PIXEL = 37
SIM_SATURATED_PIXEL = 200


class RunLike(Protocol):
    """What the procedure needs of ``calibrate_cmd._Run``."""

    args: argparse.Namespace
    con: Any
    line: LineConfig
    store_path: Path
    run_dir: Path
    rng: np.random.Generator
    source: str

    def store(self) -> CalibrationStore: ...
    def save(self, name: str, entry: CalibrationEntry) -> None: ...
    def png(self, path: Path) -> None: ...


def add_parser(cs: Any, common: Callable[[argparse.ArgumentParser, tuple[str, ...]], None]
               ) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = cs.add_parser(
        "xrt", help="XRT dark/flat references and mass scale from weighed reference plates",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(c, ("bag",))
    c.set_defaults(topic="xrt/line")
    c.add_argument("--plates", help="YAML list of the plates in the order they pass: name, "
                   "composition {El: fraction}, mass_g, area_cm2 (--sim: the simulated set)")
    c.add_argument("--references-only", action="store_true", help="skip the mass scale")
    c.add_argument("--lines", type=int, default=16, help="--sim: lines per reference take")
    c.add_argument("--min-lines", type=int, default=8)
    c.add_argument("--full-scale", type=float, default=65535.0, help="saturation count")
    c.add_argument("--min-response", type=float, default=100.0,
                   help="least flat - dark (counts) of a live pixel")
    c.add_argument("--sim-kv-delta", type=float, help="--sim: true tube kV minus nominal "
                   "(default: the line's sensors.xrt.sim_deviation)")
    c.add_argument("--sim-filter-pct", type=float, help="--sim: true tube filter thicker, %%")
    c.add_argument("--sim-interlayer-pct", type=float,
                   help="--sim: true inter-layer filter thicker, %%")
    c.add_argument("--sim-faults", action="store_true",
                   help=f"--sim: plant a dead pixel ({SIM_DEAD_PIXEL}) and a saturated one "
                   f"({SIM_SATURATED_PIXEL})")
    return c


def load_plates(path: str) -> list[PlateSpec]:
    """The plate list of a YAML file; raises :class:`ConfigError` naming the file and entry."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the plate list: {exc}") from None
    if isinstance(data, dict):
        data = data.get("plates")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a list of plates (name, composition, mass_g, "
                          "area_cm2)")
    out = []
    for i, p in enumerate(data):
        try:
            out.append(PlateSpec(str(p["name"]), {str(k): float(v) for k, v in
                                                  dict(p["composition"]).items()},
                                 float(p["mass_g"]), float(p["area_cm2"])))
        except (KeyError, TypeError, ValueError, XrtPlateError) as exc:
            raise ConfigError(f"{path}: plates[{i}]: {exc} (expected name, composition, "
                              "mass_g, area_cm2)") from None
    return out


def _bag_lines(bag: str, topic: str) -> tuple[FloatArray, tuple[float, float, float, float]]:
    rows, geo = [], None
    for name, _type, _t, msg in read_decoded(bag):
        if not name.endswith(topic):
            continue
        if int(msg.encoding) != ENCODING_RAW_COUNTS:
            raise ConfigError(f"{bag}: {name} carries flat-fielded lines; record the scanner's "
                              "raw counts (the driver's raw mode) to calibrate it")
        data, _flags = xrt_line_arrays(msg)
        rows.append(data)
        geo = (float(msg.y0_m), float(msg.pixel_pitch_m), float(msg.source_height_m),
               float(msg.detector_depth_m))
    if geo is None:
        raise ConfigError(f"{bag}: no messages on a topic ending in {topic!r}")
    return np.stack(rows), geo


def _deviation(args: argparse.Namespace, line: LineConfig) -> SetupCorrection:
    base = true_deviation(line.sensors.xrt)
    kv = base.tube_kv_delta if args.sim_kv_delta is None else args.sim_kv_delta
    f = base.filter_scale if args.sim_filter_pct is None else 1 + args.sim_filter_pct / 100
    i = base.interlayer_scale if args.sim_interlayer_pct is None else (
        1 + args.sim_interlayer_pct / 100)
    return SetupCorrection(kv, f, i)


def run(args: argparse.Namespace, r: RunLike) -> int:
    cfg = r.line.sensors.xrt
    truth: SetupCorrection | None = None
    if args.sim:
        truth = _deviation(args, r.line)
        sensor = XrtSensorSim(r.line, seed=r.line.seed + 5)   # the line's own scanner
        sim = dataclasses.replace(sensor.sim, rng=r.rng, conditions=XrtConditions(
            deviation=truth))
        r.con.print(f"capturing {args.lines} tube-off and {args.lines} empty-belt lines with "
                    "the simulated scanner ...")
        dark, flat = sim.dark_reference(args.lines), sim.flat_reference(args.lines)
        if args.sim_faults:
            flat[:, SIM_DEAD_PIXEL, 1] = dark[:, SIM_DEAD_PIXEL, 1]
            flat[:, SIM_SATURATED_PIXEL, :] = args.full_scale
        g = sim.geometry
        geo = (g.y0_m, g.pixel_pitch_m, g.source_height_m, g.detector_depth_m)
        specs = [PlateSpec(p.name, p.composition, p.mass_g, p.area_cm2) for p in SIM_PLATES]
        scan: FloatArray | None = None
        if not args.references_only:
            r.con.print(f"passing {len(SIM_PLATES)} reference plates under the scanner ...")
            scan = scan_objects(sim, plate_objects(SIM_PLATES))
    else:
        r.con.print(f"reading raw XRT lines from {args.bag} ...")
        raw, geo = _bag_lines(args.bag, args.topic)
        is_dark, is_flat, live = split_takes(raw, args.min_response)
        dark, flat, scan = raw[is_dark], raw[is_flat], raw[live]
        r.con.print(f"  {raw.shape[0]} lines: {int(is_dark.sum())} tube-off, "
                    f"{int(is_flat.sum())} empty-belt")
        specs = []
        if not args.references_only:
            if not args.plates:
                raise ConfigError("--plates FILE: the reference plates (or --references-only)")
            specs = load_plates(args.plates)
    ref = xrt_references(dark, flat, args.full_scale, args.min_response, args.min_lines)
    w = ref.dark.shape[0]
    r.con.print(f"[bold]xrt references[/]: {ref.n_lines} lines averaged, {w} pixels; dark "
                f"{ref.dark.mean():.1f}, flat - dark {np.median(ref.flat - ref.dark):.0f} counts "
                f"(median); read noise {ref.dark_noise_counts.round(2).tolist()} counts, flat "
                f"noise {(100 * ref.flat_rel_noise).round(3).tolist()} % per line")
    for m in ref.guidance():
        r.con.print(f"  next: {m}")
    if args.sim and args.sim_faults:
        found = sorted(set(np.flatnonzero(ref.bad).tolist()))
        r.con.print(f"  vs truth: planted dead {SIM_DEAD_PIXEL}, saturated "
                    f"{SIM_SATURATED_PIXEL}; flagged {found}")
    r.png(xrt_reference_report(ref.dark, ref.flat, ref.dead, ref.saturated, ref.noisy,
                               r.run_dir / "xrt_reference.png", args.full_scale))
    sname = r.store_path.name
    base = sname[: -len(".calibration.yaml")] if sname.endswith(".calibration.yaml") else (
        r.store_path.stem)
    npz = r.store_path.with_name(base + ".xrt_reference.npz")
    if not args.dry_run:
        np.savez_compressed(npz, dark=ref.dark.astype(np.float32),
                            flat=ref.flat_for_calibrator().astype(np.float32), dead=ref.dead,
                            saturated=ref.saturated, noisy=ref.noisy)
        r.con.print(f"references: {npz}")
    r.save(REFERENCE, xrt_reference_entry(
        r.source, npz.name, ref.n_lines, w, np.flatnonzero(ref.dead).tolist(),
        np.flatnonzero(ref.not_above_dark).tolist(), np.flatnonzero(ref.saturated).tolist(),
        np.flatnonzero(ref.noisy).tolist(), ref.dark_noise_counts.tolist(),
        ref.flat_rel_noise.tolist(), ref.rel_noise))
    if scan is None or args.references_only:
        return 0
    _mass_scale(args, r, ref.calibrator(), scan, geo, specs, XrtSetup(tube_kv=cfg.tube_kv),
                truth)
    return 0


def _mass_scale(args: argparse.Namespace, r: RunLike, cal: Any, scan: FloatArray,
                geo: tuple[float, float, float, float], specs: list[PlateSpec],
                nominal: XrtSetup, truth: SetupCorrection | None) -> None:
    y0, pitch, h, d = geo
    y_det = y0 + pitch * np.arange(scan.shape[1])
    cos = (h + d) / np.sqrt((h + d) ** 2 + y_det**2)
    try:
        out = [cal.apply(line) for line in scan]
    except XrtDataError as exc:
        raise XrtPlateError(f"plate lines do not fit the references: {exc}") from None
    a = np.stack([log_attenuation_of(t) for t, _ in out])
    plates = find_plates(a, cos, np.stack([f for _, f in out]))
    if len(plates) != len(specs):
        where = ", ".join(f"lines {p.first_line}-{p.last_line}" for p in plates)
        raise XrtPlateError(f"found {len(plates)} plates in the lines ({where}) but the plate "
                            f"list has {len(specs)}: pass each plate once, flat and apart, "
                            "in the order of the list")
    readings = [PlateReading(s.name, s.composition, s.areal_density_g_cm2, p.a_low, p.a_high,
                             p.cos_theta, p.cells) for s, p in zip(specs, plates, strict=True)]
    r.con.print(f"fitting the set-up to {len(readings)} plates ...")
    fit = fit_setup_correction(readings, nominal)
    c = fit.correction
    r.con.print(f"[bold]xrt mass scale[/]: tube {c.tube_kv_delta:+.2f} kV, tube filter "
                f"x{c.filter_scale:.3f}, inter-layer filter x{c.interlayer_scale:.3f}; RMS "
                f"log-attenuation residual {fit.rms_rel_residual:.3%}")
    r.con.print("  plate                 ρt g/cm²   A_low   A_high   error nominal  calibrated")
    for p, b, e in zip(readings, fit.error_before_pct, fit.error_after_pct, strict=True):
        r.con.print(f"  {p.name:20s} {p.areal_density_g_cm2:8.3f} {p.a_low:8.4f} "
                    f"{p.a_high:8.4f} {b:+10.2f} % {e:+9.2f} %")
    r.con.print(f"  worst plate: {fit.max_error_before_pct:.2f} % with the nominal set-up, "
                f"{fit.max_error_after_pct:.2f} % calibrated")
    if truth is not None:
        r.con.print(f"  vs truth: tube {c.tube_kv_delta - truth.tube_kv_delta:+.2f} kV, filter "
                    f"x{c.filter_scale / truth.filter_scale:.4f}, inter-layer "
                    f"x{c.interlayer_scale / truth.interlayer_scale:.4f} of the true deviation "
                    f"({truth.tube_kv_delta:+g} kV, x{truth.filter_scale:g}, "
                    f"x{truth.interlayer_scale:g})")
    r.png(xrt_mass_scale_report([p.name for p in readings],
                                np.array([p.areal_density_g_cm2 for p in readings]),
                                fit.error_before_pct, fit.error_after_pct,
                                r.run_dir / "xrt_mass_scale.png"))
    r.con.print("  next: the XRT node applies it on the next start; re-check monthly, and "
                "after a tube or filter change")
    r.save(MASS_SCALE, xrt_mass_scale_entry(
        r.source, nominal.tube_kv, (c.tube_kv_delta, c.filter_scale, c.interlayer_scale),
        [(p.name, p.areal_density_g_cm2, float(b), float(e)) for p, b, e in
         zip(readings, fit.error_before_pct, fit.error_after_pct, strict=True)],
        fit.rms_rel_residual))
