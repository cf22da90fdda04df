"""Multi-process runs over DDS on loopback: same counts as in-process, a killed process is
reported stale and rejoins, bad deployments give clear errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sorting.config.line import DEFAULT_LINE, parse_line
from sorting.deploy.config import DeployConfig, load_deployment
from sorting.deploy.errors import DeployConfigError, DeployError
from sorting.deploy.health import OK, STALE, WARN
from sorting.deploy.plan import plan_processes
from sorting.deploy.processes import Supervisor
from sorting.line import run_sim_line


def _domain(tag: str) -> int:
    return 100 + (os.getpid() * 7 + sum(map(ord, tag))) % 120


def test_multiprocess_counts_equal_inprocess(tmp_path: Path) -> None:
    line, _ = load_deployment(DEFAULT_LINE)
    deploy = DeployConfig(domain_id=_domain("counts"),
                          groups={"sim": ["sim_line", "line_monitor"], "perception": ["*"]})
    duration = 2.0
    with Supervisor(DEFAULT_LINE, line, deploy, bag_path=tmp_path / "mp") as sup:
        sup.advance(duration)
    result = sup.stop()
    ref = run_sim_line(line, duration, tmp_path / "inproc")
    ref_counts = {t: s.count for t, s in ref.topics.items()}
    # /diagnostics exists only where a health node runs (one per process here)
    mp_counts = {t: n for t, n in result.counts.items() if t != "/diagnostics"}
    assert mp_counts == ref_counts
    assert result.counts["/diagnostics"] >= 2 * int(duration)  # two processes, 1 Hz each
    assert result.lost_groups == []
    from sorting.bags import bag_info

    info = bag_info(tmp_path / "mp")  # the supervisor's bag is closed and readable
    assert info.message_count == sum(result.counts.values())


def test_killed_process_is_stale_and_rejoins() -> None:
    line, _ = load_deployment(DEFAULT_LINE)
    deploy = DeployConfig(
        domain_id=_domain("kill"), stale_after_s=0.5, diagnostics_period_s=0.25,
        groups={"sim": ["sim_line", "line_monitor"], "vol": ["volume"], "rest": ["*"]})
    sup = Supervisor(DEFAULT_LINE, line, deploy, report_timeout_s=5.0)
    try:
        sup.advance(1.5)
        before = sup.counts.get("/line1/depth/volumes", 0)
        assert before >= 1
        sup.kill("vol")
        sup.advance(1.5)  # the others keep running
        time.sleep(0.6)
        sup.advance(0.5)
        assert sup.counts.get("/line1/depth/volumes", 0) == before
        assert sup.counts["/line1/belt/joint_states"] >= 340  # 3.5 s at 100 Hz, still flowing
        health = {h.name: h for h in sup.monitor.snapshot()}
        assert health["/line1/process/vol"].level == STALE
        assert "exited" in health["/line1/process/vol"].message
        assert health["/line1/volume"].level == STALE  # no diagnostics from it any more
        tracker = health["/line1/tracker"]
        assert tracker.level == WARN and "stale input /line1/depth/volumes" in tracker.message
        sup.restart("vol")
        clouds = sup.counts["/line1/depth/points"]
        sup.advance(1.5)
        new_clouds = sup.counts["/line1/depth/points"] - clouds
        assert new_clouds >= 2
        # every cloud after the rejoin is processed again (the last may still be in flight)
        assert sup.counts["/line1/depth/volumes"] - before >= new_clouds - 1
        health = {h.name: h for h in sup.monitor.snapshot()}
        assert health["/line1/volume"].level == OK
        assert health["/line1/process/vol"].level == OK
        assert "depth/volumes" not in health["/line1/tracker"].message
    finally:
        sup.stop(flush=False)


def test_unknown_node_in_line_or_groups_is_a_clear_error() -> None:
    line = parse_line({"nodes": {"volumee": {"x_m": 1.0}}}, "bad.yaml")
    with pytest.raises(DeployConfigError, match=r"bad.yaml: nodes.volumee: unknown node"):
        plan_processes(line, DeployConfig(), "bad.yaml")
    good = parse_line({}, "ok.yaml")
    with pytest.raises(DeployConfigError, match=r"deploy.groups.vision\[1\]: unknown node 'yolo'"):
        plan_processes(good, DeployConfig(groups={"vision": ["volume", "yolo"]}), "ok.yaml")
    with pytest.raises(DeployConfigError, match="already in group"):
        plan_processes(good, DeployConfig(groups={"a": ["volume"], "b": ["volume"]}), "ok.yaml")
    with pytest.raises(DeployConfigError, match="simulated hardware"):
        plan_processes(good, DeployConfig(groups={"sim": ["sim_line"], "x": ["xrf_driver"]}))


def test_group_that_fails_to_start_is_named(tmp_path: Path) -> None:
    text = DEFAULT_LINE.read_text() + "\nnodes:\n  volume: {no_such_parameter: 1}\n"
    path = tmp_path / "line.yaml"
    path.write_text(text)
    line, _ = load_deployment(path)
    deploy = DeployConfig(domain_id=_domain("fail"), groups={"vol": ["volume"], "rest": ["*"]})
    sup = Supervisor(path, line, deploy, stderr=open(os.devnull, "w"))  # noqa: SIM115
    with pytest.raises(DeployError, match=r"group 'vol' \(volume\) exited with code 1"):
        sup.start()
    assert all(st.proc is None or st.proc.poll() is not None for st in sup.groups.values())
