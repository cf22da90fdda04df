"""What the sensor simulators render: objects lying on the belt, as simple solid shapes.

Frames: the ``belt`` frame is fixed to the machine (REP-103): x along the
direction of travel (0 at the infeed end), y across the belt (0 on the
centre line, positive to the left looking downstream), z up from the belt
surface. Each object rests on the belt (or on another object, ``z_m`` > 0),
rotated by ``yaw_rad`` about z; it does not tilt.

Shapes (object frame u along the object's length, v across):

- ``BOX``: ``size_m = (length, width, height)``; volume ``l * w * h``.
- ``CYLINDER``: lying with its axis along u; ``size_m = (length, diameter, diameter)``;
  top surface ``z(v) = r + sqrt(r**2 - v**2)``; volume ``pi * r**2 * l``.
- ``LUMP``: an irregular solid with a flat base, given by a height field
  ``heightmap_m`` (rows along u, columns along v, cell ``cell_m``) centred on the
  object; ``size_m`` is its bounding box; volume ``sum(heightmap) * cell**2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from perception.errors import SensorError

FloatArray = NDArray[np.float64]


class ShapeKind(IntEnum):
    """Values match ``crmsort_msgs/GroundTruthObject.SHAPE_*``."""

    BOX = 0
    CYLINDER = 1
    LUMP = 2


@dataclass(frozen=True)
class Appearance:
    """How an object looks to an RGB camera.

    ``base_rgb`` and ``accent_rgb`` are linear RGB in 0-1; ``pattern`` names a
    procedural texture the camera simulator knows (``plain``, ``pcb``,
    ``keys``, ``screen``, ``metal``, ``rock``, ``label``, ``stripes``,
    ``cable``); ``specular`` 0 (matte) to 1 (mirror-like metal).
    """

    base_rgb: tuple[float, float, float]
    accent_rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pattern: str = "plain"
    specular: float = 0.1
    texture_seed: int = 0


@dataclass(frozen=True)
class SceneObject:
    """One object on the belt with the truth that the simulators render from.

    Positions in m in the belt frame; ``composition`` maps element symbol to
    mass fraction (0-1, summing to at most 1, the rest being light elements
    that XRF cannot see, e.g. C, H, O).
    """

    object_id: int
    class_name: str
    stream: str
    shape: ShapeKind
    size_m: tuple[float, float, float]
    x_m: float
    y_m: float
    yaw_rad: float
    material: str
    density_kg_m3: float
    composition: dict[str, float]
    appearance: Appearance
    z_m: float = 0.0
    heightmap_m: FloatArray | None = field(default=None, compare=False)
    cell_m: float = 0.002

    def __post_init__(self) -> None:
        where = f"object {self.object_id} ({self.class_name})"
        if any(s <= 0 for s in self.size_m):
            raise SensorError(f"{where}: size_m must be > 0, got {self.size_m}")
        if self.shape == ShapeKind.LUMP and self.heightmap_m is None:
            raise SensorError(f"{where}: LUMP needs heightmap_m")
        if self.shape == ShapeKind.CYLINDER and abs(self.size_m[1] - self.size_m[2]) > 1e-9:
            raise SensorError(
                f"{where}: a lying cylinder has size_m = (length, d, d), got {self.size_m}"
            )
        if self.density_kg_m3 <= 0:
            raise SensorError(f"object {self.object_id}: density_kg_m3 must be > 0")

    @property
    def height_m(self) -> float:
        return self.size_m[2]

    def volume_m3(self) -> float:
        """True solid volume in m^3 (see the module docstring for each shape)."""
        length, width, height = self.size_m
        if self.shape == ShapeKind.BOX:
            return length * width * height
        if self.shape == ShapeKind.CYLINDER:
            return math.pi * (width / 2) ** 2 * length
        assert self.heightmap_m is not None
        return float(self.heightmap_m.sum()) * self.cell_m**2

    def mass_kg(self) -> float:
        return self.volume_m3() * self.density_kg_m3

    def footprint_radius_m(self) -> float:
        """Radius of the circle around (x, y) that contains the whole footprint."""
        return 0.5 * math.hypot(self.size_m[0], self.size_m[1])

    def to_object_frame(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Belt-frame points -> object frame (u along the object, v across)."""
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        dx, dy = x - self.x_m, y - self.y_m
        return c * dx + s * dy, -s * dx + c * dy

    def top_height(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Height (m above the belt) of the object's top surface at belt points (x, y).

        Returns an array of the broadcast shape of ``x`` and ``y``; NaN where the
        point is outside the object's footprint.
        """
        u, v = self.to_object_frame(
            np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        )
        length, width, height = self.size_m
        out = np.full(np.broadcast(u, v).shape, np.nan)
        if self.shape == ShapeKind.BOX:
            inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
            out[inside] = height
        elif self.shape == ShapeKind.CYLINDER:
            r = width / 2
            inside = (np.abs(u) <= length / 2) & (np.abs(v) <= r)
            out[inside] = r + np.sqrt(np.maximum(r * r - v[inside] ** 2, 0.0))
        else:
            hm = self.heightmap_m
            assert hm is not None
            rows, cols = hm.shape
            # cell centres at (i - (rows-1)/2) * cell
            fi = u / self.cell_m + (rows - 1) / 2
            fj = v / self.cell_m + (cols - 1) / 2
            inside = (fi >= 0) & (fi <= rows - 1) & (fj >= 0) & (fj <= cols - 1)
            i0 = np.clip(np.floor(fi[inside]).astype(int), 0, rows - 2)
            j0 = np.clip(np.floor(fj[inside]).astype(int), 0, cols - 2)
            a = fi[inside] - i0
            b = fj[inside] - j0
            h = (
                hm[i0, j0] * (1 - a) * (1 - b)
                + hm[i0 + 1, j0] * a * (1 - b)
                + hm[i0, j0 + 1] * (1 - a) * b
                + hm[i0 + 1, j0 + 1] * a * b
            )
            vals = np.where(h > 1e-5, h, np.nan)
            out[inside] = vals
        return out + self.z_m

    def thickness(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Length (m) of the vertical chord through the object at belt points (x, y): what an
        X-ray along z crosses. A box's height, a lump's height field (flat base), a lying
        cylinder's ``2 sqrt(r² − v²)``; 0 outside the footprint."""
        if self.shape == ShapeKind.CYLINDER:
            u, v = self.to_object_frame(
                np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            )
            r = self.size_m[1] / 2
            inside = (np.abs(u) <= self.size_m[0] / 2) & (np.abs(v) <= r)
            out: FloatArray = np.where(inside, 2.0 * np.sqrt(np.maximum(r * r - v * v, 0.0)),
                                       0.0)
            return out
        top = self.top_height(x, y) - self.z_m
        thick: FloatArray = np.where(np.isfinite(top), top, 0.0)
        return thick



def scene_height(
    objects: list[SceneObject], x: FloatArray, y: FloatArray
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Height map of a scene and the index of the visible (topmost) object at each point.

    ``x`` and ``y`` are belt-frame coordinates of equal shape. Returns
    ``(z, index)`` where ``z`` is 0 on bare belt and ``index`` is -1 there,
    otherwise the position in ``objects`` of the object seen from above.
    """
    z = np.zeros(np.broadcast(x, y).shape)
    idx = np.full(z.shape, -1, dtype=np.int64)
    for k, obj in enumerate(objects):
        r = obj.footprint_radius_m()
        near = (np.abs(x - obj.x_m) <= r) & (np.abs(y - obj.y_m) <= r)
        if not near.any():
            continue
        h = obj.top_height(x[near], y[near])
        sub_z = z[near]
        sub_i = idx[near]
        better = np.isfinite(h) & (h > sub_z)
        sub_z[better] = h[better]
        sub_i[better] = k
        z[near] = sub_z
        idx[near] = sub_i
    return z, idx
