"""Robot kinematics and motion timing, each beside its peer (same process, same inputs).

- ``IK closed form`` vs the peer ``IK numeric`` (``scipy.optimize.least_squares`` on the
  closed-form FK, warm-started at the standby joints): solves/s;
- ``S-curve plan (closed form)`` vs the peer ``S-curve plan (numeric)``: the minimum time
  found by bisection on the duration of a 7-segment profile: plans/s;
- ``pick plan + safety check`` (interception + 8 phases + guard): plans/s (no peer).

Run: ``.venv/bin/python -m bench.robot_kinematics``. Ratio = peer time / our time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from rich.table import Table
from scipy.optimize import least_squares

from robot.config import demo_arms
from robot.delta.kinematics import DeltaGeometry, forward, inverse
from robot.motion.intercept import MovingTarget
from robot.motion.scurve import SCurve
from robot.pick_cycle import DeltaPickCycle
from robot.safety import SafetyGuard
from sorting.cli.output import console


def _rate(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    for k in range(n):
        fn(k)
    return n / (time.perf_counter() - t0)


def _numeric_scurve_time(d: float, v: float, a: float, j: float) -> float:
    """Peer: bisection on T for the shortest feasible symmetric profile (no closed form)."""

    def feasible(total: float) -> bool:
        # best distance reachable in `total` under the limits: try the jerk/acc/vel split
        t_j = min(a / j, total / 4)
        t_a = min(total / 2, t_j + v / (j * t_j))
        t_a = max(t_a, 2 * t_j)
        v_p = j * t_j * (t_a - t_j)
        return v_p * t_a + v_p * max(total - 2 * t_a, 0.0) >= d

    lo, hi = 0.0, 1.0
    while not feasible(hi):
        hi *= 2
    while hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    return hi


def main() -> None:
    geom = DeltaGeometry(0.2, 0.05, 0.45, 1.0, 0.1)
    rng = np.random.default_rng(0)
    n = 2000
    r = np.sqrt(rng.uniform(0, 0.25, n))
    ang = rng.uniform(0, 2 * math.pi, n)
    pts = np.stack([r * np.cos(ang), r * np.sin(ang), rng.uniform(-1.1, -0.9, n)], axis=1)
    q0 = inverse(geom, (0.0, 0.0, -0.9))

    def ik_closed(k: int) -> None:
        inverse(geom, pts[k % n])

    def ik_numeric(k: int) -> None:
        p = pts[k % n]
        least_squares(lambda q: forward(geom, q) - p, q0, xtol=1e-12, ftol=1e-12)

    dists = rng.uniform(0.01, 2.0, n)

    def sc_closed(k: int) -> None:
        SCurve.plan(float(dists[k % n]), 10.0, 100.0, 5000.0)

    def sc_numeric(k: int) -> None:
        _numeric_scurve_time(float(dists[k % n]), 10.0, 100.0, 5000.0)

    cycle = DeltaPickCycle(demo_arms()[0])
    guard = SafetyGuard(cycle.arm)
    ys = rng.uniform(-0.35, 0.35, n)

    def pick(k: int) -> None:
        plan = cycle.plan_pick(MovingTarget(3.0, float(ys[k % n]), 0.03, 0.0, 0.5), "crm", 0.0)
        guard.validate_plan(plan)

    rows = [
        ("IK solves/s", _rate(ik_closed, 20000), _rate(ik_numeric, 300)),
        ("S-curve plans/s", _rate(sc_closed, 20000), _rate(sc_numeric, 2000)),
        ("pick plan + safety check/s", _rate(pick, 300), math.nan),
    ]
    table = Table(title="robot kinematics (ratio = ours / peer rate)")
    for col in ("what", "crmsort", "peer", "ratio"):
        table.add_column(col, justify="right" if col != "what" else "left")
    for name, ours, peer in rows:
        ratio = "—" if math.isnan(peer) else f"{ours / peer:.1f}×"
        table.add_row(name, f"{ours:,.0f}", "—" if math.isnan(peer) else f"{peer:,.0f}", ratio)
    console().print(table)


if __name__ == "__main__":
    main()
