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
  filled with the first known surface beyond it, away from the sensor (what the
  shadow falls on: the belt behind a box stays belt, a flat part in the shadow of
  a tall one keeps its height), or the belt if there is none within the longest
  shadow; the part of the run longer than the occluder's shadow is the occluder's
  own edge, lost at the depth edge, and gets the occluder's height;
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
    occluded, floor = _shadows(mean, known2, x0, y0, c, sensor, cfg)
    filled_mean = _fill(mean, known2, occluded, cfg.fill_iterations, floor)
    return HeightMap(
        height=filled_mean,
        count=count.reshape(rows, cols).astype(np.int64),
        filled=~known2,
        x0=float(x0),
        y0=float(y0),
        cell_m=c,
    )


def _shadows(
    values: FloatArray,
    known: BoolArray,
    x0: float,
    y0: float,
    c: float,
    sensor: FloatArray,
    cfg: HeightMapConfig,
) -> tuple[BoolArray, FloatArray]:
    """Occluded holes and the height to give each (see the module docstring).

    A hole is occluded when its line of sight from the belt to the sensor passes more than
    ``occlusion_margin_m`` under a known cell. Walking from it towards the sensor finds the
    occluder (height ``h_n``, the first known cell), walking away the first known cell
    beyond (``h_f``, at ``s_f``; the belt if none). An object of height ``h_n`` whose edge
    lies ``D`` from the nadir casts a shadow ``(h_n - h_f) D / (H - h_n)`` long on ``h_f``
    (``H`` the sensor height); holes within that of the far cell are in the shadow and get
    ``h_f``; the rest of the run is the occluder's own edge, lost at the depth edge, and
    gets ``h_n``. Returns ``(occluded mask, fill values)``, both (rows, cols).
    """
    rows, cols = values.shape
    occ_map = np.zeros((rows, cols), dtype=bool)
    fill = np.zeros((rows, cols), dtype=np.float64)
    # only holes with something above the belt within the longest shadow can be occluded
    raised = np.where(known, values, 0.0) > cfg.occlusion_margin_m
    if not raised.any():
        return occ_map, fill
    # nothing in this frame stands taller than its highest known cell
    top = min(cfg.max_height_m, float(np.max(np.where(known, values, 0.0))))
    far = float(np.hypot(abs(sensor[0]) + abs(x0) + rows * c, abs(sensor[1]) + abs(y0) + cols * c))
    rad = min(int(np.ceil(top * far / max(float(sensor[2]), 1e-9) / c)), max(rows, cols))
    near_raised = cv2.dilate(raised.astype(np.uint8), np.ones((2 * rad + 1, 2 * rad + 1),
                                                              np.uint8)).astype(bool)
    hi, hj = np.nonzero(~known & near_raised)
    if hi.size == 0:
        return occ_map, fill
    hx = x0 + (hi + 0.5) * c
    hy = y0 + (hj + 0.5) * c
    dx, dy = sensor[0] - hx, sensor[1] - hy
    dist = np.maximum(np.hypot(dx, dy), 1e-9)
    ux, uy = dx / dist, dy / dist
    h_sensor = max(float(sensor[2]), 1e-9)
    rise = h_sensor / dist  # height gained per metre towards the sensor
    # beyond max_height / rise the line of sight is above anything on the belt
    reach = np.minimum(top / rise, dist)
    n_steps = int(np.ceil(float(reach.max()) / c))
    occ = np.zeros(hi.size, dtype=bool)
    h_near = np.zeros(hi.size)
    s_near = np.zeros(hi.size)
    seen = np.zeros(hi.size, dtype=bool)
    for k in range(1, n_steps + 1):
        s = k * c
        active = (s <= reach) & ~occ
        if not active.any():
            break
        ii = np.floor((hx + s * ux - x0) / c).astype(np.int64)
        jj = np.floor((hy + s * uy - y0) / c).astype(np.int64)
        inside = active & (ii >= 0) & (ii < rows) & (jj >= 0) & (jj < cols)
        kn = np.zeros(hi.size, dtype=bool)
        kn[inside] = known[ii[inside], jj[inside]]
        z = np.zeros(hi.size)
        z[kn] = values[ii[kn], jj[kn]]
        first = kn & ~seen
        h_near[first], s_near[first] = z[first], s
        seen |= kn
        occ |= kn & (z > s * rise + cfg.occlusion_margin_m)
    oi = np.nonzero(occ)[0]
    if oi.size == 0:
        return occ_map, fill
    # walk away from the sensor from the occluded holes for the surface the shadow falls on
    ox, oy, oux, ouy = hx[oi], hy[oi], -ux[oi], -uy[oi]
    o_reach = top / rise[oi] + c
    h_far = np.zeros(oi.size)
    s_far = np.zeros(oi.size)
    found = np.zeros(oi.size, dtype=bool)
    for k in range(1, int(np.ceil(float(o_reach.max()) / c)) + 1):
        s = k * c
        active = (s <= o_reach) & ~found
        if not active.any():
            break
        ii = np.floor((ox + s * oux - x0) / c).astype(np.int64)
        jj = np.floor((oy + s * ouy - y0) / c).astype(np.int64)
        inside = active & (ii >= 0) & (ii < rows) & (jj >= 0) & (jj < cols)
        hit = np.zeros(oi.size, dtype=bool)
        hit[inside] = known[ii[inside], jj[inside]]
        h_far[hit], s_far[hit] = values[ii[hit], jj[hit]], s
        found |= hit
    hn = h_near[oi]
    edge_d = dist[oi] - s_near[oi]  # the occluder's known edge from the nadir
    shadow = np.maximum(hn - h_far, 0.0) * edge_d / np.maximum(h_sensor - hn, 1e-6)
    in_shadow = ~found | (s_far - 0.5 * c <= shadow + 0.5 * c)
    occ_map[hi[oi], hj[oi]] = True
    fill[hi[oi], hj[oi]] = np.where(in_shadow, h_far, hn)
    return occ_map, fill


def _fill(
    values: FloatArray,
    known: BoolArray,
    occluded: BoolArray,
    iterations: int,
    floor: FloatArray,
) -> FloatArray:
    """Fill holes: an occluded one with ``floor`` (see :func:`_shadows`), any other from
    its known 3 x 3 neighbours' mean, growing inwards one ring per pass (a dropout on a
    surface; at an edge, the edge then falls half-way)."""
    v = np.where(known, values, 0.0).astype(np.float32)
    v[occluded] = floor[occluded]
    known = known | occluded
    have = known.copy()
    kernel = np.ones((3, 3), np.float32)
    for _ in range(max(1, iterations)):
        hole = ~have
        if not hole.any():
            break
        w = have.astype(np.float32)
        num = cv2.filter2D(v * w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        den = cv2.filter2D(w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        mean = num / np.maximum(den, np.float32(1e-6))
        reach = hole & (den > 0)
        v[reach] = mean[reach]
        have = have | reach
    v[~have] = 0.0
    return v.astype(np.float64)
