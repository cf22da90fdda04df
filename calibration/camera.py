"""Pinhole camera with OpenCV ``plumb_bob`` distortion, posed in the belt frame.

Pixel convention (OpenCV, ROS ``CameraInfo``): pixel ``(u, v)`` has its centre at
integer coordinates, ``u`` to the right (columns), ``v`` down (rows). The camera's
optical frame (REP-103/105) has z forward along the optical axis, x right and y
down in the image. ``T_belt_camera`` maps optical-frame points into the belt frame.

Projection of a point ``p_c = (X, Y, Z)`` in the optical frame (``Z > 0``)::

    x, y = X / Z, Y / Z,  r2 = x**2 + y**2
    radial = 1 + k1 r2 + k2 r2**2 + k3 r2**3
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x**2)
    yd = y radial + p1 (r2 + 2 y**2) + 2 p2 x y
    u, v = fx xd + cx, fy yd + cy

Example::

    >>> cam = PinholeCamera.looking_down(1.0, 0.0, 1.0, 640, 480, hfov_deg=60.0)
    >>> uv, depth = cam.project(np.array([[1.0, 0.0, 0.0]]))
    >>> uv.round(3), depth
    (array([[319.5, 239.5]]), array([1.]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError
from calibration.transforms import RigidTransform

FloatArray = NDArray[np.float64]

_UNDISTORT_MAX_ITER = 100
_UNDISTORT_TOL = 1e-14


@dataclass(frozen=True)
class Rays:
    """Rays in the belt frame: ``origins`` and unit ``directions``, both N x 3 (m, unitless)."""

    origins: FloatArray
    directions: FloatArray


@dataclass(frozen=True)
class CameraInfoFields:
    """What a ``sensor_msgs/CameraInfo`` carries, as plain arrays (row-major).

    ``d`` (5,), ``k`` (9,), ``r`` (9,), ``p`` (12,); ``distortion_model`` is
    ``"plumb_bob"``. The message side (frame id, stamp) belongs to the caller.
    """

    width: int
    height: int
    distortion_model: str
    d: FloatArray
    k: FloatArray
    r: FloatArray
    p: FloatArray


def _looking_down_rotation(yaw_rad: float) -> FloatArray:
    # yaw 0: image u along belt +x (travel), image v along belt -y, optical axis along belt -z.
    r0 = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    out: FloatArray = rz @ r0
    return out


@dataclass(frozen=True)
class PinholeCamera:
    """A calibrated camera: image size (px), intrinsics (px), distortion and pose.

    ``distortion`` is ``(k1, k2, p1, p2, k3)``. Raises :class:`CalibrationError`
    on a non-positive size or focal length or a distortion of the wrong length.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    T_belt_camera: RigidTransform = field(default_factory=RigidTransform.identity)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise CalibrationError(
                f"width/height: must be > 0 px, got {self.width} x {self.height}"
            )
        if not (self.fx > 0 and self.fy > 0):
            raise CalibrationError(f"fx/fy: must be > 0 px, got fx={self.fx}, fy={self.fy}")
        if len(self.distortion) != 5:
            raise CalibrationError(
                f"distortion: expected (k1, k2, p1, p2, k3), got {len(self.distortion)} values"
            )

    # constructors ---------------------------------------------------------------------
    @classmethod
    def looking_down(
        cls,
        x_m: float,
        y_m: float,
        height_m: float,
        width_px: int,
        height_px: int,
        hfov_deg: float,
        yaw_rad: float = 0.0,
        distortion: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    ) -> PinholeCamera:
        """A camera ``height_m`` above the belt at ``(x_m, y_m)`` looking straight down.

        Square pixels, principal point at the image centre ``((w-1)/2, (h-1)/2)``,
        horizontal field of view ``hfov_deg`` across the ``width_px`` pixel edges.
        With ``yaw_rad = 0`` the image u axis points along belt +x (objects travel
        left to right) and v along belt -y; ``yaw_rad`` turns the camera about the
        vertical. The belt footprint (undistorted) is
        ``2 h tan(hfov/2)`` by ``2 h tan(hfov/2) * height_px / width_px``.
        Raises :class:`CalibrationError` for ``height_m <= 0`` or ``hfov_deg`` outside (0, 180).
        """
        if height_m <= 0:
            raise CalibrationError(f"height_m: must be > 0, got {height_m}")
        if not 0.0 < hfov_deg < 180.0:
            raise CalibrationError(f"hfov_deg: must be in (0, 180), got {hfov_deg}")
        f = (width_px / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        d = tuple(float(v) for v in distortion)
        if len(d) != 5:
            raise CalibrationError(f"distortion: expected 5 values, got {len(d)}")
        pose = RigidTransform(_looking_down_rotation(yaw_rad), np.array([x_m, y_m, height_m]))
        return cls(
            width=width_px,
            height=height_px,
            fx=f,
            fy=f,
            cx=(width_px - 1) / 2.0,
            cy=(height_px - 1) / 2.0,
            distortion=(d[0], d[1], d[2], d[3], d[4]),
            T_belt_camera=pose,
        )

    # properties -----------------------------------------------------------------------
    @property
    def K(self) -> FloatArray:  # noqa: N802 - the conventional name
        """The 3x3 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def D(self) -> FloatArray:  # noqa: N802 - the conventional name
        """Distortion ``(k1, k2, p1, p2, k3)`` as an array."""
        return np.asarray(self.distortion, dtype=np.float64)

    @property
    def has_distortion(self) -> bool:
        return any(v != 0.0 for v in self.distortion)

    @property
    def position_belt(self) -> FloatArray:
        """Optical centre in the belt frame (m), shape (3,)."""
        return np.array(self.T_belt_camera.translation)

    def with_pose(self, T_belt_camera: RigidTransform) -> PinholeCamera:  # noqa: N803
        """The same intrinsics at another pose."""
        return PinholeCamera(
            self.width, self.height, self.fx, self.fy, self.cx, self.cy, self.distortion,
            T_belt_camera,
        )

    # distortion -----------------------------------------------------------------------
    def distort_normalized(self, xy: ArrayLike) -> FloatArray:
        """Apply ``plumb_bob`` to N x 2 normalised image coordinates; returns N x 2."""
        p = np.asarray(xy, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise CalibrationError(f"xy: expected N x 2, got shape {p.shape}")
        k1, k2, p1, p2, k3 = self.distortion
        x, y = p[:, 0], p[:, 1]
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return np.stack([xd, yd], axis=1)

    def undistort_normalized(self, xy_distorted: ArrayLike) -> FloatArray:
        """Invert :meth:`distort_normalized` by fixed-point iteration (as OpenCV does).

        Iterates until the update is below 1e-14 or 100 iterations; N x 2 in, N x 2 out.
        """
        pd = np.asarray(xy_distorted, dtype=np.float64)
        if pd.ndim != 2 or pd.shape[1] != 2:
            raise CalibrationError(f"xy_distorted: expected N x 2, got shape {pd.shape}")
        if not self.has_distortion:
            return pd.copy()
        k1, k2, p1, p2, k3 = self.distortion
        xd, yd = pd[:, 0], pd[:, 1]
        x, y = xd.copy(), yd.copy()
        for _ in range(_UNDISTORT_MAX_ITER):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            xn = (xd - dx) / radial
            yn = (yd - dy) / radial
            step = float(np.nanmax(np.abs(np.concatenate([xn - x, yn - y])), initial=0.0))
            x, y = xn, yn
            if step < _UNDISTORT_TOL:
                break
        return np.stack([x, y], axis=1)

    # projection -----------------------------------------------------------------------
    def project_camera_frame(self, points_camera: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Project N x 3 optical-frame points; returns ``(uv N x 2 px, depth N m)``.

        ``depth`` is the optical-frame z; ``uv`` is NaN for points with ``depth <= 0``.
        """
        pc = np.asarray(points_camera, dtype=np.float64)
        if pc.ndim != 2 or pc.shape[1] != 3:
            raise CalibrationError(f"points_camera: expected N x 3, got shape {pc.shape}")
        depth = pc[:, 2].copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = pc[:, :2] / depth[:, None]
        xy[depth <= 0] = np.nan
        if self.has_distortion:
            xy = self.distort_normalized(xy)
        uv = np.empty_like(xy)
        uv[:, 0] = self.fx * xy[:, 0] + self.cx
        uv[:, 1] = self.fy * xy[:, 1] + self.cy
        return uv, depth

    def project(self, points_belt: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Project N x 3 belt-frame points (m); returns ``(uv N x 2 px, depth N m)``.

        ``depth`` is along the optical axis; points behind the camera get NaN ``uv``.
        Raises :class:`CalibrationError` for a wrong shape.
        """
        pc = self.T_belt_camera.inverse().apply(points_belt)
        return self.project_camera_frame(pc)

    def unproject(self, uv: ArrayLike, depth: ArrayLike) -> FloatArray:
        """Belt-frame points (N x 3, m) at pixels ``uv`` (N x 2) and optical depths ``depth``."""
        uva = np.asarray(uv, dtype=np.float64)
        d = np.asarray(depth, dtype=np.float64).reshape(-1)
        if uva.ndim != 2 or uva.shape[1] != 2 or d.shape[0] != uva.shape[0]:
            raise CalibrationError(
                f"uv/depth: expected N x 2 and N, got shapes {uva.shape} and {d.shape}"
            )
        xy = self.undistort_normalized(self._pixels_to_distorted_normalized(uva))
        pc = np.column_stack([xy * d[:, None], d])
        return self.T_belt_camera.apply(pc)

    def _pixels_to_distorted_normalized(self, uv: FloatArray) -> FloatArray:
        return np.column_stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy])

    def pixel_grid(self) -> FloatArray:
        """Centres of every pixel, row-major, as (H*W) x 2 ``(u, v)``."""
        vv, uu = np.mgrid[0 : self.height, 0 : self.width]
        return np.column_stack([uu.ravel(), vv.ravel()]).astype(np.float64)

    def pixel_rays(self, uv: ArrayLike | None = None) -> Rays:
        """Rays through pixels, undistorted, in the belt frame.

        ``uv``: N x 2 pixel coordinates; default every pixel centre in row-major
        order (N = H*W, index ``v * W + u``). Directions are unit vectors.
        """
        uva = self.pixel_grid() if uv is None else np.asarray(uv, dtype=np.float64)
        if uva.ndim != 2 or uva.shape[1] != 2:
            raise CalibrationError(f"uv: expected N x 2, got shape {uva.shape}")
        xy = self.undistort_normalized(self._pixels_to_distorted_normalized(uva))
        dc = np.column_stack([xy, np.ones(len(xy))])
        dc /= np.linalg.norm(dc, axis=1, keepdims=True)
        dirs = self.T_belt_camera.apply_vectors(dc)
        origins = np.broadcast_to(self.position_belt, dirs.shape).copy()
        return Rays(origins=origins, directions=dirs)

    def ground_footprint(self, z_m: float = 0.0) -> FloatArray:
        """Belt-frame corners (4 x 3) where the outer pixel edges' rays meet the plane ``z = z_m``.

        Order: top-left, top-right, bottom-right, bottom-left of the image.
        """
        w, h = self.width, self.height
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        return ray_plane_z(self.pixel_rays(corners), z_m)

    def pixel_size_m(self, depth_m: float) -> float:
        """Size (m) that one pixel covers at optical depth ``depth_m`` on the axis (x direction)."""
        return depth_m / self.fx

    def to_camera_info_fields(self) -> CameraInfoFields:
        """The D, K, R, P arrays of a ``sensor_msgs/CameraInfo`` for this (monocular) camera."""
        k = self.K
        p = np.zeros((3, 4))
        p[:, :3] = k
        return CameraInfoFields(
            width=self.width,
            height=self.height,
            distortion_model="plumb_bob",
            d=self.D.copy(),
            k=k.ravel(),
            r=np.eye(3).ravel(),
            p=p.ravel(),
        )


def ray_plane_z(rays: Rays, z_m: float) -> FloatArray:
    """Where each ray meets the horizontal plane ``z = z_m`` of the belt frame; N x 3 (m).

    Rows are NaN where the ray is parallel to the plane or meets it behind its origin.
    """
    o, d = rays.origins, rays.directions
    if o.shape != d.shape or o.ndim != 2 or o.shape[1] != 3:
        raise CalibrationError(
            f"rays: origins and directions must both be N x 3, got {o.shape} and {d.shape}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z_m - o[:, 2]) / d[:, 2]
    bad = ~np.isfinite(t) | (t < 0)
    pts: FloatArray = o + t[:, None] * d
    pts[bad] = np.nan
    return pts
