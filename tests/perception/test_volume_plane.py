"""Belt-plane fit: accuracy, robustness to a mostly covered belt, prior mode, typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from perception.volume.errors import BadCloudError, PlaneNotFoundError
from perception.volume.plane import Plane, fit_plane, plane_frame, refine_plane

NOISE_M = 0.001


def _belt(rng: np.random.Generator, n: int, tilt: tuple[float, float] = (0.0, 0.0),
          z0: float = 0.0) -> np.ndarray:
    xy = rng.uniform(-0.4, 0.4, (n, 2))
    z = z0 + tilt[0] * xy[:, 0] + tilt[1] * xy[:, 1] + rng.normal(0, NOISE_M, n)
    return np.column_stack([xy, z])


def test_tilted_plane_recovered() -> None:
    rng = np.random.default_rng(0)
    pts = _belt(rng, 20000, tilt=(0.02, -0.01), z0=0.003)
    plane = fit_plane(pts, rng=np.random.default_rng(1))
    n_true = np.array([-0.02, 0.01, 1.0]) / np.linalg.norm([-0.02, 0.01, 1.0])
    # 20 k points with 1 mm noise: normal to 1e-4 rad, offset to 0.1 mm
    assert np.degrees(np.arccos(plane.normal @ n_true)) < 0.02
    assert abs(plane.signed_distance(np.array([[0.0, 0.0, 0.003]]))[0]) < 1e-4
    assert plane.rms_m == pytest.approx(NOISE_M, rel=0.1)


def test_belt_found_when_a_flat_object_covers_most_of_it() -> None:
    rng = np.random.default_rng(2)
    belt = _belt(rng, 6000)
    top = _belt(rng, 14000, z0=0.03)  # a big flat top: 83 % of the points
    top = top[(np.abs(top[:, 0]) < 0.33) & (np.abs(top[:, 1]) < 0.33)]
    belt = belt[(np.abs(belt[:, 0]) > 0.33) | (np.abs(belt[:, 1]) > 0.33)]
    pts = np.vstack([belt, top])
    assert len(top) > len(belt)  # the top alone would win a plain inlier count
    plane = fit_plane(pts, rng=np.random.default_rng(3))
    assert abs(plane.offset) < 5e-4  # the belt at z = 0, not the top at 0.03
    assert plane.normal[2] > 0.9999


def test_same_seed_same_plane() -> None:
    pts = _belt(np.random.default_rng(4), 5000)
    a = fit_plane(pts, rng=np.random.default_rng(9))
    b = fit_plane(pts, rng=np.random.default_rng(9))
    assert np.array_equal(a.normal, b.normal) and a.offset == b.offset


def test_prior_mode_refines_and_plane_frame_levels_it() -> None:
    rng = np.random.default_rng(5)
    pts = _belt(rng, 10000, tilt=(0.005, 0.0), z0=0.002)
    plane = refine_plane(pts, Plane.horizontal(0.0))
    rot, t = plane_frame(plane)
    levelled = pts @ rot.T + t
    # after levelling the belt lies at z = 0 with only the noise left
    assert abs(float(np.mean(levelled[:, 2]))) < 1e-4
    assert float(np.std(levelled[:, 2])) == pytest.approx(NOISE_M, rel=0.1)


def test_typed_errors() -> None:
    rng = np.random.default_rng(6)
    with pytest.raises(BadCloudError):
        fit_plane(np.full((100, 3), np.nan), rng=rng)
    with pytest.raises(BadCloudError):
        fit_plane(np.zeros((0, 3)), rng=rng)
    with pytest.raises(BadCloudError):
        fit_plane(np.zeros((10, 2)), rng=rng)
    # a vertical wall only: no plane within the allowed tilt of up
    wall = np.column_stack([rng.normal(0, 1e-3, 2000), rng.uniform(-1, 1, (2000, 2))])
    with pytest.raises(PlaneNotFoundError):
        fit_plane(wall, rng=rng)
    # scattered junk: nothing near the calibrated plane
    junk = rng.uniform(0.2, 2.0, (5000, 3))
    with pytest.raises(PlaneNotFoundError):
        refine_plane(junk, Plane.horizontal(0.0))
