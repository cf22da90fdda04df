"""A second object in one X-ray view: the region whose dual-energy ratio reads another
material than the object's own.

The line's other sensors look from above: an object lying under another (a steel sheet
under a keyboard) or hidden by it for the most part is seen by neither the camera nor the 3D
sensor, and the X-ray view of the pile goes to the one object they tracked. But the
scanner sees through both: where they overlap each ray crosses two materials, and its
low/high log-attenuation ratio is neither's. Within one view of an object of one material
that ratio is the same everywhere up to counting noise (beam hardening is taken out by
reading it against a reference material's table at the cell's own ``A_high``), so a
connected region of cells whose ratio departs from the object's own by far more than
noise is something else: an object under or over it, or one beside it that touched it.

:func:`foreign_region` finds it. Its inputs are the view's cells, the track's footprint
(cells the tracked object covers, as the camera and the 3D sensor outlined it) and the
reference table (the track's class's material). Per interior cell (not on the view's
outermost rings, whose partial-volume cells read every ratio low;
``RATIO_MIN_A <= A_high <= RATIO_MAX_A``):

    d = ln(A_low / A_low,ref(ρt_ref(A_high)))

The object's own cells are those in its footprint; where their ``d`` splits in two clusters
(Otsu's threshold, both clusters large and apart by more than the contrast) the own cells
are the larger cluster. A cell is foreign when ``|d − d_own|`` exceeds
``max(k · √(σ_d² + s_own²), min_contrast)``, ``σ_d`` its counting noise and ``s_own``
the own cells' robust spread. Where a stack is dense the ratios of all materials converge
(beam hardening: a steel plate under a thick keyboard reads within 1 % of the keyboard's
ratio) or the cells are opaque, but the thickness steps: a cell is foreign too where its
``A_high`` stands far above the own cells' median — more than ``STEP_SIGMA`` of their spread
(and ``STEP_MIN_A``) on a flat object, whose own cells spread less than ``UNIFORM_SPREAD`` of
their median, else more than ``step_factor`` times it (the centre of a lump or a lying
cylinder is up to ~1.5× its median). The largest 8-connected component of such cells, when it
holds ``min_cells`` cells and the own cells keep ``min_own_share`` of the interior, is the
other object, with the rim cells nearer to it than to the own cells.

Where the other object lies inside the footprint (``stacked``) its cells hold both objects;
:attr:`ForeignRegion.own_a_low` / ``own_a_high`` (the median of the own cells next to the
region) is what the tracked object attenuates there, ``own_rho_t`` its mass thickness in the
reference material. The other object's stacked cells are to be read behind that layer
(:class:`~perception.xrt.physics.LayeredTable`): subtracting log-attenuations would be
exact for one energy only, and with the polychromatic beam the second layer's photons were
hardened by the first, which makes any material read lighter.

What it cannot see: objects of one material side by side, or under an object whose own
thickness varies (a lump); an object hidden under a dense one whose cells are opaque reads
as the step alone, with no ratio to name its material. A device whose parts are of
different materials would read as several objects: the simulator's devices are
homogeneous, real ones are not (see ``BENCHMARKS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from perception.xrt.errors import XrtDataError
from perception.xrt.physics import AttenuationTable

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_EIGHT = np.ones((3, 3), dtype=bool)

#: cells read for their ratio: enough attenuation for a ratio, short of opaque
RATIO_MIN_A = 0.05
RATIO_MAX_A = 6.0
#: a thickness step counts only above this much A_high over the own cells' median
STEP_MIN_A = 0.3
#: own cells whose A_high spreads less than this share of their median are one flat layer;
#: on them a step counts from this many of their spreads
UNIFORM_SPREAD = 0.05
STEP_SIGMA = 10.0


@dataclass(frozen=True)
class ForeignRegion:
    """Cells of a view that belong to another object (``cells``), those of them inside the
    tracked object's footprint (``stacked``: both objects on the ray), and what the tracked
    object's own layer attenuates there (medians of its cells next to the region)."""

    cells: BoolArray
    stacked: BoolArray
    own_a_low: float
    own_a_high: float
    own_rho_t: float
    contrast: float

    def own_part(self, a_low: FloatArray, a_high: FloatArray) -> tuple[BoolArray, FloatArray,
                                                                      FloatArray]:
        """The tracked object's cells: (which cells, their A_low, A_high), the stacked ones
        holding its own layer alone."""
        keep = ~self.cells | self.stacked
        lo = np.where(self.stacked, self.own_a_low, a_low)[keep]
        hi = np.where(self.stacked, self.own_a_high, a_high)[keep]
        return keep, lo, hi



def ratio_deviation(a_low: FloatArray, a_high: FloatArray, table: AttenuationTable
                    ) -> FloatArray:
    """``ln(A_low / A_low,ref)`` at each cell's ``A_high`` under ``table``'s material (NaN
    where a cell is outside ``RATIO_MIN_A..RATIO_MAX_A``)."""
    lo = np.asarray(a_low, dtype=np.float64)
    hi = np.asarray(a_high, dtype=np.float64)
    ok = (hi >= RATIO_MIN_A) & (hi <= RATIO_MAX_A) & (lo > 0)
    out = np.full(hi.shape, np.nan)
    if ok.any():
        pred = table.a_low(table.rho_t(hi[ok]))
        out[ok] = np.log(lo[ok] / np.maximum(pred, 1e-9))
    return out


def _otsu(x: FloatArray) -> float | None:
    """The split of ``x`` that maximises the between-cluster variance (None below 4 values)."""
    v = np.sort(x)
    n = v.size
    if n < 4:
        return None
    c = np.cumsum(v)
    k = np.arange(1, n)
    m0 = c[:-1] / k
    m1 = (c[-1] - c[:-1]) / (n - k)
    score = k * (n - k) * (m1 - m0) ** 2
    i = int(np.argmax(score))
    return float(0.5 * (v[i] + v[i + 1]))


def foreign_region(a_low: FloatArray, a_high: FloatArray, rows: NDArray[np.int64],
                   cols: NDArray[np.int64], inside: BoolArray, table: AttenuationTable,
                   noise_a_high: float, *, min_cells: int = 25, k: float = 5.0,
                   min_contrast: float = 0.08, min_own_share: float = 0.2,
                   step_factor: float = 2.5) -> ForeignRegion | None:
    """The region of another object in one view (see the module docstring), or None.
    ``rows``/``cols`` place the cells on the view's grid (:func:`~perception.xrt.cell_grid`),
    ``inside`` marks the cells within the tracked object's footprint."""
    lo = np.asarray(a_low, dtype=np.float64)
    hi = np.asarray(a_high, dtype=np.float64)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    ins = np.asarray(inside, dtype=bool)
    if not lo.shape == hi.shape == r.shape == c.shape == ins.shape or lo.ndim != 1:
        raise XrtDataError(f"a_low {lo.shape}, a_high {hi.shape}, rows {r.shape}, cols "
                           f"{c.shape}, inside {ins.shape}: expected equal 1-D")
    if lo.size < 2 * min_cells:
        return None
    pad = 3
    r = r - r.min() + pad
    c = c - c.min() + pad
    grid = np.zeros((int(r.max()) + pad + 1, int(c.max()) + pad + 1), dtype=bool)
    grid[r, c] = True
    depth = ndimage.distance_transform_cdt(grid, metric="chessboard")[r, c]
    d = ratio_deviation(lo, hi, table)
    interior = (depth > 2) & np.isfinite(d)
    # counting noise of d: var(A) ≈ σ0² e^A per layer (the low layer's σ0 taken as the high's)
    s0 = max(float(noise_a_high), 1e-4)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sig = s0 * np.sqrt(np.exp(np.minimum(lo, 30.0)) + (lo / np.maximum(hi, 1e-9)) ** 2
                           * np.exp(np.minimum(hi, 30.0))) / np.maximum(lo, 1e-9)
    own = interior & ins
    if np.count_nonzero(own) < min_cells:
        return None
    split = _otsu(d[own])
    if split is not None:
        a_sel, b_sel = own & (d <= split), own & (d > split)
        if (min(np.count_nonzero(a_sel), np.count_nonzero(b_sel)) >= min_cells and abs(
                float(np.median(d[b_sel])) - float(np.median(d[a_sel]))) > min_contrast):
            own = a_sel if np.count_nonzero(a_sel) >= np.count_nonzero(b_sel) else b_sel
    d_own = float(np.median(d[own]))
    s_own = 1.4826 * float(np.median(np.abs(d[own] - d_own)))
    dev = np.abs(d - d_own)
    flagged = interior & (dev > np.maximum(k * np.sqrt(sig**2 + s_own**2), min_contrast))
    # a step in thickness no convex object of one material has (the stack over the
    # overlap; where it is opaque its ratio cannot be read)
    level = float(np.median(hi[own]))
    spread = 1.4826 * float(np.median(np.abs(hi[own] - level)))
    if spread <= UNIFORM_SPREAD * level:
        # a plate or a box lying flat: any plateau far above its own level is a second layer
        step = hi > level + max(STEP_MIN_A, STEP_SIGMA * spread)
    else:
        # a lump or a cylinder: its centre is up to ~1.5x its median, a stack far more
        step = (hi > step_factor * level) & (hi > level + STEP_MIN_A)
    flagged |= (depth > 2) & step
    if np.count_nonzero(flagged) < min_cells:
        return None
    fgrid = np.zeros_like(grid)
    fgrid[r[flagged], c[flagged]] = True
    labels, n = ndimage.label(fgrid, structure=_EIGHT)
    if n == 0:
        return None
    sizes = np.bincount(labels[r[flagged], c[flagged]], minlength=n + 1)
    best = int(np.argmax(sizes))
    if sizes[best] < min_cells:
        return None
    comp = labels[r, c] == best
    rest = interior & ~comp
    if np.count_nonzero(rest) < min_own_share * np.count_nonzero(interior):
        return None
    # rim cells (and interior cells too noisy to read) nearer the region than the own cells
    near_comp = ndimage.distance_transform_cdt(~_mask(grid.shape, r[comp], c[comp]),
                                               metric="chessboard")[r, c]
    near_own = ndimage.distance_transform_cdt(~_mask(grid.shape, r[rest], c[rest]),
                                              metric="chessboard")[r, c]
    cells = comp | (~interior & (near_comp < near_own))
    # the own layer next to the region: own cells within 4 cells of it
    ring = rest & (near_comp <= 4)
    ref = ring if np.count_nonzero(ring) >= 8 else rest
    return ForeignRegion(cells=cells, stacked=cells & ins,
                         own_a_low=float(np.median(lo[ref])),
                         own_a_high=float(np.median(hi[ref])),
                         own_rho_t=float(table.rho_t(np.array([np.median(hi[ref])]))[0]),
                         contrast=float(np.median(d[comp]) - d_own))


def _mask(shape: tuple[int, ...], r: NDArray[np.int64], c: NDArray[np.int64]) -> BoolArray:
    m = np.zeros(shape, dtype=bool)
    m[r, c] = True
    return m
