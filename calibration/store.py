"""The calibration store: one versioned YAML file per line, next to the line description.

``launch/line1.yaml`` has its calibrations in ``launch/line1.calibration.yaml``::

    schema_version: 1
    line: line1
    calibrations:
      camera.intrinsics:          # <sensor or arm>.<what>
        kind: intrinsics
        version: 3                # bumped each time this entry is re-measured
        date: '2025-01-31T10:12:00+00:00'
        method: charuco+calibrateCamera
        inputs: {views: 24, source: ...}
        results: {fx: ..., ...}
        residuals: {rms_px: 0.08, ...}
        quality: {metric: rms_px, value: 0.08, limit: 0.5}
        max_age_days: 365

Transform entries carry ``parent_frame`` / ``child_frame`` and results
``translation`` [x, y, z] (m) and ``rotation_xyzw``; the transform maps
child-frame points into the parent frame (``T_parent_child``, as ``/tf_static``).
:meth:`CalibrationStore.flags` names entries that are stale (older than
``max_age_days``) or poor (quality value above its limit).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calibration.procedure_errors import StoreError

SCHEMA_VERSION = 1

Kind = Literal[
    "intrinsics", "extrinsics", "encoder", "rigid", "time_offset", "hsi_reference", "xrf_energy",
    "xrt_reference", "xrt_mass_scale", "xrf_class_response",
]

DEFAULT_MAX_AGE_DAYS: dict[str, float] = {
    "intrinsics": 365.0,
    "extrinsics": 90.0,
    "encoder": 90.0,
    "rigid": 30.0,
    "time_offset": 180.0,
    "hsi_reference": 1.0,
    "xrf_energy": 7.0,
    "xrt_reference": 1.0,
    "xrt_mass_scale": 30.0,
    "xrf_class_response": 30.0,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quality(_Model):
    """A figure of merit ``metric`` = ``value`` that is acceptable up to ``limit``."""

    metric: str
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.value <= self.limit


class CalibrationEntry(_Model):
    """One measured calibration (see the module docstring for the fields)."""

    kind: Kind
    version: int = Field(1, ge=1)
    date: dt.datetime
    method: str
    parent_frame: str | None = None
    child_frame: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, Any] = Field(default_factory=dict)
    residuals: dict[str, Any] = Field(default_factory=dict)
    quality: Quality
    max_age_days: float = Field(90.0, gt=0)


class Flag(_Model):
    """Something wrong with an entry: ``problem`` is ``stale``, ``poor`` or ``missing``."""

    name: str
    problem: Literal["stale", "poor", "missing"]
    message: str


class CalibrationStore(_Model):
    """All calibrations of one line, by name (``camera.intrinsics``, ``arm1.base``, ...)."""

    schema_version: int = SCHEMA_VERSION
    line: str
    calibrations: dict[str, CalibrationEntry] = Field(default_factory=dict)

    def put(self, name: str, entry: CalibrationEntry) -> CalibrationEntry:
        """Store ``entry`` under ``name``, one version above the entry it replaces."""
        old = self.calibrations.get(name)
        version = old.version + 1 if old is not None else 1
        new = entry.model_copy(update={"version": version})
        self.calibrations[name] = new
        return new

    def get(self, name: str) -> CalibrationEntry:
        """The entry ``name``; raises :class:`StoreError` naming the ones that exist."""
        entry = self.calibrations.get(name)
        if entry is None:
            have = ", ".join(sorted(self.calibrations)) or "none"
            raise StoreError(
                f"calibration store of {self.line}: no entry {name!r} (have: {have}); "
                f"run `crmsort calibrate` for it"
            )
        return entry

    def flags(
        self, now: dt.datetime | None = None, required: tuple[str, ...] = ()
    ) -> list[Flag]:
        """Entries that are stale, poor, or (among ``required``) missing, as of ``now`` (UTC)."""
        t = now or dt.datetime.now(dt.UTC)
        out: list[Flag] = []
        for name in required:
            if name not in self.calibrations:
                out.append(Flag(name=name, problem="missing", message=f"{name}: not calibrated"))
        for name, e in sorted(self.calibrations.items()):
            date = e.date if e.date.tzinfo else e.date.replace(tzinfo=dt.UTC)
            age = (t - date).total_seconds() / 86400.0
            if age > e.max_age_days:
                out.append(
                    Flag(
                        name=name,
                        problem="stale",
                        message=f"{name}: measured {age:.0f} days ago, older than "
                        f"{e.max_age_days:g} days: re-run it",
                    )
                )
            if not e.quality.ok:
                q = e.quality
                out.append(
                    Flag(
                        name=name,
                        problem="poor",
                        message=f"{name}: {q.metric} = {q.value:.4g} above the limit "
                        f"{q.limit:.4g}: re-run it with better data",
                    )
                )
        return out


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "<root>"


def load_store(path: str | Path) -> CalibrationStore:
    """Read and validate a store file; raises :class:`StoreError` naming the file and
    each bad YAML path, or that the file does not exist."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise StoreError(f"{file}: cannot read calibration store: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StoreError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StoreError(f"{file}: expected a mapping at the top level")
    if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise StoreError(
            f"{file}: schema_version {data['schema_version']} is newer than this crmsort "
            f"understands ({SCHEMA_VERSION}); update crmsort"
        )
    try:
        return CalibrationStore.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_yaml_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise StoreError(
            f"{file}: invalid calibration store:\n  " + "\n  ".join(problems)
        ) from None


def load_or_new(path: str | Path, line: str) -> CalibrationStore:
    """The store at ``path``, or an empty one for ``line`` if the file does not exist."""
    return load_store(path) if Path(path).exists() else CalibrationStore(line=line)


def save_store(store: CalibrationStore, path: str | Path) -> Path:
    """Write ``store`` as YAML (atomically: temp file then rename); returns the path."""
    file = Path(path)
    data = store.model_dump(mode="json")
    text = (
        f"# crmsort calibration store of line {store.line}: written by `crmsort calibrate`.\n"
        "# Transforms map child-frame points into the parent frame (T_parent_child).\n"
        + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    )
    tmp = file.with_name(file.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(file)
    except OSError as exc:
        raise StoreError(f"{file}: cannot write calibration store: {exc.strerror}") from None
    return file
