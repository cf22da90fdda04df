"""Volume accuracy against simulator truth the pipeline never sees (spawned catalog objects).

Scenes: catalog objects (default line mix) placed apart in the view of a 320 x 240 sensor at
0.9 m (the resolution proposed for the line; 2.8 mm per pixel on the belt), rendered with the
depth simulator's full noise model (range noise, flying pixels, specular/dark dropout).
Targets from issue 6: median |relative volume error| <= 10 % for cylinders and lumps, mass
(volume x true density) <= 10 %. The cylinder target is not met yet (xfail, strict).
Boxes: the issue's target is 3 %; this path reaches about
3-3.5 % here (tall boxes are over-estimated by their far-side shadow), so the test holds the
measured level (4 %) to catch regressions and the report says the 3 % target is not met.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration import PinholeCamera
from perception.catalog import load_catalog
from perception.sensors.depth import DepthSensorSim
from perception.volume import VolumeEstimator
from perception.volume.evaluate import Match, error_table, make_scene, match_objects, truth_index
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
    rng = np.random.default_rng(13)
    out: list[Match] = []
    for s in range(N_SCENES):
        objs = make_scene(spawner.spawn, rng, cam, OBJECTS_PER_SCENE, first_id=100 * s)
        res = est.process_frame(sim.render_frame(objs, 0.0).points_optical)
        out += match_objects(res.objects, res.labels, objs, truth_index(res.heightmap, objs))
    return out


def test_lumps_within_ten_percent(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["lump"]["found"] >= 8
    assert table["lump"]["median"] <= 0.10


@pytest.mark.xfail(strict=True, reason="issue 6 target not met yet: lying cylinders of 9-23 mm "
                   "are classified PRISMATIC, so the undercut correction is not applied; median "
                   "error ~14 % at 320 x 240")
def test_cylinders_within_ten_percent(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["cylinder"]["found"] >= 5
    assert table["cylinder"]["median"] <= 0.10


def test_boxes_and_mass(matches: list[Match]) -> None:
    table = error_table(matches)
    assert table["box"]["found"] >= 20
    assert table["box"]["median"] <= 0.04  # regression guard, see the module docstring
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
