"""Run the online scheduler and the baselines on one stream and compare them.

``evaluate(stream, ["online", "fifo", "greedy", "optimum"])`` returns one
:class:`~sorting.scheduling.simulate.SimResult` per policy and the reference the
percentages are taken against: the proven hindsight optimum, or — when HiGHS stopped at
its time limit — its proven upper bound (so a percentage is never flattered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sorting.scheduling.baselines import (
    FifoPolicy,
    GreedyPolicy,
    OptimumPlan,
    hindsight_optimum,
    optimum_result,
)
from sorting.scheduling.errors import SchedulingError
from sorting.scheduling.online import OnlinePolicy, PlannerSettings
from sorting.scheduling.problem import Problem
from sorting.scheduling.simulate import Policy, SimResult, simulate
from sorting.scheduling.stream import Stream

POLICIES = ("online", "fifo", "greedy", "optimum")


@dataclass
class Evaluation:
    """Results per policy name; ``reference_eur`` is the optimum (or its bound) if solved."""

    results: dict[str, SimResult]
    optimum: OptimumPlan | None

    @property
    def reference_eur(self) -> float | None:
        if self.optimum is None:
            return None
        return self.optimum.objective_eur if self.optimum.exact else self.optimum.bound_eur

    def percent_of_optimum(self, policy: str) -> float | None:
        ref = self.reference_eur
        if ref is None or ref <= 0:
            return None
        return 100.0 * self.results[policy].value_eur / ref


def make_policy(name: str, settings: PlannerSettings | None = None) -> Policy:
    """A simulated policy by name (``online``, ``fifo``, ``greedy``)."""
    if name == "online":
        return OnlinePolicy(settings)
    if name == "fifo":
        return FifoPolicy()
    if name == "greedy":
        return GreedyPolicy()
    raise SchedulingError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")


def evaluate(
    stream: Stream | Problem, policies: Sequence[str] = POLICIES, *,
    settings: PlannerSettings | None = None, grid_s: float = 0.1,
    time_limit_s: float = 60.0, time_decisions: bool = False,
) -> Evaluation:
    """Simulate each policy on ``stream`` (and solve the hindsight optimum if asked)."""
    problem = stream if isinstance(stream, Problem) else Problem(stream)
    for name in policies:
        if name not in POLICIES:
            raise SchedulingError(
                f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")
    results: dict[str, SimResult] = {}
    plan = None
    for name in policies:
        if name == "optimum":
            plan = hindsight_optimum(problem, grid_s=grid_s, time_limit_s=time_limit_s)
            results[name] = optimum_result(problem, plan)
        else:
            results[name] = simulate(problem, make_policy(name, settings),
                                     time_decisions=time_decisions)
    return Evaluation(results, plan)
