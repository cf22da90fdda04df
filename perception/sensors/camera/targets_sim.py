"""Simulation hooks for calibration: calibration targets in the simulated camera, touch points.

:class:`TargetRenderer` renders ChArUco boards and ArUco markers (flat, printed
targets from :mod:`calibration.targets`) lying on the belt or held at any pose,
as the simulated camera would see them: every pixel's ray (``pixel_rays`` of the
true camera model, lens distortion included, supersampled ``s`` x ``s`` per pixel)
is intersected with each target's plane (``ray_plane_z`` in the target frame)
and with the belt plane; albedo comes from the board image that ``cv2.aruco``
generates; shading is ambient + Lambert from a :class:`Lighting`; then optical
blur (Gaussian, ``blur_px``), area down-sampling, vignetting (cos^4), shot and
read noise and 8-bit sRGB encoding.

:func:`touch_points` simulates an arm touching known belt points with its tool
(isotropic Gaussian noise, optional gross outliers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.camera import PinholeCamera, Rays, ray_plane_z
from calibration.targets import Target, target_extent_m
from calibration.transforms import RigidTransform
from perception.errors import SensorError
from perception.sensors.camera.lighting import Lighting

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

_TEXEL_M = 2.5e-4


@dataclass(frozen=True)
class PlacedTarget:
    """A target and its pose ``T_belt_target`` (target frame → belt frame)."""

    target: Target
    T_belt_target: RigidTransform


@dataclass(frozen=True)
class TargetSimConfig:
    """Rendering settings of :class:`TargetRenderer`.

    ``supersample``: rays per pixel side; ``blur_px``: optical blur sigma (px);
    ``full_well_e`` / ``read_noise_e``: sensor noise (``None`` turns noise off);
    albedos of the print (white/black) and the belt; ``belt_texture``: relative
    amplitude of the belt's mottling. Raises :class:`SensorError` for bad values.
    """

    supersample: int = 2
    blur_px: float = 0.7
    full_well_e: float | None = 10000.0
    read_noise_e: float = 6.0
    vignetting: float = 1.0
    white_albedo: float = 0.85
    black_albedo: float = 0.05
    belt_albedo: float = 0.18
    belt_texture: float = 0.08
    exposure_gain: float = 1.0
    lighting: Lighting = field(default_factory=Lighting)

    def __post_init__(self) -> None:
        if not 1 <= self.supersample <= 4:
            raise SensorError(f"TargetSimConfig.supersample: 1-4, got {self.supersample}")
        if self.blur_px < 0 or self.exposure_gain <= 0:
            raise SensorError("TargetSimConfig: blur_px must be >= 0 and exposure_gain > 0")
        if self.full_well_e is not None and self.full_well_e <= 0:
            raise SensorError(f"TargetSimConfig.full_well_e: must be > 0, got {self.full_well_e}")


def _srgb_encode(linear: F32) -> U8:
    x = np.clip(linear, 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.asarray(np.clip(np.round(s * 255.0), 0, 255), dtype=np.uint8)


class TargetRenderer:
    """Renders calibration targets into the image of ``camera`` (true model, with its pose).

    The supersampled pixel rays are computed once here. ``rng`` drives the belt
    mottling (drawn once) and the per-image noise: same seed, same images.
    """

    def __init__(
        self,
        camera: PinholeCamera,
        rng: np.random.Generator,
        config: TargetSimConfig | None = None,
    ) -> None:
        self.camera = camera
        self.rng = rng
        self.config = config or TargetSimConfig()
        s = self.config.supersample
        h, w = camera.height, camera.width
        off = (np.arange(s) + 0.5) / s - 0.5
        vv, uu = np.mgrid[0 : h * s, 0 : w * s]
        u = (uu // s) + off[uu % s]
        v = (vv // s) + off[vv % s]
        uv = np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)
        self._rays_belt = camera.pixel_rays(uv)
        self._shape = (h * s, w * s)
        # 3 x N copy: rotating all rays is then one BLAS product
        self._dirs_t: FloatArray = np.ascontiguousarray(self._rays_belt.directions.T)
        axis = camera.T_belt_camera.rotation[:, 2]
        cos_t = np.clip(self._rays_belt.directions @ axis, 0.0, 1.0)
        vig = 1.0 - self.config.vignetting * (1.0 - cos_t**4)
        self._vignette: F32 = np.clip(vig, 0, 1).reshape(self._shape).astype(np.float32)
        # the belt surface: static mottled albedo (smooth random texture, 5 mm cells, tiled)
        bh = ray_plane_z(self._rays_belt, 0.0)
        on_belt = np.isfinite(bh[:, 0])
        freq = np.fft.fftfreq(128)
        gauss = np.exp(-0.5 * (freq[:, None] ** 2 + freq[None, :] ** 2) * (2 * np.pi * 1.5) ** 2)
        cells = np.fft.ifft2(np.fft.fft2(rng.standard_normal((128, 128))) * gauss).real
        tex = (cells / max(float(cells.std()), 1e-9)).astype(np.float32)  # periodic, unit std
        col = np.where(on_belt, np.mod(bh[:, 0] / 5e-3, 128.0), 0.0)
        row = np.where(on_belt, np.mod(bh[:, 1] / 5e-3, 128.0), 0.0)
        mott = cv2.remap(
            tex,
            col.reshape(self._shape).astype(np.float32),
            row.reshape(self._shape).astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        ).ravel()
        self._belt_albedo: F32 = np.where(
            on_belt, self.config.belt_albedo * (1.0 + self.config.belt_texture * mott), 0.0
        ).astype(np.float32)
        self._belt_dist: FloatArray = np.where(
            on_belt, np.linalg.norm(bh - self._rays_belt.origins, axis=1), np.inf
        )
        self._on_belt = on_belt
        self._textures: dict[tuple[Target, float], F32] = {}

    # ------------------------------------------------------------------------------------
    def _texture(self, target: Target) -> F32:
        key = (target, _TEXEL_M)
        tex = self._textures.get(key)
        if tex is None:
            img = target.image(1.0 / _TEXEL_M).astype(np.float32) / 255.0
            cfg = self.config
            tex = (cfg.black_albedo + (cfg.white_albedo - cfg.black_albedo) * img).astype(
                np.float32
            )
            self._textures[key] = tex
        return tex

    def _shade(self, normal_belt: FloatArray, light: Lighting) -> float:
        cos_i = max(0.0, float(normal_belt @ light.unit_direction))
        return light.ambient + light.intensity * cos_i

    def render(self, targets: Sequence[PlacedTarget], lighting: Lighting | None = None) -> U8:
        """The camera image (H x W x 3 uint8 sRGB, RGB order) of ``targets`` over the belt.

        Targets are seen only from their printed side; the nearest surface along
        each ray wins. Raises :class:`SensorError` for a target behind the camera.
        """
        cfg = self.config
        light = lighting or cfg.lighting
        rays = self._rays_belt
        n = rays.directions.shape[0]
        dist = self._belt_dist.copy()
        albedo = self._belt_albedo.copy()
        shade = np.where(
            self._on_belt, self._shade(np.array([0.0, 0.0, 1.0]), light), 0.0
        ).astype(np.float32)

        for placed in targets:
            t_tb = placed.T_belt_target.inverse()
            o_t = t_tb.apply(rays.origins[:1])
            d_t = (t_tb.rotation @ self._dirs_t).T
            if float(o_t[0, 2]) >= 0.0:
                continue  # camera behind the printed face: the target shows its back
            hit = ray_plane_z(Rays(np.broadcast_to(o_t, d_t.shape), d_t), 0.0)
            wx, wy = target_extent_m(placed.target)
            inside = (
                np.isfinite(hit[:, 0])
                & (hit[:, 0] >= 0) & (hit[:, 0] < wx) & (hit[:, 1] >= 0) & (hit[:, 1] < wy)
            )
            dt = np.full(n, np.inf)
            dt[inside] = -float(o_t[0, 2]) / d_t[inside, 2]  # unit directions: t is distance
            win = dt <= dist + 1e-9  # a target lying on the belt covers it
            if not win.any():
                continue
            dist[win] = dt[win]
            ttex = self._texture(placed.target)
            c = np.where(win, hit[:, 0] / _TEXEL_M - 0.5, 0.0).reshape(self._shape)
            r = np.where(win, hit[:, 1] / _TEXEL_M - 0.5, 0.0).reshape(self._shape)
            sampled = cv2.remap(
                ttex, c.astype(np.float32), r.astype(np.float32), cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            ).ravel()
            albedo[win] = sampled[win]
            normal = -placed.T_belt_target.rotation[:, 2]
            shade[win] = self._shade(normal, light)

        radiance = (albedo * shade).reshape(self._shape) * np.float32(cfg.exposure_gain)
        radiance *= self._vignette
        s = cfg.supersample
        if cfg.blur_px > 0:
            radiance = np.asarray(
                cv2.GaussianBlur(radiance, (0, 0), cfg.blur_px * s), dtype=np.float32
            )
        h, w = self.camera.height, self.camera.width
        signal = radiance.reshape(h, s, w, s).mean(axis=(1, 3)).astype(np.float32)
        if cfg.full_well_e is not None:
            var = np.maximum(signal, 0) / np.float32(cfg.full_well_e) + np.float32(
                (cfg.read_noise_e / cfg.full_well_e) ** 2
            )
            noise = self.rng.standard_normal(signal.shape, dtype=np.float32)
            signal = signal + np.sqrt(var) * noise
        grey = _srgb_encode(signal)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


# ---------------------------------------------------------------------------------------
def on_belt_pose(
    target: Target, x_m: float, y_m: float, yaw_rad: float = 0.0
) -> RigidTransform:
    """``T_belt_target`` of a target lying face up on the belt, its centre at ``(x_m, y_m)``.

    With ``yaw_rad = 0`` the target's x runs along belt +x and its y along belt -y
    (the print reads upright in a camera looking down with yaw 0); the printed
    face is ``thickness_m`` above the belt.
    """
    wx, wy = target_extent_m(target)
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    rot = np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])
    centre_t = np.array([wx / 2, wy / 2, 0.0])
    t = np.array([x_m, y_m, target.thickness_m]) - rot @ centre_t
    return RigidTransform(rot, t)


def held_poses(
    camera: PinholeCamera,
    target: Target,
    n: int,
    rng: np.random.Generator,
    distance_m: tuple[float, float] = (0.5, 0.9),
    tilt_deg: tuple[float, float] = (15.0, 40.0),
    margin_px: float = 8.0,
    fronto_parallel: bool = False,
) -> list[RigidTransform]:
    """Poses ``T_belt_target`` of a board held in front of ``camera``, as an operator would.

    Each view: a distance in ``distance_m`` along a ray through a random image
    point, a tilt drawn from ``tilt_deg`` about a random axis in the image
    plane, a random in-plane turn of up to ±30°; redrawn until the whole board
    projects inside the image by ``margin_px``. ``fronto_parallel`` gives views
    all facing the camera squarely (a degenerate set, for tests). Raises
    :class:`SensorError` when no pose fits after many tries (board too big).
    """
    wx, wy = target_extent_m(target)
    corners_t = np.array([[0, 0, 0], [wx, 0, 0], [wx, wy, 0], [0, wy, 0], [wx / 2, wy / 2, 0]])
    out: list[RigidTransform] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n:
            raise SensorError(
                f"held_poses: a {wx:.2f} x {wy:.2f} m board does not fit the image at "
                f"{distance_m} m; use a smaller board or a larger distance"
            )
        d = float(rng.uniform(*distance_m))
        u = float(rng.uniform(0.12, 0.88)) * camera.width
        v = float(rng.uniform(0.12, 0.88)) * camera.height
        ray = camera.with_pose(RigidTransform.identity()).pixel_rays(np.array([[u, v]]))
        centre_c = ray.directions[0] * d / ray.directions[0, 2]
        spin = float(rng.uniform(-math.pi / 6, math.pi / 6))
        if fronto_parallel:
            r = RigidTransform.from_rpy(0.0, 0.0, 0.0).rotation
        else:
            ax = float(rng.uniform(0, 2 * math.pi))
            tilt = math.radians(float(rng.uniform(*tilt_deg)))
            k = np.array([math.cos(ax), math.sin(ax), 0.0])
            kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
            r = np.eye(3) + math.sin(tilt) * kx + (1 - math.cos(tilt)) * kx @ kx
        r = r @ RigidTransform.from_rpy(0.0, 0.0, spin).rotation
        t = centre_c - r @ np.array([wx / 2, wy / 2, 0.0])
        t_ct = RigidTransform(r, t)
        pts_c = t_ct.apply(corners_t)
        uv, depth = camera.project_camera_frame(pts_c)
        ok = (
            np.all(depth > 0.05)
            and np.all(np.isfinite(uv))
            and np.all(uv[:, 0] >= margin_px) and np.all(uv[:, 0] <= camera.width - 1 - margin_px)
            and np.all(uv[:, 1] >= margin_px) and np.all(uv[:, 1] <= camera.height - 1 - margin_px)
        )
        if ok:
            out.append(camera.T_belt_camera @ t_ct)
    return out


def touch_points(
    T_arm_belt: RigidTransform,  # noqa: N803 - frame subscripts
    points_belt: ArrayLike,
    rng: np.random.Generator,
    noise_m: float = 0.5e-3,
    outliers: int = 0,
    outlier_m: float = 0.02,
) -> FloatArray:
    """Arm-frame tool-tip positions (N x 3, m) when touching ``points_belt`` (N x 3, m).

    Each touch is off by isotropic Gaussian noise of ``noise_m`` (1 sigma per
    axis); ``outliers`` randomly chosen touches are off by ``outlier_m`` in a
    random direction instead (a slipped tool, a wrong point). Raises
    :class:`SensorError` for a bad shape or more outliers than points.
    """
    p = np.asarray(points_belt, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise SensorError(f"points_belt: expected N x 3, got shape {p.shape}")
    if not 0 <= outliers <= len(p):
        raise SensorError(f"outliers: must be in [0, {len(p)}], got {outliers}")
    q = T_arm_belt.apply(p) + rng.normal(0.0, noise_m, size=p.shape)
    if outliers:
        idx = rng.choice(len(p), size=outliers, replace=False)
        dirs = rng.standard_normal((outliers, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        q[idx] = T_arm_belt.apply(p[idx]) + outlier_m * dirs
    return q
