"""Height map of the scene above the belt plane on a regular grid in belt coordinates.

Grid convention: row ``i`` runs along belt x, column ``j`` across (belt y);
cell ``(i, j)`` covers ``x0 + [i, i+1) * cell_m`` by ``y0 + [j, j+1) * cell_m``.
Each cell holds the mean height (m) of the points falling in it, so range noise
averages out.

Holes (cells without a point: dropouts on specular or dark surfaces, the
discarded flying pixels at depth edges, and the belt hidden behind tall objects)
are filled in two ways:

- a hole whose line of sight to the sensor passes below the surface of a known
  cell nearer the sensor is *occluded*: what lies there cannot be seen, and it is
  filled with the lowest known neighbour (the belt behind a box stays belt);
- any other hole is a dropout and gets the mean of its known neighbours
  (normalized convolution, repeated ``fill_iterations`` times).

Cells still unknown after that are 0 (belt) and flagged in ``filled``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.volume.errors import BadCloudError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class HeightMapConfig:
    """``cell_m``: grid pitch (m); ``fill_iterations``: dropout-fill passes;
    ``occlusion_margin_m``: how far below a known surface a line of sight must pass
    for a hole to count as occluded; ``max_height_m``: tallest object expected."""

    cell_m: float = 0.004
    fill_iterations: int = 3
    occlusion_margin_m: float = 0.003
    max_height_m: float = 0.15

    def __post_init__(self) -> None:
        if self.cell_m <= 0 or self.max_height_m <= 0 or self.fill_iterations < 0:
            raise BadCloudError(
                "HeightMapConfig: cell_m and max_height_m must be > 0, fill_iterations >= 0"
            )


@dataclass
class HeightMap:
    """A height map (see the module docstring); arrays are (rows, cols).

    ``height`` mean height (m), holes filled; ``count`` points per cell;
    ``filled`` True where the value was filled in rather than measured.
    """

    height: FloatArray
    count: IntArray
    filled: BoolArray
    x0: float
    y0: float
    cell_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.height.shape[0]), int(self.height.shape[1]))

    def cell_centres(self) -> tuple[FloatArray, FloatArray]:
        """Belt x and y (m) of every cell centre, each of shape ``(rows, cols)``."""
        rows, cols = self.shape
        x = self.x0 + (np.arange(rows) + 0.5) * self.cell_m
        y = self.y0 + (np.arange(cols) + 0.5) * self.cell_m
        xx, yy = np.meshgrid(x, y, indexing="ij")
        return xx, yy

    def index_of(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray]:
        """Row and column of belt points (m); may fall outside the grid."""
        i = np.floor((np.asarray(x) - self.x0) / self.cell_m).astype(np.int64)
        j = np.floor((np.asarray(y) - self.y0) / self.cell_m).astype(np.int64)
        return i, j


def build_heightmap(
    xyz: FloatArray,
    *,
    sensor_xyz: FloatArray,
    config: HeightMapConfig | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    assume_finite: bool = False,
) -> HeightMap:
    """Grid N x 3 points ``(x, y, height)`` (m, belt-plane coordinates) into a :class:`HeightMap`.

    ``sensor_xyz`` is the sensor's optical centre in the same coordinates (for the
    occlusion test); ``bounds`` = ``(x_min, x_max, y_min, y_max)`` fixes the grid
    (default: the points' extent). Non-finite rows are ignored (unless the caller
    promises there are none with ``assume_finite``). Raises
    :class:`BadCloudError` when no finite point falls in the grid.
    """
    cfg = config or HeightMapConfig()
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3:
        raise BadCloudError(f"heightmap: expected N x 3 points, got shape {p.shape}")
    if not assume_finite:
        p = p[np.isfinite(p[:, 0]) & np.isfinite(p[:, 1]) & np.isfinite(p[:, 2])]
    if len(p) == 0:
        raise BadCloudError("heightmap: no finite points")
    c = cfg.cell_m
    if bounds is None:
        x_min, x_max = float(p[:, 0].min()), float(p[:, 0].max())
        y_min, y_max = float(p[:, 1].min()), float(p[:, 1].max())
    else:
        x_min, x_max, y_min, y_max = bounds
    x0, y0 = np.floor(x_min / c) * c, np.floor(y_min / c) * c
    rows = int(np.ceil((x_max - x0) / c)) + 1
    cols = int(np.ceil((y_max - y0) / c)) + 1
    i = ((p[:, 0] - x0) / c).astype(np.int64)
    j = ((p[:, 1] - y0) / c).astype(np.int64)
    keep = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
    if not keep.any():
        raise BadCloudError(f"heightmap: no point inside the grid bounds {bounds}")
    lin = (i * cols + j)[keep]
    h = p[keep, 2]
    n_cells = rows * cols
    count = np.bincount(lin, minlength=n_cells)
    total = np.bincount(lin, weights=h, minlength=n_cells)
    known = count > 0
    mean = np.where(known, total / np.maximum(count, 1), np.nan).reshape(rows, cols)
    known2 = known.reshape(rows, cols)
    sensor = np.asarray(sensor_xyz, np.float64)
    occluded = _occluded(mean, known2, x0, y0, c, sensor, cfg)
    filled_mean = _fill(mean, known2, occluded, cfg.fill_iterations)
    return HeightMap(
        height=filled_mean,
        count=count.reshape(rows, cols).astype(np.int64),
        filled=~known2,
        x0=float(x0),
        y0=float(y0),
        cell_m=c,
    )


def _occluded(
    hmax: FloatArray,
    known: BoolArray,
    x0: float,
    y0: float,
    c: float,
    sensor: FloatArray,
    cfg: HeightMapConfig,
    *,
    test_known: bool = False,
) -> BoolArray:
    """Holes whose line of sight from the belt to the sensor passes under a known surface.

    With ``test_known``, known cells instead, each from its own height.
    """
    rows, cols = hmax.shape
    hi, hj = np.nonzero(known if test_known else ~known)
    out = np.zeros((rows, cols), dtype=bool)
    if hi.size == 0:
        return out
    surf = np.where(known, hmax, -np.inf)
    hx = x0 + (hi + 0.5) * c
    hy = y0 + (hj + 0.5) * c
    dx, dy = sensor[0] - hx, sensor[1] - hy
    dist = np.hypot(dx, dy)
    ux, uy = dx / np.maximum(dist, 1e-9), dy / np.maximum(dist, 1e-9)
    rise = sensor[2] / np.maximum(dist, 1e-9)  # height gained per metre towards the sensor
    # beyond max_height / rise the line of sight is above anything on the belt
    reach = np.minimum(cfg.max_height_m / rise, dist)
    n_steps = int(np.ceil(float(reach.max()) / c)) if reach.size else 0
    z0 = hmax[hi, hj] if test_known else np.zeros(hi.size)
    occ = np.zeros(hi.size, dtype=bool)
    for k in range(1, n_steps + 1):
        s = k * c
        active = (s <= reach) & ~occ
        if not active.any():
            break
        ii = np.floor((hx + s * ux - x0) / c).astype(np.int64)
        jj = np.floor((hy + s * uy - y0) / c).astype(np.int64)
        inside = active & (ii >= 0) & (ii < rows) & (jj >= 0) & (jj < cols)
        z_surf = np.full(hi.size, -np.inf)
        z_surf[inside] = surf[ii[inside], jj[inside]]
        occ |= inside & (z_surf > z0 + s * rise + cfg.occlusion_margin_m)
    out[hi[occ], hj[occ]] = True
    return out


def _fill(values: FloatArray, known: BoolArray, occluded: BoolArray, iterations: int) -> FloatArray:
    """Fill holes from their known 3 x 3 neighbours, growing inwards one ring per pass.

    An occluded hole gets the lowest neighbour (the hidden belt behind an object); any other
    hole the mean (a dropout on a surface; at an edge, the edge then falls half-way).
    """
    v = np.where(known, values, 0.0).astype(np.float32)
    have = known.copy()
    kernel = np.ones((3, 3), np.float32)
    k8 = np.ones((3, 3), np.uint8)
    big = np.float32(1e3)
    for _ in range(max(1, iterations)):
        hole = ~have
        if not hole.any():
            break
        w = have.astype(np.float32)
        num = cv2.filter2D(v * w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        den = cv2.filter2D(w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        mean = num / np.maximum(den, np.float32(1e-6))
        lowest = cv2.erode(np.where(have, v, big), k8, borderType=cv2.BORDER_REPLICATE)
        reach = hole & (den > 0)
        use_low = reach & occluded
        use_mean = reach & ~use_low
        v[use_low] = lowest[use_low]
        v[use_mean] = mean[use_mean]
        have = have | reach
    v[~have] = 0.0
    return v.astype(np.float64)
