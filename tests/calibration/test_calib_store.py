"""Calibration store: round trip, versions, stale/poor flags, bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from calibration.procedure_errors import StoreError
from calibration.records import camera_from_store, rigid_entry, static_transforms
from calibration.rigid import fit_rigid
from calibration.store import (
    CalibrationEntry,
    CalibrationStore,
    Quality,
    load_store,
    save_store,
)
from calibration.transforms import RigidTransform

T = RigidTransform.from_rpy(0.1, 0.0, 1.2, (3.0, -0.6, 0.05))


def _fit() -> CalibrationEntry:
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.3, 0.3, (8, 3))
    fit = fit_rigid(p, T.apply(p) + rng.normal(0, 1e-4, (8, 3)))
    return rigid_entry(fit, "test", "belt", "arm1_base_link")


def test_round_trip_and_versions(tmp_path: Path) -> None:
    store = CalibrationStore(line="line1")
    assert store.put("arm1.base", _fit()).version == 1
    assert store.put("arm1.base", _fit()).version == 2
    path = save_store(store, tmp_path / "line1.calibration.yaml")
    back = load_store(path)
    assert back.calibrations["arm1.base"].version == 2
    (parent, child, tr), = static_transforms(back)
    assert (parent, child) == ("belt", "arm1_base_link")
    assert tr.allclose(T, atol=1e-3)


def test_flags_stale_poor_missing() -> None:
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    store = CalibrationStore(line="line1")
    store.put("arm1.base", _fit().model_copy(update={"date": old}))
    store.put(
        "camera.extrinsics",
        CalibrationEntry(kind="extrinsics", date=dt.datetime.now(dt.UTC), method="m",
                         quality=Quality(metric="rms_px", value=3.0, limit=1.0)),
    )
    flags = {(f.name, f.problem) for f in store.flags(required=("camera.intrinsics",))}
    assert flags == {
        ("arm1.base", "stale"),
        ("camera.extrinsics", "poor"),
        ("camera.intrinsics", "missing"),
    }


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read"):
        load_store(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("line: line1\ncalibrations:\n  x:\n    kind: wrong\n")
    with pytest.raises(StoreError, match=r"calibrations\.x\.kind"):
        load_store(bad)
    with pytest.raises(StoreError, match=r"no entry 'camera\.intrinsics'"):
        camera_from_store(CalibrationStore(line="line1"))


def test_shipped_store_is_valid() -> None:
    store = load_store(Path(__file__).parents[2] / "launch" / "line1.calibration.yaml")
    cam = camera_from_store(store)
    # the sim line's camera, as its line YAML places it
    from sorting.config import load_line

    c = load_line().sensors.camera
    assert (cam.width, cam.height) == (c.width_px, c.height_px)
    assert np.allclose(cam.position_belt, [c.x_m, c.y_m, c.height_m], atol=5e-3)
    assert all(e.quality.ok for e in store.calibrations.values())
