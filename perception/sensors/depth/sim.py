"""Simulated 3D sensor: a depth camera looking down at the belt.

Geometry is exact: the sensor's pixel rays are cast against the objects'
surfaces (:class:`perception.sensors.camera.raycast.RayCaster`), so tall
objects hide what lies behind them. On top of it, what real structured-light
and time-of-flight sensors do:

- range noise along the ray, ``sigma(r) = sigma_at_1m * (r / 1 m)**2``;
- at depth discontinuities (neighbours more than ``edge_jump_m`` apart),
  "flying pixels" placed at a random range between the two surfaces, or dropped;
- missing returns on specular surfaces (probability ``specular_dropout *
  Appearance.specular``) and dark ones (``dark_dropout`` at zero albedo,
  falling to 0 at albedo ``dark_albedo``), plus a small random dropout everywhere.

Invalid points are NaN in the organised cloud and removed from the flat one.
The ``PointCloud2`` that the line publishes carries the points in the sensor's
optical frame (``frame="optical"``, REP-103: z forward, x right, y down);
``frame="belt"`` gives the same points in the belt frame for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from perception.errors import SensorError
from perception.sensors.camera.raycast import RayCaster
from perception.sensors.scene import SceneObject

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

Frame = Literal["optical", "belt"]


@dataclass(frozen=True)
class DepthSimConfig:
    """Noise model of :class:`DepthSensorSim` (m, probabilities 0-1)."""

    sigma_at_1m_m: float = 0.001
    edge_jump_m: float = 0.01
    flying_pixel_prob: float = 0.5
    edge_dropout_prob: float = 0.3
    specular_dropout: float = 0.5
    dark_dropout: float = 0.3
    dark_albedo: float = 0.06
    belt_dropout_prob: float = 0.01
    random_dropout_prob: float = 0.002
    max_range_m: float = 5.0

    def __post_init__(self) -> None:
        if self.sigma_at_1m_m < 0 or self.edge_jump_m <= 0 or self.max_range_m <= 0:
            raise SensorError(
                "DepthSimConfig: sigma_at_1m_m must be >= 0, edge_jump_m and max_range_m > 0"
            )
        for name in ("flying_pixel_prob", "edge_dropout_prob", "specular_dropout",
                     "dark_dropout", "belt_dropout_prob", "random_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SensorError(f"DepthSimConfig.{name}: must be in [0, 1], got {value}")
        if self.flying_pixel_prob + self.edge_dropout_prob > 1.0:
            raise SensorError("DepthSimConfig: flying_pixel_prob + edge_dropout_prob must be <= 1")


@dataclass(frozen=True)
class DepthFrame:
    """One organised depth frame (H x W).

    ``points_optical`` H x W x 3 float32 in the sensor's optical frame (m), NaN
    where there is no return; ``valid`` H x W bool; ``object_index`` H x W: the
    position in the object list of the surface the ray hit (-1 belt), as truth
    for evaluation (also set where the return was dropped).
    """

    points_optical: F32
    valid: BoolArray
    object_index: IntArray


class DepthSensorSim:
    """Renders the point cloud a downward-looking depth camera measures.

    ``camera`` is the sensor's pinhole model posed in the belt frame (e.g.
    160 x 120 to 320 x 240 px); ``rng`` draws the noise, so the same seed gives
    the same sequence of clouds. Raises :class:`SensorError` if the camera does
    not look down at the belt.
    """

    def __init__(
        self,
        camera: PinholeCamera,
        rng: np.random.Generator,
        config: DepthSimConfig | None = None,
    ) -> None:
        self.camera = camera
        self.rng = rng
        self.config = config or DepthSimConfig()
        self.caster = RayCaster(camera)
        rays_c = camera.T_belt_camera.inverse().apply_vectors(
            self.caster.directions.reshape(-1, 3)
        )
        self._dirs_optical: FloatArray = rays_c.reshape(camera.height, camera.width, 3)

    def render(
        self, objects: list[SceneObject], belt_position_m: float, frame: Frame = "optical"
    ) -> F32:
        """Valid points as N x 3 float32 (m), in the ``optical`` (default) or ``belt`` frame.

        ``belt_position_m`` is accepted for symmetry with the camera: the belt
        surface is flat and uniform to this sensor, so it changes nothing.
        Raises :class:`SensorError` for an unknown ``frame``.
        """
        df = self.render_frame(objects, belt_position_m)
        pts = df.points_optical[df.valid]
        if frame == "optical":
            return np.ascontiguousarray(pts, dtype=np.float32)
        if frame == "belt":
            return self.camera.T_belt_camera.apply(pts.astype(np.float64)).astype(np.float32)
        raise SensorError(f"frame: expected 'optical' or 'belt', got {frame!r}")

    def render_frame(self, objects: list[SceneObject], belt_position_m: float) -> DepthFrame:
        """The organised frame (see :class:`DepthFrame`)."""
        del belt_position_m  # see render()
        cfg = self.config
        hits = self.caster.cast(objects)
        o = self.caster.origin
        rng_m = np.sqrt((hits.x - o[0]) ** 2 + (hits.y - o[1]) ** 2 + (hits.z - o[2]) ** 2)
        valid = np.isfinite(rng_m) & (rng_m <= cfg.max_range_m)
        r = np.where(valid, rng_m, 0.0).astype(np.float32)
        h, w = r.shape

        # discontinuities: range spread in the 3x3 neighbourhood
        kernel = np.ones((3, 3), np.uint8)
        r_max = cv2.dilate(r, kernel, borderType=cv2.BORDER_REPLICATE)
        r_min = cv2.erode(np.where(valid, r, np.float32(np.inf)).astype(np.float32), kernel,
                          borderType=cv2.BORDER_REPLICATE)
        edge = valid & ((r_max - r_min) > cfg.edge_jump_m)
        u_edge = self.rng.random((h, w))
        flying = edge & (u_edge < cfg.flying_pixel_prob)
        edge_drop = edge & ~flying & (u_edge < cfg.flying_pixel_prob + cfg.edge_dropout_prob)
        mix = self.rng.random((h, w))
        r_out = np.where(flying, r_min + mix * (r_max - r_min), r.astype(np.float64))

        # per-surface dropout probability
        p_drop = np.full((h, w), cfg.belt_dropout_prob)
        for k, obj in enumerate(objects):
            on = hits.index == k
            if not on.any():
                continue
            app = obj.appearance
            albedo = float(np.dot(app.base_rgb, (0.2126, 0.7152, 0.0722)))
            dark = cfg.dark_dropout * max(0.0, 1.0 - albedo / cfg.dark_albedo)
            p_drop[on] = min(1.0, cfg.specular_dropout * app.specular + dark)
        p_drop = 1.0 - (1.0 - p_drop) * (1.0 - cfg.random_dropout_prob)
        dropped = (self.rng.random((h, w)) < p_drop) | edge_drop

        sigma = cfg.sigma_at_1m_m * r_out**2
        r_out = r_out + sigma * self.rng.standard_normal((h, w))
        ok = valid & ~dropped
        pts = (self._dirs_optical * r_out[..., None]).astype(np.float32)
        pts[~ok] = np.nan
        return DepthFrame(points_optical=pts, valid=ok, object_index=hits.index)
