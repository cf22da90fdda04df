"""Ray casting of a camera's pixel rays against the objects on the belt.

Shared by the RGB camera and the 3D sensor simulators. Every pixel ray of a
camera that looks down (``d_z < 0``) is parametrised by the height it has
reached: ``x(z) = o_x + (z - o_z) d_x / d_z`` (same for y). For each object,
only the pixels inside the projection of its 3-D bounding box are cast: the
ray is sampled at heights from the top of the box down to its base, the first
sample that is at or below the object's surface (``z <= top_height(x(z), y(z))``)
brackets the hit, and bisection refines it. A hit whose surface height lies
above the bracket is on a vertical wall (box sides, the flank of a cylinder or
lump), otherwise on the top surface. A z-buffer over the objects (the highest
hit along a downward ray is the nearest one) gives occlusion; rays that hit no
object end on the belt plane ``z = 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from perception.errors import SensorError
from perception.sensors.scene import SceneObject, ShapeKind

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

_BISECT_STEPS = 5
_EPS_Z = 1e-9
_MAX_LEVELS = 40
_BBOX_PAD_PX = 3


@dataclass(frozen=True)
class ObjectHits:
    """The rays of one object's bounding box cast against that object alone.

    ``rows``/``cols`` select the box in the image; ``z`` (box-shaped, m) is the
    height of the hit, NaN where the ray misses the object; ``wall`` marks hits
    on vertical walls. ``truncated`` is True when the object's projected box
    extends beyond the image.
    """

    index: int
    rows: slice
    cols: slice
    z: FloatArray
    wall: BoolArray
    truncated: bool

    @property
    def alone_pixels(self) -> int:
        """How many image pixels the object would cover if it were alone on the belt."""
        return int(np.count_nonzero(np.isfinite(self.z)))


@dataclass(frozen=True)
class SceneHits:
    """First surface along every pixel ray (all arrays H x W).

    ``z`` hit height (m, 0 on bare belt, NaN where the ray never reaches the
    belt), ``x``/``y`` hit position in the belt frame (m), ``index`` position in
    the object list of the object hit (-1: belt), ``wall`` hit on a vertical wall.
    """

    x: FloatArray
    y: FloatArray
    z: FloatArray
    index: IntArray
    wall: BoolArray
    objects: list[ObjectHits]


def _corners(obj: SceneObject) -> FloatArray:
    length, width, height = obj.size_m
    c, s = math.cos(obj.yaw_rad), math.sin(obj.yaw_rad)
    out = []
    for du in (-length / 2, length / 2):
        for dv in (-width / 2, width / 2):
            x = obj.x_m + c * du - s * dv
            y = obj.y_m + s * du + c * dv
            out.append((x, y, obj.z_m))
            out.append((x, y, obj.z_m + height))
    return np.asarray(out, dtype=np.float64)


class RayCaster:
    """Pixel rays of one camera, precomputed, cast against lists of :class:`SceneObject`.

    Raises :class:`SensorError` if no pixel ray points down at the belt.
    """

    def __init__(self, camera: PinholeCamera) -> None:
        self.camera = camera
        h, w = camera.height, camera.width
        rays = camera.pixel_rays()
        d = rays.directions.reshape(h, w, 3)
        self.directions: FloatArray = d
        self.origin: FloatArray = camera.position_belt
        down = d[..., 2] < -1e-9
        if not down.any():
            raise SensorError(
                f"camera at {self.origin.tolist()} m: no pixel ray points down at the belt"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            self.ax: FloatArray = np.where(down, d[..., 0] / d[..., 2], np.nan)
            self.ay: FloatArray = np.where(down, d[..., 1] / d[..., 2], np.nan)
        self.belt_x: FloatArray = self.origin[0] - self.origin[2] * self.ax
        self.belt_y: FloatArray = self.origin[1] - self.origin[2] * self.ay

    def xy_at(self, z: FloatArray, rows: slice, cols: slice) -> tuple[FloatArray, FloatArray]:
        """Belt-frame x, y (m) where the rays of the image box reach heights ``z``."""
        dz = z - self.origin[2]
        return self.origin[0] + dz * self.ax[rows, cols], self.origin[1] + dz * self.ay[rows, cols]

    def _bbox(self, obj: SceneObject) -> tuple[slice, slice, bool] | None:
        h, w = self.camera.height, self.camera.width
        uv, depth = self.camera.project(_corners(obj))
        if not np.all(depth > 0) or not np.all(np.isfinite(uv)):
            return slice(0, h), slice(0, w), True
        umin, vmin = np.floor(uv.min(axis=0)) - _BBOX_PAD_PX
        umax, vmax = np.ceil(uv.max(axis=0)) + _BBOX_PAD_PX + 1
        truncated = bool(
            uv[:, 0].min() < -0.5 or uv[:, 1].min() < -0.5
            or uv[:, 0].max() > w - 0.5 or uv[:, 1].max() > h - 0.5
        )
        r0, r1 = int(max(vmin, 0)), int(min(vmax, h))
        c0, c1 = int(max(umin, 0)), int(min(umax, w))
        if r1 <= r0 or c1 <= c0:
            return None
        return slice(r0, r1), slice(c0, c1), truncated

    def cast_object(self, index: int, obj: SceneObject) -> ObjectHits | None:
        """Cast the rays of ``obj``'s image box against ``obj`` alone; None if out of view."""
        box = self._bbox(obj)
        if box is None:
            return None
        rows, cols, truncated = box
        ax = self.ax[rows, cols].ravel()
        ay = self.ay[rows, cols].ravel()
        ox, oy, oz = self.origin
        zb = obj.z_m
        zt = obj.z_m + obj.size_m[2]

        # enough levels that the ray moves by at most ~2 px between two of them (thinner
        # slivers of wall are missed; bisection then refines the bracket to 1/16 px)
        slope = float(np.nanmax(np.maximum(np.abs(ax), np.abs(ay)), initial=0.0))
        px_m = max(oz - zt, 1e-3) / max(self.camera.fx, self.camera.fy)
        travel_px = slope * (zt - zb) / px_m
        n_levels = int(min(max(math.ceil(travel_px / 2) + 2, 2), _MAX_LEVELS))
        levels = np.linspace(zt, zb, n_levels)

        n = ax.size
        z_lo = np.full(n, np.nan)
        z_hi = np.full(n, np.nan)
        found = np.zeros(n, dtype=bool)
        prev = zt
        for z in levels:
            todo = np.flatnonzero(~found & np.isfinite(ax))
            if todo.size == 0:
                break
            h = obj.top_height(ox + (z - oz) * ax[todo], oy + (z - oz) * ay[todo])
            with np.errstate(invalid="ignore"):
                hit = h >= z - _EPS_Z
            sel = todo[hit]
            z_lo[sel] = z
            z_hi[sel] = prev
            found[sel] = True
            prev = z

        idx = np.flatnonzero(found & (z_hi > z_lo))
        lo, hi = z_lo[idx], z_hi[idx]
        bax, bay = ax[idx], ay[idx]
        for _ in range(_BISECT_STEPS if idx.size else 0):
            mid = 0.5 * (lo + hi)
            h = obj.top_height(ox + (mid - oz) * bax, oy + (mid - oz) * bay)
            with np.errstate(invalid="ignore"):
                below = h >= mid - _EPS_Z
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        z_lo[idx], z_hi[idx] = lo, hi

        z_hit = np.full(n, np.nan)
        wall = np.zeros(n, dtype=bool)
        f = np.flatnonzero(found)
        if f.size:
            zl = z_lo[f]
            hs = obj.top_height(ox + (zl - oz) * ax[f], oy + (zl - oz) * ay[f])
            is_wall = ~(hs <= z_hi[f] + 1e-6)
            z_hit[f] = np.where(is_wall, zl, hs)
            wall[f] = is_wall
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        return ObjectHits(index, rows, cols, z_hit.reshape(shape), wall.reshape(shape), truncated)

    def cast(self, objects: list[SceneObject]) -> SceneHits:
        """Cast every pixel ray against ``objects``; see :class:`SceneHits`."""
        h, w = self.camera.height, self.camera.width
        zbuf = np.where(np.isfinite(self.ax), 0.0, np.nan)
        index = np.full((h, w), -1, dtype=np.int64)
        wall = np.zeros((h, w), dtype=bool)
        hits: list[ObjectHits] = []
        for k, obj in enumerate(objects):
            oh = self.cast_object(k, obj)
            if oh is None:
                continue
            hits.append(oh)
            zsub = zbuf[oh.rows, oh.cols]
            with np.errstate(invalid="ignore"):
                better = oh.z > zsub
            zsub[better] = oh.z[better]
            index[oh.rows, oh.cols][better] = k
            wall[oh.rows, oh.cols][better] = oh.wall[better]
        dz = zbuf - self.origin[2]
        x = self.origin[0] + dz * self.ax
        y = self.origin[1] + dz * self.ay
        return SceneHits(x=x, y=y, z=zbuf, index=index, wall=wall, objects=hits)


def surface_normals(
    obj: SceneObject, x: FloatArray, y: FloatArray, wall: BoolArray, ray_dirs: FloatArray
) -> FloatArray:
    """Unit surface normals (N x 3, belt frame) of ``obj`` at hit points ``x``, ``y`` (N).

    Top surfaces: boxes point up, cylinders analytically, lumps from the
    height-field gradient (central differences, 1 mm). Wall hits get a
    horizontal normal facing back along the ray (``ray_dirs`` N x 3).
    """
    n = np.zeros((x.size, 3))
    n[:, 2] = 1.0
    if obj.shape == ShapeKind.CYLINDER:
        r = obj.size_m[1] / 2
        _, v = obj.to_object_frame(x, y)
        v = np.clip(v, -r, r)
        nz = np.sqrt(np.maximum(r * r - v * v, 0.0)) / r
        nv = v / r
        c, s = math.cos(obj.yaw_rad), math.sin(obj.yaw_rad)
        n = np.column_stack([-s * nv, c * nv, nz])
    elif obj.shape == ShapeKind.LUMP:
        e = 0.001
        h0 = obj.top_height(x, y)

        def _h(px: FloatArray, py: FloatArray) -> FloatArray:
            hv = obj.top_height(px, py)
            return np.where(np.isfinite(hv), hv, h0)

        gx = (_h(x + e, y) - _h(x - e, y)) / (2 * e)
        gy = (_h(x, y + e) - _h(x, y - e)) / (2 * e)
        gx = np.nan_to_num(gx)
        gy = np.nan_to_num(gy)
        n = np.column_stack([-gx, -gy, np.ones_like(gx)])
        n /= np.linalg.norm(n, axis=1, keepdims=True)
    if wall.any():
        d = -ray_dirs[wall]
        d[:, 2] = 0.0
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        d = np.where(norm > 1e-12, d / np.maximum(norm, 1e-12), np.array([0.0, 0.0, 1.0]))
        n[wall] = d
    return n
