"""Stream files: objects on a belt, the belt speed and the arms — JSON or CSV, validated.

A *stream* is what the scheduler is evaluated on without the rest of the line:
objects with their belt-frame position ``x_m`` at the reference time ``t_ref_s``,
lateral position ``y_m``, value, target bin, class and priority; the belt speed; and
the arms (reach box, bins, approach and cycle-time model → :class:`TableArmModel`).
The format is documented in ``datasets/streams/README.md``. Errors name the file and
the field (``objects[3].y_m: Input should be a finite number``).

:func:`generate_stream` draws sparse / medium / dense streams for evaluation from a seed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sorting.scheduling.arm_model import ArmModel, TableArmModel
from sorting.scheduling.errors import StreamError

FORMAT = "crmsort-stream/1"
DEFAULT_PRIORITY_CLASSES = ("li_ion_cylindrical_cell", "li_ion_pouch_pack")
OBJECT_COLUMNS = ("id", "x_m", "y_m", "value_eur", "target_bin", "class_name", "priority")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReachSpec(_Model):
    x_min_m: float
    x_max_m: float
    y_min_m: float
    y_max_m: float
    z_max_m: float = 0.5


class TimeModelSpec(_Model):
    base_s: float = Field(ge=0.0)
    per_m_s: float = Field(default=0.0, ge=0.0)


class ArmSpec(_Model):
    name: str = Field(min_length=1)
    reach: ReachSpec
    bins: dict[str, tuple[float, float, float]] = Field(min_length=1)
    standby_xyz_m: tuple[float, float, float] | None = None
    approach: TimeModelSpec = TimeModelSpec(base_s=0.2)
    cycle: TimeModelSpec = TimeModelSpec(base_s=0.8)

    def to_model(self) -> TableArmModel:
        r = self.reach
        standby = self.standby_xyz_m or (math.nan, math.nan, 0.3)
        return TableArmModel(
            name=self.name, x_min_m=r.x_min_m, x_max_m=r.x_max_m, y_min_m=r.y_min_m,
            y_max_m=r.y_max_m, z_max_m=r.z_max_m, bins=dict(self.bins), standby_xyz_m=standby,
            approach_base_s=self.approach.base_s, approach_per_m_s=self.approach.per_m_s,
            cycle_base_s=self.cycle.base_s, cycle_per_m_s=self.cycle.per_m_s,
        )


class ObjectSpec(_Model):
    id: int = Field(ge=0)
    x_m: float
    y_m: float
    z_m: float = 0.0
    value_eur: float = Field(ge=0.0)
    target_bin: str = ""
    class_name: str = ""
    priority: int = Field(default=0, ge=0, le=1)


class StreamSpec(_Model):
    format: Literal["crmsort-stream/1"] = "crmsort-stream/1"
    belt_speed_mps: float = Field(gt=0.0)
    t_ref_s: float = 0.0
    visible_x_m: float = 0.0
    duration_s: float | None = Field(default=None, gt=0.0)
    priority_classes: list[str] = list(DEFAULT_PRIORITY_CLASSES)
    arms: list[ArmSpec] = Field(min_length=1)
    objects: list[ObjectSpec]


@dataclass(frozen=True)
class StreamObject:
    """One object: belt-frame ``x_m`` at the stream's ``t_ref_s``, ``y_m``, top height ``z_m``."""

    id: int
    x_m: float
    y_m: float
    value_eur: float
    target_bin: str
    class_name: str = ""
    priority: int = 0
    z_m: float = 0.0

    @property
    def pickable(self) -> bool:
        """Worth a pick: positive value and a target bin."""
        return self.value_eur > 0.0 and bool(self.target_bin)


@dataclass
class Stream:
    """A validated stream (see the module docstring); ``arms`` are any :class:`ArmModel`."""

    belt_speed_mps: float
    arms: list[ArmModel]
    objects: list[StreamObject]
    t_ref_s: float = 0.0
    visible_x_m: float = 0.0
    duration_s: float | None = None
    priority_classes: tuple[str, ...] = DEFAULT_PRIORITY_CLASSES
    spec: StreamSpec | None = field(default=None, repr=False)

    def priority_of(self, o: StreamObject) -> int:
        """Safety priority: explicit ``priority`` or a class in ``priority_classes``."""
        return max(o.priority, 1 if o.class_name in self.priority_classes else 0)


def _loc(err: dict[str, Any]) -> str:
    out = ""
    for part in err["loc"]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(data: Any, source: str) -> StreamSpec:
    try:
        return StreamSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise StreamError(
            f"{source}: {_loc(dict(first))}: {first['msg']} (got {first.get('input')!r})"
            + (f"; {exc.error_count() - 1} more error(s)" if exc.error_count() > 1 else "")
        ) from None


def stream_from_spec(spec: StreamSpec, source: str = "<stream>") -> Stream:
    """Build a :class:`Stream` from a validated spec; duplicate ids raise :class:`StreamError`."""
    seen: set[int] = set()
    for i, o in enumerate(spec.objects):
        if o.id in seen:
            raise StreamError(f"{source}: objects[{i}].id: duplicate id {o.id}")
        seen.add(o.id)
    names = [a.name for a in spec.arms]
    if len(set(names)) != len(names):
        raise StreamError(f"{source}: arms: duplicate arm names {names}")
    return Stream(
        belt_speed_mps=spec.belt_speed_mps,
        arms=[a.to_model() for a in spec.arms],
        objects=[StreamObject(id=o.id, x_m=o.x_m, y_m=o.y_m, z_m=o.z_m, value_eur=o.value_eur,
                              target_bin=o.target_bin, class_name=o.class_name,
                              priority=o.priority) for o in spec.objects],
        t_ref_s=spec.t_ref_s, visible_x_m=spec.visible_x_m, duration_s=spec.duration_s,
        priority_classes=tuple(spec.priority_classes), spec=spec,
    )


def _read_csv(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    rows: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            key, sep, val = line[1:].partition(":")
            if sep:
                meta[key.strip()] = val.strip()
        elif line.strip():
            rows.append(line)
    if "arms" not in meta:
        raise StreamError(f"{path}: missing '# arms: FILE.json' header line")
    arms_path = (path.parent / str(meta.pop("arms"))).resolve()
    try:
        arms = json.loads(arms_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StreamError(f"{path}: arms file {arms_path}: {exc}") from None
    data: dict[str, Any] = {k: v for k, v in meta.items()}
    if "priority_classes" in data:
        data["priority_classes"] = [c.strip() for c in str(data["priority_classes"]).split(",")
                                    if c.strip()]
    data["arms"] = arms["arms"] if isinstance(arms, dict) and "arms" in arms else arms
    reader = csv.DictReader(rows)
    missing = {"id", "x_m", "y_m", "value_eur"} - set(reader.fieldnames or [])
    if missing:
        raise StreamError(f"{path}: CSV header lacks column(s) {sorted(missing)}")
    # CSV cells stay strings: pydantic parses and names the row on error ('nan' → not finite)
    data["objects"] = [{k: v for k, v in row.items() if v not in (None, "")} for row in reader]
    return data


def load_stream(path: str | Path) -> Stream:
    """Read a stream from ``.json`` or ``.csv`` (+ its arms JSON); raises :class:`StreamError`."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        data = _read_csv(p)
    else:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StreamError(f"{p}: cannot read: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise StreamError(f"{p}: invalid JSON at line {exc.lineno} col {exc.colno}: "
                              f"{exc.msg}") from None
    return stream_from_spec(_validate(data, str(p)), str(p))


def save_stream(spec: StreamSpec, path: str | Path) -> None:
    """Write a stream spec as JSON (``.json``) or CSV + ``<stem>.arms.json`` (``.csv``)."""
    p = Path(path)
    if p.suffix.lower() != ".csv":
        p.write_text(spec.model_dump_json(indent=1) + "\n", encoding="utf-8")
        return
    arms_path = p.with_name(p.stem + ".arms.json")
    arms_path.write_text(json.dumps({"arms": [a.model_dump() for a in spec.arms]}, indent=1),
                         encoding="utf-8")
    with p.open("w", encoding="utf-8", newline="") as f:
        f.write(f"# format: {spec.format}\n# belt_speed_mps: {spec.belt_speed_mps}\n"
                f"# t_ref_s: {spec.t_ref_s}\n# visible_x_m: {spec.visible_x_m}\n"
                f"# priority_classes: {','.join(spec.priority_classes)}\n"
                f"# arms: {arms_path.name}\n")
        if spec.duration_s is not None:
            f.write(f"# duration_s: {spec.duration_s}\n")
        w = csv.writer(f)
        w.writerow([*OBJECT_COLUMNS, "z_m"])
        for o in spec.objects:
            w.writerow([o.id, o.x_m, o.y_m, o.value_eur, o.target_bin, o.class_name,
                        o.priority, o.z_m])


# class, weight, value range (EUR), bin — an e-waste mix whose value is skewed: a few
# objects carry most of it, which is what makes the choice of picks matter
_MIX: Sequence[tuple[str, float, tuple[float, float], str]] = (
    ("pcb_high_grade", 0.10, (4.0, 12.0), "pcb"),
    ("pcb_low_grade", 0.18, (0.5, 2.0), "pcb"),
    ("copper_scrap", 0.22, (1.0, 4.0), "cu"),
    ("aluminium_scrap", 0.24, (0.2, 1.0), "al"),
    ("hdd_vcm_magnet_assembly", 0.06, (3.0, 8.0), "magnet"),
    ("tantalum_capacitor", 0.06, (2.0, 6.0), "ta"),
    ("li_ion_cylindrical_cell", 0.04, (0.3, 1.5), "battery"),
    ("li_ion_pouch_pack", 0.04, (0.3, 1.5), "battery"),
    ("cable_piece", 0.06, (0.0, 0.0), ""),
)
DENSITY_LOAD = {"sparse": 0.5, "medium": 1.0, "dense": 2.5}


def generate_stream(
    density: str, seed: int, *, n_arms: int = 3, duration_s: float = 40.0,
    belt_speed_mps: float = 0.4, approach_s: float = 0.2, cycle_s: float = 0.8,
    cycle_per_m_s: float = 0.0,
) -> StreamSpec:
    """A seeded evaluation stream: Poisson arrivals past the vision point (x = 0).

    ``density`` sets the pickable-object arrival rate relative to the arms' capacity
    (``n_arms / (approach_s + cycle_s)`` picks/s): sparse 0.5×, medium 1×, dense 2.5×.
    Arms have 0.5 m reach windows every 0.8 m from x = 1 m, reach y ∈ [−0.3, 0.3] m and
    every bin. Arrival times are multiples of 0.1 s. Same seed, same stream. Raises
    :class:`StreamError` for an unknown density.
    """
    if density not in DENSITY_LOAD:
        raise StreamError(f"density: expected one of {sorted(DENSITY_LOAD)}, got {density!r}")
    rng = np.random.default_rng(seed)
    bins = {b: (0.0, 0.45, 0.0) for b in sorted({m[3] for m in _MIX if m[3]})}
    arms = []
    for k in range(n_arms):
        x0 = 1.0 + 0.8 * k
        arm_bins = {b: (x0 + 0.25, 0.45 if j % 2 else -0.45, 0.0)
                    for j, b in enumerate(bins)}
        arms.append(ArmSpec(
            name=f"arm{k + 1}",
            reach=ReachSpec(x_min_m=x0, x_max_m=x0 + 0.5, y_min_m=-0.3, y_max_m=0.3),
            bins=arm_bins, standby_xyz_m=(x0 + 0.25, 0.0, 0.3),
            approach=TimeModelSpec(base_s=approach_s),
            cycle=TimeModelSpec(base_s=cycle_s, per_m_s=cycle_per_m_s),
        ))
    weights = np.array([m[1] for m in _MIX])
    pick_w = weights[[bool(m[3]) for m in _MIX]].sum()
    rate = DENSITY_LOAD[density] * n_arms / (approach_s + cycle_s) / pick_w
    n = int(rng.poisson(rate * duration_s))
    # arrivals on a 0.1 s grid: with durations that are multiples of 0.1 s every window
    # opens on the grid, which makes the hindsight MILP on that grid exact
    t_arr = np.sort(np.round(rng.uniform(0.0, duration_s, n), 1))
    cls = rng.choice(len(_MIX), size=n, p=weights / weights.sum())
    objects = []
    for i in range(n):
        name, _, (lo, hi), b = _MIX[int(cls[i])]
        objects.append(ObjectSpec(
            id=i + 1, x_m=round(float(-belt_speed_mps * t_arr[i]), 4),
            y_m=round(float(rng.uniform(-0.27, 0.27)), 4),
            value_eur=round(float(rng.uniform(lo, hi)), 2), target_bin=b, class_name=name,
        ))
    return StreamSpec(belt_speed_mps=belt_speed_mps, duration_s=duration_s, arms=arms,
                      objects=objects)
