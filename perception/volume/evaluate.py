"""Accuracy of the volume path against simulator truth that the path never sees.

For evaluation code only (tests, benchmarks): builds scenes from any spawn
function (e.g. ``sorting.sim.spawner.ObjectSpawner.spawn``), renders them with
:class:`~perception.sensors.depth.DepthSensorSim`, and matches estimated
objects to truth objects by footprint overlap on the height-map grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration.camera import PinholeCamera
from perception.sensors.scene import SceneObject, ShapeKind, scene_height
from perception.volume.heightmap import HeightMap
from perception.volume.measure import ObjectVolumeEstimate

SpawnFn = Callable[[int, float, float], SceneObject]
IntArray = NDArray[np.int32]


def view_rect(camera: PinholeCamera, margin_m: float = 0.0) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` of the belt the camera sees, shrunk by ``margin_m``."""
    fp = camera.ground_footprint(0.0)
    return (float(fp[:, 0].min()) + margin_m, float(fp[:, 0].max()) - margin_m,
            float(fp[:, 1].min()) + margin_m, float(fp[:, 1].max()) - margin_m)


def make_scene(
    spawn: SpawnFn,
    rng: np.random.Generator,
    camera: PinholeCamera,
    n_objects: int,
    *,
    gap_m: float = 0.01,
    first_id: int = 1,
    max_tries: int = 200,
) -> list[SceneObject]:
    """Up to ``n_objects`` spawned objects lying wholly in view, footprints apart by ``gap_m``.

    Positions are drawn uniformly; an object whose bounding circle would come
    closer than ``gap_m`` to another's (or leave the view) is moved, up to
    ``max_tries`` times, then skipped.
    """
    x0, x1, y0, y1 = view_rect(camera)
    placed: list[SceneObject] = []
    oid = first_id
    for _ in range(n_objects):
        proto = spawn(oid, 0.0, 0.0)
        r = proto.footprint_radius_m()
        if 2 * r + 2 * gap_m > min(x1 - x0, y1 - y0):
            oid += 1
            continue
        for _ in range(max_tries):
            x = float(rng.uniform(x0 + r + gap_m, x1 - r - gap_m))
            y = float(rng.uniform(y0 + r + gap_m, y1 - r - gap_m))
            if all(math.hypot(x - o.x_m, y - o.y_m) > r + o.footprint_radius_m() + gap_m
                   for o in placed):
                placed.append(_moved(proto, x, y))
                break
        oid += 1
    return placed


def _moved(obj: SceneObject, x: float, y: float) -> SceneObject:
    from dataclasses import replace

    return replace(obj, x_m=x, y_m=y)


@dataclass(frozen=True)
class Match:
    """One truth object and the estimate matched to it (``None`` if missed)."""

    truth: SceneObject
    estimate: ObjectVolumeEstimate | None
    iou: float

    @property
    def volume_rel_error(self) -> float:
        """(estimated - true) / true volume; NaN when missed."""
        if self.estimate is None:
            return float("nan")
        v = self.truth.volume_m3()
        return (self.estimate.volume_m3 - v) / v

    @property
    def mass_rel_error(self) -> float:
        """Mass with the true density: the same as the volume error."""
        if self.estimate is None:
            return float("nan")
        m = self.truth.mass_kg()
        return (self.estimate.volume_m3 * self.truth.density_kg_m3 - m) / m


def truth_index(hm: HeightMap, objects: Sequence[SceneObject]) -> IntArray:
    """Position in ``objects`` of the object seen from above in each cell (-1 belt)."""
    xx, yy = hm.cell_centres()
    _, idx = scene_height(list(objects), xx, yy)
    return idx.astype(np.int32)


def match_objects(
    estimates: Sequence[ObjectVolumeEstimate],
    labels: IntArray,
    objects: Sequence[SceneObject],
    truth_idx: IntArray,
    *,
    min_iou: float = 0.3,
) -> list[Match]:
    """Match by footprint intersection-over-union on the grid; one estimate per truth object."""
    n_t = len(objects)
    n_l = int(labels.max()) if labels.size else 0
    t = truth_idx.ravel()
    lab = labels.ravel()
    inter = np.zeros((n_l + 1, n_t + 1), dtype=np.int64)
    np.add.at(inter, (lab, t + 1), 1)
    lab_area = inter.sum(axis=1)
    t_area = inter.sum(axis=0)
    by_label = {e.label: e for e in estimates}
    pairs: list[tuple[float, int, int]] = []
    for li in range(1, n_l + 1):
        for ti in range(n_t):
            i = inter[li, ti + 1]
            if i == 0:
                continue
            iou = i / (lab_area[li] + t_area[ti + 1] - i)
            pairs.append((float(iou), li, ti))
    pairs.sort(reverse=True)
    used_l: set[int] = set()
    best: dict[int, tuple[int, float]] = {}
    for iou, li, ti in pairs:
        if iou < min_iou or li in used_l or ti in best or li not in by_label:
            continue
        used_l.add(li)
        best[ti] = (li, iou)
    out = []
    for ti, obj in enumerate(objects):
        if ti in best:
            li, iou = best[ti]
            out.append(Match(obj, by_label[li], iou))
        else:
            out.append(Match(obj, None, 0.0))
    return out


def scene_matches(spawn: SpawnFn, rng: np.random.Generator, camera: PinholeCamera,
                  estimator: Any, sensor: Any, n_scenes: int,
                  objects_per_scene: int = 8) -> list[Match]:
    """``n_scenes`` scenes (:func:`make_scene`) rendered by ``sensor`` (e.g.
    :class:`~perception.sensors.depth.DepthSensorSim`), measured by ``estimator`` (e.g.
    :class:`~perception.volume.VolumeEstimator`) and matched to their objects."""
    out: list[Match] = []
    for s in range(n_scenes):
        objs = make_scene(spawn, rng, camera, objects_per_scene, first_id=100 * s)
        res = estimator.process_frame(sensor.render_frame(objs, 0.0).points_optical)
        out += match_objects(res.objects, res.labels, objs, truth_index(res.heightmap, objs))
    return out


SHAPE_NAMES = {ShapeKind.BOX: "box", ShapeKind.CYLINDER: "cylinder", ShapeKind.LUMP: "lump"}


def error_table(matches: Sequence[Match]) -> dict[str, dict[str, float]]:
    """Per shape (box/cylinder/lump/all): n, found, median and p90 of |relative volume error|."""
    out: dict[str, dict[str, float]] = {}
    groups: dict[str, list[Match]] = {"all": list(matches)}
    for m in matches:
        groups.setdefault(SHAPE_NAMES[m.truth.shape], []).append(m)
    for name, ms in groups.items():
        errs = np.array([abs(m.volume_rel_error) for m in ms if m.estimate is not None])
        merr = np.array([abs(m.mass_rel_error) for m in ms if m.estimate is not None])
        out[name] = {
            "n": float(len(ms)),
            "found": float(len(errs)),
            "median": float(np.median(errs)) if errs.size else float("nan"),
            "p90": float(np.percentile(errs, 90)) if errs.size else float("nan"),
            "bias": float(np.median([m.volume_rel_error for m in ms if m.estimate is not None]))
            if errs.size else float("nan"),
            "mass_median": float(np.median(merr)) if merr.size else float("nan"),
        }
    return out
