"""``crmsort calibrate intrinsics|extrinsics|encoder|arm|time-offset|hsi|xrf|xrf-types|xrt|
all|show``.

Each procedure reads a folder of images, a recorded bag, or (``--sim``) the
simulated line, where targets are rendered with known truth so the procedure
is proven end to end (the truth comparison is printed). It prints progress and
what to do next, saves PNGs into a run directory and writes the line's
calibration store (``launch/<line>.calibration.yaml``; ``--dry-run`` skips that).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from calibration.detection import BoardDetection, detect_charuco, detect_markers
from calibration.encoder import belt_speed_check, fit_encoder_scale, marker_belt_position
from calibration.errors import CalibrationError
from calibration.extrinsics import (
    board_observation,
    calibrate_extrinsics,
    rotation_angle_deg,
)
from calibration.intrinsics import assess_views, calibrate_intrinsics
from calibration.procedure_errors import TargetNotFoundError, TooFewViewsError
from calibration.records import (
    camera_from_store,
    encoder_entry,
    extrinsics_entry,
    hsi_reference_entry,
    intrinsics_entry,
    rigid_entry,
    time_offset_entry,
    xrf_energy_entry,
)
from calibration.report import (
    encoder_report,
    extrinsics_report,
    hsi_reference_report,
    intrinsics_report,
    rigid_report,
    time_offset_report,
    xrf_energy_report,
)
from calibration.rigid import fit_rigid
from calibration.store import (
    CalibrationEntry,
    CalibrationStore,
    load_or_new,
    load_store,
    save_store,
)
from calibration.targets import CharucoTarget
from calibration.time_offset import Track, estimate_time_offset
from calibration.transforms import RigidTransform
from perception.hsi.library import panel_reflectance
from perception.sensors.camera.targets_sim import on_belt_pose
from perception.sensors.hsi.bands import fx17
from perception.xrf.setup import load_setup
from perception.xrf.spectrum import read_spectrum
from sorting.bags import read_decoded
from sorting.cli import calibrate_sim as sim
from sorting.cli import calibrate_xrf_types, calibrate_xrt
from sorting.cli.calibrate_spectral import (
    HsiReferenceError,
    hsi_references,
    reference_lines,
    xrf_energy,
)
from sorting.cli.output import console
from sorting.cli.xrf_cmd import parse_composition
from sorting.config.cameras import calibration_path, rgb_camera
from sorting.config.line import DEFAULT_LINE, LineConfig, load_line
from sorting.errors import ConfigError
from sorting.msgs import convert

U8 = NDArray[np.uint8]
REQUIRED = ("camera.intrinsics", "camera.extrinsics", "belt.encoder")


# -- parser -----------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, sources: tuple[str, ...]) -> None:
    p.add_argument("--line", default=str(DEFAULT_LINE), help="line YAML (default: %(default)s)")
    p.add_argument("--store", help="calibration store (default: <line>.calibration.yaml)")
    p.add_argument("--run-dir", help="where PNGs go (default: runs/calibrate/<time>-<what>)")
    p.add_argument("--dry-run", action="store_true", help="do not write the store")
    p.add_argument("--seed", type=int, default=7, help="seed of the --sim scene")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sim", action="store_true", help="the simulated line, with known truth")
    if "images" in sources:
        g.add_argument("--images", help="folder of images (png/jpg)")
    if "bag" in sources:
        g.add_argument("--bag", help="recorded bag (camera/image_raw, belt/joint_states)")
        p.add_argument("--topic", default="camera/image_raw", help="image topic (suffix)")
    if "csv" in sources:
        g.add_argument("--csv", help="CSV file with the measurements (see --help)")
    if "npz" in sources:
        g.add_argument("--npz", help="npz with 'dark' and 'white': N lines x W x B counts each")
    if "spectrum" in sources:
        g.add_argument("--spectrum", help="spectrum of the reference (.npz, .mca, .csv)")


def _board_args(p: argparse.ArgumentParser, default: CharucoTarget) -> None:
    p.add_argument("--squares", default=f"{default.squares_x}x{default.squares_y}")
    p.add_argument("--square-m", type=float, default=default.square_m)
    p.add_argument("--marker-m", type=float, default=default.marker_m)
    p.add_argument("--dictionary", default=default.dictionary)
    p.add_argument("--thickness-m", type=float, default=default.thickness_m)


def register(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="measure the line's calibration (guided, with residuals)")
    cs = p.add_subparsers(dest="calibrate_command", metavar="WHAT", required=True)

    c = cs.add_parser("intrinsics", help="camera intrinsics + distortion from ChArUco views")
    _common(c, ("images", "bag"))
    _board_args(c, sim.INTRINSICS_BOARD)
    c.add_argument("--views", type=int, default=24, help="--sim: views to capture")
    c.add_argument("--bad-views", type=int, default=1, help="--sim: shaken views among them")
    c.add_argument("--every", type=int, default=1, help="--bag: use every n-th image")
    c.add_argument("--min-views", type=int, default=10)
    c.set_defaults(func=_intrinsics)

    c = cs.add_parser("extrinsics", help="camera -> belt from a board lying on the belt")
    _common(c, ("images", "bag"))
    _board_args(c, sim.BELT_BOARD)
    c.add_argument("--board-pose", nargs=3, type=float, metavar=("X", "Y", "YAW_DEG"),
                   help="board centre on the belt (m) and yaw at the first image")
    c.set_defaults(func=_extrinsics)

    c = cs.add_parser("encoder", help="belt encoder m/tick from a marker riding the belt")
    _common(c, ("images", "bag"))
    c.add_argument("--marker-id", type=int, default=sim.BELT_MARKER.marker_id)
    c.add_argument("--dictionary", default=sim.BELT_MARKER.dictionary)
    c.add_argument("--marker-height-m", type=float, default=sim.BELT_MARKER.thickness_m,
                   help="height of the marker's face above the belt")
    c.set_defaults(func=_encoder)

    c = cs.add_parser(
        "arm", help="belt -> arm base from touched points (CSV: bx,by,bz,ax,ay,az in m)"
    )
    _common(c, ("csv",))
    c.add_argument("--arm", default="arm1", help="arm name (frame <arm>_base_link)")
    c.add_argument("--inlier-mm", type=float, default=3.0)
    c.set_defaults(func=_arm)

    c = cs.add_parser(
        "time-offset",
        help="time offset of a sensor vs the camera (CSV: sensor,object,t_s,x_m; "
        "sensor 'encoder' rows give the belt position)",
    )
    _common(c, ("csv",))
    c.add_argument("--sensors", nargs=2, default=["camera", "depth"], metavar=("REF", "OTHER"))
    c.set_defaults(func=_time_offset)

    c = cs.add_parser("hsi", help="hyperspectral dark and white references (average, check)")
    _common(c, ("npz",))
    c.add_argument("--lines", type=int, default=16, help="--sim: lines per reference take")
    c.add_argument("--min-lines", type=int, default=8)
    c.add_argument("--full-scale", type=float, default=4095.0, help="saturation count")
    c.add_argument("--min-response", type=float, default=20.0,
                   help="least white - dark (counts) of a live pixel")
    c.set_defaults(func=_hsi)

    c = cs.add_parser("xrf", help="XRF energy calibration channel -> keV from a reference")
    _common(c, ("spectrum",))
    c.add_argument("--reference", help="composition of the reference, e.g. Cu=0.6,Zn=0.37,"
                   "Pb=0.03 (--sim: the simulated multi-element disc)")
    c.add_argument("--setup", default=None, help="XRF set-up YAML (nominal calibration)")
    c.add_argument("--gain", type=float, help="rough gain keV/ch when the file has none")
    c.add_argument("--offset", type=float, default=0.0, help="rough offset keV")
    c.add_argument("--sigma-kev", type=float, default=0.07, help="peak width (σ, keV)")
    c.set_defaults(func=_xrf)

    c = calibrate_xrt.add_parser(cs, _common)
    c.set_defaults(func=_xrt)

    c = calibrate_xrf_types.add_parser(cs, _common)
    c.set_defaults(func=_xrf_types)

    c = cs.add_parser("all", help="every procedure in turn on the simulated line (--sim)")
    _common(c, ())
    c.set_defaults(func=_all)

    c = cs.add_parser("show", help="print the store; flag stale, poor or missing calibrations")
    c.add_argument("--line", default=str(DEFAULT_LINE))
    c.add_argument("--store", help="calibration store (default: <line>.calibration.yaml)")
    c.add_argument("--strict", action="store_true", help="exit 1 when anything is flagged")
    c.set_defaults(func=_show)


# -- shared helpers -------------------------------------------------------------------------
class _Run:
    def __init__(self, args: argparse.Namespace, what: str) -> None:
        self.args = args
        self.con = console()
        self.line: LineConfig = load_line(args.line)
        # where the line's nodes read it: launch/<line name>.calibration.yaml
        self.store_path = Path(args.store) if args.store else calibration_path(self.line)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(args.run_dir) if args.run_dir else Path("runs/calibrate") / (
            f"{stamp}-{what}"
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(args.seed)
        self.source = "sim" if args.sim else (
            f"images:{args.images}" if getattr(args, "images", None)
            else f"bag:{args.bag}" if getattr(args, "bag", None)
            else f"npz:{args.npz}" if getattr(args, "npz", None)
            else f"spectrum:{args.spectrum}" if getattr(args, "spectrum", None)
            else f"csv:{args.csv}"
        )

    def store(self) -> CalibrationStore:
        return load_or_new(self.store_path, self.line.name)

    def save(self, name: str, entry: CalibrationEntry) -> None:
        if self.args.dry_run:
            self.con.print(f"[dim]--dry-run: {name} not written to {self.store_path}[/]")
            return
        store = self.store()
        new = store.put(name, entry)
        save_store(store, self.store_path)
        self.con.print(f"[green]saved[/] {name} v{new.version} to {self.store_path}")

    def png(self, path: Path) -> None:
        self.con.print(f"picture: {path}")


def _board(args: argparse.Namespace) -> CharucoTarget:
    m = re.fullmatch(r"(\d+)x(\d+)", args.squares)
    if not m:
        raise ConfigError(f"--squares: expected COLSxROWS like 9x6, got {args.squares!r}")
    return CharucoTarget(int(m[1]), int(m[2]), args.square_m, args.marker_m, args.dictionary,
                         args.thickness_m)


def _read_images(folder: str) -> list[tuple[str, U8]]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg",
                                                                              ".jpeg", ".bmp"))
    if not files:
        raise ConfigError(f"{folder}: no .png/.jpg images found")
    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise ConfigError(f"{f}: cannot read image")
        out.append((f.name, np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[..., ::-1])))
    return out


def _bag_images(bag: str, topic: str, every: int = 1) -> list[tuple[str, U8, int]]:
    out = []
    k = 0
    for name, _type, t_ns, msg in read_decoded(bag):
        if name.endswith(topic):
            if k % every == 0:
                out.append((f"t{t_ns}", convert.image_array(msg), t_ns))
            k += 1
    if not out:
        raise ConfigError(f"{bag}: no messages on a topic ending in {topic!r}")
    return out


def _bag_belt(bag: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ts, xs = [], []
    for name, _type, t_ns, msg in read_decoded(bag):
        if name.endswith("belt/joint_states") and len(msg.position):
            ts.append(t_ns * 1e-9)
            xs.append(float(msg.position[0]))
    if len(ts) < 2:
        raise ConfigError(f"{bag}: no belt/joint_states messages (needed for the belt position)")
    return np.array(ts), np.array(xs)


def _detect_all(
    run: _Run, images: list[tuple[str, U8]], board: CharucoTarget
) -> list[BoardDetection]:
    dets: list[BoardDetection] = []
    for i, (name, img) in enumerate(images):
        try:
            d = detect_charuco(img, board, name)
        except TargetNotFoundError as exc:
            run.con.print(f"  [{i + 1}/{len(images)}] [yellow]skipped[/] {exc}")
            continue
        dets.append(d)
        run.con.print(f"  [{i + 1}/{len(images)}] {name}: {d.n} corners")
    return dets


# -- procedures -------------------------------------------------------------------------------
def _intrinsics(args: argparse.Namespace) -> int:
    run = _Run(args, "intrinsics")
    board = _board(args) if not args.sim else sim.INTRINSICS_BOARD
    if args.sim:
        run.con.print(f"rendering {args.views} board views in the simulated camera ...")
        images = sim.intrinsic_views(run.line, args.views, run.rng, args.bad_views)
    elif args.images:
        images = _read_images(args.images)
    else:
        images = [(n, img) for n, img, _t in _bag_images(args.bag, args.topic, args.every)]
    dets = _detect_all(run, images, board)
    if len(dets) < args.min_views:
        g = assess_views(dets, (images[0][1].shape[1], images[0][1].shape[0]))
        raise TooFewViewsError(
            f"{len(dets)} views with the board found, need >= {args.min_views}: capture "
            f"{args.min_views - len(dets)} more" + (f"; {g.messages[-1]}" if g.messages else "")
        )
    res = calibrate_intrinsics(dets, min_views=args.min_views)
    c = res.camera
    run.con.print(
        f"[bold]intrinsics[/]: fx={c.fx:.2f} fy={c.fy:.2f} cx={c.cx:.2f} cy={c.cy:.2f} px, "
        f"distortion {tuple(round(v, 5) for v in c.distortion)}"
    )
    run.con.print(
        f"  RMS {res.rms_px:.3f} px over {res.n_views} views ({res.n_points} corners), "
        f"coverage {res.guidance.coverage:.0%}, σ(fx) {res.std.get('fx', math.nan):.2f} px"
    )
    for r in res.rejected:
        run.con.print(f"  [yellow]rejected[/] {r.view_id}: {r.reason}")
    if args.sim:
        t = rgb_camera(run.line)
        run.con.print(
            f"  vs truth: fx {100 * (c.fx / t.fx - 1):+.3f} %, fy {100 * (c.fy / t.fy - 1):+.3f} %,"
            f" cx {c.cx - t.cx:+.2f} px, cy {c.cy - t.cy:+.2f} px"
        )
    run.png(intrinsics_report(res, run.run_dir / "intrinsics.png"))
    for m in res.guidance.messages:
        run.con.print(f"  next: {m}")
    if res.guidance.done:
        run.con.print("  next: lay the board on the belt and run `crmsort calibrate extrinsics`")
    run.save("camera.intrinsics", intrinsics_entry(res, run.source))
    return 0


def _extrinsics(args: argparse.Namespace) -> int:
    run = _Run(args, "extrinsics")
    intr = camera_from_store(run.store(), "camera")
    views: list[tuple[str, U8, RigidTransform]]
    if args.sim:
        board = sim.BELT_BOARD
        views = sim.extrinsic_views(run.line, run.rng)
    else:
        board = _board(args)
        if args.board_pose is None:
            raise ConfigError("--board-pose X Y YAW_DEG: where the board lies on the belt")
        x, y, yaw = args.board_pose
        first = on_belt_pose(board, x, y, math.radians(yaw))
        if args.images:
            views = [(n, img, first) for n, img in _read_images(args.images)]
        else:
            bt, bx = _bag_belt(args.bag)
            imgs = _bag_images(args.bag, args.topic)
            x0 = float(np.interp(imgs[0][2] * 1e-9, bt, bx))
            views = []
            for n, img, t_ns in imgs:
                dx = float(np.interp(t_ns * 1e-9, bt, bx)) - x0
                shift = RigidTransform(np.eye(3), np.array([dx, 0.0, 0.0]))
                views.append((n, img, shift @ first))
    dets = _detect_all(run, [(n, img) for n, img, _p in views], board)
    poses = {n: p for n, _img, p in views}
    res = calibrate_extrinsics(intr, [board_observation(d, poses[d.view_id]) for d in dets])
    t = res.T_belt_camera.translation
    rpy = np.degrees(res.T_belt_camera.as_rpy())
    run.con.print(
        f"[bold]camera → belt[/]: t = ({t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}) m, rpy = "
        f"({rpy[0]:.3f}, {rpy[1]:.3f}, {rpy[2]:.3f})°; RMS {res.rms_px:.3f} px "
        f"({res.belt_rms_m * 1e3:.2f} mm on the belt)"
    )
    if args.sim:
        truth = rgb_camera(run.line).T_belt_camera
        err = np.linalg.norm(res.T_belt_camera.translation - truth.translation)
        run.con.print(
            f"  vs truth: translation {err * 1e3:.2f} mm, rotation "
            f"{rotation_angle_deg(res.T_belt_camera, truth):.3f}°"
        )
    run.png(extrinsics_report(res, run.run_dir / "extrinsics.png"))
    run.con.print("  next: put a marker on the belt and run `crmsort calibrate encoder`")
    run.save("camera.extrinsics", extrinsics_entry(res, run.source,
                                                   run.line.sensors.camera.frame_id))
    return 0


def _encoder(args: argparse.Namespace) -> int:
    run = _Run(args, "encoder")
    cam = camera_from_store(run.store(), "camera")
    readings: list[tuple[str, U8, float]]
    speed_t: NDArray[np.float64] | None = None
    speed_ticks: NDArray[np.float64] | None = None
    nominal = 1.0 / run.line.belt.encoder_ticks_per_m
    if args.sim:
        readings = [(n, img, float(k)) for n, img, k in sim.encoder_views(run.line, run.rng)]
        speed_t = np.arange(0.0, 10.0, 0.01)
        v = run.line.belt.speed_mps
        speed_ticks = np.floor(
            (v * speed_t + 0.01 * np.sin(speed_t)) * run.line.belt.encoder_ticks_per_m
        )
    elif args.images:
        readings = []
        for n, img in _read_images(args.images):
            nums = re.findall(r"\d+", Path(n).stem)
            if not nums:
                raise ConfigError(f"{n}: name the image with its encoder count, e.g. enc_12345.png")
            readings.append((n, img, float(nums[-1])))
    else:
        bt, bx = _bag_belt(args.bag)
        readings = [
            (n, img, float(np.interp(t * 1e-9, bt, bx)) / nominal)
            for n, img, t in _bag_images(args.bag, args.topic)
        ]
        speed_t, speed_ticks = bt, bx / nominal
    ticks, pos = [], []
    for i, (name, img, k) in enumerate(readings):
        markers = detect_markers(img, args.dictionary)
        if args.marker_id not in markers:
            run.con.print(f"  [{i + 1}/{len(readings)}] [yellow]no marker {args.marker_id}[/]"
                          f" in {name}")
            continue
        xy = marker_belt_position(cam, markers[args.marker_id], args.marker_height_m)
        ticks.append(k)
        pos.append(xy)
        run.con.print(f"  [{i + 1}/{len(readings)}] {name}: ticks {k:.0f}, marker at "
                      f"({xy[0]:.4f}, {xy[1]:.4f}) m")
    res = fit_encoder_scale(np.array(ticks), np.array(pos).reshape(-1, 2))
    run.con.print(
        f"[bold]encoder[/]: {res.m_per_tick * 1e6:.4f} µm/tick = {res.ticks_per_m:.2f} ticks/m "
        f"(nominal {run.line.belt.encoder_ticks_per_m:g}); RMS {res.rms_m * 1e3:.3f} mm, "
        f"travel {res.drift_deg:+.3f}° off belt x"
    )
    if args.sim:
        run.con.print(f"  vs truth: {100 * (res.m_per_tick / nominal - 1):+.3f} %")
    if speed_t is not None and speed_ticks is not None:
        check = belt_speed_check(speed_t, speed_ticks, res.m_per_tick, run.line.belt.speed_mps)
        run.con.print(f"  {check.message}")
    run.png(encoder_report(res, run.run_dir / "encoder.png"))
    run.save("belt.encoder", encoder_entry(res, run.source))
    return 0


def _read_csv(path: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read CSV: {exc.strerror}") from None


def _arm(args: argparse.Namespace) -> int:
    run = _Run(args, "arm")
    if args.sim:
        belt, arm = sim.arm_touches(run.rng)
    else:
        rows = _read_csv(args.csv)
        try:
            belt = np.array([[float(r[k]) for k in ("bx", "by", "bz")] for r in rows])
            arm = np.array([[float(r[k]) for k in ("ax", "ay", "az")] for r in rows])
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{args.csv}: expected columns bx,by,bz,ax,ay,az: {exc}") from None
    fit = fit_rigid(arm, belt, inlier_m=args.inlier_mm * 1e-3)
    t = fit.transform.translation
    run.con.print(
        f"[bold]{args.arm} base in the belt frame[/]: ({t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}) m, "
        f"yaw {math.degrees(fit.transform.as_rpy()[2]):.3f}°; RMS {fit.rms_m * 1e3:.3f} mm, "
        f"max {fit.max_m * 1e3:.3f} mm over {int(fit.inliers.sum())} points"
    )
    for i in fit.outlier_indices:
        run.con.print(f"  [yellow]outlier[/] point {i}: {fit.residuals_m[i] * 1e3:.1f} mm — "
                      "touch it again")
    if args.sim:
        truth = sim.TRUE_T_BELT_ARM
        pts = truth.apply(arm[fit.inliers])
        err = np.linalg.norm(fit.transform.apply(arm[fit.inliers]) - pts, axis=1)
        run.con.print(f"  vs truth: {err.max() * 1e3:.3f} mm max over the touched workspace, "
                      f"rotation {rotation_angle_deg(fit.transform, truth):.3f}°")
    run.png(rigid_report(fit, run.run_dir / f"{args.arm}.png"))
    run.save(f"{args.arm}.base", rigid_entry(fit, run.source, "belt", f"{args.arm}_base_link"))
    return 0


def _time_offset(args: argparse.Namespace) -> int:
    run = _Run(args, "time-offset")
    ref, other = args.sensors
    enc: Track | None = None
    if args.sim:
        cam = rgb_camera(run.line)
        scene = sim.time_offset_scene(run.line, run.rng)
        ts, xs = [], []
        for t, img in scene.camera_images:
            m = detect_markers(img, sim.BELT_MARKER.dictionary)
            if sim.BELT_MARKER.marker_id in m:
                ts.append(t)
                xs.append(marker_belt_position(cam, m[sim.BELT_MARKER.marker_id],
                                               scene.box_height_m)[0])
        tracks_a = [Track(ts, xs)]
        tracks_b = [sim.depth_track(scene.depth_points, scene.box_height_m / 2)]
        enc = scene.encoder
        ref, other = "camera", "depth"
    else:
        rows = _read_csv(args.csv)
        by: dict[tuple[str, str], list[tuple[float, float]]] = {}
        try:
            for r in rows:
                by.setdefault((r["sensor"], r["object"]), []).append(
                    (float(r["t_s"]), float(r["x_m"]))
                )
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"{args.csv}: expected columns sensor,object,t_s,x_m: {exc}"
            ) from None
        objs = sorted({o for s, o in by if s == ref} & {o for s, o in by if s == other})
        tracks_a = [Track(*zip(*sorted(by[(ref, o)]), strict=True)) for o in objs]
        tracks_b = [Track(*zip(*sorted(by[(other, o)]), strict=True)) for o in objs]
        enc_rows = [v for (s, _o), v in by.items() if s == "encoder"]
        if enc_rows:
            enc = Track(*zip(*sorted(enc_rows[0]), strict=True))
    run.con.print(f"  {len(tracks_a)} object(s): {sum(a.t_s.size for a in tracks_a)} {ref} and "
                  f"{sum(b.t_s.size for b in tracks_b)} {other} samples")
    res = estimate_time_offset(tracks_a, tracks_b, degree=0 if enc is not None else 1,
                               encoder=enc)
    run.con.print(
        f"[bold]time offset[/]: t_{ref} = t_{other} + {res.offset_s * 1e3:.2f} ms "
        f"(± {res.std_s * 1e3:.2f} ms); RMS {res.rms_m * 1e3:.2f} mm"
    )
    if args.sim:
        run.con.print(f"  vs truth: {(res.offset_s - sim.TRUE_DEPTH_OFFSET_S) * 1e3:+.2f} ms")
    run.png(time_offset_report(tracks_a, tracks_b, res, run.run_dir / "time_offset.png",
                               (ref, other)))
    run.save(f"{other}.time_offset", time_offset_entry(res, run.source, ref, other))
    return 0


def _hsi(args: argparse.Namespace) -> int:
    run = _Run(args, "hsi")
    panel = panel_reflectance(fx17())
    scene = None
    if args.sim:
        run.con.print(f"capturing {args.lines} dark (shutter closed) and {args.lines} white-panel "
                      "lines with the simulated camera ...")
        scene = sim.hsi_reference_scene(run.line, run.rng, args.lines)
        dark, white = scene.dark, scene.white
        panel = scene.panel
    else:
        try:
            with np.load(args.npz) as z:
                missing = [k for k in ("dark", "white") if k not in z.files]
                if missing:
                    raise HsiReferenceError(
                        f"{args.npz}: no {' / '.join(missing)} frames (has {z.files}): capture "
                        "them (dark: shutter closed; white: panel under the line)")
                dark, white = np.asarray(z["dark"]), np.asarray(z["white"])
        except OSError as exc:
            raise ConfigError(f"{args.npz}: cannot read npz: {exc}") from None
        if dark.shape[-1:] != panel.shape:
            panel = np.full(dark.shape[-1], float(np.median(panel)))
            run.con.print("[yellow]note[/] band count differs from the FX17 model: panel "
                          f"reflectance taken flat at {panel[0]:.3f}")
    ref = hsi_references(dark, white, panel, args.full_scale, args.min_response, args.min_lines)
    w, b = ref.dark.shape
    run.con.print(
        f"[bold]hsi references[/]: {ref.n_lines} lines averaged, {w} pixels x {b} bands; "
        f"dark {ref.dark.mean():.1f}, white - dark {np.median(ref.white - ref.dark):.1f} counts "
        f"(median); white noise {ref.rel_noise:.2%} of the response"
    )
    if scene is not None:
        raw, _truth = scene.camera.render([])
        refl, _flags = ref.calibrator.apply(raw)
        belt = scene.camera._belt
        err = float(np.nanmax(np.abs(np.nanmedian(refl, axis=0) - belt)))
        run.con.print(f"  vs truth: planted dead {list(scene.dead)}, saturated "
                      f"{list(scene.saturated)}; belt reflectance within {err:.4f} of the library")
    for m in ref.guidance():
        run.con.print(f"  next: {m}")
    run.png(hsi_reference_report(ref.dark, ref.white, ref.dead, ref.saturated,
                                 run.run_dir / "hsi_reference.png", args.full_scale))
    sname = run.store_path.name
    base = sname[: -len(".calibration.yaml")] if sname.endswith(".calibration.yaml") else (
        run.store_path.stem)
    npz = run.store_path.with_name(base + ".hsi_reference.npz")
    if not args.dry_run:
        np.savez_compressed(npz, dark=ref.dark.astype(np.float32),
                            white=ref.white.astype(np.float32), dead=ref.dead,
                            saturated=ref.saturated)
        run.con.print(f"references: {npz}")
    run.save("hsi.reference", hsi_reference_entry(
        run.source, npz.name, ref.n_lines, (w, b), ref.dead_columns, ref.saturated_columns,
        ref.noise_dark, ref.noise_white, ref.rel_noise))
    return 0


def _xrf(args: argparse.Namespace) -> int:
    run = _Run(args, "xrf")
    setup = load_setup(args.setup)
    truth: tuple[float, float] | None = None
    if args.sim:
        composition = dict(sim.XRF_REFERENCE)
        run.con.print(f"measuring the reference disc {composition} (simulated, 30 s) ...")
        spec, g_true, o_true = sim.xrf_reference_spectrum(run.rng, setup)
        truth = (g_true, o_true)
    else:
        if not args.reference:
            raise ConfigError("--reference COMPOSITION: the reference sample, e.g. Cu=0.6,Zn=0.4")
        composition = parse_composition(args.reference)
        default = (args.gain or setup.mca.gain_kev_per_channel(), args.offset)
        spec = read_spectrum(args.spectrum, default)
    lines = reference_lines(composition, setup.tube.voltage_kv, min_kev=setup.fit_min_kev,
                            max_kev=setup.fit_max_kev)
    run.con.print("  lines: " + ", ".join(f"{r.label} {r.energy_kev:.3f} keV" for r in lines))
    res = xrf_energy(spec, lines, args.sigma_kev)
    cal = res.calibration
    run.con.print(
        f"[bold]xrf energy[/]: E = {cal.offset_kev * 1e3:.1f} ± {res.u_offset_kev * 1e3:.1f} eV + "
        f"{cal.gain_kev_per_channel * 1e3:.5f} ± {res.u_gain_kev_per_channel * 1e3:.5f} eV/ch "
        f"({100 * res.gain_change:+.3f} % vs the spectrum's calibration); "
        f"RMS {cal.rms_residual_kev * 1e3:.1f} eV"
    )
    for r, c, e in zip(lines, cal.channels, cal.residuals_kev, strict=True):
        run.con.print(f"  {r.label:6s} {r.energy_kev:8.4f} keV at channel {c:8.2f}: "
                      f"{e * 1e3:+6.1f} eV")
    if truth is not None:
        run.con.print(f"  vs truth: gain {100 * (cal.gain_kev_per_channel / truth[0] - 1):+.3f} %,"
                      f" offset {(cal.offset_kev - truth[1]) * 1e3:+.1f} eV")
    run.png(xrf_energy_report([r.label for r in lines], cal.channels, cal.energies_kev,
                              cal.residuals_kev, cal.gain_kev_per_channel, cal.offset_kev,
                              run.run_dir / "xrf_energy.png", np.asarray(spec.counts)))
    run.con.print("  next: the XRF node applies it on the next start; re-check weekly")
    run.save("xrf.energy", xrf_energy_entry(
        run.source, composition, [r.label for r in lines], cal.energies_kev, cal.channels,
        cal.residuals_kev, cal.gain_kev_per_channel, res.u_gain_kev_per_channel, cal.offset_kev,
        res.u_offset_kev))
    return 0


def _xrt(args: argparse.Namespace) -> int:
    return calibrate_xrt.run(args, _Run(args, "xrt"))


def _xrf_types(args: argparse.Namespace) -> int:
    return calibrate_xrf_types.run(args, _Run(args, "xrf-types"))


def _all(args: argparse.Namespace) -> int:
    if not args.sim:
        raise CalibrationError("calibrate all: only with --sim")
    con = console()
    steps: list[tuple[str, Any, dict[str, Any]]] = [
        ("intrinsics", _intrinsics, {"views": 24, "bad_views": 1, "min_views": 10, "every": 1}),
        ("extrinsics", _extrinsics, {"board_pose": None}),
        ("encoder", _encoder, {"marker_id": sim.BELT_MARKER.marker_id,
                               "dictionary": sim.BELT_MARKER.dictionary,
                               "marker_height_m": sim.BELT_MARKER.thickness_m}),
        ("arm", _arm, {"arm": "arm1", "inlier_mm": 3.0}),
        ("time-offset", _time_offset, {"sensors": ["camera", "depth"]}),
    ]
    for i, (name, fn, extra) in enumerate(steps):
        con.rule(f"[{i + 1}/{len(steps)}] {name}")
        ns = argparse.Namespace(**vars(args), **extra)
        if ns.run_dir:
            ns.run_dir = str(Path(ns.run_dir) / name)
        fn(ns)
    return 0


def _show(args: argparse.Namespace) -> int:
    con = console()
    path = Path(args.store) if args.store else calibration_path(load_line(args.line))
    store = load_store(path)
    flags = store.flags(required=REQUIRED)
    bad = {f.name: f.problem for f in flags}
    table = Table(title=f"calibration of {store.line} ({path})")
    for col in ("entry", "kind", "v", "date", "method", "quality", "status"):
        table.add_column(col)
    now = dt.datetime.now(dt.UTC)
    for name, e in sorted(store.calibrations.items()):
        q = e.quality
        age = (now - e.date).days
        status = bad.get(name, "ok")
        colour = "green" if status == "ok" else "red"
        table.add_row(name, e.kind, str(e.version), f"{e.date:%Y-%m-%d} ({age} d)", e.method,
                      f"{q.metric} {q.value:.4g} ≤ {q.limit:.4g}", f"[{colour}]{status}[/]")
    con.print(table)
    for f in flags:
        con.print(f"[red]{f.problem}[/]: {f.message}")
    if not flags:
        con.print("[green]all calibrations current and within limits[/]")
    return 1 if (flags and args.strict) else 0
