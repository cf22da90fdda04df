"""Weighing by X-ray transmission vs volume × class density, on the same catalog objects.

``python -m bench.xrt [--per-class N] [--seed S]``: ``N`` objects of every detector class
drawn from the catalog (the simulator's own spawner), each alone under the line's XRT
scanner (256 pixels over 0.8 m, 160 kV), scanned line by line through the simulator, the
flat-fielding and the streaming segmenter, then weighed with the *class's* mean bulk
attenuation (what the line knows once it has the class; the object's own composition,
density and fill factor are not given). The peer is what the line can do without it: the
object's **true** volume × the class's mean bulk density (an outline measured perfectly);
it cannot see the fill factor or the bulk density of an object. The XRT mass is given as the
line reads it (the rim cells of a box class read as steps, :mod:`perception.xrt.edges`) and
plain (every cell's own log-attenuation). Reported per class: median
|relative mass error| of each, and the share of opaque objects (too thick for the
scanner: the line falls back on the volume there). Time: the scanner's processing per line
(flat-field + log + segmentation) against the line period at 0.5 m/s.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from rich.table import Table

from perception.catalog import load_catalog
from perception.sensors.xrt import XrtLineSim
from perception.xrt import (
    LineSegmenter,
    TransmissionCalibrator,
    cell_grid,
    log_attenuation_of,
    step_edges,
)
from perception.xrt.geometry import blob_geometry
from perception.xrt.mass import mass_from_cells
from perception.xrt.materials import class_rest
from perception.xrt.physics import DEFAULT_REST
from sorting.cli.output import console
from sorting.config.line import load_line
from sorting.sim.spawner import ObjectSpawner
from sorting.sim.xrt_sensor import XrtSensorSim
from sorting.tracking.priors import class_priors
from sorting.tracking.xrt_evidence import XRT_MAX_OPAQUE, class_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.xrt", description=__doc__)
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    line = load_line(None)
    catalog = load_catalog()
    rest = class_rest(catalog)
    priors = class_priors()
    sensor = XrtSensorSim(line, seed=args.seed)
    geo = sensor.geometry
    sim = XrtLineSim(np.random.default_rng(args.seed), rest=lambda o: rest.get(
        o.class_name, DEFAULT_REST), setup=sensor.setup, geometry=geo)
    cal = TransmissionCalibrator(sim.dark_reference(), sim.flat_reference())
    spawner = ObjectSpawner(catalog, np.random.default_rng(args.seed))
    rng = np.random.default_rng(args.seed + 1)
    h, d = geo.source_height_m, geo.detector_depth_m
    rows = []
    t_proc = 0.0
    n_lines = 0
    for spec in catalog.classes:
        prior = priors[spec.name]
        table = class_table(prior)
        errs_x, errs_p, errs_v, opaque = [], [], [], 0
        for i in range(args.per_class):
            obj = spawner.spawn(i, 0.0, float(rng.uniform(-0.25, 0.25)), class_name=spec.name)
            reach = obj.footprint_radius_m() + 0.02
            seg = LineSegmenter()
            blobs = []
            k = 0
            while k * geo.pixel_pitch_m < 2 * reach:
                moved = replace(obj, x_m=geo.x_m + reach - k * geo.pixel_pitch_m)
                raw = sim.render([moved])
                t0 = time.perf_counter()
                t, flags = cal.apply(raw)
                a = log_attenuation_of(t)
                blobs += seg.push(a[:, 0], a[:, 1], flags, k * geo.pixel_pitch_m)
                t_proc += time.perf_counter() - t0
                n_lines += 1
                k += 1
            blobs += seg.finish()
            truth = obj.mass_kg()
            errs_v.append(obj.volume_m3() * prior.density_kg_m3 / truth - 1)
            if not blobs:
                errs_x.append(-1.0)
                errs_p.append(-1.0)
                continue
            if max(b.opaque_share for b in blobs) > XRT_MAX_OPAQUE:
                opaque += 1
                continue
            mass = plain = 0.0
            for b in blobs:
                g = blob_geometry(b, geo.y0_m, geo.pixel_pitch_m, h, d)
                area = g.cell_area_m2 * (h - obj.height_m / 2) / h
                edges = None
                grid = cell_grid(g.position_m + g.cell_dx_m, g.cell_y_m, g.cell_area_m2)
                if prior.xrt_step_edges and grid is not None:
                    edges = step_edges(b.a_high, grid[0], grid[1], b.noise_a_high)
                mass += mass_from_cells(b.a_high, g.cos_theta, area, table,
                                        b.noise_a_high, edges=edges).mass_kg
                plain += mass_from_cells(b.a_high, g.cos_theta, area, table,
                                         b.noise_a_high).mass_kg
            errs_x.append(mass / truth - 1)
            errs_p.append(plain / truth - 1)
        rows.append((spec.name, errs_x, errs_p, errs_v, opaque))
    tab = Table(title=f"XRT weighing vs true volume x class density, {args.per_class} objects "
                      f"per class, seed {args.seed}")
    for col in ("class", "XRT median |err|", "XRT p90", "XRT median signed", "plain median |err|",
                "volume x density median |err|", "opaque"):
        tab.add_column(col, justify="left" if col == "class" else "right")
    all_x, all_p, all_v, all_s = [], [], [], []
    for name, ex, ep, ev, op in rows:
        ax, ap_, av = np.abs(ex), np.abs(ep), np.abs(ev)
        all_x += list(ax)
        all_p += list(ap_)
        all_v += list(av)
        all_s += list(ex)
        tab.add_row(name, f"{100 * np.median(ax):.1f} %" if ax.size else "-",
                    f"{100 * np.percentile(ax, 90):.1f} %" if ax.size else "-",
                    f"{100 * np.median(ex):+.1f} %" if ax.size else "-",
                    f"{100 * np.median(ap_):.1f} %" if ap_.size else "-",
                    f"{100 * np.median(av):.1f} %", str(op))
    tab.add_row("all", f"{100 * np.median(all_x):.1f} %", f"{100 * np.percentile(all_x, 90):.1f} %",
                f"{100 * np.median(all_s):+.1f} %", f"{100 * np.median(all_p):.1f} %",
                f"{100 * np.median(all_v):.1f} %", str(sum(r[4] for r in rows)))
    console().print(tab)
    per_line = t_proc / max(n_lines, 1)
    period = geo.pixel_pitch_m / line.belt.speed_mps
    console().print(f"processing per line (flat-field, log, segmentation): {per_line * 1e3:.3f} ms "
                  f"over {n_lines} lines; line period at {line.belt.speed_mps} m/s "
                  f"{period * 1e3:.2f} ms ({100 * per_line / period:.1f} % of one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
