"""Object segmentation on a height map, splitting objects that touch.

1. Foreground: cells higher than ``min_height_m`` above the belt.
2. Boundaries: cells where the height steps by more than ``step_m`` within
   their 3 x 3 neighbourhood (the wall between two touching objects of
   different height, or the valley between two domes), plus, when given, an
   edge mask from the RGB image resampled to the grid.
3. Seeds: connected components of foreground minus boundaries (object tops),
   eroded by one cell; seeds below ``min_seed_cells`` are dropped. Seeds that
   touch each other at the same height (two flat tops side by side) are split
   further where the distance transform has separate peaks (a neck).
4. Watershed from the seeds over the height-gradient image, limited to the
   foreground: each foreground cell joins the seed it reaches first.
5. Labels that touch along a border without a step or a valley (of the border
   cell pairs up on the objects, 60 % or more within ``step_m`` of each other and
   both above ``merge_ratio`` of the lower object's top, and no RGB edge there)
   are one object that noise broke into several seeds (e.g. the one-cell ridge of
   a thin lying cylinder), and are merged.
6. Thin objects (half-width at most ``thin_cells``: cables, wires, strips) that depth
   noise cut into pieces where their few millimetres of height dipped below
   ``min_height_m`` are joined again: pieces with tops within ``step_m`` of each other
   that are connected through cells above ``bridge_ratio * min_height_m`` (hysteresis: the
   low threshold only links, it adds no cells) are one object.
7. Objects under ``min_area_m2`` are discarded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]


@dataclass(frozen=True)
class SegmentConfig:
    """Thresholds of :func:`segment_heightmap` (m, m^2, cells)."""

    min_height_m: float = 0.003
    step_m: float = 0.008
    min_area_m2: float = 1e-4
    min_seed_cells: int = 2
    neck_ratio: float = 0.6
    merge_ratio: float = 0.7
    thin_cells: float = 3.0
    bridge_ratio: float = 0.5


def segment_heightmap(
    height: FloatArray,
    cell_m: float,
    config: SegmentConfig | None = None,
    *,
    edge_mask: BoolArray | None = None,
) -> IntArray:
    """Label image (rows, cols) int32: 0 belt, 1..K objects (see the module docstring).

    ``height`` in m above the belt; ``edge_mask`` optional bool array of the same
    shape (True on image edges from another sensor, e.g. the RGB camera).
    """
    cfg = config or SegmentConfig()
    h = np.asarray(height, dtype=np.float32)
    fg = h > cfg.min_height_m
    if not fg.any():
        return np.zeros(h.shape, dtype=np.int32)
    kernel = np.ones((3, 3), np.uint8)
    grad = cv2.dilate(h, kernel) - cv2.erode(h, kernel)
    boundary = grad > cfg.step_m
    # the outline of every object is a step too; a tall object's whole top must not vanish,
    # so the step test is relative to the cell's own height as well
    boundary &= grad > 0.5 * h
    if edge_mask is not None:
        boundary |= np.asarray(edge_mask, dtype=bool)
    core = (fg & ~boundary).astype(np.uint8)
    if cfg.min_seed_cells > 1:
        core = np.asarray(cv2.erode(core, np.ones((2, 2), np.uint8)), dtype=np.uint8)
    n_seed, seeds0 = cv2.connectedComponents(core, connectivity=4)
    seeds = _split_necks(np.asarray(seeds0, dtype=np.int32), n_seed, cfg)
    counts = np.bincount(seeds.ravel())
    small = counts < cfg.min_seed_cells
    small[0] = False
    seeds[small[seeds]] = 0
    labels = _watershed(seeds, grad, fg)
    labels = _merge_smooth(labels, h, cfg, edge_mask)
    labels = _bridge_thin(labels, h, cfg)
    labels = _relabel(labels, cfg.min_area_m2 / cell_m**2)
    return labels


def _bridge_thin(labels: IntArray, h: NDArray[np.float32], cfg: SegmentConfig) -> IntArray:
    """Join the pieces of a thin object linked through low cells (step 6 above)."""
    n = int(labels.max())
    if n < 2:
        return labels
    on = labels > 0
    on8 = on.astype(np.uint8)
    # a piece is thick when some cell of it lies farther than thin_cells (Euclidean) from
    # the belt: that cell survives an erosion by the disc of that radius (outside the map
    # counts as object, as in a distance transform)
    core = cv2.erode(on8, _disc(cfg.thin_cells), borderType=cv2.BORDER_CONSTANT,
                     borderValue=1)
    thin = np.ones(n + 1, bool)
    thin[labels[core > 0]] = False
    thin[0] = False
    if thin.sum() < 2:
        return labels
    tops = _label_max(h[on], labels[on], n).astype(np.float64)
    weak = (h > cfg.bridge_ratio * cfg.min_height_m) | on
    _, comp = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    sel = thin[labels]
    # the (component, piece) pairs, in a fixed order
    keys = np.unique(comp[sel].astype(np.int64) * (n + 1) + labels[sel])
    root = np.arange(n + 1, dtype=np.int32)
    groups: dict[int, list[int]] = {}
    for key in keys.tolist():
        groups.setdefault(key // (n + 1), []).append(key % (n + 1))
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda k: (-tops[k], k))
        for i, k in enumerate(members[1:], start=1):
            # join the highest earlier piece of like height (its root keeps the group)
            head = next((m for m in members[:i] if abs(tops[m] - tops[k]) <= cfg.step_m), None)
            if head is not None:
                root[k] = root[head]
    return root[labels]


def _disc(radius: float) -> NDArray[np.uint8]:
    """Structuring element: the cells whose centre lies within ``radius`` of the middle one."""
    r = int(np.floor(radius))
    d = np.arange(-r, r + 1, dtype=np.float64)
    return (np.sqrt(d[:, None] ** 2 + d[None, :] ** 2) <= radius).astype(np.uint8)


def _label_max(values: NDArray[np.floating], labels: IntArray, n: int) -> NDArray[np.floating]:
    """Largest of ``values`` per label 0..n (labels and values: the same 1-D cells); -inf
    for a label without cells. One unbuffered pass, not a sort as ``ndimage.maximum``."""
    out = np.full(n + 1, -np.inf, dtype=values.dtype)
    np.maximum.at(out, labels, values)
    return out


def _split_necks(seeds: IntArray, n_seed: int, cfg: SegmentConfig) -> IntArray:
    """Split a seed whose distance transform has two peaks joined by a narrow neck."""
    out = seeds.astype(np.int32)
    if n_seed <= 1:
        return out
    mask = (seeds > 0).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    peak = dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))
    next_label = n_seed
    slices = ndimage.find_objects(out, max_label=n_seed - 1)
    for lab, sl in enumerate(slices, start=1):
        if sl is None:
            continue
        # the test runs on the seed's bounding box: the components of its interior and
        # which of them hold a peak are the same as on the whole map
        region_w = seeds[sl] == lab
        dist_w = dist[sl]
        dmax = float(dist_w[region_w].max())
        if dmax < 3.0:
            continue
        # keep the interior whose distance exceeds neck_ratio * max; if it falls apart, split
        inner_w = (region_w & (dist_w > cfg.neck_ratio * dmax)).astype(np.uint8)
        n_in, lab_in_w = cv2.connectedComponents(inner_w, connectivity=8)
        if n_in <= 2:
            continue
        peak_w = peak[sl]
        peaks_per = [bool((peak_w & (lab_in_w == k)).any()) for k in range(1, n_in)]
        if sum(peaks_per) < 2:
            continue
        # (rare) the split itself on the whole map, so that the pieces' numbering and the
        # watershed's borders are those of the full-frame flood
        region = seeds == lab
        inner = (region & (dist > cfg.neck_ratio * dmax)).astype(np.uint8)
        n_in, lab_in = cv2.connectedComponents(inner, connectivity=8)
        sub = _watershed(lab_in.astype(np.int32), -dist.astype(np.float32), region)
        for k in range(2, n_in):
            out[sub == k] = next_label
            next_label += 1
    return out


def _watershed(seeds: IntArray, cost: NDArray[np.float32], mask: BoolArray) -> IntArray:
    """Grow ``seeds`` over ``mask`` in order of increasing ``cost`` (OpenCV watershed).

    Outside ``mask`` the cost is the maximum, so a flood crosses the belt only after
    every object has claimed its own outline; a ``mask`` component without a seed
    becomes an object of its own.
    """
    c = np.asarray(cost, dtype=np.float32)
    lo, hi = float(c[mask].min()), float(c[mask].max())
    scale = 254.0 / (hi - lo) if hi > lo else 0.0
    img8 = np.where(mask, np.clip((c - lo) * scale, 0, 254), 255).astype(np.uint8)
    markers = np.where(mask, seeds, 0).astype(np.int32)
    n_comp, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    seeded = np.zeros(n_comp, dtype=bool)
    seeded[comp[markers > 0]] = True
    unseeded = ~seeded
    unseeded[0] = False
    if unseeded.any():
        # every cell of an unseeded component is 0 in markers: number the components in order
        new_id = np.zeros(n_comp, dtype=np.int32)
        first = int(markers.max()) + 1
        new_id[unseeded] = np.arange(first, first + int(unseeded.sum()), dtype=np.int32)
        add = new_id[comp]
        markers = np.where(add > 0, add, markers)
    if markers.max() == 0:
        return markers
    seed_comp = np.zeros(int(markers.max()) + 1, dtype=np.int32)
    seed_comp[markers[markers > 0]] = comp[markers > 0]
    cv2.watershed(cv2.merge([img8, img8, img8]), markers)
    labels = np.where(mask & (markers > 0), markers, 0).astype(np.int32)
    # a label belongs to the mask component of its seed; cells claimed across the belt and
    # the watershed lines (-1) go to a neighbouring label of their own component
    wrong = (labels > 0) & (seed_comp[labels] != comp)
    labels[wrong] = 0
    # each pass gives every unlabelled cell the largest label among its 3 x 3 neighbours
    # (a 3 x 3 dilation), worked out only at those cells: they are few
    ti, tj = np.nonzero(mask & (labels == 0))
    if ti.size == 0:
        return labels
    pad = np.zeros((labels.shape[0] + 2, labels.shape[1] + 2), dtype=np.int32)
    pad[1:-1, 1:-1] = labels
    t_comp = comp[ti, tj]
    for _ in range(8):
        grown = pad[ti, tj]
        for di in (0, 1, 2):
            for dj in (0, 1, 2):
                if (di, dj) != (0, 0):
                    np.maximum(grown, pad[ti + di, tj + dj], out=grown)
        ok = (grown > 0) & (seed_comp[grown] == t_comp)
        if not ok.any():
            break  # nothing grew: the next passes would not either
        pad[ti[ok] + 1, tj[ok] + 1] = grown[ok]
        ti, tj, t_comp = ti[~ok], tj[~ok], t_comp[~ok]
        if ti.size == 0:
            break
    return pad[1:-1, 1:-1].copy()


def _merge_smooth(
    labels: IntArray, h: NDArray[np.float32], cfg: SegmentConfig, edge_mask: BoolArray | None
) -> IntArray:
    """Merge touching labels whose shared border has neither a step nor a valley."""
    n = int(labels.max())
    if n < 2:
        return labels
    on = labels > 0
    tops = _label_max(h[on], labels[on], n).astype(np.float64)
    tops[~np.isfinite(tops)] = 0.0
    edge = np.zeros(h.shape, bool) if edge_mask is None else np.asarray(edge_mask, bool)
    la_l, lb_l, ok_l = [], [], []
    for a_sl, b_sl in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = labels[a_sl], labels[b_sl]
        pair = (la > 0) & (lb > 0) & (la != lb)
        if not pair.any():
            continue
        ha, hb = h[a_sl][pair], h[b_sl][pair]
        a, b = la[pair], lb[pair]
        low_top = np.minimum(tops[a], tops[b])
        # only the border pairs up on the objects count (the flanks meet low anyway)
        high = np.maximum(ha, hb) > cfg.merge_ratio * low_top
        ok = ((np.abs(ha - hb) < cfg.step_m) & (np.minimum(ha, hb) > cfg.merge_ratio * low_top)
              & ~edge[a_sl][pair] & ~edge[b_sl][pair])
        la_l.append(np.minimum(a, b)[high])
        lb_l.append(np.maximum(a, b)[high])
        ok_l.append(ok[high])
    if not la_l:
        return labels
    a, b, ok = np.concatenate(la_l), np.concatenate(lb_l), np.concatenate(ok_l)
    key = a.astype(np.int64) * (n + 1) + b
    uniq, inv = np.unique(key, return_inverse=True)
    n_ok = np.bincount(inv, weights=ok.astype(np.float64))
    n_all = np.bincount(inv)
    parent = np.arange(n + 1)

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = int(parent[k])
        return k

    for u, good, tot in zip(uniq, n_ok, n_all, strict=True):
        if tot >= 2 and good >= 0.6 * tot:
            ra, rb = find(int(u // (n + 1))), find(int(u % (n + 1)))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    root = np.array([find(k) for k in range(n + 1)], dtype=np.int32)
    return root[labels]


def _relabel(labels: IntArray, min_cells: float) -> IntArray:
    counts = np.bincount(labels.ravel())
    keep = counts >= min_cells
    keep[0] = False
    new_id = np.zeros(len(counts), dtype=np.int32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new_id[labels]
