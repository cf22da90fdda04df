"""Volume path vs a plain Open3D pipeline on the same simulated frames.

``python -m bench.volume [--frames N] [--repeat R]``: a 320 x 320 depth sensor at 0.9 m
(~100 k points per frame), catalog objects placed apart, the depth simulator's full noise
model. Ours: :class:`perception.volume.VolumeEstimator`. Peer: Open3D ``segment_plane``
(RANSAC, seeded per frame) + ``cluster_dbscan`` on the points above the plane + convex-hull
volume of each cluster with its footprint projected onto the plane. Both are matched to
truth the same way (nearest truth centre within the truth footprint radius). Time is per
frame, median over the frames and ``R`` repeats of each (the two paths alternate, same
process), with our per-stage medians. The title gives the cores the process may use and
the load average: pin it (``taskset -c 0``) for one-core figures.

A second table compares sensor resolutions for the line (``--resolutions``, default
160x120 and 320x240, the sensor at 0.9 m with a 52 deg field of view): per shape the median
|relative volume error| against truth (objects matched by footprint overlap), the share of
objects found, and the time to render a frame (``DepthSensorSim.render_frame``) and to
process it, on the same scenes.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import open3d as o3d
from rich.table import Table

from calibration import PinholeCamera
from perception.catalog import load_catalog
from perception.sensors.depth import DepthSensorSim
from perception.sensors.scene import SceneObject
from perception.volume import VolumeEstimator
from perception.volume.evaluate import (
    SHAPE_NAMES,
    error_table,
    make_scene,
    match_objects,
    truth_index,
)
from sorting.cli.output import console
from sorting.sim.spawner import ObjectSpawner


def open3d_volumes(points_belt: np.ndarray) -> list[tuple[float, float, float]]:
    """(x, y, volume) per cluster: plane RANSAC + DBSCAN + convex hull (with the base)."""
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points_belt))
    plane, _ = pc.segment_plane(distance_threshold=0.004, ransac_n=3, num_iterations=200)
    a, b, c, d = plane
    if c < 0:
        a, b, c, d = -a, -b, -c, -d
    p = np.asarray(pc.points)
    h = (p @ np.array([a, b, c]) + d) / np.linalg.norm([a, b, c])
    above = p[h > 0.003]
    if len(above) == 0:
        return []
    obj = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(above))
    labels = np.asarray(obj.cluster_dbscan(eps=0.008, min_points=10))
    out = []
    n = np.array([a, b, c]) / np.linalg.norm([a, b, c])
    for k in range(labels.max() + 1):
        q = above[labels == k]
        if len(q) < 10:
            continue
        hq = q @ n + d / np.linalg.norm([a, b, c])
        base = q - hq[:, None] * n  # the footprint projected onto the belt
        cl = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.vstack([q, base])))
        try:
            hull, _ = cl.compute_convex_hull()
            vol = hull.get_volume()
        except RuntimeError:
            continue
        out.append((float(q[:, 0].mean()), float(q[:, 1].mean()), float(vol)))
    return out


def _match(
    objs: list[SceneObject], est: list[tuple[float, float, float]]
) -> list[tuple[str, float]]:
    res = []
    for o in objs:
        best = None
        for x, y, v in est:
            d = np.hypot(x - o.x_m, y - o.y_m)
            if d < o.footprint_radius_m() and (best is None or d < best[0]):
                best = (d, v)
        if best is not None:
            res.append((SHAPE_NAMES[o.shape], abs(best[1] - o.volume_m3()) / o.volume_m3()))
    return res


def resolution_table(sizes: list[tuple[int, int]], scenes: int) -> Table:
    """Accuracy and render/process time of the line's depth sensor at each (width, height)."""
    table = Table(title=f"depth sensor resolution: {scenes} scenes of the line mix, 0.9 m, "
                        "52 deg")
    for col in ("sensor", "mm/px", "box med", "lump med", "cyl med", "found",
                "mass med", "render ms", "process ms"):
        table.add_column(col)
    for w, h in sizes:
        cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, w, h, hfov_deg=52.0)
        est = VolumeEstimator(cam)
        spawner = ObjectSpawner(load_catalog(), np.random.default_rng(11),
                                mix={"weee": 0.6, "scrap": 0.25, "slag": 0.15})
        sim = DepthSensorSim(cam, np.random.default_rng(12))
        rng = np.random.default_rng(13)
        matches = []
        t_render: list[float] = []
        t_proc: list[float] = []
        for s in range(scenes):
            objs = make_scene(spawner.spawn, rng, cam, 8, first_id=100 * s)
            t0 = time.perf_counter()
            frame = sim.render_frame(objs, 0.0)
            t_render.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = est.process_frame(frame.points_optical)
            t_proc.append(time.perf_counter() - t0)
            matches += match_objects(res.objects, res.labels, objs,
                                     truth_index(res.heightmap, objs))
        tab = error_table(matches)

        def med(shape: str, tab: dict[str, dict[str, float]] = tab) -> str:
            return f"{tab[shape]['median']:.1%}" if shape in tab else "-"

        table.add_row(f"{w}x{h}", f"{0.9 / cam.fx * 1e3:.1f}", med("box"), med("lump"),
                      med("cylinder"), f"{tab['all']['found']:.0f}/{tab['all']['n']:.0f}",
                      f"{tab['all']['mass_median']:.1%}",
                      f"{np.median(t_render) * 1e3:.1f}", f"{np.median(t_proc) * 1e3:.1f}")
    return table


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.volume")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1,
                    help="times each frame goes through each path (timing medians over all)")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--resolutions", default="160x120,320x240",
                    help="sensor sizes for the resolution table ('' skips it)")
    ap.add_argument("--scenes", type=int, default=8, help="scenes per resolution")
    args = ap.parse_args()
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, args.width, args.height, hfov_deg=52.0)
    spawner = ObjectSpawner(load_catalog(), np.random.default_rng(21),
                            mix={"weee": 0.6, "scrap": 0.25, "slag": 0.15})
    sim = DepthSensorSim(cam, np.random.default_rng(22))
    rng = np.random.default_rng(23)
    ours = VolumeEstimator(cam)
    t_ours: list[float] = []
    t_peer: list[float] = []
    stages: dict[str, list[float]] = {}
    e_ours: list[tuple[str, float]] = []
    e_peer: list[tuple[str, float]] = []
    n_pts = []
    repeat = max(1, args.repeat)
    for f in range(args.frames):
        objs = make_scene(spawner.spawn, rng, cam, 8, first_id=100 * f)
        pts = sim.render_frame(objs, 0.0).points_optical
        flat = pts[np.isfinite(pts[..., 2])].astype(np.float64)
        n_pts.append(len(flat))
        for r in range(repeat):
            t0 = time.perf_counter()
            fr = ours.process_frame(pts)
            t_ours.append(time.perf_counter() - t0)
            for k, v in fr.timings_s.items():
                stages.setdefault(k, []).append(v)
            o3d.utility.random.seed(f)  # the same RANSAC draws on every repeat of a frame
            t0 = time.perf_counter()
            belt = cam.T_belt_camera.apply(flat)
            est = open3d_volumes(belt)
            t_peer.append(time.perf_counter() - t0)
            if r == 0:
                e_ours += _match(objs, [(o.x_m, o.y_m, o.volume_m3) for o in fr.objects])
                e_peer += _match(objs, est)

    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    table = Table(title=f"volume: {args.frames} frames x {repeat}, {args.width}x{args.height}, "
                        f"{np.mean(n_pts) / 1e3:.0f} k points/frame; {cores} core(s), "
                        f"load average {load:.1f}")
    table.add_column("figure")
    table.add_column("crmsort")
    table.add_column("Open3D plain")
    table.add_column("ratio peer/ours")
    to, tp = float(np.median(t_ours)) * 1e3, float(np.median(t_peer)) * 1e3
    table.add_row("time per frame, median (ms)", f"{to:.1f}", f"{tp:.1f}", f"{tp / to:.2f}")
    for shape in ("box", "cylinder", "lump"):
        a = np.array([e for s, e in e_ours if s == shape])
        b = np.array([e for s, e in e_peer if s == shape])
        if a.size == 0 or b.size == 0:
            continue
        table.add_row(f"{shape}: median |rel err| (n)", f"{np.median(a):.1%} ({a.size})",
                      f"{np.median(b):.1%} ({b.size})", f"{np.median(b) / np.median(a):.2f}")
        table.add_row(f"{shape}: p90 |rel err|", f"{np.percentile(a, 90):.1%}",
                      f"{np.percentile(b, 90):.1%}", "")
    table.add_row("  ours by stage (ms, median)",
                  " ".join(f"{k} {np.median(v) * 1e3:.1f}" for k, v in stages.items()
                           if k != "total"), "", "")
    console().print(table)
    if args.resolutions:
        sizes = [tuple(int(v) for v in item.split("x")) for item in args.resolutions.split(",")]
        console().print(resolution_table([(w, h) for w, h in sizes], args.scenes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
