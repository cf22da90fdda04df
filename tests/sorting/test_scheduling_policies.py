"""Online scheduler vs FIFO, greedy and the hindsight optimum on small generated streams.

Streams: 2 arms (0.2 s approach + 0.8 s cycle = 60 picks/min each), 12 s of sparse /
medium / dense arrivals, seeds 1–3; the hindsight MILP is exact on them (durations and
window openings on its 0.1 s grid) and solves in well under a second each.
"""

from __future__ import annotations

import functools

import pytest

from sorting.scheduling.evaluate import Evaluation, evaluate
from sorting.scheduling.problem import Problem
from sorting.scheduling.stream import generate_stream, stream_from_spec

SEEDS = (1, 2, 3)


@functools.cache
def _eval(density: str, seed: int) -> Evaluation:
    stream = stream_from_spec(generate_stream(density, seed, duration_s=12.0, n_arms=2))
    return evaluate(Problem(stream), time_limit_s=30.0)


def _share(density: str, policy: str) -> float:
    got = sum(_eval(density, s).results[policy].value_eur for s in SEEDS)
    ref = sum(_eval(density, s).results["optimum"].value_eur for s in SEEDS)
    return got / ref


@pytest.mark.parametrize("density", ["sparse", "medium", "dense"])
def test_optimum_is_exact_and_bounds_every_policy(density: str) -> None:
    for seed in SEEDS:
        ev = _eval(density, seed)
        assert ev.optimum is not None and ev.optimum.exact
        for name in ("online", "fifo", "greedy"):
            # an upper bound: no policy may beat it (1e-6 EUR: float sums)
            assert ev.results[name].value_eur <= ev.optimum.bound_eur + 1e-6, (name, seed)


def test_value_share_of_optimum() -> None:
    # sparse: every object fits, all policies must get everything
    assert _share("sparse", "online") == pytest.approx(1.0, abs=1e-9)
    # issue goal 97 % on every density; on these 12 s streams the online planner measures
    # 100 % (medium) and 98.8 % (dense), greedy 98.2 % and 93.3 %
    assert _share("medium", "online") >= 0.97
    assert _share("dense", "online") >= 0.97
    # the cross-arm assignment must beat the greedy baseline at high density
    assert _share("dense", "online") > _share("dense", "greedy")


def test_online_beats_fifo_by_15_points_when_dense() -> None:
    assert _share("dense", "online") - _share("dense", "fifo") >= 0.15


def test_arms_run_at_their_kinematic_limit_when_dense() -> None:
    # issue: ≥ 95 % of 1/cycle at saturation; measured 95.6–100 % per arm on these streams
    for seed in SEEDS:
        for arm in _eval("dense", seed).results["online"].arms:
            assert arm.limit_per_min == pytest.approx(60.0)
            assert arm.saturation >= 0.95, (seed, arm)


def test_no_reachable_li_ion_is_missed() -> None:
    for density in ("medium", "dense"):
        for seed in SEEDS:
            ev = _eval(density, seed)
            for name in ("online", "optimum"):
                assert ev.results[name].priority_missed == [], (density, seed, name)
