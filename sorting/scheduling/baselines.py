"""Baselines the online scheduler is measured against: FIFO, greedy by value, hindsight optimum.

FIFO and greedy are :class:`~sorting.scheduling.simulate.Policy` objects. An idle arm
considers the pending objects it can catch *without waiting* (already in its window when
the tool gets there); FIFO takes the one that entered first (earliest window end),
greedy the most valuable (safety-priority objects first in both). With nothing to
catch, the arm waits until the next object enters its reach.

:func:`hindsight_optimum` knows the whole stream in advance and solves a **time-indexed
MILP** with :func:`scipy.optimize.milp` (HiGHS). Time is cut into slots of ``grid_s``;
``x[i,a,k] = 1`` when arm ``a`` meets object ``i`` in slot ``k``::

    maximise   Σ_{i,a,k} w_i · x[i,a,k]                     (w_i = value + priority bonus)
    subject to Σ_{a,k} x[i,a,k] ≤ 1                          each object picked at most once
               Σ_{i,k : k−A_ia ≤ s < k+C_ia} x[i,a,k] ≤ 1    for every arm a and slot s:
                                                             one pick cycle at a time
               x[i,a,k] = 0 unless ⌊r_ia/Δ⌋ ≤ k ≤ ⌊d_ia/Δ⌋     the arm reaches the object
               x binary

with ``A_ia = ⌊approach_min/Δ⌋`` and ``C_ia = ⌊cycle_min/Δ⌋`` slots (the shortest approach
and cycle over the window). Flooring the durations and the window start relaxes the
continuous problem (any real schedule maps to a feasible slot schedule because
``⌊x⌋ − ⌊y⌋ ≥ ⌊x − y⌋``), so the MILP optimum is an **upper bound** on the value any
policy can capture; it is tight (the exact optimum) when the durations are multiples of
``Δ`` and constant over the window, as in the generated evaluation streams (0.2 s + 0.8 s
on a 0.05 s grid), up to picks that a policy could only make < Δ after the window opens.
Streams with more than ``max_objects`` pickable objects are solved in consecutive
time chunks that carry each arm's busy time across the cut; the result is then a
feasible lower bound, no longer exact, and ``exact = False`` says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from sorting.scheduling.errors import OptimumError
from sorting.scheduling.problem import PRIORITY_BONUS_EUR, Problem
from sorting.scheduling.simulate import ArmStats, MissedObject, PickRecord, SimResult, SimView


def _no_wait_candidates(
    now_s: float, arm: int, view: SimView
) -> tuple[np.ndarray, np.ndarray, float | None]:
    p = view.problem
    ids = np.fromiter(view.pending, dtype=np.int64, count=len(view.pending))
    if ids.size == 0:
        return ids, ids, None
    r, d, ap = p.r[ids, arm], p.d[ids, arm], p.appr_est[ids, arm]
    t = now_s + ap
    now_ok = (r <= t) & (t <= d)
    later = r - ap
    later = later[(later > now_s) & np.isfinite(later)]
    return ids[now_ok], d[now_ok], (float(later.min()) if later.size else None)


class FifoPolicy:
    """First reachable first: the catchable object that entered first (earliest deadline)."""

    name = "fifo"

    def reset(self, problem: Problem) -> None:
        pass

    def choose(self, now_s: float, arm: int, view: SimView) -> tuple[int | None, float | None]:
        ids, d, wake = _no_wait_candidates(now_s, arm, view)
        if ids.size == 0:
            return None, wake
        pri = view.problem.priority[ids] > 0
        key = d - 1e9 * pri
        return int(ids[int(np.argmin(key))]), None


class GreedyPolicy:
    """Greedy by value: the most valuable catchable object (safety priority first)."""

    name = "greedy"

    def reset(self, problem: Problem) -> None:
        pass

    def choose(self, now_s: float, arm: int, view: SimView) -> tuple[int | None, float | None]:
        ids, _, wake = _no_wait_candidates(now_s, arm, view)
        if ids.size == 0:
            return None, wake
        return int(ids[int(np.argmax(view.problem.eff_value[ids]))]), None


@dataclass(frozen=True)
class OptimumPlan:
    """Hindsight-optimum picks ``(object index, arm index, pick time s)``.

    ``objective_eur`` is the value of the picks; ``bound_eur`` the solver's proven upper
    bound (equal within HiGHS's relative gap when solved to optimality); ``exact`` is
    False when the stream was cut into chunks or a chunk stopped at its time limit.
    """

    picks: list[tuple[int, int, float]]
    objective_eur: float
    bound_eur: float
    exact: bool
    solve_s: float


@dataclass
class _Columns:
    obj: np.ndarray
    arm: np.ndarray
    slot: np.ndarray
    n_ap: np.ndarray
    n_cy: np.ndarray


def _columns(p: Problem, objs: list[int], busy_until: np.ndarray, grid_s: float) -> _Columns:
    t0 = p.t_ref
    cols: list[tuple[int, int, int, int, int]] = []
    for i in objs:
        for a in range(p.n_arms):
            if not p.ok[i, a]:
                continue
            k_lo = math.floor((p.r[i, a] - t0) / grid_s + 1e-9)
            k_hi = math.floor((p.d[i, a] - t0) / grid_s + 1e-9)
            n_ap = math.floor(p.appr_min[i, a] / grid_s + 1e-9)
            n_cy = math.floor(p.cyc_min[i, a] / grid_s + 1e-9)
            if math.isfinite(busy_until[a]):
                # the arm must be back from the previous chunk's last pick first
                k_lo = max(k_lo, math.ceil((busy_until[a] - t0) / grid_s - 1e-9) + n_ap)
            cols.extend((i, a, k, n_ap, n_cy) for k in range(k_lo, k_hi + 1))
    arr = np.array(cols, dtype=np.int64).reshape(-1, 5)
    return _Columns(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])


def _matrix(p: Problem, objs: list[int], c: _Columns) -> coo_matrix:
    """Rows: one per object (picked once), then one per (arm, slot) (one cycle at a time)."""
    nv = c.obj.size
    obj_row = np.full(p.n, -1, dtype=np.int64)
    obj_row[objs] = np.arange(len(objs))
    s_min = int((c.slot - c.n_ap).min())
    n_slots = int((c.slot + c.n_cy).max()) - s_min + 1
    span = c.n_ap + np.maximum(c.n_cy, 1)  # a variable occupies slots [k − A, k + C)
    rep = np.repeat(np.arange(nv), span)
    offs = np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span)
    slot = (c.slot - c.n_ap)[rep] + offs - s_min
    rows = np.concatenate([obj_row[c.obj], len(objs) + c.arm[rep] * n_slots + slot])
    cols = np.concatenate([np.arange(nv), rep])
    shape = (len(objs) + p.n_arms * n_slots, nv)
    return coo_matrix((np.ones(rows.size), (rows, cols)), shape=shape)


def _milp(
    weights: np.ndarray, mat: coo_matrix, time_limit_s: float, what: str,
    extra: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, float, bool]:
    cons = [LinearConstraint(mat.tocsr(), -np.inf, np.ones(mat.shape[0]))]
    if extra is not None:
        cons.append(LinearConstraint(extra[0][None, :], extra[1], np.inf))
    res = milp(c=-weights, constraints=cons, integrality=np.ones(weights.size),
               bounds=Bounds(0, 1), options={"time_limit": time_limit_s, "disp": False})
    if res.x is None:
        raise OptimumError(f"hindsight MILP {what} ({weights.size} variables): {res.message}")
    bound = -float(res.mip_dual_bound) if res.mip_dual_bound is not None else -float(res.fun)
    return res.x > 0.5, bound, res.status == 0


def _solve_chunk(
    p: Problem, objs: list[int], busy_until: np.ndarray, grid_s: float, time_limit_s: float
) -> tuple[list[tuple[int, int, float]], float, bool]:
    """Lexicographic: (1) most safety-priority picks, (2) most value keeping that many."""
    c = _columns(p, objs, busy_until, grid_s)
    if c.obj.size == 0:
        return [], 0.0, True
    what = f"({len(objs)} objects)"
    prio = (p.priority[c.obj] > 0).astype(float)
    extra = None
    optimal = True
    if prio.any():
        sel_p = np.flatnonzero(prio)
        pc = _Columns(c.obj[sel_p], c.arm[sel_p], c.slot[sel_p], c.n_ap[sel_p], c.n_cy[sel_p])
        pobjs = sorted(set(pc.obj.tolist()))
        x, _, ok1 = _milp(np.ones(sel_p.size), _matrix(p, pobjs, pc), time_limit_s,
                          what + " priority phase")
        optimal &= ok1
        extra = (prio, float(x.sum()) - 0.5)
    x, bound, ok2 = _milp(p.value[c.obj], _matrix(p, objs, c), time_limit_s, what, extra)
    sel = np.flatnonzero(x)
    picks = [(int(c.obj[j]), int(c.arm[j]), p.t_ref + float(c.slot[j]) * grid_s) for j in sel]
    return picks, bound, optimal and ok2


def hindsight_optimum(
    problem: Problem, grid_s: float = 0.1, max_objects: int = 400, time_limit_s: float = 120.0
) -> OptimumPlan:
    """Hindsight-optimal picks by the time-indexed MILP of the module docstring.

    A chunk that hits ``time_limit_s`` keeps HiGHS's best schedule (``exact = False``,
    ``bound_eur`` its proven bound). Raises :class:`OptimumError` if HiGHS finds none.
    """
    t_start = time.perf_counter()
    p = problem
    objs = [i for i in range(p.n) if p.ok[i].any()]
    objs.sort(key=lambda i: float(p.r[i][p.ok[i]].min()))
    chunks = [objs[j: j + max_objects] for j in range(0, len(objs), max_objects)] or [[]]
    busy_until = np.full(p.n_arms, -np.inf)
    picks: list[tuple[int, int, float]] = []
    bound = 0.0
    exact = len(chunks) == 1
    for chunk in chunks:
        got, b, ok = _solve_chunk(p, chunk, busy_until, grid_s, time_limit_s)
        bound += b
        exact &= ok
        for i, a, t in got:
            busy_until[a] = max(busy_until[a], t + float(p.cyc_min[i, a]))
        picks.extend(got)
    obj = float(sum(p.value[i] for i, _, _ in picks))
    return OptimumPlan(sorted(picks, key=lambda x: x[2]), obj, max(bound, obj), exact,
                       time.perf_counter() - t_start)


def optimum_result(problem: Problem, plan: OptimumPlan) -> SimResult:
    """The optimum plan as a :class:`SimResult` (picks/min over each arm's planned span)."""
    p = problem
    stats = [ArmStats(a.name) for a in p.arms]
    spans: dict[int, list[float]] = {}
    picked: set[int] = set()
    records = []
    for i, a, t in plan.picks:
        o = p.objects[i]
        s = stats[a]
        s.picks += 1
        s.value_eur += o.value_eur
        dur = float(p.appr_min[i, a] + p.cyc_min[i, a])
        s.busy_s += dur
        spans.setdefault(a, []).extend([t - float(p.appr_min[i, a]), t + float(p.cyc_min[i, a])])
        picked.add(i)
        records.append(PickRecord(o.id, p.arms[a].name, t, o.value_eur, o.class_name, True))
    for a, s in enumerate(stats):
        if s.picks:
            s.span_s = max(spans[a]) - min(spans[a])
            s.idle_s = max(0.0, s.span_s - s.busy_s)
            s.picks_per_min = 60.0 * s.picks / s.span_s
            s.limit_per_min = 60.0 * s.picks / s.busy_s
    pickable = [i for i in range(p.n) if p.ok[i].any()]
    missed = [MissedObject(p.objects[i].id, p.objects[i].class_name, p.objects[i].value_eur,
                           int(p.priority[i])) for i in pickable if i not in picked]
    return SimResult(policy="optimum", value_eur=plan.objective_eur,
                     value_available_eur=float(p.value[pickable].sum()) if pickable else 0.0,
                     arms=stats, picks=records, missed=missed, exact=plan.exact)


__all__ = ["PRIORITY_BONUS_EUR", "FifoPolicy", "GreedyPolicy", "OptimumPlan",
           "hindsight_optimum", "optimum_result"]
