"""Objects in a stream of X-ray transmission lines: streaming connected components.

Lines arrive one by one as the belt moves (log-attenuations of both layers, per-pixel flags,
the encoder position at which each was taken). A cell belongs to an object when its
low-layer log-attenuation exceeds ``grow_a`` (the low layer has more photons and more
contrast than the high one) and its 8-connected component holds at least one cell above
``seed_a`` (10× the bare belt's noise) and at least ``min_cells`` cells (2: a 3 mm tantalum
capacitor, a CRM carrier the camera cannot pick out, leaves 2-3 cells above ``grow_a`` at the
3.1 mm pixel pitch; noise alone never reaches ``seed_a``); the component is then grown by
one cell all round (the partial-volume cells of its edge, whose attenuation is below the
threshold but not zero) unless such a cell belongs to another object. A component is
complete when a line without any of its cells has followed it; then it is emitted as an
:class:`XrtBlob` with every cell's values, and its cells are marked used so that later scans
of the buffered lines never find it again.

Bare-belt cells give the noise of ``A_high`` (a robust running estimate), which the mass's
uncertainty needs. A component that touches the first or last pixel of the line is
``truncated`` (it may go on beyond the detector); one still open after ``max_lines`` lines is
emitted truncated too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from perception.xrt.errors import XrtDataError
from perception.xrt.transmission import FLAG_DEAD, FLAG_OPAQUE

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class XrtBlob:
    """One object's cells: encoder position of each cell's line (m), detector column, both
    log-attenuations, and whether the high layer saw it as opaque; ``line_step_m`` is the mean
    encoder advance between lines, ``noise_a_high`` the bare-belt noise of ``A_high``."""

    positions_m: FloatArray
    cols: IntArray
    a_low: FloatArray
    a_high: FloatArray
    opaque: NDArray[np.bool_]
    line_step_m: float
    noise_a_high: float
    truncated: bool
    first_line: int
    last_line: int

    @property
    def cells(self) -> int:
        return int(self.cols.size)

    @property
    def opaque_share(self) -> float:
        return float(np.mean(self.opaque)) if self.opaque.size else 0.0


class LineSegmenter:
    """Streaming segmentation of transmission lines (see the module docstring).

    ``push`` one line at a time; it returns the objects that the line completed. ``finish``
    returns what is still open. Raises :class:`XrtDataError` when a line's width disagrees
    with the first line's or its values are not finite.
    """

    def __init__(self, seed_a: float = 0.03, grow_a: float = 0.012, min_cells: int = 2,
                 scan_every: int = 8, max_lines: int = 600) -> None:
        if not 0 < grow_a <= seed_a:
            raise XrtDataError(f"thresholds: need 0 < grow_a <= seed_a, got {grow_a}, {seed_a}")
        self.seed_a, self.grow_a = seed_a, grow_a
        self.min_cells, self.scan_every, self.max_lines = min_cells, scan_every, max_lines
        self.width: int | None = None
        self._low: list[FloatArray] = []
        self._high: list[FloatArray] = []
        self._flags: list[NDArray[np.uint8]] = []
        self._pos: list[float] = []
        self._used: list[NDArray[np.bool_]] = []
        self._first = 0            # absolute index of the first buffered line
        self._count = 0
        self.noise_a_high = 0.0
        self._noise_n = 0

    def push(self, a_low: NDArray[np.floating], a_high: NDArray[np.floating],
             flags: NDArray[np.integer], position_m: float) -> list[XrtBlob]:
        """Add one line; return the objects it completed."""
        lo = np.asarray(a_low, dtype=np.float64)
        hi = np.asarray(a_high, dtype=np.float64)
        fl = np.asarray(flags, dtype=np.uint8)
        if self.width is None:
            self.width = int(lo.size)
        if lo.shape != (self.width,) or hi.shape != (self.width,) or fl.shape != (self.width,):
            raise XrtDataError(f"line {self._count}: expected {self.width} pixels per layer and "
                               f"flag, got {lo.shape}, {hi.shape}, {fl.shape}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.isfinite(position_m)):
            raise XrtDataError(f"line {self._count}: non-finite attenuation or position")
        dead = fl == FLAG_DEAD
        self._low.append(np.where(dead, 0.0, lo))
        self._high.append(np.where(dead, 0.0, hi))
        self._flags.append(fl)
        self._pos.append(float(position_m))
        self._used.append(np.zeros(self.width, dtype=bool))
        self._count += 1
        if self._count % self.scan_every:
            return []
        return self._scan(final=False)

    def finish(self) -> list[XrtBlob]:
        """Emit every object still open (end of the stream)."""
        if not self._low:
            return []
        return self._scan(final=True)

    def _update_noise(self, hi: FloatArray, background: NDArray[np.bool_]) -> None:
        vals = hi[background]
        if vals.size < 16:
            return
        sigma = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
        self._noise_n += 1
        k = min(self._noise_n, 50)
        self.noise_a_high += (sigma - self.noise_a_high) / k

    def _scan(self, final: bool) -> list[XrtBlob]:
        lo = np.vstack(self._low)
        hi = np.vstack(self._high)
        used = np.vstack(self._used)
        n_rows = lo.shape[0]
        grow = (lo > self.grow_a) & ~used
        labels, _n = ndimage.label(grow, structure=_EIGHT)
        new_rows = slice(max(n_rows - self.scan_every, 0), n_rows)
        near = ndimage.binary_dilation(labels[new_rows] > 0, structure=_EIGHT, iterations=2)
        self._update_noise(hi[new_rows], ~near & ~used[new_rows])
        out: list[XrtBlob] = []
        keep_from = max(n_rows - 2, 0)
        slices = ndimage.find_objects(labels)
        for k, sl in enumerate(slices, start=1):
            if sl is None:
                continue
            comp = labels[sl] == k
            r0, r1 = sl[0].start, sl[0].stop - 1
            if not np.any(lo[sl][comp] > self.seed_a) or np.count_nonzero(comp) < self.min_cells:
                if r1 < n_rows - 2 or final:
                    continue
                keep_from = min(keep_from, r0)
                continue
            too_long = r1 - r0 + 1 >= self.max_lines
            if r1 >= n_rows - 1 and not (final or too_long):
                keep_from = min(keep_from, r0)      # may go on in the next lines
                continue
            out.append(self._blob(labels, k, sl, lo, hi, used, truncated_long=too_long))
        drop = keep_from
        if drop > 0:
            del self._low[:drop], self._high[:drop], self._flags[:drop]
            del self._pos[:drop], self._used[:drop]
            self._first += drop
        if final:
            self._low.clear()
            self._high.clear()
            self._flags.clear()
            self._pos.clear()
            self._used.clear()
            self._first = self._count
        return out

    def _blob(self, labels: IntArray, k: int, sl: tuple[slice, ...], lo: FloatArray,
              hi: FloatArray, used: NDArray[np.bool_], truncated_long: bool) -> XrtBlob:
        n_rows, width = lo.shape
        r0 = max(sl[0].start - 1, 0)
        r1 = min(sl[0].stop + 1, n_rows)
        c0 = max(sl[1].start - 1, 0)
        c1 = min(sl[1].stop + 1, width)
        win = labels[r0:r1, c0:c1]
        comp = win == k
        ring = ndimage.binary_dilation(comp, structure=_EIGHT) & (win == 0) & ~used[r0:r1, c0:c1]
        cells = comp | ring
        rr, cc = np.nonzero(cells)
        rows = rr + r0
        cols = cc + c0
        own = comp[rr, cc]
        for r, c in zip(rows[own], cols[own], strict=True):
            self._used[r][c] = True
        flags = np.vstack(self._flags)[rows, cols]
        pos = np.asarray(self._pos)
        step = float(np.mean(np.abs(np.diff(pos)))) if pos.size > 1 else 0.0
        truncated = truncated_long or bool(np.any(cols == 0) or np.any(cols == width - 1))
        return XrtBlob(
            positions_m=pos[rows], cols=cols.astype(np.int64), a_low=lo[rows, cols],
            a_high=hi[rows, cols], opaque=flags == FLAG_OPAQUE, line_step_m=step,
            noise_a_high=self.noise_a_high, truncated=truncated,
            first_line=self._first + int(rows.min()), last_line=self._first + int(rows.max()),
        )
