"""The online pick scheduler: rolling-horizon look-ahead over the next picks of every arm.

Each planning cycle, for every arm that is up (earliest free first), the scheduler
takes the pending objects the arm can still catch, keeps the ``top_m`` most valuable
and the ``urgent`` ones whose window closes first, and searches **exhaustively** over
all ordered sequences of up to ``depth`` picks among them (vectorised: ``m³``
sequences for ``depth = 3``). A sequence's pick times chain the arm's timing
(``t_k = max(r_k, t_{k−1} + cycle_{k−1} + approach_k)``, each ``≤ d_k``) and it scores

    Σ value_k  −  wait_cost_eur_per_s · (end − free)  −  1e-6 · end,

so the planner prefers more value, then less arm time. The objects in an arm's
sequence are claimed, and the next arm plans among the rest. Only the first pick of
a free arm is committed (when its approach must start); everything else is re-planned
at the next cycle, which is how new objects, failed picks (the object comes back and
a downstream arm that can still reach it takes it) and arm faults (a down arm is
skipped) are absorbed.

Safety priority (Li-ion cells and packs) overrides value: a priority object is always a
candidate and carries :data:`PRIORITY_BONUS_EUR` on top of its value, so any sequence
that catches it beats every sequence that does not (it may still come second when a
normal object fits before it).

:class:`OnlinePolicy` runs the planner on a :class:`Problem` for :func:`simulate`;
:class:`OnlineScheduler` keeps its own object table for the line node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sorting.scheduling.arm_model import ArmModel
from sorting.scheduling.errors import ArmFaultError, NonFiniteError
from sorting.scheduling.problem import (
    PRIORITY_BONUS_EUR,
    Problem,
    Timing,
    object_windows,
    pick_timing,
)
from sorting.scheduling.simulate import SimView
from sorting.scheduling.stream import DEFAULT_PRIORITY_CLASSES, StreamObject

F64 = NDArray[np.float64]
_TIE_EPS = 1e-6


@dataclass(frozen=True)
class PlannerSettings:
    """Look-ahead ``depth`` (1–3 picks); candidates kept (``top_m`` by value + ``urgent`` by
    deadline); the longest wait considered for a first pick (s); the cost of arm time
    ``λ = wait_cost_eur_per_s + wait_cost_rel · median candidate value / mean cycle`` (EUR/s);
    slack of the look-ahead horizon (s); weight of objects a later arm can still catch."""

    depth: int = 3
    top_m: int = 6
    urgent: int = 2
    max_wait_s: float = 0.5
    wait_cost_eur_per_s: float = 0.0
    wait_cost_rel: float = 1.0
    horizon_slack_s: float = 0.1
    downstream_weight: float = 1.0


_MASKS: dict[int, tuple[NDArray[np.bool_], NDArray[np.bool_]]] = {}


def _distinct(m: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    if m not in _MASKS:
        i = np.arange(m)
        two = i[:, None] != i[None, :]
        three = two[:, :, None] & (i[:, None, None] != i) & (i[None, :, None] != i)
        _MASKS[m] = (two, three)
    return _MASKS[m]


def search_sequence(
    free_s: float, r: F64, d: F64, ap: F64, cy: F64, v: F64, depth: int = 3,
    wait_cost: float = 0.0, horizon_s: float = np.inf,
) -> list[tuple[int, float]]:
    """Best sequence of up to ``depth`` (≤ 3) picks for one arm free at ``free_s``.

    Inputs are per-candidate arrays (length m): window ``[r, d]`` (s), approach and
    cycle durations (s), value. Only picks back at standby by ``horizon_s`` count (the
    first always may), so a sequence that waits for a late object fits fewer. Returns
    ``[(candidate index, pick time s), …]`` (empty
    if nothing can be caught). Exhaustive over all ordered sequences (see module doc).
    """
    m = len(r)
    if m == 0:
        return []
    t1 = np.maximum(r, free_s + ap)
    ok1 = t1 <= d
    if not ok1.any():
        return []
    e1 = t1 + cy
    s1 = np.where(ok1, v - wait_cost * (e1 - free_s) - _TIE_EPS * e1, -np.inf)
    best: list[tuple[float, tuple[int, ...]]] = [(float(s1.max()), (int(s1.argmax()),))]
    if depth >= 2 and m >= 2:
        two, three = _distinct(m)
        t2 = np.maximum(r[None, :], e1[:, None] + ap[None, :])
        ok2 = ok1[:, None] & (t2 <= d[None, :]) & two & (t2 + cy[None, :] <= horizon_s)
        if ok2.any():
            e2 = t2 + cy[None, :]
            vv = v[:, None] + v[None, :]
            s2 = np.where(ok2, vv - wait_cost * (e2 - free_s) - _TIE_EPS * e2, -np.inf)
            k = int(s2.argmax())
            best.append((float(s2.flat[k]), divmod(k, m)))
            if depth >= 3 and m >= 3:
                t3 = np.maximum(r, e2[:, :, None] + ap)
                ok3 = ok2[:, :, None] & (t3 <= d) & three & (t3 + cy <= horizon_s)
                if ok3.any():
                    e3 = t3 + cy
                    s3 = np.where(ok3, vv[:, :, None] + v - wait_cost * (e3 - free_s)
                                  - _TIE_EPS * e3, -np.inf)
                    k = int(s3.argmax())
                    i, rest = divmod(k, m * m)
                    best.append((float(s3.flat[k]), (i, *divmod(rest, m))))
    _, seq = max(best, key=lambda b: b[0])
    out: list[tuple[int, float]] = []
    f = free_s
    for c in seq:
        t = max(float(r[c]), f + float(ap[c]))
        out.append((int(c), t))
        f = t + float(cy[c])
    return out


def plan_arm(
    free_s: float, r: F64, d: F64, ap: F64, cy: F64, v: F64, prio: NDArray[np.bool_],
    settings: PlannerSettings,
) -> list[tuple[int, float]]:
    """Pre-select candidates among ``n`` objects for one arm and search (see module doc).

    Arrays have length n (``r = +inf`` for objects the arm cannot serve); returns
    ``[(object row, pick time s), …]``.
    """
    t1 = np.maximum(r, free_s + ap)
    feas = (t1 <= d) & (t1 <= free_s + ap + settings.max_wait_s)
    idx = np.flatnonzero(feas)
    if idx.size == 0:
        return []
    if idx.size > settings.top_m + settings.urgent:
        pri = idx[prio[idx]]  # safety-priority objects are always candidates
        rest = idx[~prio[idx]]
        k_v = min(settings.top_m, rest.size)
        by_v = rest[np.argpartition(-v[rest], k_v - 1)[:k_v]] if k_v else rest
        others = np.setdiff1d(rest, by_v, assume_unique=True)
        k_d = min(settings.urgent, others.size)
        by_d = others[np.argpartition(d[others], k_d - 1)[:k_d]] if k_d else others
        idx = np.concatenate([pri[: settings.top_m + settings.urgent], by_v, by_d])
    dur = ap[idx] + cy[idx]
    horizon = free_s + settings.depth * float(dur.min()) + settings.horizon_slack_s
    normal = v[idx][~prio[idx]]
    # arm time is worth what the arm earns per second on a typical candidate
    lam = settings.wait_cost_eur_per_s + (
        settings.wait_cost_rel * float(np.median(normal)) / float(dur.mean()) if normal.size
        else 0.0)
    seq = search_sequence(free_s, r[idx], d[idx], ap[idx], cy[idx], v[idx], settings.depth,
                          lam, horizon)
    return [(int(idx[c]), t) for c, t in seq]


def plan_all(
    now_s: float, arm_free_s: F64, arm_up: NDArray[np.bool_], r: F64, d: F64, ap: F64,
    cy: F64, v: F64, prio: NDArray[np.bool_], settings: PlannerSettings,
) -> list[list[tuple[int, float]]]:
    """One planning cycle over all arms: matrices ``(n, n_arms)``; earliest-free arm first,
    each arm's sequence claims its objects. Returns per arm ``[(row, pick time s), …]``."""
    n, na = r.shape
    plans: list[list[tuple[int, float]]] = [[] for _ in range(na)]
    free = np.maximum(arm_free_s, now_s)
    claimed = np.zeros(n, dtype=bool)
    for a in np.argsort(free, kind="stable"):
        if not arm_up[a]:
            continue
        ra = np.where(claimed, np.inf, r[:, a])
        seq = plan_arm(float(free[a]), ra, d[:, a], ap[:, a], cy[:, a], v, prio & ~claimed,
                       settings)
        plans[a] = seq
        for k, _ in seq:
            claimed[k] = True
    return plans


class OnlinePolicy:
    """The online scheduler as a :class:`~sorting.scheduling.simulate.Policy`."""

    def __init__(self, settings: PlannerSettings | None = None, name: str = "online") -> None:
        self.settings = settings or PlannerSettings()
        self.name = name

    def reset(self, problem: Problem) -> None:
        self.problem = problem

    def choose(self, now_s: float, arm: int, view: SimView) -> tuple[int | None, float | None]:
        p = self.problem
        ids = np.fromiter(view.pending, dtype=np.int64, count=len(view.pending))
        if ids.size == 0:
            return None, None
        v = p.eff_value[ids]
        if self.settings.downstream_weight != 1.0:
            # an object a later window can still catch is worth less to this arm
            later = (p.d[ids] > p.d[ids, arm][:, None] + 1e-9).any(axis=1)
            v = np.where(later, v * self.settings.downstream_weight, v)
        seq = plan_arm(now_s, p.r[ids, arm], p.d[ids, arm], p.appr_est[ids, arm],
                       p.cyc_est[ids, arm], v, p.priority[ids] > 0, self.settings)
        if not seq:
            # wake when the next pending object enters this arm's reach
            rs = p.r[ids, arm] - p.appr_est[ids, arm]
            later = rs[(rs > now_s) & np.isfinite(rs)]
            return None, (float(later.min()) if later.size else None)
        k, t_pick = seq[0]
        i = int(ids[k])
        start = t_pick - float(p.appr_est[i, arm])
        if start > now_s + 1e-9:
            return None, start  # leave standby only when needed: new objects may come first
        return i, None


@dataclass
class _Row:
    obj: StreamObject
    t_ref: float


class OnlineScheduler:
    """The online scheduler with its own object table, for the line node.

    Objects are given by their x at a time ``t_s`` (:meth:`upsert`); arms are any
    :class:`ArmModel` in belt order. :meth:`plan` returns, per arm, the planned picks as
    ``(object id, pick time s)``; :meth:`commit` turns a free arm's first pick into an
    exact :class:`Timing` and marks the object as in a pick; :meth:`pick_failed` puts it
    back; :meth:`set_arm_up` takes an arm out of (or back into) planning.
    """

    def __init__(self, arms: Sequence[ArmModel], belt_speed_mps: float,
                 settings: PlannerSettings | None = None,
                 priority_classes: Sequence[str] = DEFAULT_PRIORITY_CLASSES) -> None:
        if not np.isfinite(belt_speed_mps) or belt_speed_mps <= 0:
            raise NonFiniteError(f"belt_speed_mps must be finite and > 0, got {belt_speed_mps}")
        self.arms = list(arms)
        self.v = float(belt_speed_mps)
        self.settings = settings or PlannerSettings()
        self.priority_classes = set(priority_classes)
        self.rows: dict[int, _Row] = {}
        self.win: dict[int, tuple[F64, F64, F64, F64]] = {}
        self.in_pick: set[int] = set()
        self.arm_free_s = np.zeros(len(self.arms))
        self.arm_up = np.ones(len(self.arms), dtype=bool)

    def arm_index(self, name: str) -> int:
        for a, arm in enumerate(self.arms):
            if arm.name == name:
                return a
        raise ArmFaultError(f"unknown arm {name!r} (arms: {[a.name for a in self.arms]})")

    def upsert(self, obj: StreamObject, t_s: float) -> None:
        """Add or update an object seen at ``x_m`` at time ``t_s``; raises for NaN,
        :class:`UnknownBinError` / :class:`OutOfReachError` if no arm can serve it."""
        vals = (obj.x_m, obj.y_m, obj.z_m, obj.value_eur, t_s)
        if not all(np.isfinite(x) for x in vals):
            raise NonFiniteError(f"object {obj.id}: x/y/z/value/time must be finite, got {vals}")
        old = self.rows.get(obj.id)
        self.rows[obj.id] = _Row(obj, t_s)
        if (old is not None and obj.id in self.win and old.obj.target_bin == obj.target_bin
                and abs(old.obj.y_m - obj.y_m) < 0.01):
            # same object re-measured: shift its windows by the position update
            shift = ((old.obj.x_m + self.v * (t_s - old.t_ref)) - obj.x_m) / self.v
            r, d, ap, cy = self.win[obj.id]
            self.win[obj.id] = (r + shift, d + shift, ap, cy)
            return
        if not obj.pickable:
            self.win.pop(obj.id, None)
            return
        w = object_windows(self.arms, obj, self.v, t_s, where=f"object {obj.id}")
        self.win[obj.id] = (w.r, w.d, w.appr_est, w.cyc_est)

    def remove(self, object_id: int) -> None:
        """Forget an object (picked, left the belt, dropped by the tracker)."""
        self.rows.pop(object_id, None)
        self.win.pop(object_id, None)
        self.in_pick.discard(object_id)

    def set_arm_up(self, arm: str, up: bool) -> None:
        self.arm_up[self.arm_index(arm)] = up

    def pick_failed(self, object_id: int, arm: str, free_s: float) -> None:
        """The pick of ``object_id`` failed: re-plan it (a downstream arm may still reach it)."""
        self.in_pick.discard(object_id)
        a = self.arm_index(arm)
        self.arm_free_s[a] = free_s

    def _matrices(self, now_s: float) -> tuple[list[int], tuple[F64, ...], NDArray[np.bool_]]:
        ids = [k for k, (_, d, _, _) in self.win.items()
               if k not in self.in_pick and bool((d >= now_s).any())]
        if not ids:
            e = np.zeros((0, len(self.arms)))
            return ids, (e, e, e, e, np.zeros(0)), np.zeros(0, dtype=bool)
        r, d, ap, cy = (np.stack([self.win[k][j] for k in ids]) for j in range(4))
        objs = [self.rows[k].obj for k in ids]
        prio = np.array([max(o.priority, int(o.class_name in self.priority_classes)) > 0
                         for o in objs])
        v = np.array([o.value_eur for o in objs]) + PRIORITY_BONUS_EUR * prio
        return ids, (r, d, ap, cy, v), prio

    def plan(self, now_s: float) -> list[list[tuple[int, float]]]:
        """One planning cycle: per arm ``[(object id, pick time s), …]``."""
        ids, (r, d, ap, cy, v), prio = self._matrices(now_s)
        if not ids:
            return [[] for _ in self.arms]
        plans = plan_all(now_s, self.arm_free_s, self.arm_up, r, d, ap, cy, v, prio,
                         self.settings)
        return [[(ids[k], t) for k, t in p] for p in plans]

    def commit(self, arm: str, object_id: int, now_s: float) -> Timing | None:
        """Exact timing of ``arm`` picking ``object_id`` starting no earlier than ``now_s``;
        marks the object as in a pick and the arm busy. ``None`` if it can't be caught."""
        a = self.arm_index(arm)
        if not self.arm_up[a]:
            raise ArmFaultError(f"arm {arm!r} is down")
        row, (r, d, ap, _) = self.rows[object_id], self.win[object_id]
        tm = pick_timing(self.arms[a], row.obj, self.v, row.t_ref, float(r[a]), float(d[a]),
                         float(ap[a]), max(now_s, float(self.arm_free_s[a])))
        if tm is None:
            return None
        self.in_pick.add(object_id)
        self.arm_free_s[a] = tm.t_free_s
        return tm
