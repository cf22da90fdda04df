"""Line descriptions: the shipped file validates; bad files name the YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sorting.config import load_line, parse_line
from sorting.config.line import DEFAULT_LINE
from sorting.errors import ConfigError


def test_default_line_loads() -> None:
    line = load_line(DEFAULT_LINE)
    assert line.name == "line1"
    assert line.namespace == "/line1"
    assert line.belt.speed_mps > 0
    assert line.sensors.camera.x_m < line.belt.length_m


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"belt": {"speed_mps": -1}}, "belt.speed_mps"),
        ({"sensors": {"camera": {"rate_hz": 0}}}, "sensors.camera.rate_hz"),
        ({"sensors": {"depth": {"x_m": 99}}}, "sensors.depth.x_m"),
        ({"feed": {"mix": {"weee": -1}}}, "mix.weee"),
        ({"belt": {"sped_mps": 1}}, "belt.sped_mps"),
        ({"name": "line 1"}, "name"),
        ({"sensors": {"xrf": {"busy_s": -0.3}}}, "sensors.xrf.busy_s"),
    ],
)
def test_invalid_field_is_named(doc: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_line(doc, "bad.yaml")
    assert "bad.yaml" in str(err.value)
    assert path in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("belt:\n  speed_mps: [0.5\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_line(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_line(tmp_path / "nope.yaml")


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        parse_line([1, 2], "list.yaml")


@pytest.mark.parametrize("sensor", ["camera", "depth"])
def test_default_line_sensors_see_the_whole_width_objects_are_fed_on(sensor: str) -> None:
    """Every object's centre lies within ``belt.width/2 - feed.edge_margin`` of the belt's
    axis; the camera and the 3D sensor must see at least that (the first line had the camera's
    480-px side across the belt: 0.64 m of 0.8, and objects near the edges never got a track)."""
    from sorting.config.cameras import depth_camera, rgb_camera

    line = load_line(DEFAULT_LINE)
    cam = rgb_camera(line) if sensor == "camera" else depth_camera(line)
    fp = cam.ground_footprint(0.0)
    half = line.belt.width_m / 2 - line.feed.edge_margin_m
    assert fp[:, 1].min() <= -half and fp[:, 1].max() >= half


def test_sort_policy_target_bin() -> None:
    policy = load_line(DEFAULT_LINE).sorting
    cell = policy.priority_classes[0]
    # a priority class goes to its bin when only fairly sure, whatever its value
    assert policy.target_bin(cell, policy.priority_min_confidence, 0.0) == policy.bin_for(cell)
    assert policy.target_bin(cell, policy.priority_min_confidence - 0.01, 99.0) == ""
    # others need both the value and the confidence
    ok = policy.min_class_confidence
    assert policy.target_bin("copper_scrap", ok, policy.min_value_eur) == "metal"
    assert policy.target_bin("copper_scrap", ok - 0.01, 99.0) == ""
    assert policy.target_bin("copper_scrap", 1.0, policy.min_value_eur / 2) == ""
    assert policy.target_bin("keyboard", 1.0, 99.0) == ""  # no bin: it passes
