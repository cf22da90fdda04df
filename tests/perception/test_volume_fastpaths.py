"""The fast paths of the volume code give exactly what the plain formulations give.

Issue 6 (speed) replaced whole-map passes by work on the few cells that need it: the dropout
fill runs at the holes only, the thin-object test is an erosion instead of a distance
transform, per-object gradients and quantiles are computed on the object's window. Each
test here compares one of them with the straightforward version it replaced, bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from perception.volume import HeightMapConfig, build_heightmap
from perception.volume.measure import _median, _percentile95, _window_gradient
from perception.volume.segment import _disc


def _filter2d_fill(height: np.ndarray, known: np.ndarray, iterations: int) -> np.ndarray:
    """The dropout fill as a whole-map normalized convolution (cv2.filter2D)."""
    v = np.where(known, height, 0.0).astype(np.float32)
    have = known.copy()
    kernel = np.ones((3, 3), np.float32)
    for _ in range(iterations):
        hole = ~have
        if not hole.any():
            break
        w = have.astype(np.float32)
        num = cv2.filter2D(v * w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        den = cv2.filter2D(w, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        mean = num / np.maximum(den, np.float32(1e-6))
        reach = hole & (den > 0)
        v[reach] = mean[reach]
        have |= reach
    v[~have] = 0.0
    return v.astype(np.float64)


def test_dropout_fill_equals_the_normalized_convolution() -> None:
    rng = np.random.default_rng(3)
    cell = 0.004
    # a belt with 0-2 mm of texture (below the 3 mm occlusion margin: no shadows), one point
    # per cell, 25 % of them and a few blocks dropped
    ii, jj = np.mgrid[0:70, 0:90]
    keep = rng.random(ii.shape) > 0.25
    keep[10:16, 20:27] = False
    keep[40:48, 60:63] = False
    x = (ii[keep] + 0.5) * cell
    y = (jj[keep] + 0.5) * cell
    z = rng.uniform(0.0, 0.002, x.size)
    cfg = HeightMapConfig(cell_m=cell, fill_iterations=3)
    hm = build_heightmap(np.column_stack([x, y, z]), sensor_xyz=np.array([0.1, 0.2, 0.9]),
                         config=cfg, bounds=(0.0, 70 * cell - 1e-9, 0.0, 90 * cell - 1e-9))
    known = hm.count > 0
    assert known.mean() < 0.8  # the fill has work to do
    np.testing.assert_array_equal(hm.height, _filter2d_fill(hm.height, known, 3))


def test_thin_pieces_by_erosion_equal_the_distance_transform() -> None:
    rng = np.random.default_rng(5)
    for radius in (1.5, 2.0, 3.0, 4.2):
        for _ in range(5):
            blobs = ndimage.binary_dilation(rng.random((80, 100)) > 0.985, iterations=3)
            strips = np.zeros_like(blobs)
            strips[rng.integers(0, 80, 6)] = True  # one-cell wires across the map
            labels, n = ndimage.label(blobs | strips)
            half_width = ndimage.maximum(ndimage.distance_transform_edt(labels > 0), labels,
                                         np.arange(1, n + 1))
            core = cv2.erode((labels > 0).astype(np.uint8), _disc(radius),
                             borderType=cv2.BORDER_CONSTANT, borderValue=1)
            thick = np.zeros(n + 1, bool)
            thick[labels[core > 0]] = True
            np.testing.assert_array_equal(thick[1:], np.asarray(half_width) > radius)


def test_window_gradient_equals_the_whole_map_gradient() -> None:
    rng = np.random.default_rng(7)
    h = rng.normal(0.0, 0.01, (40, 50))
    gi, gj = (np.asarray(g) for g in np.gradient(h, 0.004))
    for si, sj in ((slice(0, 7), slice(0, 50)), (slice(12, 30), slice(3, 4)),
                   (slice(39, 40), slice(45, 50)), (slice(5, 40), slice(0, 1))):
        wi, wj = _window_gradient(h, si, sj, 0.004)
        np.testing.assert_array_equal(wi, gi[si, sj])
        np.testing.assert_array_equal(wj, gj[si, sj])


def test_partition_quantiles_equal_numpy() -> None:
    rng = np.random.default_rng(9)
    for n in [1, 2, 3, 4, 5, 6, 19, 20, 21, 101, 1000, 1001]:
        for scale in (1e-3, 0.05):
            h = rng.random(n) * scale
            hr = np.round(h, 4)  # ties
            for a in (h, hr):
                assert _percentile95(a) == float(np.percentile(a, 95))
                assert _median(a) == float(np.median(a))
