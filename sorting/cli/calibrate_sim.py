"""Calibration scenes on the simulated line, with the truth the procedures must recover.

Used by ``crmsort calibrate <what> --sim``: targets are rendered into the sim
line's camera (``perception.sensors.camera.targets_sim``), the depth sensor sees
a box through its own simulator, the arm's touches carry 0.5 mm noise. The
procedure under test only sees images, encoder counts, stamps and touched
points; the truth is returned separately for the comparison the CLI prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.targets import CharucoTarget, MarkerTarget
from calibration.time_offset import Track
from calibration.transforms import RigidTransform
from perception.sensors.camera.targets_sim import (
    PlacedTarget,
    TargetRenderer,
    held_poses,
    on_belt_pose,
    touch_points,
)
from perception.sensors.depth.sim import DepthSensorSim
from perception.sensors.hsi.sim import HsiLineSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.spectrum import Spectrum
from sorting.config.cameras import depth_camera, rgb_camera
from sorting.config.line import LineConfig
from sorting.sim.hsi_sensor import HsiSensorSim
from sorting.sim.xrf_sensor import TRUE_GAIN_FACTOR, TRUE_OFFSET_KEV

U8 = NDArray[np.uint8]
FloatArray = NDArray[np.float64]

INTRINSICS_BOARD = CharucoTarget(9, 6, 0.04, 0.03, "DICT_4X4_100")
BELT_BOARD = CharucoTarget(9, 6, 0.06, 0.045, "DICT_4X4_100", thickness_m=0.003)
BELT_MARKER = MarkerTarget(marker_id=7, size_m=0.08, margin_m=0.01, thickness_m=0.002)
# where the simulated arm's base stands (belt frame): beside the belt, turned to face it
TRUE_T_BELT_ARM = RigidTransform.from_rpy(0.0, 0.0, math.pi / 2, (3.0, -0.65, 0.05))
# the depth sensor's clock runs this far behind the camera's: t_camera = t_depth + offset
TRUE_DEPTH_OFFSET_S = 0.0075


def intrinsic_views(
    line: LineConfig, n_views: int, rng: np.random.Generator, bad_views: int = 0
) -> list[tuple[str, U8]]:
    """``n_views`` images of a hand-held board; ``bad_views`` of them torn (a wavy
    rolling-shutter wobble of ±2.5 px while the board shook), which the view
    rejection must catch."""
    cam = rgb_camera(line)
    renderer = TargetRenderer(cam, rng)
    poses = held_poses(cam, INTRINSICS_BOARD, n_views, rng, distance_m=(0.45, 0.8))
    out = []
    for i, pose in enumerate(poses):
        img = renderer.render([PlacedTarget(INTRINSICS_BOARD, pose)])
        out.append((f"view{i:02d}", img))
    for i in range(min(bad_views, n_views)):
        name, img = out[i]
        vv, uu = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
        map_y = vv + np.float32(2.5) * np.sin(uu * np.float32(2 * np.pi / 180.0))
        torn = cv2.remap(img, uu, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = (name, np.asarray(torn, dtype=np.uint8))
    return out


def extrinsic_views(
    line: LineConfig, rng: np.random.Generator
) -> list[tuple[str, U8, RigidTransform]]:
    """Three images of a board lying on the belt as it carries it under the camera, each
    with the board's belt pose (first placement + encoder travel)."""
    cam = rgb_camera(line)
    renderer = TargetRenderer(cam, rng)
    x0 = line.sensors.camera.x_m
    out = []
    for i, dx in enumerate((-0.12, 0.0, 0.12)):
        pose = on_belt_pose(BELT_BOARD, x0 + dx, 0.03, 0.02)
        out.append((f"board{i}", renderer.render([PlacedTarget(BELT_BOARD, pose)]), pose))
    return out


def encoder_views(
    line: LineConfig, rng: np.random.Generator, n: int = 7
) -> list[tuple[str, U8, int]]:
    """A marker riding the belt through the camera view: images with encoder counts."""
    cam = rgb_camera(line)
    renderer = TargetRenderer(cam, rng)
    x0 = line.sensors.camera.x_m - 0.3
    ticks_per_m = line.belt.encoder_ticks_per_m
    belt0 = 12.3456  # belt position (m) at the first capture
    out = []
    for i, travel in enumerate(np.linspace(0.0, 0.6, n)):
        pose = on_belt_pose(BELT_MARKER, x0 + travel, -0.1, 0.0)
        ticks = math.floor((belt0 + travel) * ticks_per_m)
        out.append((f"enc{i}", renderer.render([PlacedTarget(BELT_MARKER, pose)]), ticks))
    return out


def arm_touches(
    rng: np.random.Generator, n: int = 12, outliers: int = 1
) -> tuple[FloatArray, FloatArray]:
    """Belt points (N x 3) spread over the arm's reach and the arm's touched positions
    (N x 3, arm base frame) with 0.5 mm noise and ``outliers`` slipped touches."""
    belt = np.column_stack(
        [rng.uniform(2.7, 3.3, n), rng.uniform(-0.35, 0.35, n), rng.uniform(0.0, 0.04, n)]
    )
    arm = touch_points(TRUE_T_BELT_ARM.inverse(), belt, rng, noise_m=0.5e-3, outliers=outliers)
    return belt, arm


@dataclass(frozen=True)
class TimeOffsetScene:
    camera_images: list[tuple[float, U8]]
    depth_points: list[tuple[float, FloatArray]]
    box_height_m: float
    encoder: Track


def time_offset_scene(
    line: LineConfig, rng: np.random.Generator, rate_hz: float = 20.0
) -> TimeOffsetScene:
    """A box with a marker on top rides the belt under the camera and then the depth
    sensor, both capturing at ``rate_hz``; the depth stamps lag by ``TRUE_DEPTH_OFFSET_S``.

    Returns camera images with their stamps and belt-frame depth points with
    the depth sensor's (offset) stamps.
    """
    v = line.belt.speed_mps
    h = 0.02
    side = BELT_MARKER.extent_m[0]
    cam = rgb_camera(line)
    depth_cam = depth_camera(line)
    renderer = TargetRenderer(cam, rng)
    depth = DepthSensorSim(depth_cam, rng)
    y = 0.05
    start_x = line.sensors.camera.x_m - 0.3

    def x_at(t: float) -> float:  # slight drive wobble
        return start_x + v * t + 0.002 * math.sin(2 * math.pi * 0.3 * t)

    marker = MarkerTarget(BELT_MARKER.marker_id, BELT_MARKER.size_m, BELT_MARKER.margin_m,
                          BELT_MARKER.dictionary, thickness_m=h)
    images: list[tuple[float, U8]] = []
    clouds: list[tuple[float, FloatArray]] = []
    t_end = (line.sensors.depth.x_m + 0.25 - start_x) / v
    phase = float(rng.uniform(0, 1 / rate_hz))
    for k in range(int(t_end * rate_hz) + 1):
        t = k / rate_hz + phase
        x = x_at(t)
        if abs(x - line.sensors.camera.x_m) < 0.3:
            img = renderer.render([PlacedTarget(marker, on_belt_pose(marker, x, y, 0.0))])
            images.append((t, img))
        if abs(x - line.sensors.depth.x_m) < 0.25:
            box = SceneObject(
                object_id=1, class_name="calibration_box", stream="calibration",
                shape=ShapeKind.BOX, size_m=(side, side, h), x_m=x, y_m=y, yaw_rad=0.0,
                material="wood", density_kg_m3=600.0, composition={},
                appearance=Appearance(base_rgb=(0.8, 0.8, 0.8)),
            )
            pts = depth.render([box], belt_position_m=0.0, frame="belt").astype(np.float64)
            clouds.append((t - TRUE_DEPTH_OFFSET_S, pts))
    # the belt encoder on the camera's clock, 100 Hz, whole ticks
    t_enc = np.arange(0.0, t_end + 0.2, 0.01)
    ticks = np.floor(
        (np.array([x_at(t) for t in t_enc]) - start_x) * line.belt.encoder_ticks_per_m
    )
    enc = Track(t_enc, ticks / line.belt.encoder_ticks_per_m)
    return TimeOffsetScene(images, clouds, h, enc)


def depth_track(clouds: list[tuple[float, FloatArray]], min_height_m: float) -> Track:
    """The box's track in the depth sensor: centroid x of the points above ``min_height_m``."""
    ts, xs = [], []
    for t, pts in clouds:
        top = pts[pts[:, 2] > min_height_m]
        if len(top) >= 6:
            ts.append(t)
            xs.append(float(top[:, 0].mean()))
    return Track(np.array(ts), np.array(xs))


# -- spectral references ----------------------------------------------------------------------
# planted faults of the simulated hyperspectral camera (columns of the line)
HSI_DEAD_PIXELS = (5, 31)
HSI_SATURATED_PIXELS = (17,)
# the XRF reference: a multi-element disc (mass fractions) and the true energy scale of the
# simulated MCA, deliberately off its nominal set-up (+0.7 % gain, +15 eV offset)
XRF_REFERENCE = {"Ti": 0.15, "Fe": 0.25, "Cu": 0.25, "Zr": 0.15, "Ag": 0.20}
XRF_TRUE_GAIN_FACTOR = TRUE_GAIN_FACTOR  # the simulated line's XRF detector
XRF_TRUE_OFFSET_KEV = TRUE_OFFSET_KEV


@dataclass(frozen=True)
class HsiReferenceScene:
    """Dark and white takes (N x W x B counts), the camera that made them (to render test
    lines) and the planted faults."""

    dark: FloatArray
    white: FloatArray
    camera: HsiLineSim
    panel: FloatArray
    dead: tuple[int, ...]
    saturated: tuple[int, ...]


def hsi_reference_scene(
    line: LineConfig, rng: np.random.Generator, n_lines: int = 16,
    dead: tuple[int, ...] = HSI_DEAD_PIXELS, saturated: tuple[int, ...] = HSI_SATURATED_PIXELS,
) -> HsiReferenceScene:
    """The sim line's hyperspectral camera with ``dead`` pixels, its dark and white takes, and
    a glint off the panel driving the ``saturated`` columns to full scale."""
    h = line.sensors.hsi
    sensor = HsiSensorSim(x_m=h.x_m, width_m=line.belt.width_m, width_px=h.width_px,
                          seed=int(rng.integers(1 << 31)))
    cam = replace(sensor.sim, dead_pixels=tuple(dead), rng=rng)
    dark = cam.dark_reference(n_lines)
    white = cam.white_reference(n_lines)
    fs = cam.ref_conditions.full_scale
    for c in saturated:
        white[:, c, :] = np.minimum(white[:, c, :] * 2.0, fs)
        white[:, c, white.shape[2] // 2] = fs
    return HsiReferenceScene(dark, white, cam, sensor.panel, tuple(dead), tuple(saturated))


def xrf_reference_spectrum(
    rng: np.random.Generator, setup: XrfSetup | None = None, live_time_s: float = 30.0,
    gain_factor: float = XRF_TRUE_GAIN_FACTOR, offset_kev: float = XRF_TRUE_OFFSET_KEV,
    composition: dict[str, float] | None = None,
) -> tuple[Spectrum, float, float]:
    """A spectrum of the reference disc measured with the true scale (nominal gain x
    ``gain_factor``, ``offset_kev``) but labelled with the set-up's nominal calibration, as
    the MCA reports it; returns (spectrum, true gain keV/ch, true offset keV)."""
    s = setup or load_setup()
    gain = s.mca.gain_kev_per_channel() * gain_factor
    meas = SpectrumSimulator(s).sample(composition or XRF_REFERENCE, live_time_s, rng,
                                       gain_kev_per_channel=gain, offset_kev=offset_kev)
    spec = Spectrum(meas.counts, s.mca.gain_kev_per_channel(), s.mca.offset_kev,
                    meas.live_time_s, meas.real_time_s, source="sim:reference-disc")
    return spec, gain, offset_kev


@dataclass(frozen=True)
class XrfTypeReference:
    """A reference object of a class measured by the simulated XRF head: its spectrum (with
    the MCA's nominal energy labels, as the head reports them) and its certified composition
    (the elements the catalog lists)."""

    class_name: str
    spectrum: Spectrum
    certified: dict[str, float]


def _alone(obj: SceneObject) -> Callable[[], list[SceneObject]]:
    return lambda: [obj]


#: mixed into the seed of the reference objects, so that no demo run (seeded with the same
#: number) draws them
XRF_TYPES_SEED_TAG = 0x7E57


def xrf_type_references(
    seed: int, line: LineConfig, per_class: int = 24,
    classes: list[str] | None = None, setup: XrfSetup | None = None,
    min_coverage: float = 0.2,
) -> list[XrfTypeReference]:
    """``per_class`` reference objects of each class (the catalog's, or ``classes``), each
    alone on the belt under the line's XRF head with the spot on its centre, measured for the
    line's live time. Part of the spot may lie beside the object (one narrower than the spot)
    or over a lump's hollow, as on the line; objects under less than ``min_coverage`` of it
    are skipped."""
    from perception.catalog import load_catalog
    from sorting.sim.spawner import ObjectSpawner
    from sorting.sim.xrf_sensor import XrfSpotSim

    cfg = line.sensors.xrf
    s = setup or load_setup()
    catalog = load_catalog()
    rng = np.random.default_rng([XRF_TYPES_SEED_TAG, seed])
    spawner = ObjectSpawner(catalog, rng)
    names = classes or [c.name for c in catalog.classes]
    gain = s.mca.gain_kev_per_channel(cfg.channels)
    out: list[XrfTypeReference] = []
    oid = 1
    for name in names:
        for _ in range(per_class):
            obj = spawner.spawn(oid, cfg.x_m, 0.0, class_name=name)
            oid += 1
            head = XrfSpotSim(cfg.x_m, cfg.spot_radius_m, _alone(obj), s, rng)
            if head.coverage().get(obj.object_id, 0.0) < min_coverage:
                continue
            counts = head(cfg.live_time_s, cfg.channels).astype(np.float64)
            spec = Spectrum(counts, gain, s.mca.offset_kev, cfg.live_time_s, cfg.live_time_s,
                            source=f"sim:reference {name} #{oid - 1}")
            out.append(XrfTypeReference(name, spec, dict(obj.composition)))
    return out
