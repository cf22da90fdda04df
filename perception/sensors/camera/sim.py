"""Simulated RGB camera looking down at the belt.

Rendering, per frame:

1. ray casting of every pixel against the objects (:mod:`.raycast`): tall
   objects shift with perspective, show their walls off-axis and hide what
   lies behind them;
2. albedo: the belt texture at the belt-surface coordinate ``x - belt_position``
   (so the texture travels with the belt), object textures in the object frame;
3. shading in linear RGB: ambient + Lambert direct light with cast shadows
   (each object's silhouette shifted away from the light by its height and
   softened), Blinn-Phong highlights scaled by ``Appearance.specular``
   (tinted by the base colour for metals);
4. exposure, motion blur along the image direction of travel over
   ``belt_speed * exposure`` (a line kernel), vignetting (cos^4 law), shot and
   read noise, sRGB encoding to 8 bit, optional JPEG artefacts.

Labels come from the un-blurred ray cast: per object its instance pixels, tight
box and visible fraction (pixels visible / pixels it would cover alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from calibration.camera import PinholeCamera
from perception.errors import SensorError
from perception.sensors.camera.lighting import Lighting, kelvin_to_rgb
from perception.sensors.camera.raycast import ObjectHits, RayCaster, SceneHits, surface_normals
from perception.sensors.camera.textures import Texture, TextureCache, belt_texture
from perception.sensors.scene import SceneObject

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
I32 = NDArray[np.int32]

_LUT_BITS = 4096
_METAL_SPECULAR = 0.5
_BELT_MARGIN_M = 0.1


@dataclass(frozen=True)
class CameraSimConfig:
    """Sensor and rendering settings of :class:`RgbCameraSim`.

    Radiometry: a pixel's linear signal is ``radiance * gain * exposure_s /
    reference_exposure_s`` with full scale 1. ``full_well_e`` (electrons at full
    scale) sets the shot noise and ``read_noise_e`` the read noise; ``None``
    turns all sensor noise off. ``vignetting`` scales the cos^4 fall-off (0: off).
    ``texel_m``: object texture resolution (default 0.6 x the belt pixel
    footprint). ``jpeg_quality``: 1-100 to add JPEG artefacts, ``None`` for none.
    """

    full_well_e: float | None = 10000.0
    read_noise_e: float = 6.0
    reference_exposure_s: float = 0.001
    gain: float = 1.0
    vignetting: float = 1.0
    white_balance_k: float = 5000.0
    jpeg_quality: int | None = None
    shadow_strength: float = 0.8
    shadow_softness_px: float = 1.5
    belt_specular: float = 0.05
    belt_period_m: float = 2.0
    texel_m: float | None = None
    lighting: Lighting = field(default_factory=Lighting)

    def __post_init__(self) -> None:
        if self.full_well_e is not None and self.full_well_e <= 0:
            raise SensorError(f"CameraSimConfig.full_well_e: must be > 0, got {self.full_well_e}")
        if self.reference_exposure_s <= 0 or self.gain <= 0:
            raise SensorError("CameraSimConfig: reference_exposure_s and gain must be > 0")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise SensorError(f"CameraSimConfig.jpeg_quality: 1-100, got {self.jpeg_quality}")
        if self.belt_period_m <= 0:
            raise SensorError(
                f"CameraSimConfig.belt_period_m: must be > 0, got {self.belt_period_m}"
            )


@dataclass(frozen=True)
class ObjectLabel:
    """Ground truth of one visible object in a frame.

    ``bbox_xyxy`` are pixel edges ``(x_min, y_min, x_max, y_max)``: the object's
    visible pixels are columns ``x_min .. x_max - 1`` and rows ``y_min .. y_max - 1``.
    ``visible_fraction = visible_pixels / alone_pixels`` (occlusion by other
    objects; cropping by the image edge is flagged by ``truncated`` instead).
    """

    object_id: int
    class_name: str
    bbox_xyxy: tuple[int, int, int, int]
    visible_pixels: int
    alone_pixels: int
    visible_fraction: float
    truncated: bool


@dataclass(frozen=True)
class CameraFrame:
    """One rendered frame: ``image`` H x W x 3 uint8 sRGB (RGB order), ``instance_ids``
    H x W int32 (``object_id`` of the visible object, -1 on belt), ``labels``."""

    image: U8
    instance_ids: I32
    labels: list[ObjectLabel]


def motion_blur_kernel(dx_px: float, dy_px: float) -> F32:
    """A normalised line kernel for a displacement ``(dx_px, dy_px)`` during exposure.

    The kernel is centred (the image is stamped at mid-exposure), odd-sized and
    cropped to its non-zero extent; a box of length ``hypot(dx, dy)`` px sampled
    with bilinear splatting, so fractional lengths are honoured.
    """
    length = math.hypot(dx_px, dy_px)
    half = math.ceil(length / 2) + 1
    size = 2 * half + 1
    k = np.zeros((size, size), dtype=np.float64)
    n = max(2, math.ceil(length * 8))
    t = (np.arange(n) + 0.5) / n - 0.5
    xs = half + t * dx_px
    ys = half + t * dy_px
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    np.add.at(k, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(k, (y0, x0 + 1), fx * (1 - fy))
    np.add.at(k, (y0 + 1, x0), (1 - fx) * fy)
    np.add.at(k, (y0 + 1, x0 + 1), fx * fy)
    k /= k.sum()
    rows = np.flatnonzero(k.sum(axis=1) > 1e-12)
    cols = np.flatnonzero(k.sum(axis=0) > 1e-12)
    rh = int(max(abs(rows - half).max(), 0))
    ch = int(max(abs(cols - half).max(), 0))
    return np.ascontiguousarray(k[half - rh : half + rh + 1, half - ch : half + ch + 1], np.float32)


def _srgb_lut() -> U8:
    x = np.linspace(0.0, 1.0, _LUT_BITS)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def srgb_to_linear(image: NDArray[np.uint8]) -> FloatArray:
    """Inverse of the sRGB encoding the simulator applies (uint8 -> linear 0-1)."""
    s = image.astype(np.float64) / 255.0
    out: FloatArray = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)
    return out


def _sample_bilinear(tex: Texture, col: FloatArray, row: FloatArray) -> F32:
    h, w = tex.shape[:2]
    col = np.clip(col, 0.0, w - 1.0)
    row = np.clip(row, 0.0, h - 1.0)
    c0 = np.minimum(col.astype(np.intp), max(w - 2, 0))
    r0 = np.minimum(row.astype(np.intp), max(h - 2, 0))
    c1 = np.minimum(c0 + 1, w - 1)
    r1 = np.minimum(r0 + 1, h - 1)
    a = (col - c0).astype(np.float32)[:, None]
    b = (row - r0).astype(np.float32)[:, None]
    out = (tex[r0, c0] * (1 - a) + tex[r0, c1] * a) * (1 - b) + (
        tex[r1, c0] * (1 - a) + tex[r1, c1] * a
    ) * b
    return np.asarray(out, dtype=np.float32)


class RgbCameraSim:
    """Renders what a top-down RGB camera sees of the objects on the belt.

    ``camera`` gives geometry and image size; ``rng`` drives the belt texture
    (drawn once here) and the per-frame sensor noise, so the same seed renders
    the same sequence of frames. Object textures depend only on each object's
    ``Appearance`` (``texture_seed``). Raises :class:`SensorError` if the camera
    does not look down at the belt.
    """

    def __init__(
        self,
        camera: PinholeCamera,
        rng: np.random.Generator,
        config: CameraSimConfig | None = None,
    ) -> None:
        self.camera = camera
        self.rng = rng
        self.config = config or CameraSimConfig()
        self.caster = RayCaster(camera)
        c = self.caster
        pix = camera.pixel_size_m(float(camera.position_belt[2]))
        self.texel_m = self.config.texel_m or max(2e-4, 0.6 * pix)
        self.textures = TextureCache()

        # belt texture, periodic along x (blend the seam) and covering the view across
        self._belt_texel = float(np.clip(0.75 * pix, 3e-4, 2e-3))
        y_lo = float(np.nanmin(c.belt_y)) - _BELT_MARGIN_M
        y_hi = float(np.nanmax(c.belt_y)) + _BELT_MARGIN_M
        self._belt_y_top = y_hi
        self._belt_period_m = self.config.belt_period_m
        blend = 64
        ext = belt_texture(
            rng, self._belt_period_m + blend * self._belt_texel, y_hi - y_lo, self._belt_texel
        )
        nx = round(self._belt_period_m / self._belt_texel)
        wgt = (np.arange(blend, dtype=np.float32) / blend)[None, :, None]
        tex = ext[:, :nx].copy()
        tex[:, :blend] = ext[:, nx : nx + blend] * (1 - wgt) + ext[:, :blend] * wgt
        self._belt_tex: Texture = np.ascontiguousarray(tex)
        self._belt_period_m = nx * self._belt_texel
        self._belt_map_x0: F32 = (c.belt_x / self._belt_texel - 0.5).astype(np.float32)
        self._belt_map_y: F32 = ((y_hi - c.belt_y) / self._belt_texel - 0.5).astype(np.float32)

        # viewing geometry
        d = c.directions
        axis = camera.T_belt_camera.rotation[:, 2]
        cos_t = np.clip(d @ axis, 0.0, 1.0)
        vig = 1.0 - self.config.vignetting * (1.0 - cos_t**4)
        self._vignette: F32 = np.clip(vig, 0.0, 1.0).astype(np.float32)[..., None]
        self._view: F32 = (-d).astype(np.float32)
        self._lut = _srgb_lut()
        p = (np.arange(_LUT_BITS) + 0.5) / _LUT_BITS
        self._normal_quantiles: F32 = ndtri(p).astype(np.float32)
        self._belt_spec_cache: dict[tuple[float, float, float], F32] = {}

        # image motion per metre of belt travel, at the belt point under the image centre
        centre = np.array([[float(np.nanmean(c.belt_x)), float(np.nanmean(c.belt_y)), 0.0]])
        uv0, _ = camera.project(centre)
        uv1, _ = camera.project(centre + np.array([[1e-3, 0.0, 0.0]]))
        self._px_per_m: FloatArray = ((uv1 - uv0) / 1e-3).ravel()

    # ------------------------------------------------------------------------------------
    def render(
        self,
        objects: list[SceneObject],
        belt_position_m: float,
        belt_speed_mps: float = 0.0,
        exposure_s: float = 0.001,
        lighting: Lighting | None = None,
    ) -> U8:
        """The image (H x W x 3 uint8, sRGB, RGB order); see :meth:`render_frame`."""
        frame = self.render_frame(objects, belt_position_m, belt_speed_mps, exposure_s, lighting)
        return frame.image

    def render_frame(
        self,
        objects: list[SceneObject],
        belt_position_m: float,
        belt_speed_mps: float = 0.0,
        exposure_s: float = 0.001,
        lighting: Lighting | None = None,
    ) -> CameraFrame:
        """Render a frame with its labels.

        ``objects`` in the belt frame at mid-exposure; ``belt_position_m`` the
        encoder position (moves the belt texture); ``belt_speed_mps`` x
        ``exposure_s`` the travel during the exposure (motion blur);
        ``lighting`` defaults to the config's. Raises :class:`SensorError` for a
        negative exposure or an unknown texture pattern.
        """
        if exposure_s <= 0:
            raise SensorError(f"exposure_s: must be > 0, got {exposure_s}")
        cfg = self.config
        light = lighting or cfg.lighting
        hits = self.caster.cast(objects)
        ldir = light.unit_direction.astype(np.float32)
        light_rgb = (kelvin_to_rgb(light.colour_temperature_k) / kelvin_to_rgb(cfg.white_balance_k))
        light_rgb32 = light_rgb.astype(np.float32)

        shadow = self._shadow_map(objects, hits, light)
        lit = np.float32(light.intensity) * (1 - shadow)  # direct irradiance factor, H x W

        radiance = self._belt(belt_position_m, light, ldir, lit, light_rgb32)
        labels: list[ObjectLabel] = []
        for oh in hits.objects:
            label = self._shade_object(
                objects[oh.index], oh, hits, light, ldir, lit, light_rgb32, radiance
            )
            if label is not None:
                labels.append(label)

        ids = np.array([o.object_id for o in objects] + [-1], dtype=np.int32)
        instance = ids[hits.index]

        signal = radiance * np.float32(cfg.gain * exposure_s / cfg.reference_exposure_s)
        travel_m = belt_speed_mps * exposure_s
        dx, dy = self._px_per_m * travel_m
        if math.hypot(dx, dy) > 0.05:
            kernel = motion_blur_kernel(float(dx), float(dy))
            signal = np.asarray(
                cv2.filter2D(signal, -1, kernel, borderType=cv2.BORDER_REFLECT), dtype=np.float32
            )
        signal *= self._vignette
        if cfg.full_well_e is not None:
            var = np.maximum(signal, 0) / np.float32(cfg.full_well_e) + np.float32(
                (cfg.read_noise_e / cfg.full_well_e) ** 2
            )
            signal += np.sqrt(var) * self._gaussian(signal.shape)
        codes = np.clip(signal * np.float32(_LUT_BITS - 1) + np.float32(0.5), 0, _LUT_BITS - 1)
        image: U8 = self._lut[codes.astype(np.uint16)]
        if cfg.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                              cfg.jpeg_quality])
            if not ok:
                raise SensorError("JPEG encoding failed")
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if decoded is None:
                raise SensorError("JPEG decoding failed")
            image = np.ascontiguousarray(np.asarray(decoded, dtype=np.uint8)[..., ::-1])
        return CameraFrame(image=image, instance_ids=instance, labels=labels)

    # ------------------------------------------------------------------------------------
    def _gaussian(self, shape: tuple[int, ...]) -> F32:
        # standard normal deviates via a 4096-quantile table: 4x faster than
        # Generator.standard_normal, tails cut at 3.5 sigma (irrelevant for sensor noise)
        n = int(np.prod(shape))
        codes = np.frombuffer(self.rng.bytes(2 * n), dtype=np.uint16) >> 4
        out: F32 = self._normal_quantiles[codes].reshape(shape)
        return out

    def _belt(
        self, belt_position_m: float, light: Lighting, ldir: F32, lit: F32, light_rgb: F32
    ) -> F32:
        shift = np.float32((belt_position_m % self._belt_period_m) / self._belt_texel)
        map_x = self._belt_map_x0 - shift
        albedo = cv2.remap(self._belt_tex, map_x, self._belt_map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_WRAP)
        key = (float(ldir[0]), float(ldir[1]), float(ldir[2]))
        spec = self._belt_spec_cache.get(key)
        if spec is None:
            hvec = self._view + ldir
            hz = hvec[..., 2] / np.linalg.norm(hvec, axis=-1)
            spec = (np.float32(self.config.belt_specular) * hz**20).astype(np.float32)
            if len(self._belt_spec_cache) > 16:
                self._belt_spec_cache.clear()
            self._belt_spec_cache[key] = spec
        diffuse = np.float32(light.ambient) + lit * ldir[2]
        out = albedo * diffuse[..., None] + (spec * lit)[..., None]
        return np.asarray(out * light_rgb, dtype=np.float32)

    def _shadow_map(self, objects: list[SceneObject], hits: SceneHits, light: Lighting) -> F32:
        cfg = self.config
        h, w = self.camera.height, self.camera.width
        shadow = np.zeros((h, w), dtype=np.float32)
        ldir = light.unit_direction
        if cfg.shadow_strength <= 0 or ldir[2] > 0.9999 or light.intensity <= 0:
            return shadow
        for oh in hits.objects:
            obj = objects[oh.index]
            top = obj.z_m + obj.size_m[2]
            offset = -top * ldir[:2] / ldir[2]
            pts = np.array([[obj.x_m, obj.y_m, top], [obj.x_m + offset[0], obj.y_m + offset[1], 0]])
            uv, depth = self.camera.project(pts)
            if not np.all(depth > 0):
                continue
            du, dv = np.round(uv[1] - uv[0]).astype(int)
            mask = np.isfinite(oh.z)
            r0, c0 = oh.rows.start + dv, oh.cols.start + du
            r1, c1 = r0 + mask.shape[0], c0 + mask.shape[1]
            rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
            if rr1 <= rr0 or cc1 <= cc0:
                continue
            m = mask[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
            recv = (hits.z[rr0:rr1, cc0:cc1] < top - 1e-3) & (hits.index[rr0:rr1, cc0:cc1]
                                                                != oh.index)
            region = shadow[rr0:rr1, cc0:cc1]
            region[m & recv] = 1.0
        if cfg.shadow_softness_px > 0:
            shadow = np.asarray(
                cv2.GaussianBlur(shadow, (0, 0), cfg.shadow_softness_px), dtype=np.float32
            )
        return np.asarray(shadow * np.float32(cfg.shadow_strength), dtype=np.float32)

    def _shade_object(
        self,
        obj: SceneObject,
        oh: ObjectHits,
        hits: SceneHits,
        light: Lighting,
        ldir: F32,
        lit: F32,
        light_rgb: F32,
        radiance: F32,
    ) -> ObjectLabel | None:
        rows, cols = oh.rows, oh.cols
        sel = hits.index[rows, cols] == oh.index
        n_vis = int(np.count_nonzero(sel))
        if n_vis == 0:
            return None
        x = hits.x[rows, cols][sel]
        y = hits.y[rows, cols][sel]
        wall = hits.wall[rows, cols][sel]
        dirs = self.caster.directions[rows, cols][sel]
        normals = surface_normals(obj, x, y, wall, dirs).astype(np.float32)
        length, width, _ = obj.size_m
        tex, texel = self.textures.get(obj.appearance, length, width, self.texel_m)
        u, v = obj.to_object_frame(x, y)
        albedo = _sample_bilinear(
            tex, (u + length / 2) / texel - 0.5, (v + width / 2) / texel - 0.5
        )

        direct = lit[rows, cols][sel]
        ndotl = np.maximum(normals @ ldir, 0.0)
        diffuse = np.float32(light.ambient) + direct * ndotl
        ks = float(obj.appearance.specular)
        view = -dirs.astype(np.float32)
        hvec = view + ldir
        hvec /= np.linalg.norm(hvec, axis=1, keepdims=True)
        shin = np.float32(8.0 + 150.0 * ks)
        ndoth = np.maximum(np.einsum("ij,ij->i", normals, hvec), 0.0)
        spec = np.float32(ks) * direct * ndoth**shin * (ndotl > 0)
        if ks >= _METAL_SPECULAR:
            base = np.asarray(obj.appearance.base_rgb, dtype=np.float32)
            spec_rgb = base / max(float(base.max()), 1e-3)
            albedo = albedo * np.float32(1.0 - 0.5 * ks)
        else:
            spec_rgb = np.ones(3, dtype=np.float32)
        shaded = albedo * diffuse[:, None] + spec[:, None] * spec_rgb
        radiance[rows, cols][sel] = shaded * light_rgb

        rr, cc = np.nonzero(sel)
        alone = oh.alone_pixels
        return ObjectLabel(
            object_id=obj.object_id,
            class_name=obj.class_name,
            bbox_xyxy=(
                cols.start + int(cc.min()),
                rows.start + int(rr.min()),
                cols.start + int(cc.max()) + 1,
                rows.start + int(rr.max()) + 1,
            ),
            visible_pixels=n_vis,
            alone_pixels=alone,
            visible_fraction=n_vis / alone if alone else 0.0,
            truncated=oh.truncated,
        )
