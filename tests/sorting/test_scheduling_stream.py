"""Stream files, arm models and bad input: typed errors that name the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sorting.scheduling.arm_model import ArmModel, TableArmModel
from sorting.scheduling.errors import (
    NonFiniteError,
    OutOfReachError,
    StreamError,
    UnknownBinError,
)
from sorting.scheduling.online import OnlineScheduler
from sorting.scheduling.problem import Problem
from sorting.scheduling.stream import (
    StreamObject,
    generate_stream,
    load_stream,
    save_stream,
    stream_from_spec,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "streams" / "example_medium.json"


def _arm(**kw: object) -> TableArmModel:
    base: dict[str, object] = dict(name="arm1", x_min_m=1.0, x_max_m=1.5, y_min_m=-0.3,
                                   y_max_m=0.3, bins={"cu": (1.25, 0.45, 0.0)})
    base.update(kw)
    return TableArmModel(**base)  # type: ignore[arg-type]


def test_table_arm_model_satisfies_protocol_and_times() -> None:
    arm = _arm(cycle_per_m_s=0.5, approach_per_m_s=0.2)
    assert isinstance(arm, ArmModel)
    assert arm.reach_x_range_m(0.0) == (1.0, 1.5)
    assert arm.reach_x_range_m(0.4) is None
    # standby defaults to the box middle (1.25, 0, 0.3); pick at (1.0, 0):
    # cycle distance = |bin − pick| + |standby − bin|
    d = math.hypot(0.25, 0.45) + 0.45
    assert arm.cycle_time_s((1.0, 0.0, 0.0), "cu") == pytest.approx(0.8 + 0.5 * d, abs=1e-12)
    assert arm.approach_time_s(None, (1.0, 0.0, 0.0)) == pytest.approx(0.2 + 0.2 * 0.25)


def test_arm_model_rejects_unknown_bin_out_of_reach_and_nan() -> None:
    arm = _arm()
    with pytest.raises(UnknownBinError, match="'gold'"):
        arm.cycle_time_s((1.2, 0.0, 0.0), "gold")
    with pytest.raises(OutOfReachError, match="outside the reach box"):
        arm.cycle_time_s((2.0, 0.0, 0.0), "cu")
    with pytest.raises(NonFiniteError):
        arm.approach_time_s(None, (math.nan, 0.0, 0.0))


def test_json_and_csv_round_trip(tmp_path: Path) -> None:
    spec = generate_stream("medium", 3, duration_s=5.0)
    save_stream(spec, tmp_path / "s.json")
    save_stream(spec, tmp_path / "s.csv")
    a, b = load_stream(tmp_path / "s.json"), load_stream(tmp_path / "s.csv")
    assert a.objects == b.objects and len(a.objects) == len(spec.objects) > 0
    assert [x.name for x in a.arms] == [x.name for x in b.arms] == ["arm1", "arm2", "arm3"]
    assert b.belt_speed_mps == spec.belt_speed_mps


def test_generator_is_seeded() -> None:
    assert generate_stream("dense", 5) == generate_stream("dense", 5)
    assert generate_stream("dense", 5) != generate_stream("dense", 6)
    with pytest.raises(StreamError, match="density"):
        generate_stream("heavy", 1)


def test_nan_in_json_names_the_field(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["objects"][3]["y_m"] = float("nan")
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))  # json writes the NaN literal
    with pytest.raises(StreamError, match=r"objects\[3\]\.y_m"):
        load_stream(p)


def test_nan_in_csv_names_the_row(tmp_path: Path) -> None:
    save_stream(generate_stream("sparse", 1, duration_s=5.0), tmp_path / "s.csv")
    lines = (tmp_path / "s.csv").read_text().splitlines()
    hdr = next(i for i, ln in enumerate(lines) if ln.startswith("id,"))
    cells = lines[hdr + 2].split(",")
    cells[3] = "nan"  # value_eur of objects[1]
    lines[hdr + 2] = ",".join(cells)
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(StreamError, match=r"objects\[1\]\.value_eur"):
        load_stream(tmp_path / "s.csv")


def test_missing_field_and_bad_json(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    del data["belt_speed_mps"]
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(StreamError, match="belt_speed_mps"):
        load_stream(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(StreamError, match="line 1"):
        load_stream(tmp_path / "b.json")


def test_unknown_bin_and_out_of_reach_are_typed(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["objects"] = [dict(id=1, x_m=0.0, y_m=0.0, value_eur=3.0, target_bin="gold")]
    (tmp_path / "u.json").write_text(json.dumps(data))
    with pytest.raises(UnknownBinError, match=r"objects\[0\].*'gold'"):
        Problem(load_stream(tmp_path / "u.json"))
    data["objects"] = [dict(id=1, x_m=0.0, y_m=0.9, value_eur=3.0, target_bin="cu")]
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(OutOfReachError, match=r"objects\[0\].*y_m=0.9"):
        Problem(load_stream(tmp_path / "r.json"))
    # worthless objects pass through unchecked: nothing will try to pick them
    data["objects"] = [dict(id=1, x_m=0.0, y_m=0.9, value_eur=0.0, target_bin="")]
    (tmp_path / "z.json").write_text(json.dumps(data))
    assert Problem(load_stream(tmp_path / "z.json")).ok.sum() == 0


def test_online_scheduler_rejects_bad_objects() -> None:
    stream = stream_from_spec(generate_stream("sparse", 1, duration_s=2.0))
    sch = OnlineScheduler(stream.arms, stream.belt_speed_mps)
    with pytest.raises(NonFiniteError):
        sch.upsert(StreamObject(1, math.nan, 0.0, 1.0, "cu"), 0.0)
    with pytest.raises(UnknownBinError):
        sch.upsert(StreamObject(2, 0.0, 0.0, 1.0, "gold"), 0.0)
    with pytest.raises(OutOfReachError):
        sch.upsert(StreamObject(3, 0.0, 2.0, 1.0, "cu"), 0.0)
    assert sch.plan(0.0) == [[], [], []]
