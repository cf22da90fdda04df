"""The online pick scheduler: rolling-horizon assignment of known objects to every arm's next picks.

Each planning cycle lays out, for every arm that is up, a grid of up to ``max_slots``
pick **slots**: slot ``k`` of arm ``a`` leaves standby at ``s_ak = free_a + k · T_a``
(``T_a`` the (lower) median approach + cycle time of the arm's candidates) and meets object
``i`` at ``t_aki = s_ak + approach_ia``. Object ``i`` fits the slot when
``t_aki ≤ d_ia`` and the arm waits at most ``wait_tol_rel · T_a`` for it to enter reach
(``wait_aki = max(0, r_ia − t_aki)``). Every known object is assigned to at most one
slot and every slot to at most one object, maximising

    Σ w_aki,   w_aki = value_i − λ_a · wait_aki − 1e-6 · (t_aki − now),

a rectangular assignment problem (slots × objects, a few dozen each) that
:func:`scipy.optimize.linear_sum_assignment` solves exactly. ``λ_a = wait_cost_rel ·
median candidate value / T_a`` (EUR/s) prices the arm time a wait costs. All arms' slots
compete for the same objects in one problem, so an upstream arm leaves an object that a
downstream arm has room for and takes one that would otherwise be lost: the coordination
that a per-arm look-ahead lacks (it cost ~4 % of the hindsight optimum on dense streams).
Only objects seen so far take part; nothing is assumed about objects still to come.

Each arm's assigned picks are then chained in slot order with their exact windows
(``t = max(r, f + approach)``, ``f`` the previous pick's return): that is the arm's plan.
A wait shifts the picks after it, which the fixed grid does not see; a pick the chain
pushes out of its window is forbidden in that slot and the assignment solved again (at
most ``repair_rounds`` times). Only the first pick of a free arm is committed (when its
approach must start); everything else is re-planned at the next cycle, which is how new
objects, failed picks (the object comes back and a downstream arm that can still reach
it takes it) and arm faults (a down arm gets no slots) are absorbed.

Safety priority (Li-ion cells and packs) overrides value: a priority object carries
:data:`PRIORITY_BONUS_EUR` on top of its value, so the assignment catches it whenever
any slot can.

:class:`OnlinePolicy` runs the planner on a :class:`Problem` for :func:`simulate`;
:class:`OnlineScheduler` keeps its own object table for the line node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from sorting.scheduling.arm_model import ArmModel
from sorting.scheduling.errors import ArmFaultError, NonFiniteError, SettingsError
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
    """Slots per arm at most (``max_slots``); the longest wait for an object to enter reach
    a slot may take, as a share of the pick time (``wait_tol_rel``); the price of arm time
    ``λ = wait_cost_rel · median candidate value / pick time`` (EUR/s); how many times an
    assignment whose chained timing misses a window is re-solved (``repair_rounds``)."""

    max_slots: int = 8
    wait_tol_rel: float = 0.3
    wait_cost_rel: float = 1.0
    repair_rounds: int = 3

    def __post_init__(self) -> None:
        if self.max_slots < 1 or self.repair_rounds < 0:
            raise SettingsError(f"PlannerSettings: max_slots must be ≥ 1 and repair_rounds ≥ 0, "
                                f"got {self.max_slots} and {self.repair_rounds}")
        for k in ("wait_tol_rel", "wait_cost_rel"):
            x = float(getattr(self, k))
            if not (math.isfinite(x) and x >= 0.0):
                raise SettingsError(f"PlannerSettings.{k}: must be finite and ≥ 0, got {x}")


def _median(x: F64) -> float:
    """Lower median of a non-empty 1-D array (``np.median`` costs ~10× more on a few dozen)."""
    k = (x.size - 1) // 2
    return float(np.partition(x, k)[k])


def _slots(
    free: F64, arm_up: NDArray[np.bool_], r: F64, d: F64, ap: F64, cy: F64, max_slots: int,
) -> tuple[list[int], list[float], list[float]]:
    """Per slot: its arm, when it leaves standby (s) and its arm's slot period T_a (s)."""
    arm: list[int] = []
    start: list[float] = []
    per: list[float] = []
    for a in range(r.shape[1]):
        if not arm_up[a]:
            continue
        cand = np.isfinite(r[:, a]) & (free[a] + ap[:, a] <= d[:, a])
        if not cand.any():
            continue
        dur = _median(ap[cand, a] + cy[cand, a])
        # no slot after the last candidate's window has closed
        n_k = 1 + max(0, min(max_slots - 1, math.floor((float(d[cand, a].max()) - free[a])
                                                         / dur)))
        arm.extend([a] * n_k)
        start.extend(float(free[a]) + dur * np.arange(n_k))
        per.extend([dur] * n_k)
    return arm, start, per


def plan_all(
    now_s: float, arm_free_s: F64, arm_up: NDArray[np.bool_], r: F64, d: F64, ap: F64,
    cy: F64, v: F64, prio: NDArray[np.bool_], settings: PlannerSettings,
) -> list[list[tuple[int, float]]]:
    """One planning cycle over all arms (see the module doc).

    Matrices are ``(n, n_arms)``: windows ``[r, d]`` (s, ``r = +inf`` where the arm cannot
    serve the object), approach and cycle times (s); ``v`` (EUR, priority bonus included)
    and ``prio`` have length n. Returns per arm ``[(row, pick time s), …]`` in pick order.
    """
    n, na = r.shape
    plans: list[list[tuple[int, float]]] = [[] for _ in range(na)]
    if n == 0:
        return plans
    free = np.maximum(np.asarray(arm_free_s, dtype=float), now_s)
    sa, ss, sp = _slots(free, arm_up, r, d, ap, cy, settings.max_slots)
    if not sa:
        return plans
    s_arm, s_start, s_dur = np.array(sa), np.array(ss), np.array(sp)
    t = s_start[:, None] + ap[:, s_arm].T  # (slots, n) pick times
    wait = np.maximum(r[:, s_arm].T - t, 0.0)
    fit = (t <= d[:, s_arm].T) & (wait <= settings.wait_tol_rel * s_dur[:, None])
    cols = np.flatnonzero(fit.any(axis=0))
    if cols.size == 0:
        return plans
    normal = v[cols][~prio[cols]]
    ref = _median(normal) if normal.size else 0.0
    lam = settings.wait_cost_rel * ref / s_dur[:, None]
    w = v[cols][None, :] - lam * wait[:, cols] - _TIE_EPS * (t[:, cols] - now_s)
    w = np.where(fit[:, cols] & (w > 0.0), w, 0.0)
    for round_ in range(settings.repair_rounds + 1):
        rows, cc = linear_sum_assignment(w, maximize=True)
        keep = w[rows, cc] > 0.0
        plans = [[] for _ in range(na)]
        missed = False
        for a in range(na):
            f = float(free[a])
            for k in np.flatnonzero(keep & (s_arm[rows] == a)):  # slots in time order
                i = int(cols[cc[k]])
                tp = max(float(r[i, a]), f + float(ap[i, a]))
                if tp > d[i, a]:
                    # a wait before it pushed it out of its window, which the fixed slot
                    # grid does not see: forbid the pair and solve again
                    w[rows[k], cc[k]] = 0.0
                    missed = True
                    continue
                plans[a].append((i, tp))
                f = tp + float(cy[i, a])
        if not missed or round_ == settings.repair_rounds:
            break
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
        plans = plan_all(now_s, view.arm_free_s, view.arm_up, p.r[ids], p.d[ids],
                         p.appr_est[ids], p.cyc_est[ids], p.eff_value[ids],
                         p.priority[ids] > 0, self.settings)
        seq = plans[arm]
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
    value_eur: float  # priority bonus included
    priority: bool


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
        self.win: dict[int, F64] = {}  # rows r, d, approach, cycle (s) × arms
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
        prio = max(obj.priority, int(obj.class_name in self.priority_classes)) > 0
        self.rows[obj.id] = _Row(obj, t_s, obj.value_eur + PRIORITY_BONUS_EUR * prio, prio)
        if (old is not None and obj.id in self.win and old.obj.target_bin == obj.target_bin
                and abs(old.obj.y_m - obj.y_m) < 0.01):
            # same object re-measured: shift its windows by the position update
            shift = ((old.obj.x_m + self.v * (t_s - old.t_ref)) - obj.x_m) / self.v
            win = self.win[obj.id].copy()
            win[:2] += shift
            self.win[obj.id] = win
            return
        if not obj.pickable:
            self.win.pop(obj.id, None)
            return
        w = object_windows(self.arms, obj, self.v, t_s, where=f"object {obj.id}")
        self.win[obj.id] = np.stack([w.r, w.d, w.appr_est, w.cyc_est])

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
        ids = [k for k in self.win if k not in self.in_pick]
        e = np.zeros((0, len(self.arms)))
        if not ids:
            return ids, (e, e, e, e, np.zeros(0)), np.zeros(0, dtype=bool)
        win = np.array([self.win[k] for k in ids])  # (n, 4, n_arms)
        live = np.flatnonzero(win[:, 1].max(axis=1) >= now_s)  # some window still open
        ids = [ids[k] for k in live]
        if not ids:
            return ids, (e, e, e, e, np.zeros(0)), np.zeros(0, dtype=bool)
        win = win[live]
        rows = [self.rows[k] for k in ids]
        prio = np.array([row.priority for row in rows], dtype=bool)
        v = np.array([row.value_eur for row in rows])
        return ids, (win[:, 0], win[:, 1], win[:, 2], win[:, 3], v), prio

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
