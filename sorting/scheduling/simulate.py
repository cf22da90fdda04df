"""Event-driven evaluation of a pick policy on a stream.

Objects become visible to the policy when they pass the vision point
(``Stream.visible_x_m``); whenever something changes (an object appears, an arm comes
back to standby, a pick fails, an arm faults or recovers, a policy's wake-up time
passes) every idle arm asks the policy for its next pick. The simulator executes the
pick with the arm model's exact timing (:meth:`Problem.timing`): the arm leaves
standby, meets the object at ``t_pick``, and is back at standby at ``t_free``. A pick can
fail (``fail`` callback: the object stays on the belt and goes back to the policy) and
arms can fault (the pending pick is aborted, the object goes back).

Per arm: picks, failed picks, busy time, span (first pick's start to last return),
idle time in the span, picks/min over the span and the kinematic limit
``60 / mean(approach + cycle)`` of its picks.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from sorting.scheduling.problem import Problem

#: (object index, arm index, attempt number from 0) → True if that pick fails
FailFn = Callable[[int, int, int], bool]


@dataclass(frozen=True)
class ArmFault:
    """Arm ``arm`` (name) is down from ``t_s`` until ``until_s`` (None: for good)."""

    arm: str
    t_s: float
    until_s: float | None = None


@dataclass
class SimView:
    """What a policy may see: pending objects (visible, not picked, not in a pick) and arms."""

    problem: Problem
    pending: set[int]
    arm_free_s: NDArray[np.float64]
    arm_up: NDArray[np.bool_]
    attempts: dict[int, int] = field(default_factory=dict)


class Policy(Protocol):
    name: str

    def reset(self, problem: Problem) -> None:
        """Forget everything; a new stream starts."""
        ...

    def choose(self, now_s: float, arm: int, view: SimView) -> tuple[int | None, float | None]:
        """Next pick for idle ``arm`` at ``now_s``: ``(object index, None)`` to start it now,
        or ``(None, wake_s)`` to wait (until ``wake_s`` or the next event; None: next event)."""
        ...


@dataclass(frozen=True)
class PickRecord:
    object_id: int
    arm: str
    t_pick_s: float
    value_eur: float
    class_name: str
    success: bool


@dataclass
class ArmStats:
    name: str
    picks: int = 0
    failed: int = 0
    busy_s: float = 0.0
    span_s: float = 0.0
    idle_s: float = 0.0
    value_eur: float = 0.0
    picks_per_min: float = 0.0
    limit_per_min: float = 0.0

    @property
    def saturation(self) -> float:
        """Achieved picks/min over the kinematic limit (0–1)."""
        return self.picks_per_min / self.limit_per_min if self.limit_per_min > 0 else 0.0


@dataclass(frozen=True)
class MissedObject:
    object_id: int
    class_name: str
    value_eur: float
    priority: int


@dataclass
class SimResult:
    """Outcome of one policy on one stream (values in EUR, times in s)."""

    policy: str
    value_eur: float
    value_available_eur: float
    arms: list[ArmStats]
    picks: list[PickRecord]
    missed: list[MissedObject]
    decision_s: list[float] = field(default_factory=list)
    exact: bool = True

    @property
    def priority_missed(self) -> list[MissedObject]:
        return [m for m in self.missed if m.priority > 0]

    def valuable_missed(self, n: int = 5) -> list[MissedObject]:
        """The ``n`` most valuable missed objects."""
        return sorted(self.missed, key=lambda m: -m.value_eur)[:n]


_ARRIVE, _FREE, _WAKE, _PICK, _FAULT, _RECOVER = range(6)


def simulate(
    problem: Problem, policy: Policy, *, fail: FailFn | None = None,
    faults: Sequence[ArmFault] = (), time_decisions: bool = False,
) -> SimResult:
    """Run ``policy`` on ``problem``; see the module docstring. Deterministic given inputs."""
    policy.reset(problem)
    na = problem.n_arms
    names = [a.name for a in problem.arms]
    view = SimView(problem, set(), np.full(na, problem.t_ref), np.ones(na, dtype=bool))
    events: list[tuple[float, int, int, int, int]] = []
    seq = 0

    def push(t: float, kind: int, a: int = -1, i: int = -1) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, a, i))
        seq += 1

    for i in range(problem.n):
        if problem.ok[i].any():
            push(float(problem.visible_t[i]), _ARRIVE, i=i)
    for f in faults:
        if f.arm not in names:
            from sorting.scheduling.errors import ArmFaultError

            raise ArmFaultError(f"fault names unknown arm {f.arm!r} (arms: {names})")
        push(f.t_s, _FAULT, names.index(f.arm))
        if f.until_s is not None:
            push(f.until_s, _RECOVER, names.index(f.arm))
    stats = [ArmStats(n) for n in names]
    first_start = np.full(na, np.inf)
    last_free = np.full(na, -np.inf)
    cycle_sum = np.zeros(na)
    busy = np.zeros(na, dtype=bool)
    current: list[tuple[int, float, float, int] | None] = [None] * na  # (obj, t_pick, t_free, gen)
    gen = [0] * na
    picked: set[int] = set()
    records: list[PickRecord] = []
    decisions: list[float] = []
    while events:
        t, _, kind, a, i = heapq.heappop(events)
        if kind == _ARRIVE:
            view.pending.add(i)
        elif kind == _FREE:
            cur = current[a]
            if cur is not None and cur[3] == i:  # i carries the generation
                current[a] = None
                busy[a] = False
        elif kind == _PICK:
            cur = current[a]
            if cur is None or cur[3] != i:
                continue  # aborted by a fault
            obj = cur[0]
            attempt = view.attempts.get(obj, 0)
            view.attempts[obj] = attempt + 1
            ok = not (fail is not None and fail(obj, a, attempt))
            o = problem.objects[obj]
            records.append(PickRecord(o.id, names[a], t, o.value_eur, o.class_name, ok))
            if ok:
                picked.add(obj)
                stats[a].picks += 1
                stats[a].value_eur += o.value_eur
            else:
                stats[a].failed += 1
                view.pending.add(obj)
        elif kind == _FAULT:
            view.arm_up[a] = False
            cur = current[a]
            if cur is not None and cur[1] > t:  # not gripped yet: abort, object back
                view.pending.add(cur[0])
                stats[a].busy_s -= cur[2] - t
                cycle_sum[a] -= cur[2] - t
                last_free[a] = t
                view.arm_free_s[a] = t
                current[a] = None
                busy[a] = False
                gen[a] += 1
        elif kind == _RECOVER:
            view.arm_up[a] = True
            view.arm_free_s[a] = max(view.arm_free_s[a], t)
        # drop objects nobody can catch any more
        gone = [j for j in view.pending if problem.deadline[j] < t]
        for j in gone:
            view.pending.discard(j)
        for b in range(na):
            if busy[b] or not view.arm_up[b] or view.arm_free_s[b] > t + 1e-12:
                continue
            t0 = time.perf_counter() if time_decisions else 0.0
            choice, wake = policy.choose(t, b, view)
            if time_decisions:
                decisions.append(time.perf_counter() - t0)
            if choice is None:
                if wake is not None and wake > t:
                    push(wake, _WAKE, b)
                continue
            obj = choice
            tm = problem.timing(obj, b, t)
            if tm is None or obj not in view.pending:
                continue  # a policy proposed the impossible: ignore, wait for the next event
            view.pending.discard(obj)
            busy[b] = True
            gen[b] += 1
            current[b] = (obj, tm.t_pick_s, tm.t_free_s, gen[b])
            view.arm_free_s[b] = tm.t_free_s
            stats[b].busy_s += tm.t_free_s - tm.t_start_s
            cycle_sum[b] += tm.t_free_s - tm.t_start_s
            first_start[b] = min(first_start[b], tm.t_start_s)
            last_free[b] = max(last_free[b], tm.t_free_s)
            push(tm.t_pick_s, _PICK, b, gen[b])
            push(tm.t_free_s, _FREE, b, gen[b])
    for b, s in enumerate(stats):
        n_att = s.picks + s.failed
        if n_att:
            s.span_s = float(last_free[b] - first_start[b])
            s.idle_s = max(0.0, s.span_s - s.busy_s)
            s.picks_per_min = 60.0 * n_att / s.span_s if s.span_s > 0 else 0.0
            s.limit_per_min = 60.0 * n_att / float(cycle_sum[b])
    pickable = [i for i in range(problem.n) if problem.ok[i].any()]
    missed = [MissedObject(problem.objects[i].id, problem.objects[i].class_name,
                           problem.objects[i].value_eur, int(problem.priority[i]))
              for i in pickable if i not in picked]
    return SimResult(
        policy=policy.name, value_eur=sum(s.value_eur for s in stats),
        value_available_eur=float(problem.value[pickable].sum()) if pickable else 0.0,
        arms=stats, picks=records, missed=missed, decision_s=decisions,
    )
