"""Volume accuracy against simulator truth the pipeline never sees (spawned catalog objects).

Scenes: catalog objects (default line mix) placed apart in the view of a 320 x 240 sensor at
0.9 m (the resolution proposed for the line; 2.8 mm per pixel on the belt), rendered with the
depth simulator's full noise model (range noise, flying pixels, specular/dark dropout).
Targets from issue 6: median |relative volume error| <= 3 % for boxes (prismatic), <= 10 % for
cylinders and lumps, mass (volume x true density) <= 10 %. Measured on these scenes: boxes
1.0 %, lumps 8.2 %, cylinders 5.5 % (6 of 7 found), mass 2.0 %. The cylinder figure rests on
few objects and the undercut correction rarely fires; the cylinder-only check below holds a
larger sample at the level this path reaches.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration import PinholeCamera
from perception.catalog import load_catalog
from perception.sensors.depth import DepthSensorSim
from perception.volume import VolumeEstimator
from perception.volume.evaluate import Match, error_table, scene_matches
from sorting.sim.spawner import ObjectSpawner

N_SCENES = 8
OBJECTS_PER_SCENE = 8


@pytest.fixture(scope="module")
def matches() -> list[Match]:
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 240, hfov_deg=52.0)
    est = VolumeEstimator(cam)
    spawner = ObjectSpawner(load_catalog(), np.random.default_rng(11),
                            mix={"weee": 0.6, "scrap": 0.25, "slag": 0.15})
    sim = DepthSensorSim(cam, np.random.default_rng(12))
    return scene_matches(spawner.spawn, np.random.default_rng(13), cam, est, sim, N_SCENES,
                         OBJECTS_PER_SCENE)


def test_lumps_within_ten_percent(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["lump"]["found"] >= 8
    assert table["lump"]["median"] <= 0.10


def test_cylinders_within_ten_percent(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["cylinder"]["found"] >= 5
    assert table["cylinder"]["median"] <= 0.10


def test_boxes_and_mass(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["box"]["found"] >= 20
    assert table["box"]["median"] <= 0.03  # the target (measured 1.0 %)
    assert table["all"]["mass_median"] <= 0.10


def test_most_objects_found(matches: list[Match]) -> None:
    # missed: sub-pixel parts (tantalum capacitors 2-5 mm, 3 mm thin pouches, 4 mm cables)
    found = sum(m.estimate is not None for m in matches)
    assert found / len(matches) >= 0.85


def test_uncertainty_covers_most_errors(matches: list[Match]) -> None:
    z = [abs(m.estimate.volume_m3 - m.truth.volume_m3()) / m.estimate.volume_u_m3
         for m in matches if m.estimate is not None and m.estimate.volume_u_m3 > 0]
    # k = 2 intervals should hold at least ~80 % of the objects
    assert np.mean(np.asarray(z) < 2.0) >= 0.8


def test_cylinder_mix_within_ten_percent() -> None:
    """A larger sample of lying cylinders: Li-ion cells, capacitors, cables (320 x 240).

    Measured: median 7.2 %, 42 of 48 found (the missed ones are 4-7 mm cables and capacitors,
    one to two pixels across).
    """
    cam = PinholeCamera.looking_down(2.0, 0.0, 0.9, 320, 240, hfov_deg=52.0)
    est = VolumeEstimator(cam)
    mix = {"li_ion_cylindrical_cell": 1.0, "aluminium_electrolytic_capacitor": 1.0,
           "cable_piece": 1.0}
    spawner = ObjectSpawner(load_catalog(), np.random.default_rng(11), mix=mix)
    sim = DepthSensorSim(cam, np.random.default_rng(12))
    table = error_table(scene_matches(spawner.spawn, np.random.default_rng(13), cam, est, sim, 6))
    assert table["cylinder"]["found"] >= 0.8 * table["cylinder"]["n"]
    assert table["cylinder"]["median"] <= 0.10
