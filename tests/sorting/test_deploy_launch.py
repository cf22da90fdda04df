"""Launch generation from the line YAML (as data and by running the generated file against stub
launch modules), rclpy host data without ROS, health watchdog logic."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from sorting.config.line import DEFAULT_LINE
from sorting.deploy.errors import DeployConfigError, RclpyUnavailableError
from sorting.deploy.health import STALE, DiagnosticsMonitor, StaleWatchdog, status_msg
from sorting.deploy.launch_gen import launch_nodes, render_launch
from sorting.deploy.rclpy_host import console_scripts, main, qos_settings, rclpy_available
from sorting.msgs import new
from sorting.runtime import QoSProfile


def _line(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "line.yaml"
    path.write_text(DEFAULT_LINE.read_text() + "\n" + extra)
    return path


def test_launch_nodes_as_data(tmp_path: Path) -> None:
    path = _line(tmp_path, "nodes:\n  line_monitor: {silence_periods: 5.0}\n"
                 "deploy:\n  groups: {sim: [sim_line, line_monitor], perception: ['*']}\n"
                 "  remappings:\n    volume: {depth/points: /camera3d/points}\n")
    nodes = {n.name: n for n in launch_nodes(path)}
    assert {"sim_line", "line_monitor", "volume", "tracker"} <= set(nodes)
    mon = nodes["line_monitor"]
    assert (mon.package, mon.executable, mon.namespace) == ("crmsort", "line_monitor", "/line1")
    assert mon.parameters["silence_periods"] == 5.0  # the YAML override
    assert mon.parameters["watch_topics"] == [
        "camera/image_raw", "depth/points", "hsi/line", "xrt/line"]
    assert {"hsi", "xrt"} <= set(nodes)
    assert mon.parameters["line_file"] == str(path.resolve())
    assert nodes["volume"].remappings == [("depth/points", "/camera3d/points")]
    assert nodes["volume"].group == "perception" and mon.group == "sim"


def test_generated_launch_file_builds_the_same_nodes(tmp_path: Path, monkeypatch: Any) -> None:
    path = _line(tmp_path, "")
    made: list[dict[str, Any]] = []
    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda actions: list(actions)  # type: ignore[attr-defined]
    actions = types.ModuleType("launch_ros.actions")
    actions.Node = lambda **kw: made.append(kw) or kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "launch", launch)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))
    monkeypatch.setitem(sys.modules, "launch_ros.actions", actions)
    text = render_launch(path, tmp_path)
    out = tmp_path / "line.launch.py"
    out.write_text(text)
    ns: dict[str, Any] = {"__file__": str(out)}
    exec(compile(text, str(out), "exec"), ns)
    desc = ns["generate_launch_description"]()
    assert [d["name"] for d in desc] == [n.name for n in launch_nodes(path)]
    assert all(d["package"] == "crmsort" and d["namespace"] == "/line1" for d in made)


def test_committed_launch_file_is_current() -> None:
    committed = (DEFAULT_LINE.parent / "line1.launch.py").read_text()
    assert committed == render_launch(DEFAULT_LINE, DEFAULT_LINE.parent)


def test_launch_rejects_unknown_node_and_bad_parameter(tmp_path: Path) -> None:
    with pytest.raises(DeployConfigError, match=r"deploy\.remappings\.camrea: unknown node"):
        launch_nodes(_line(tmp_path, "deploy:\n  remappings: {camrea: {a: b}}\n"))
    with pytest.raises(DeployConfigError, match=r"nodes\.line_monitor\.rate_hz: .* not a ROS 2"):
        launch_nodes(_line(tmp_path, "nodes:\n  line_monitor: {rate_hz: {a: 1}}\n"))


def test_rclpy_host_without_ros() -> None:
    assert qos_settings(QoSProfile(depth=5, reliable=False)) == {
        "history": "keep_last", "depth": 5, "reliability": "best_effort",
        "durability": "volatile"}
    assert qos_settings(QoSProfile(1, True, True))["durability"] == "transient_local"
    scripts = console_scripts()
    assert "sim_line = sorting.deploy.rclpy_host:main_sim_line" in scripts
    import sorting.deploy.rclpy_host as host

    assert callable(host.main_tracker)
    if not rclpy_available():
        with pytest.raises(RclpyUnavailableError, match="source a ROS 2"):
            main("tracker", ["x"])


def test_watchdog_and_monitor() -> None:
    wd = StaleWatchdog(stale_after_s=1.0)
    wd.observe("/a", 0, 0)
    assert wd.stale(10**10) == []  # never delivered: not stale (maybe not started)
    wd.observe("/a", 3, 1_000_000_000)
    assert wd.stale(1_900_000_000) == []
    assert wd.stale(2_500_000_000) == [("/a", 1.5)]
    t = [0.0]
    mon = DiagnosticsMonitor(stale_after_s=2.0, clock=lambda: t[0])
    mon.update(new("diagnostic_msgs/msg/DiagnosticArray",
                   status=[status_msg(0, "/line1/x", "ok", "h", {"k": 1.5})]))
    assert mon.snapshot()[0].level == 0 and mon.snapshot()[0].values["k"] == "1.5"
    t[0] = 3.0
    (h,) = mon.snapshot()
    assert h.level == STALE and "no diagnostics for 3.0 s" in h.message
