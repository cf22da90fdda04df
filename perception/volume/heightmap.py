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
  own edge, lost at the depth edge, and gets the occluder's height. Where the
  occluder is not a flat top's edge but a curved one (the surface two cells nearer
  the sensor differs in slope by more than ``graze_ratio`` × the line of sight's:
  a lump's far flank grazed by the line of sight), the hidden surface lies somewhere
  between the far surface and that line, nearer the line on a convex flank: it gets
  ``graze_fill`` (3/4) of the way from the far surface up to the line;
- any other hole is a dropout and gets the mean of its known neighbours
  (normalized convolution, repeated ``fill_iterations`` times).

A shadow behind an occluder whose top runs flat (or bumpy) up to its edge is filled as
belt: a box's wall is vertical. Whether the occluder is a box or a rounded lump is known
only once its cells are measured, so every shadow hole is also kept in ``flanks``
(:class:`HiddenFlanks`) with the height it would get under a convex flank, ``flank_fill``
(all) of the way up to the line of sight (over a convex surface the line of sight that
grazes it is its upper bound), and the occluder's cell.
:func:`perception.volume.measure.measure_objects` adds them to an irregular object.

Cells still unknown after that are 0 (belt) and flagged in ``filled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    for a hole to count as occluded; ``graze_ratio``: how steep (relative to the line of
    sight) the surface at an occluder must be for it to count as a curved flank (``inf``
    turns this off); ``graze_fill``: where between the far surface (0) and the grazing line
    of sight (1) the hidden part of such a flank is put (0.75: on the bench's lumps median
    |error| 7.4 -> 6.9 %, p90 20.2 -> 15.4 %, against 0.5); ``flank_fill``: the same for
    the hidden flanks an irregular object's volume adds (:class:`HiddenFlanks`; 1: the line
    of sight, a convex flank's bound; the bench's lumps still read 2 % low in the median);
    ``max_height_m``: tallest object expected."""

    cell_m: float = 0.004
    fill_iterations: int = 3
    occlusion_margin_m: float = 0.003
    graze_ratio: float = 0.1
    graze_fill: float = 0.75
    flank_fill: float = 1.0
    max_height_m: float = 0.15

    def __post_init__(self) -> None:
        if self.cell_m <= 0 or self.max_height_m <= 0 or self.fill_iterations < 0:
            raise BadCloudError(
                "HeightMapConfig: cell_m and max_height_m must be > 0, fill_iterations >= 0"
            )
        for name in ("graze_fill", "flank_fill"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BadCloudError(f"HeightMapConfig: {name} must lie in [0, 1], got "
                                    f"{getattr(self, name)}")


@dataclass(frozen=True)
class HiddenFlanks:
    """Shadow holes filled lower than a convex flank would reach (as belt or the far surface
    behind a flat-topped occluder, ``graze_fill`` of the way under a grazed one): their
    ``rows``/``cols``, the extra height ``extra_m`` (m, > 0) each would hold at ``flank_fill``
    of the way up to the line of sight, and the occluder's cell (``occ_rows``/``occ_cols``)."""

    rows: IntArray
    cols: IntArray
    extra_m: FloatArray
    occ_rows: IntArray
    occ_cols: IntArray

    @classmethod
    def none(cls) -> HiddenFlanks:
        e = np.zeros(0, np.int64)
        return cls(e, e, np.zeros(0), e, e)


@dataclass
class HeightMap:
    """A height map (see the module docstring); arrays are (rows, cols).

    ``height`` mean height (m), holes filled; ``count`` points per cell;
    ``filled`` True where the value was filled in rather than measured; ``flanks`` the
    shadow holes that a rounded occluder's hidden flank would fill (:class:`HiddenFlanks`).
    """

    height: FloatArray
    count: IntArray
    filled: BoolArray
    x0: float
    y0: float
    cell_m: float
    flanks: HiddenFlanks = field(default_factory=HiddenFlanks.none)

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
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3:
        raise BadCloudError(f"heightmap: expected N x 3 points, got shape {p.shape}")
    if not assume_finite:
        p = p[np.isfinite(p[:, 0]) & np.isfinite(p[:, 1]) & np.isfinite(p[:, 2])]
    return build_heightmap_columns(p[:, 0], p[:, 1], p[:, 2], sensor_xyz=sensor_xyz,
                                   config=config, bounds=bounds)


def build_heightmap_columns(
    x: FloatArray,
    y: FloatArray,
    height: FloatArray,
    *,
    sensor_xyz: FloatArray,
    config: HeightMapConfig | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> HeightMap:
    """:func:`build_heightmap` for finite points given as three (N,) columns (m).

    The columns need not be contiguous; passing them apart spares the caller an N x 3
    array (gathering rows of one is slow in numpy). Raises :class:`BadCloudError` when no
    point falls in the grid.
    """
    cfg = config or HeightMapConfig()
    if len(x) == 0:
        raise BadCloudError("heightmap: no finite points")
    c = cfg.cell_m
    if bounds is None:
        x_min, x_max = float(np.min(x)), float(np.max(x))
        y_min, y_max = float(np.min(y)), float(np.max(y))
    else:
        x_min, x_max, y_min, y_max = bounds
    x0, y0 = np.floor(x_min / c) * c, np.floor(y_min / c) * c
    rows = int(np.ceil((x_max - x0) / c)) + 1
    cols = int(np.ceil((y_max - y0) / c)) + 1
    i = ((x - x0) / c).astype(np.int64)
    j = ((y - y0) / c).astype(np.int64)
    keep = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
    lin = i * cols + j
    h = height
    if not keep.all():
        if not keep.any():
            raise BadCloudError(f"heightmap: no point inside the grid bounds {bounds}")
        lin, h = lin[keep], h[keep]
    n_cells = rows * cols
    count = np.bincount(lin, minlength=n_cells)
    total = np.bincount(lin, weights=h, minlength=n_cells)
    known = count > 0
    mean = np.divide(total, count, out=np.full(n_cells, np.nan), where=known).reshape(rows, cols)
    known2 = known.reshape(rows, cols)
    sensor = np.asarray(sensor_xyz, np.float64)
    oi, oj, oh, flanks = _shadows(mean, known2, x0, y0, c, sensor, cfg)
    filled_mean = _fill(mean, known2, (oi, oj, oh), cfg.fill_iterations)
    return HeightMap(
        height=filled_mean,
        count=count.reshape(rows, cols).astype(np.int64, copy=False),
        filled=~known2,
        x0=float(x0),
        y0=float(y0),
        cell_m=c,
        flanks=flanks,
    )


_MARCH_CELLS = 1 << 20
"""Largest (starts x steps) block :func:`_march` works on at once (bounds its memory)."""


def _shadows(
    values: FloatArray,
    known: BoolArray,
    x0: float,
    y0: float,
    c: float,
    sensor: FloatArray,
    cfg: HeightMapConfig,
) -> tuple[IntArray, IntArray, FloatArray, HiddenFlanks]:
    """Occluded holes and the height to give each (see the module docstring).

    A hole is occluded when its line of sight from the belt to the sensor passes more than
    ``occlusion_margin_m`` under a known cell. Walking from it towards the sensor finds the
    occluder (height ``h_n``, the first known cell), walking away the first known cell
    beyond (``h_f``, at ``s_f``; the belt if none). An object of height ``h_n`` whose edge
    lies ``D`` from the nadir casts a shadow ``(h_n - h_f) D / (H - h_n)`` long on ``h_f``
    (``H`` the sensor height); holes within that of the far cell are in the shadow and get
    ``h_f``; the rest of the run is the occluder's own edge, lost at the depth edge, and
    gets ``h_n``. Returns the occluded holes' rows, columns and fill values, and the shadow
    holes filled below what a convex flank would reach (:class:`HiddenFlanks`).
    """
    rows, cols = values.shape
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), HiddenFlanks.none())
    # only holes with something above the belt within the longest shadow can be occluded
    ground = np.where(known, values, 0.0)
    raised = ground > cfg.occlusion_margin_m
    if not raised.any():
        return none
    # nothing in this frame stands taller than its highest known cell
    top = min(cfg.max_height_m, float(np.max(ground)))
    far = float(np.hypot(abs(sensor[0]) + abs(x0) + rows * c, abs(sensor[1]) + abs(y0) + cols * c))
    rad = min(int(np.ceil(top * far / max(float(sensor[2]), 1e-9) / c)), max(rows, cols))
    hi, hj = np.nonzero(~known)
    # holes with a raised cell in the (2 rad + 1)^2 square around them, from an integral image
    integral = cv2.integral(raised.astype(np.uint8), sdepth=cv2.CV_32S)
    r0, r1 = np.maximum(hi - rad, 0), np.minimum(hi + rad + 1, rows)
    c0, c1 = np.maximum(hj - rad, 0), np.minimum(hj + rad + 1, cols)
    n_raised = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
    near = n_raised > 0
    hi, hj = hi[near], hj[near]
    if hi.size == 0:
        return none
    hx = x0 + (hi + 0.5) * c
    hy = y0 + (hj + 0.5) * c
    dx, dy = sensor[0] - hx, sensor[1] - hy
    dist = np.maximum(np.hypot(dx, dy), 1e-9)
    ux, uy = dx / dist, dy / dist
    h_sensor = max(float(sensor[2]), 1e-9)
    rise = h_sensor / dist  # height gained per metre towards the sensor
    # beyond max_height / rise the line of sight is above anything on the belt
    reach = np.minimum(top / rise, dist)
    _, s_near, h_near, occ = _march(hx, hy, ux, uy, reach, known, values, x0, y0, c,
                                    rise=rise, margin=cfg.occlusion_margin_m)
    oi = np.nonzero(occ)[0]
    if oi.size == 0:
        return none
    # walk away from the sensor from the occluded holes for the surface the shadow falls on
    o_reach = top / rise[oi] + c
    found, s_far, h_far, _ = _march(hx[oi], hy[oi], -ux[oi], -uy[oi], o_reach, known, values,
                                    x0, y0, c)
    hn = h_near[oi]
    edge_d = dist[oi] - s_near[oi]  # the occluder's known edge from the nadir
    shadow = np.maximum(hn - h_far, 0.0) * edge_d / np.maximum(h_sensor - hn, 1e-6)
    in_shadow = ~found | (s_far - 0.5 * c <= shadow + 0.5 * c)
    fill = np.where(in_shadow, h_far, hn)
    # a curved flank (a lump's far side) is grazed by the line of sight: the surface at the
    # occluder climbs towards the sensor about as steeply as the line itself, where a box's
    # top is flat up to its edge. Under a grazed flank the hidden surface lies between the
    # far surface and the line of sight, nearer the line where the flank is convex.
    step = 2.0 * c
    bx = hx[oi] + (s_near[oi] + step) * ux[oi]
    by = hy[oi] + (s_near[oi] + step) * uy[oi]
    bi = np.floor((bx - x0) / c).astype(np.int64)
    bj = np.floor((by - y0) / c).astype(np.int64)
    ok = (bi >= 0) & (bi < rows) & (bj >= 0) & (bj < cols)
    bi, bj = np.where(ok, bi, 0), np.where(ok, bj, 0)
    ok &= known[bi, bj]
    slope = np.where(ok, (values[bi, bj] - hn) / step, 0.0)
    grazed = in_shadow & found & (np.abs(slope) > cfg.graze_ratio * rise[oi])
    sight = hn - s_near[oi] * rise[oi]  # the grazing line of sight over the hole
    fill = np.where(grazed, h_far + cfg.graze_fill * np.maximum(sight - h_far, 0.0), fill)
    # every shadow hole: what a rounded occluder would hide there, and where the occluder is
    # (its edge, s_near towards the sensor)
    rounded = h_far + cfg.flank_fill * np.maximum(sight - h_far, 0.0)
    under = in_shadow & found & (rounded > fill)
    fi = np.nonzero(under)[0]
    k = oi[fi]
    occ_i = np.floor((hx[k] + s_near[k] * ux[k] - x0) / c).astype(np.int64)
    occ_j = np.floor((hy[k] + s_near[k] * uy[k] - y0) / c).astype(np.int64)
    inside = (occ_i >= 0) & (occ_i < rows) & (occ_j >= 0) & (occ_j < cols)
    flanks = HiddenFlanks(hi[k][inside], hj[k][inside], (rounded - fill)[fi][inside],
                          occ_i[inside], occ_j[inside])
    return hi[oi], hj[oi], fill, flanks


def _march(
    px: FloatArray,
    py: FloatArray,
    ux: FloatArray,
    uy: FloatArray,
    limit: FloatArray,
    known: BoolArray,
    values: FloatArray,
    x0: float,
    y0: float,
    c: float,
    *,
    rise: FloatArray | None = None,
    margin: float = 0.0,
) -> tuple[BoolArray, FloatArray, FloatArray, BoolArray]:
    """Walk from each ``(px, py)`` along unit ``(ux, uy)`` in steps of ``c`` up to ``limit``
    (m), all starts and steps at once. Returns, per start, whether a known cell was met, the
    distance and height of the first one (0 if none), and, with ``rise``, whether a known
    cell at distance ``s`` stands more than ``margin`` above ``s * rise`` (the line of sight)."""
    rows, cols = known.shape
    n = px.size
    found = np.zeros(n, dtype=bool)
    s_hit = np.zeros(n)
    z_hit = np.zeros(n)
    above = np.zeros(n, dtype=bool)
    if n == 0:
        return found, s_hit, z_hit, above
    k_max = max(1, int(np.ceil(float(limit.max()) / c)))
    s = np.arange(1, k_max + 1) * c
    known_flat, values_flat = known.ravel(), values.ravel()
    block = max(1, _MARCH_CELLS // k_max)
    for a in range(0, n, block):
        b = min(n, a + block)
        ii = np.floor((px[a:b, None] + s * ux[a:b, None] - x0) / c).astype(np.int64)
        jj = np.floor((py[a:b, None] + s * uy[a:b, None] - y0) / c).astype(np.int64)
        inside = (s <= limit[a:b, None]) & (ii >= 0) & (ii < rows) & (jj >= 0) & (jj < cols)
        # flat indices (0 where outside, masked below): 1-D takes, not 2-D fancy indexing
        lin = np.where(inside, ii * cols + jj, 0)
        kn = inside & known_flat.take(lin)
        z = np.where(kn, values_flat.take(lin), 0.0)
        first = kn.argmax(axis=1)
        hit = kn[np.arange(b - a), first]
        found[a:b] = hit
        s_hit[a:b] = np.where(hit, s[first], 0.0)
        z_hit[a:b] = np.where(hit, z[np.arange(b - a), first], 0.0)
        if rise is not None:
            above[a:b] = (kn & (z > s * rise[a:b, None] + margin)).any(axis=1)
    return found, s_hit, z_hit, above


def _fill(
    values: FloatArray,
    known: BoolArray,
    occluded: tuple[IntArray, IntArray, FloatArray],
    iterations: int,
) -> FloatArray:
    """Fill holes: an occluded one (rows, columns, heights from :func:`_shadows`) with its
    height, any other from its known 3 x 3 neighbours' mean, growing inwards one ring per
    pass (a dropout on a surface; at an edge, the edge then falls half-way)."""
    rows, cols = values.shape
    # padded by a cell of nothing (weight 0), like filter2D's constant border
    pv = np.zeros((rows + 2, cols + 2), np.float32)
    pw = np.zeros((rows + 2, cols + 2), np.float32)
    pv[1:-1, 1:-1] = np.where(known, values, 0.0)
    pw[1:-1, 1:-1] = known
    oi, oj, oh = occluded
    pv[oi + 1, oj + 1] = oh
    pw[oi + 1, oj + 1] = 1.0
    hi, hj = np.nonzero(pw[1:-1, 1:-1] == 0)
    # the 3 x 3 sums are worked out at the holes only (few), summed in the order and float32
    # precision of cv2.filter2D with a box kernel; a hole's own value and weight are 0
    offsets = [(di, dj) for di in (0, 1, 2) for dj in (0, 1, 2)]
    for _ in range(max(1, iterations)):
        if hi.size == 0:
            break
        num = np.zeros(hi.size, np.float32)
        den = np.zeros(hi.size, np.float32)
        for di, dj in offsets:
            num += pv[hi + di, hj + dj]
            den += pw[hi + di, hj + dj]
        mean = num / np.maximum(den, np.float32(1e-6))
        reach = den > 0
        pv[hi[reach] + 1, hj[reach] + 1] = mean[reach]
        pw[hi[reach] + 1, hj[reach] + 1] = 1.0
        hi, hj = hi[~reach], hj[~reach]
    # (holes no pass reached are still 0: the belt)
    return pv[1:-1, 1:-1].astype(np.float64)
