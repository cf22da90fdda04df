"""The volume path: organized point cloud -> belt plane -> height map -> objects -> geometry.

Example::

    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 240, hfov_deg=52.0)
    est = VolumeEstimator(cam)
    result = est.process_frame(points_optical)   # H x W x 3 float32, NaN = no return
    for o in result.objects:
        print(o.shape.name, o.volume_m3 * 1e6, "cm^3 +-", o.volume_u_m3 * 1e6)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from perception.volume.cloud import (
    check_organized,
    grazing_mask_planar,
    planar,
    repair_depth_edges_planar,
)
from perception.volume.errors import BadCloudError, PlaneNotFoundError
from perception.volume.heightmap import HeightMap, HeightMapConfig, build_heightmap_columns
from perception.volume.measure import MeasureConfig, ObjectVolumeEstimate, measure_objects
from perception.volume.plane import (
    Plane,
    PlaneFitConfig,
    fit_plane,
    plane_frame,
    refine_plane,
)
from perception.volume.segment import SegmentConfig, segment_heightmap

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int32]

_PLANE_POINTS = 10000
"""About this many points (an even subsample) go into the belt-plane fit."""

FLAG_LOW_VALID = "LOW_VALID_FRACTION"
FLAG_PLANE_MOVED = "PLANE_OFF_CALIBRATION"
FLAG_PRIOR_FALLBACK = "PLANE_FROM_CALIBRATION"


@dataclass(frozen=True)
class VolumeConfig:
    """Settings of :class:`VolumeEstimator`.

    ``plane_mode``: ``"fit"`` (refine the calibrated belt plane z = 0 and keep it if it
    holds, else MSAC on the frame) or ``"prior"`` (refine the calibrated plane only);
    ``max_incidence_deg``: grazing filter (0 disables it); ``max_slope_deg``: points on
    steeper surfaces (walls) are dropped too (90 keeps them); ``edge_tol_m``: flying-pixel
    repair tolerance, see :func:`~perception.volume.cloud.repair_depth_edges` (0 disables
    it; None: 4 mm when a pixel covers at most ``REPAIR_MAX_GSD_M`` of belt, else off: on
    coarser sensors objects are too few pixels across for the neighbour vote, and it costs
    accuracy); ``min_valid_fraction``: below this share of finite points the frame is
    flagged; ``max_plane_shift_m``/``max_plane_tilt_deg``: how far the fitted plane may lie
    from the calibrated one before the frame is flagged; ``seed``: the MSAC sampler's seed
    (same seed, same planes); ``cell_m``: height-map pitch, overriding ``heightmap.cell_m``
    (None: :func:`auto_cell_m` of the camera).
    """

    plane_mode: Literal["fit", "prior"] = "fit"
    plane: PlaneFitConfig = field(default_factory=PlaneFitConfig)
    heightmap: HeightMapConfig = field(default_factory=HeightMapConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    max_incidence_deg: float = 80.0
    max_slope_deg: float = 70.0
    edge_tol_m: float | None = None
    min_valid_fraction: float = 0.2
    max_plane_shift_m: float = 0.01
    max_plane_tilt_deg: float = 2.0
    seed: int = 0
    cell_m: float | None = None


REPAIR_MAX_GSD_M = 0.004
"""Coarsest ground sample distance (m per pixel) at which flying pixels are repaired."""


def ground_sample_m(camera: PinholeCamera) -> float:
    """Belt length one pixel covers under the sensor (m)."""
    return float(camera.T_belt_camera.translation[2]) / min(camera.fx, camera.fy)


def auto_cell_m(camera: PinholeCamera) -> float:
    """Height-map pitch for ``camera``: its footprint on the belt under the sensor (m), +10 %,
    rounded up to 0.5 mm, so that almost every cell receives a point."""
    gsd = ground_sample_m(camera)
    return math.ceil(gsd * 1.1 / 0.0005) * 0.0005


@dataclass
class VolumeFrame:
    """Everything one frame produced: ``objects``; the ``plane`` (belt frame); the
    ``heightmap`` and its ``labels``; ``timings_s`` per stage; ``flags`` (see FLAG_*)."""

    objects: list[ObjectVolumeEstimate]
    plane: Plane
    heightmap: HeightMap
    labels: IntArray
    timings_s: dict[str, float]
    flags: tuple[str, ...]
    valid_fraction: float


class VolumeEstimator:
    """Per-frame object volumes from a downward-looking 3D sensor.

    ``camera`` gives the image size and the calibrated pose ``T_belt_camera``
    (points arrive in its optical frame). :meth:`process_frame` raises
    :class:`BadCloudError` for a cloud of the wrong shape or without finite
    points and :class:`PlaneNotFoundError` when no belt plane can be found;
    frames it can process but distrusts carry ``flags``.
    """

    def __init__(self, camera: PinholeCamera, config: VolumeConfig | None = None) -> None:
        self.camera = camera
        self.config = config or VolumeConfig()
        self._rng = np.random.default_rng(self.config.seed)
        cell = self.config.cell_m if self.config.cell_m is not None else auto_cell_m(camera)
        self._hm_config = replace(self.config.heightmap, cell_m=cell)
        tol = self.config.edge_tol_m
        if tol is None:
            tol = 0.004 if ground_sample_m(camera) <= REPAIR_MAX_GSD_M else 0.0
        self.edge_tol_m = float(tol)
        # unit pixel rays in the optical frame, for rebuilding pixels at depth edges
        xy = camera.undistort_normalized(
            (camera.pixel_grid() - [camera.cx, camera.cy]) / [camera.fx, camera.fy])
        d = np.column_stack([xy, np.ones(len(xy))])
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        self._rays = planar(d.reshape(camera.height, camera.width, 3))  # 3 x H x W
        T = camera.T_belt_camera  # noqa: N806
        self._rot = np.asarray(T.rotation, dtype=np.float64)
        up = self._rot.T @ np.array([0.0, 0.0, 1.0])  # belt normal in the optical frame
        self._up_optical = (float(up[0]), float(up[1]), float(up[2]))
        self._trans = np.asarray(T.translation, dtype=np.float64)
        # the grid covers the sensor's view of the belt, fixed for every frame
        fp = camera.ground_footprint(0.0)
        self._bounds = (float(np.nanmin(fp[:, 0])), float(np.nanmax(fp[:, 0])),
                        float(np.nanmin(fp[:, 1])), float(np.nanmax(fp[:, 1])))

    def process(self, points_optical: NDArray[np.float32]) -> list[ObjectVolumeEstimate]:
        """The objects of one organized H x W x 3 cloud (see :meth:`process_frame`)."""
        return self.process_frame(points_optical).objects

    def process_frame(self, points_optical: NDArray[np.float32]) -> VolumeFrame:
        """Run the whole path on one organized cloud (m, optical frame, NaN = no return)."""
        cfg = self.config
        times: dict[str, float] = {}
        flags: list[str] = []
        t0 = time.perf_counter()
        pts = check_organized(points_optical, expected_shape=(self.camera.height,
                                                              self.camera.width))
        # one copy into x, y, z planes: every later pass runs on contiguous arrays and picks
        # points with 1-D gathers
        xyz = planar(pts)
        x, y, z = xyz[0], xyz[1], xyz[2]
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
        valid_fraction = float(finite.mean())
        if not finite.any():
            raise BadCloudError("cloud: no finite point (every return is NaN)")
        if valid_fraction < cfg.min_valid_fraction:
            flags.append(FLAG_LOW_VALID)
        if self.edge_tol_m > 0:
            # (moves flying pixels along their rays; the finite mask stays as it is)
            repair_depth_edges_planar(xyz, self._rays, self.edge_tol_m)
        keep = finite
        if cfg.max_incidence_deg > 0:
            keep = finite & ~grazing_mask_planar(xyz, cfg.max_incidence_deg,
                                                 up=self._up_optical,
                                                 max_slope_deg=cfg.max_slope_deg)
        idx = np.flatnonzero(keep)
        xs, ys, zs = x.ravel()[idx], y.ravel()[idx], z.ravel()[idx]
        # the plane fit needs only a subsample in the belt frame; all points then go to the
        # plane frame in one pass (optical -> belt -> plane composed)
        step = max(1, len(idx) // _PLANE_POINTS)
        p_belt = np.column_stack(_apply(self._rot, self._trans,
                                        (xs[::step], ys[::step], zs[::step])))
        times["cloud"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        plane = self._plane(p_belt, flags)
        rot, trans = plane_frame(plane)
        px, py, pz = _apply(rot @ self._rot, rot @ self._trans + trans, (xs, ys, zs))
        sensor = rot @ self._trans + trans
        times["plane"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        hm = build_heightmap_columns(px, py, pz, sensor_xyz=sensor, config=self._hm_config,
                                     bounds=self._bounds)
        times["heightmap"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        labels = segment_heightmap(hm.height, hm.cell_m, cfg.segment)
        times["segment"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        view = hm.count > 0
        view = _fill_view(view)
        objects = measure_objects(hm, labels, noise_m=max(plane.rms_m, 1e-4), valid=view,
                                  config=cfg.measure)
        objects = self._check_in_view(objects, rot, trans)
        times["measure"] = time.perf_counter() - t0
        times["total"] = sum(times.values())
        return VolumeFrame(objects, plane, hm, labels, times, tuple(flags), valid_fraction)

    def _check_in_view(
        self, objects: list[ObjectVolumeEstimate], rot: FloatArray, trans: FloatArray
    ) -> list[ObjectVolumeEstimate]:
        """Mark an object truncated if a corner of its box, at the belt or at its top,
        projects into the outer two pixels of the image (or outside it). All corners go
        through one projection."""
        todo = [k for k, o in enumerate(objects) if not o.truncated]
        if not todo:
            return objects
        corners = []
        for k in todo:
            o = objects[k]
            cx, cy, _ = o.box_center
            length, width, top = o.box_size
            ca, sa = math.cos(o.box_yaw_rad), math.sin(o.box_yaw_rad)
            for su, sv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                x = cx + su * length / 2 * ca - sv * width / 2 * sa
                y = cy + su * length / 2 * sa + sv * width / 2 * ca
                corners += [(x, y, 0.0), (x, y, top)]
        # plane coordinates -> belt frame (inverse of the plane alignment)
        pc = (np.asarray(corners) - trans) @ rot
        uv, depth = self.camera.project(pc)
        margin = 2.0
        inside = (
            (uv[:, 0] >= margin) & (uv[:, 0] <= self.camera.width - 1 - margin)
            & (uv[:, 1] >= margin) & (uv[:, 1] <= self.camera.height - 1 - margin)
            & (depth > 0)
        )
        all_in = np.all(inside.reshape(len(todo), 8), axis=1).tolist()
        out = list(objects)
        for k, ok in zip(todo, all_in, strict=True):
            if not ok:
                out[k] = replace(objects[k], truncated=True)
        return out

    def _refined_prior(self, p_belt: FloatArray, prior: Plane) -> Plane | None:
        """The calibrated plane refined, if it still holds: enough of the points near it
        (``min_inlier_fraction``) and the refined plane within ``max_plane_shift_m`` and
        ``max_plane_tilt_deg`` of it; else None (the caller runs the full MSAC fit)."""
        cfg = self.config
        try:
            plane = refine_plane(p_belt, prior, config=cfg.plane)
        except PlaneNotFoundError:
            return None
        under = np.array([[self._trans[0], self._trans[1], 0.0]])
        shift = abs(float(plane.signed_distance(under)[0]))
        if shift > cfg.max_plane_shift_m or plane.tilt_deg(prior.normal) > cfg.max_plane_tilt_deg:
            return None
        return plane

    def _plane(self, p_belt: FloatArray, flags: list[str]) -> Plane:
        cfg = self.config
        prior = Plane.horizontal(0.0)
        if len(p_belt) < 3:
            raise BadCloudError(f"cloud: only {len(p_belt)} usable points")
        if cfg.plane_mode == "prior":
            plane = refine_plane(p_belt, prior, config=cfg.plane)
        else:
            kept = self._refined_prior(p_belt, prior)
            if kept is not None:
                return kept
            try:
                plane = fit_plane(p_belt, rng=self._rng, config=cfg.plane)
            except PlaneNotFoundError:
                # too little belt for a free fit: fall back on the calibrated plane
                plane = refine_plane(p_belt, prior, config=cfg.plane)
                flags.append(FLAG_PRIOR_FALLBACK)
        # compare with calibration: the height of the fitted plane under the sensor
        under = np.array([self._trans[0], self._trans[1], 0.0])
        shift = abs(float(plane.signed_distance(under[None, :])[0]))
        if shift > cfg.max_plane_shift_m or plane.tilt_deg(prior.normal) > cfg.max_plane_tilt_deg:
            flags.append(FLAG_PLANE_MOVED)
        return plane


def _apply(
    rot: FloatArray, trans: FloatArray, cols: tuple[NDArray[np.floating], ...]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``p @ rot.T + trans`` for points given as x, y, z columns (N,), column by column
    (float64): a BLAS call on a 3-wide matrix is slow, and slower still when the cores are
    shared."""
    rot = np.asarray(rot, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    x, y, z = cols
    out = tuple(x * rot[k, 0] + y * rot[k, 1] + z * rot[k, 2] + trans[k] for k in range(3))
    return out[0], out[1], out[2]


def _fill_view(view: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Cells inside the sensor's view: those with points, with interior holes closed."""
    import cv2

    v = view.astype(np.uint8)
    closed = cv2.morphologyEx(v, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    return closed.astype(bool) | view
