"""Partial-volume cells at an object's edge, read as a step: part of the cell behind the full
object, the rest behind bare belt.

A detector cell integrates the photons of its whole area, so a cell that an object's edge
crosses measures the *mean transmission* ``T = f T_full + (1 − f)`` of its covered share
``f`` (transmission ``T_full``) and the bare belt beside it. Its log-attenuation
``−ln T`` is far below the mean of the log-attenuations (``f · A_full``) once the object is
dense: half a cell behind 3 cm of copper scrap (``A_full ≈ 5``) reads ``A ≈ 0.7`` where the
mass is that of ``A ≈ 2.5``. Summed over an object's rim this weighs a narrow dense bar
~10 % light, a broad plate ~2 %.

For an object whose sides are steep (a box: sheet, bar, device housing), the cells of its
rim are inverted as such a step (:func:`step_edges`): the full attenuation ``A_full`` is
the median of the object's deep cells nearby (at least ``edge_depth + 1`` cells inside its
outline, within ``window`` cells), and ``f = (1 − T) / (1 − T_full)``; the cell then holds
``f · ρt(A_full)``. A rim cell within noise of ``A_full`` is left as it is. Objects with
tapering sides (a cylinder lying down, a rounded lump) are not steps: their rim cells hold
less than ``A_full`` for real, and the step reading would weigh them heavy (a lying cell
+7 %, a slag lump +3 %, where the plain reading is −3 % and −1 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from perception.xrt.errors import XrtDataError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: a rim cell is read as a step only where its transmission exceeds the full one's by this
#: many of the full cells' noise (else noise alone would lift full cells)
STEP_MIN_SIGMA = 3.0


@dataclass(frozen=True)
class StepEdges:
    """Per cell: the covered share ``coverage`` (1 where the cell is read as it is) and the
    full log-attenuation ``a_full`` behind the covered part (the cell's own elsewhere)."""

    coverage: FloatArray
    a_full: FloatArray

    @property
    def stepped(self) -> int:
        """How many cells are read as a step."""
        return int(np.count_nonzero(self.coverage < 1.0))


def cell_grid(cell_s_m: NDArray[np.floating], cell_y_m: NDArray[np.floating],
              cell_area_m2: float) -> tuple[IntArray, IntArray] | None:
    """Row (along the belt) and column (across) of each cell of an X-ray view from the cells'
    belt positions, or None where a view of one row or one column leaves a spacing unknown.
    The across-belt spacing is the smallest gap between distinct columns; the along-belt one
    is ``cell_area_m2`` over it (a cell is one pixel wide and one encoder step long)."""
    s = np.asarray(cell_s_m, dtype=np.float64)
    y = np.asarray(cell_y_m, dtype=np.float64)
    if s.shape != y.shape or s.ndim != 1:
        raise XrtDataError(f"cell_s_m {s.shape} and cell_y_m {y.shape}: expected equal 1-D")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(y))) or not cell_area_m2 > 0:
        raise XrtDataError("cell positions must be finite and cell_area_m2 > 0")
    ys = np.unique(np.round(y, 6))
    if ys.size < 2:
        return None
    dy = float(np.min(np.diff(ys)))
    ds = cell_area_m2 / dy
    rows = np.round((s - s.min()) / ds).astype(np.int64)
    cols = np.round((y - y.min()) / dy).astype(np.int64)
    if np.unique(rows).size < 2:
        return None
    return rows, cols


def step_edges(a_high: NDArray[np.floating], rows: IntArray, cols: IntArray,
               noise_a_high: float, edge_depth: int = 2, window: int = 2) -> StepEdges:
    """Read the rim cells of one object as steps (see the module docstring). ``rows`` and
    ``cols`` place each cell on the view's grid (:func:`cell_grid`); the rim is every cell
    within ``edge_depth`` cells of the outside of the object's cells."""
    a = np.asarray(a_high, dtype=np.float64)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    if not a.shape == r.shape == c.shape or a.ndim != 1:
        raise XrtDataError(f"a_high {a.shape}, rows {r.shape}, cols {c.shape}: expected equal "
                           "1-D")
    coverage = np.ones_like(a)
    a_full = a.copy()
    if a.size == 0:
        return StepEdges(coverage, a_full)
    pad = window + 1
    r = r - r.min() + pad
    c = c - c.min() + pad
    inside = np.zeros((int(r.max()) + pad + 1, int(c.max()) + pad + 1), dtype=bool)
    inside[r, c] = True
    depth = ndimage.distance_transform_cdt(inside, metric="chessboard")
    deep = np.full(inside.shape, np.nan)
    deep_sel = depth[r, c] > edge_depth
    deep[r[deep_sel], c[deep_sel]] = a[deep_sel]
    sigma0 = max(float(noise_a_high), 0.0)
    for k in np.flatnonzero(~deep_sel):
        win = deep[r[k] - window:r[k] + window + 1, c[k] - window:c[k] + window + 1]
        near = win[np.isfinite(win)]
        if near.size == 0:
            continue   # a thin object: no cell of it is surely full
        ref = float(np.median(near))
        t0, t_ref = np.exp(-a[k]), np.exp(-ref)
        # the full cells' transmission noise: sigma(A) T = sigma0 exp(A/2) exp(-A)
        if ref <= 0 or t0 - t_ref <= STEP_MIN_SIGMA * sigma0 * np.exp(-ref / 2):
            continue
        coverage[k] = min(max((1.0 - t0) / (1.0 - t_ref), 0.0), 1.0)
        a_full[k] = ref
    return StepEdges(coverage, a_full)
