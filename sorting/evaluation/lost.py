"""Which objects of a scored run lost their identity, and how: the engineer's list behind
the identity figure of :mod:`sorting.evaluation.run_eval`.

Every object of the stream that did not keep one identity camera → belt end is one row:

- ``untracked``: matched to tracks fewer than ``min_matches`` times (never offered as a
  track of its own: hidden under another, taken into a neighbour's track, never boxed);
- ``split``: matched to two or more tracks;
- ``merged``: its one track was matched to other objects too (the rows name them).

Each row says how much of the object's top was hidden from above when it passed the
camera (``hidden_share``: the share of its footprint under another object whose top is
higher, from the simulator's truth at the first stamp the object lay ``view_offset_m``
inside the camera's view) and which objects lay on it. Evaluation only: this reads
``/sim/ground_truth``, which no node of the line does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sorting.accounting import FEED
from sorting.bags import read_decoded
from sorting.evaluation.run_eval import Flow, RunReport

#: footprint samples per side when the hidden share is computed
_GRID = 11


@dataclass
class LostObject:
    """One object of the stream that did not keep one identity."""

    id: int
    class_name: str
    mass_kg: float
    cause: str                       # untracked | split | merged | split+merged
    matches: int                     # reports matched to it
    tracks: dict[int, int]           # track id -> reports matched to it
    shares_with: dict[int, str]      # other true objects matched to its tracks -> class
    hidden_share: float              # share of its footprint under a higher object (0-1)
    under: dict[int, str] = field(default_factory=dict)   # objects lying on it -> class
    t_s: float = math.nan            # bag time (s from the first stamp) it passed the camera
    y_m: float = math.nan            # across the belt


def _footprint_points(o: Any) -> np.ndarray:
    """``_GRID``² points on ``o``'s oriented footprint, belt frame, shape (N, 2)."""
    g = (np.arange(_GRID) + 0.5) / _GRID - 0.5
    u, v = np.meshgrid(g * o.dimensions_m.x, g * o.dimensions_m.y)
    yaw = 2 * math.atan2(o.pose.orientation.z, o.pose.orientation.w)
    c, s = math.cos(yaw), math.sin(yaw)
    x = o.pose.position.x + c * u - s * v
    y = o.pose.position.y + s * u + c * v
    out: np.ndarray = np.stack([x.ravel(), y.ravel()], axis=1)
    return out


def _inside(o: Any, pts: np.ndarray) -> np.ndarray:
    yaw = 2 * math.atan2(o.pose.orientation.z, o.pose.orientation.w)
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = pts[:, 0] - o.pose.position.x, pts[:, 1] - o.pose.position.y
    along, across = c * dx + s * dy, -s * dx + c * dy
    inside: np.ndarray = (np.abs(along) <= o.dimensions_m.x / 2) & (
        np.abs(across) <= o.dimensions_m.y / 2)
    return inside


def _top(o: Any) -> float:
    return float(o.pose.position.z + o.dimensions_m.z / 2)


def hidden_shares(bag: Path, ids: set[int], view_x: float
                  ) -> tuple[dict[int, tuple[float, dict[int, str], float, float]],
                             dict[int, str]]:
    """One pass over the bag's truth: for each id of ``ids``, (hidden share, objects on it,
    bag time s, y) at the first truth stamp where the object's centre lies at or past
    ``view_x`` (belt frame); and every true id's class name."""
    out: dict[int, tuple[float, dict[int, str], float, float]] = {}
    classes: dict[int, str] = {}
    t0: int | None = None
    for _topic, _type, t_ns, msg in read_decoded(bag, topics=["/sim/ground_truth"]):
        t0 = t_ns if t0 is None else t0
        for o in msg.objects:
            classes.setdefault(int(o.id), str(o.class_name))
        on_belt = [o for o in msg.objects if o.state == 0]
        for o in on_belt:
            if o.id not in ids or o.id in out or o.pose.position.x < view_x:
                continue
            pts = _footprint_points(o)
            hidden = np.zeros(len(pts), dtype=bool)
            under: dict[int, str] = {}
            for other in on_belt:
                if other.id == o.id or _top(other) <= _top(o):
                    continue
                over = _inside(other, pts)
                if over.any():
                    hidden |= over
                    under[int(other.id)] = str(other.class_name)
            out[int(o.id)] = (float(hidden.mean()), under, (t_ns - t0) * 1e-9,
                              float(o.pose.position.y))
    return out, classes


def lost_objects(rep: RunReport, bag: Path, view_x: float,
                 min_matches: int = 3) -> list[LostObject]:
    """The stream's objects that did not keep one identity (see the module docstring),
    heaviest first."""
    t = rep.tracking
    feed = rep.true_flows.get(FEED, Flow()).object_ids
    lost_ids = set(feed) - t.kept_ids
    where, classes = hidden_shares(bag, lost_ids, view_x)
    rows = []
    for i in lost_ids:
        tracks = dict(t.matches.get(i, {}))
        n = sum(tracks.values())
        others = {j for tid in tracks for j in t.track_truths.get(tid, {}) if j != i}
        if n < min_matches:
            cause = "untracked"
        else:
            cause = "+".join(c for c, on in (("split", len(tracks) > 1),
                                             ("merged", bool(others))) if on) or "merged"
        hidden, under, t_s, y = where.get(i, (math.nan, {}, math.nan, math.nan))
        rows.append(LostObject(i, classes.get(i, "?"), feed[i], cause, n, tracks,
                               {j: classes.get(j, "?") for j in sorted(others)}, hidden,
                               under, t_s, y))
    return sorted(rows, key=lambda r: -r.mass_kg)

