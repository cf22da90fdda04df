"""Score a recorded run's tracks and estimates against ``/sim/ground_truth``.

Matching: at every ``sorting/objects`` message, each reported point (the pick point the
line reports, which on a large object can lie far from its centre) is matched to the
nearest true object on the belt at the same stamp whose centre is within ``gate_m``, else
to the one whose oriented footprint contains it (1 cm margin; nearest centre first).
From the match sequence:

- identity: a true object keeps one identity when every match it got was to
  one track id and that track matched no other object (fraction over the
  objects seen at least ``min_matches`` times; :class:`~sorting.evaluation.run_eval.RunReport`
  also gives it over every object of the stream, those never offered as a track of
  their own counting as lost);
- estimates: each track's last report against its object's truth — relative
  volume and mass error, and whether ``|est − true| ≤ 1.96 u`` per CRM element (EU
  critical list) in the truth or the estimate (the 95 % interval covers the truth; an
  element missing from the estimate is 0 ± 0);
- stream totals per element: Σ estimated vs Σ true over matched objects.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perception.catalog import is_critical
from sorting.bags import read_decoded


@dataclass
class TrackingReport:
    objects_seen: int = 0
    identity_kept: int = 0
    tracks: int = 0
    volume_rel_err: list[float] = field(default_factory=list)
    mass_rel_err: list[float] = field(default_factory=list)
    by_shape_volume: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    interval_hits: int = 0
    interval_total: int = 0
    objects_all_covered: int = 0   # tracks whose every CRM interval covers the truth
    objects_scored: int = 0
    element_est: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    element_true: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    class_correct: int = 0
    seen_ids: set[int] = field(default_factory=set)   # true objects matched >= min_matches
    kept_ids: set[int] = field(default_factory=set)   # ... that kept one identity
    #: true object id -> how often each track id was matched to it
    matches: dict[int, Counter[int]] = field(default_factory=dict)
    #: track id -> how often each true object id was matched to it
    track_truths: dict[int, Counter[int]] = field(default_factory=dict)
    #: track id -> (its last report, the true object that report matched)
    finals: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def identity_rate(self) -> float:
        return self.identity_kept / self.objects_seen if self.objects_seen else 0.0

    @property
    def interval_coverage(self) -> float:
        return self.interval_hits / self.interval_total if self.interval_total else 0.0

    @property
    def object_coverage(self) -> float:
        """Share of tracks whose 95 % intervals cover every CRM element's true grams."""
        return self.objects_all_covered / self.objects_scored if self.objects_scored else 0.0

    @property
    def class_accuracy(self) -> float:
        n = len(self.mass_rel_err)
        return self.class_correct / n if n else 0.0


def match_truth(truths: list[Any], x: float, y: float, gate_m: float,
                margin_m: float = 0.01) -> Any | None:
    """The true object a reported point at belt-frame ``(x, y)`` belongs to, or None."""
    if not truths:
        return None
    best: tuple[tuple[bool, float], Any] | None = None
    for o in truths:
        dx, dy = x - o.pose.position.x, y - o.pose.position.y
        yaw = 2 * math.atan2(o.pose.orientation.z, o.pose.orientation.w)
        c, s = math.cos(yaw), math.sin(yaw)
        along, across = c * dx + s * dy, -s * dx + c * dy
        inside = (abs(along) <= o.dimensions_m.x / 2 + margin_m
                  and abs(across) <= o.dimensions_m.y / 2 + margin_m)
        d = math.hypot(dx, dy)
        # a true centre within the gate first (small objects, neighbours that overlap), else
        # the footprint that holds the point (a large object's off-centre pick point)
        if (inside or d <= gate_m) and (best is None or (d > gate_m, d) < best[0]):
            best = ((d > gate_m, d), o)
    return best[1] if best else None


def evaluate_tracking(bag: Path, namespace: str = "/line1", gate_m: float = 0.06,
                      min_matches: int = 3) -> TrackingReport:
    """Read ``bag`` once and score tracking and fusion (see the module docstring)."""
    truth_at: dict[int, list[Any]] = {}
    reports: list[tuple[int, list[Any]]] = []
    topics = ["/sim/ground_truth", f"{namespace}/sorting/objects"]
    for topic, _type, t_ns, msg in read_decoded(bag, topics=topics):
        if topic == "/sim/ground_truth":
            truth_at[t_ns] = [o for o in msg.objects if o.state == 0]
        else:
            reports.append((t_ns, list(msg.objects)))
    matches: dict[int, Counter[int]] = defaultdict(Counter)  # truth id -> track ids
    track_truths: dict[int, Counter[int]] = defaultdict(Counter)
    last: dict[int, tuple[Any, Any]] = {}  # track id -> (report, truth)
    for t_ns, objs in reports:
        truths = truth_at.get(t_ns)
        if not truths or not objs:
            continue
        for o in objs:
            tr = match_truth(truths, float(o.belt_x_m), float(o.y_m), gate_m)
            if tr is None:
                continue
            matches[tr.id][o.id] += 1
            track_truths[o.id][tr.id] += 1
            last[o.id] = (o, tr)
    rep = TrackingReport(tracks=len(track_truths), matches=dict(matches),
                         track_truths=dict(track_truths), finals=dict(last))
    for truth_id, tracks in matches.items():
        if sum(tracks.values()) < min_matches:
            continue
        rep.objects_seen += 1
        rep.seen_ids.add(truth_id)
        if len(tracks) == 1:
            (track_id,) = tracks
            if len(track_truths[track_id]) == 1:
                rep.identity_kept += 1
                rep.kept_ids.add(truth_id)
    for o, tr in last.values():
        if tr.volume_m3 > 0 and o.volume_m3 > 0:
            err = (o.volume_m3 - tr.volume_m3) / tr.volume_m3
            rep.volume_rel_err.append(err)
            rep.by_shape_volume[int(tr.shape)].append(err)
        if tr.mass_kg > 0:
            rep.mass_rel_err.append((o.mass_kg - tr.mass_kg) / tr.mass_kg)
            rep.class_correct += int(o.class_name == tr.class_name)
        true_e = dict(zip(tr.elements, tr.mass_fraction, strict=True))
        est = {e: (float(m), float(u)) for e, m, u in zip(
            o.elements, o.element_mass_kg, o.element_mass_u_kg, strict=True)}
        all_covered = True
        for e in sorted(set(true_e) | set(est)):
            m, u = est.get(e, (0.0, 0.0))
            truth_kg = true_e.get(e, 0.0) * tr.mass_kg
            if is_critical(e):
                hit = abs(m - truth_kg) <= 1.96 * u + 1e-12
                rep.interval_total += 1
                rep.interval_hits += int(hit)
                all_covered &= hit
            rep.element_est[e] += m
            rep.element_true[e] += truth_kg
        rep.objects_scored += 1
        rep.objects_all_covered += int(all_covered)
    return rep


def median_abs(values: list[float]) -> float:
    return float(np.median(np.abs(values))) if values else math.nan
