"""Synthetic detector dataset: simulated camera frames of cluttered belts with YOLO labels.

Layout written under ``out``::

    data.yaml                 names (catalog classes, ids 0..N-1), train/val image folders
    images/{train,val}/NNNNNN.jpg
    labels/{train,val}/NNNNNN.txt   one "cls cx cy w h" line per object (normalised 0-1)
    masks/{train,val}/NNNNNN.png    optional, uint16: 1 + line index in the label file, 0 else
    summary.json              seed, mode, counts per class and split, the ranges used

Images are rendered by :class:`RgbCameraSim` in groups of ``images_per_scene``: one
simulated camera (pose, belt colour, sensor noise) per group, new objects and lighting per
image. Randomization ranges come from :mod:`sorting.dataset.randomization` (``TRAIN`` or,
with ``shifted``, ``SHIFTED``). Boxes are the tight boxes of the *visible* pixels of each
catalog-class object; objects less visible than ``min_visible_fraction`` (occluded) or with
fewer than ``min_visible_px`` pixels are left unlabelled, and distractors are never labelled.
Same seed and mode, same files (group ``g`` draws from ``default_rng([seed, shifted, g])``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import yaml

from calibration.camera import PinholeCamera
from calibration.transforms import RigidTransform
from perception.catalog import Catalog, load_catalog
from perception.sensors.camera import CameraSimConfig, Lighting, RgbCameraSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.dataset.randomization import SHIFTED, TRAIN, Randomization
from sorting.errors import ConfigError
from sorting.sim.spawner import ObjectSpawner

SPLITS = ("train", "val")


@dataclass(frozen=True)
class SynthConfig:
    """What to render: ``n_images`` frames of ``width_px`` x ``height_px`` from ``seed``.

    ``val_fraction`` of the images (evenly spread) go to ``val`` (default 0.15, or 1.0 for a
    ``shifted`` held-out set). ``write_quality``: JPEG quality of the stored files.
    """

    n_images: int
    seed: int
    shifted: bool = False
    val_fraction: float | None = None
    images_per_scene: int = 8
    width_px: int = 640
    height_px: int = 480
    min_visible_fraction: float = 0.3
    min_visible_px: int = 10
    masks: bool = False
    write_quality: int = 95

    def __post_init__(self) -> None:
        if self.n_images < 1:
            raise ConfigError(f"n_images: must be >= 1, got {self.n_images}")
        if self.val_fraction is not None and not 0.0 <= self.val_fraction <= 1.0:
            raise ConfigError(f"val_fraction: must lie in [0, 1], got {self.val_fraction}")
        if self.images_per_scene < 1 or self.width_px < 32 or self.height_px < 32:
            raise ConfigError("images_per_scene >= 1 and image size >= 32 px required")

    @property
    def ranges(self) -> Randomization:
        return SHIFTED if self.shifted else TRAIN

    @property
    def effective_val_fraction(self) -> float:
        if self.val_fraction is not None:
            return self.val_fraction
        return 1.0 if self.shifted else 0.15


@dataclass(frozen=True)
class SynthSummary:
    """Counts of what was written: images per split, labelled boxes per class name."""

    out_dir: Path
    images: dict[str, int]
    boxes_per_class: dict[str, int]


def split_of(index: int, val_fraction: float) -> str:
    """``val`` for evenly spread image indices (a share ``val_fraction``), else ``train``."""
    return "val" if math.floor((index + 1) * val_fraction) > math.floor(index * val_fraction) \
        else "train"


def _u(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(span[0], span[1]))


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    out: np.ndarray = np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    return out


def scene_camera(rng: np.random.Generator, r: Randomization, width: int, height: int
                 ) -> PinholeCamera:
    """A camera over belt x = 0 with jittered height, yaw, field of view and tilt."""
    yaw = math.radians(_u(rng, (-r.yaw_deg, r.yaw_deg)))
    if rng.random() < r.flip_probability:
        yaw += math.pi
    cam = PinholeCamera.looking_down(
        x_m=0.0, y_m=float(rng.uniform(-0.05, 0.05)), height_m=_u(rng, r.camera_height_m),
        width_px=width, height_px=height, hfov_deg=_u(rng, r.hfov_deg), yaw_rad=yaw,
    )
    tilt = math.radians(_u(rng, (0.0, r.tilt_deg)))
    az = _u(rng, (-math.pi, math.pi))
    rot = _axis_angle(np.array([math.cos(az), math.sin(az), 0.0]), tilt)
    pose = cam.T_belt_camera
    return cam.with_pose(RigidTransform(rot @ pose.rotation, pose.translation))


def scene_sim(rng: np.random.Generator, r: Randomization, camera: PinholeCamera
              ) -> RgbCameraSim:
    """A camera simulator with randomized sensor settings and a tinted belt."""
    exposure = _u(rng, r.exposure_s)
    cfg = CameraSimConfig(
        full_well_e=_u(rng, r.full_well_e),
        read_noise_e=_u(rng, r.read_noise_e),
        reference_exposure_s=exposure,
        gain=_u(rng, r.gain),
        vignetting=_u(rng, r.vignetting),
        white_balance_k=_u(rng, r.white_balance_k),
        belt_specular=_u(rng, r.belt_specular),
    )
    sim = RgbCameraSim(camera, rng, cfg)
    tint = np.asarray(r.belt_tints[int(rng.integers(len(r.belt_tints)))], dtype=np.float32)
    tint = tint * np.float32(_u(rng, r.belt_brightness))
    # the simulator draws one dark-grey rubber belt; recolour its albedo (the texture keeps
    # its grain, weave and stains). CameraSimConfig has no belt colour setting yet.
    sim._belt_tex = np.ascontiguousarray(
        np.clip(sim._belt_tex * tint, 0.0, 1.0), dtype=np.float32
    )
    return sim


def _lighting(rng: np.random.Generator, r: Randomization) -> Lighting:
    elevation = math.radians(_u(rng, r.light_elevation_deg))
    azimuth = _u(rng, (-math.pi, math.pi))
    return Lighting(
        direction=(
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ),
        intensity=_u(rng, r.light_intensity),
        ambient=_u(rng, r.ambient),
        colour_temperature_k=_u(rng, r.colour_temperature_k),
    )


def _vary_appearance(rng: np.random.Generator, r: Randomization, app: Appearance) -> Appearance:
    scale = _u(rng, r.albedo_scale)
    tint = 1.0 + rng.normal(0.0, r.tint_sd, 3)

    def f(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
        v = np.clip(np.asarray(rgb) * scale * tint, 0.0, 1.0)
        return (float(v[0]), float(v[1]), float(v[2]))

    return replace(app, base_rgb=f(app.base_rgb), accent_rgb=f(app.accent_rgb))


def _scaled(obj: SceneObject, s: float) -> SceneObject:
    size = (obj.size_m[0] * s, obj.size_m[1] * s, obj.size_m[2] * s)
    if obj.shape == ShapeKind.LUMP and obj.heightmap_m is not None:
        return replace(obj, size_m=size, heightmap_m=obj.heightmap_m * s, cell_m=obj.cell_m * s)
    return replace(obj, size_m=size)


def scene_objects(
    rng: np.random.Generator,
    r: Randomization,
    classes: ObjectSpawner,
    clutter: ObjectSpawner,
    footprint: np.ndarray,
) -> list[SceneObject]:
    """Objects scattered over (and just past) the camera's belt footprint (4 x 3 corners):
    uniform positions, some dropped against or on top of the previous object."""
    x_lo, x_hi = float(footprint[:, 0].min()) - 0.05, float(footprint[:, 0].max()) + 0.05
    y_lo, y_hi = float(footprint[:, 1].min()) - 0.05, float(footprint[:, 1].max()) + 0.05
    n = int(rng.integers(r.objects[0], r.objects[1] + 1))
    out: list[SceneObject] = []
    for k in range(n):
        spawner = clutter if rng.random() < r.distractor_probability else classes
        obj = _scaled(spawner.spawn(k, 0.0, 0.0), _u(rng, r.scale))
        obj = replace(obj, appearance=_vary_appearance(rng, r, obj.appearance))
        u = rng.random()
        prev = out[-1] if out else None
        if prev is not None and u < r.stack_probability:
            off = rng.uniform(-0.5, 0.5, 2) * prev.footprint_radius_m()
            x, y = prev.x_m + off[0], prev.y_m + off[1]
            z = prev.z_m + prev.height_m
        elif prev is not None and u < r.stack_probability + r.touch_probability:
            d = (prev.footprint_radius_m() + obj.footprint_radius_m()) * _u(rng, (0.35, 0.8))
            a = _u(rng, (-math.pi, math.pi))
            x, y, z = prev.x_m + d * math.cos(a), prev.y_m + d * math.sin(a), 0.0
        else:
            x, y, z = _u(rng, (x_lo, x_hi)), _u(rng, (y_lo, y_hi)), 0.0
        out.append(replace(obj, x_m=float(x), y_m=float(y), z_m=float(z)))
    return out


def _jpeg(rng: np.random.Generator, r: Randomization, rgb: np.ndarray) -> np.ndarray:
    if rng.random() >= r.jpeg_probability:
        return rgb
    q = int(rng.integers(r.jpeg_quality[0], r.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise ConfigError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ConfigError("JPEG decoding failed")
    return np.ascontiguousarray(np.asarray(decoded, dtype=np.uint8)[..., ::-1])


def write_data_yaml(out_dir: Path, names: list[str]) -> Path:
    """``data.yaml`` for Ultralytics; no ``path`` key: the folder of the YAML is the root."""
    path = out_dir / "data.yaml"
    data = {
        "train": "images/train",
        "val": "images/val",
        "nc": len(names),
        "names": dict(enumerate(names)),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _render_groups(
    out_dir: Path, config: SynthConfig, cat: Catalog, groups: range,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Render and write scene groups ``groups``; return (boxes per class, images per split).

    ``progress(1)`` after each image written."""
    names = list(cat.class_names)
    class_id = {n: i for i, n in enumerate(names)}
    r = config.ranges
    vf = config.effective_val_fraction
    counts = {n: 0 for n in names}
    per_split = {s: 0 for s in SPLITS}
    w, h = config.width_px, config.height_px
    for g in groups:
        rng = np.random.default_rng([config.seed, int(config.shifted), g])
        camera = scene_camera(rng, r, w, h)
        sim = scene_sim(rng, r, camera)
        footprint = camera.ground_footprint()
        classes = ObjectSpawner(cat, rng, mix={c.name: 1.0 for c in cat.classes})
        clutter = ObjectSpawner(cat, rng, mix={"clutter": 1.0})
        for i in range(g * config.images_per_scene,
                       min((g + 1) * config.images_per_scene, config.n_images)):
            objects = scene_objects(rng, r, classes, clutter, footprint)
            frame = sim.render_frame(
                objects,
                belt_position_m=_u(rng, (0.0, 10.0)),
                belt_speed_mps=_u(rng, r.belt_speed_mps),
                exposure_s=sim.config.reference_exposure_s,
                lighting=_lighting(rng, r),
            )
            image = _jpeg(rng, r, frame.image)
            split = split_of(i, vf)
            stem = f"{i:06d}"
            lines: list[str] = []
            mask = np.zeros((h, w), dtype=np.uint16) if config.masks else None
            for lab in frame.labels:
                cid = class_id.get(lab.class_name)
                if cid is None or lab.visible_pixels < config.min_visible_px:
                    continue
                if lab.visible_fraction < config.min_visible_fraction:
                    continue
                x0, y0, x1, y1 = lab.bbox_xyxy
                lines.append(
                    f"{cid} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
                    f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
                )
                counts[lab.class_name] += 1
                if mask is not None:
                    mask[frame.instance_ids == lab.object_id] = len(lines)
            ok = cv2.imwrite(
                str(out_dir / "images" / split / f"{stem}.jpg"), image[..., ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, config.write_quality],
            )
            if not ok:
                raise ConfigError(f"{out_dir}: cannot write image {stem}.jpg")
            (out_dir / "labels" / split / f"{stem}.txt").write_text(
                "".join(line + "\n" for line in lines)
            )
            if mask is not None:
                cv2.imwrite(str(out_dir / "masks" / split / f"{stem}.png"), mask)
            per_split[split] += 1
            if progress is not None:
                progress(1)
    return counts, per_split


def _render_worker(
    out_dir: Path, config: SynthConfig, cat: Catalog, groups: range
) -> tuple[dict[str, int], dict[str, int]]:
    # one OpenCV thread per worker, so that N workers do not start N thread pools over the
    # same cores (16 workers on 16 cores rendered ~3 images/s each, a third of one process's
    # rate; whether OpenCV's pools were the cause was not isolated)
    cv2.setNumThreads(1)
    return _render_groups(out_dir, config, cat, groups)


def synthesize(
    out_dir: Path,
    config: SynthConfig,
    catalog: Catalog | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
) -> SynthSummary:
    """Render ``config.n_images`` labelled frames into ``out_dir`` (see the module docstring).

    ``jobs`` > 1 renders scene groups in that many worker processes; the files are the same
    as with one (each group draws from its own seed). ``progress(done, total)`` is called
    after each image (with ``jobs`` > 1: after each finished chunk of groups). Raises
    :class:`ConfigError` if ``out_dir`` exists and is not empty (a dataset is never mixed
    with an older one) or ``jobs`` < 1.
    """
    if jobs < 1:
        raise ConfigError(f"jobs: must be >= 1, got {jobs}")
    cat = catalog or load_catalog()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir}: output folder exists and is not empty")
    for split in SPLITS:
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        if config.masks:
            (out_dir / "masks" / split).mkdir(parents=True, exist_ok=True)
    names = list(cat.class_names)
    counts = {n: 0 for n in names}
    per_split = {s: 0 for s in SPLITS}
    n_groups = math.ceil(config.n_images / config.images_per_scene)
    done = 0

    def add(result: tuple[dict[str, int], dict[str, int]]) -> None:
        for k, v in result[0].items():
            counts[k] += v
        for k, v in result[1].items():
            per_split[k] += v

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, config.n_images)

    if jobs == 1 or n_groups == 1:
        add(_render_groups(out_dir, config, cat, range(n_groups), tick))
    else:
        # chunks of a few groups each, so progress moves and the workers stay balanced
        chunk = max(1, min(8, n_groups // (jobs * 4)))
        chunks = [range(a, min(a + chunk, n_groups)) for a in range(0, n_groups, chunk)]
        # spawn, not fork: forking a process whose libraries already run thread pools
        # (ONNX Runtime, torch) can deadlock the children
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_render_worker, out_dir, config, cat, c) for c in chunks]
            for fut in as_completed(futures):
                result = fut.result()
                add(result)
                tick(sum(result[1].values()))
    write_data_yaml(out_dir, names)
    summary = {
        "seed": config.seed,
        "shifted": config.shifted,
        "config": {k: v for k, v in asdict(config).items()},
        "ranges": asdict(config.ranges),
        "images": per_split,
        "boxes_per_class": counts,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return SynthSummary(out_dir=out_dir, images=per_split, boxes_per_class=counts)
