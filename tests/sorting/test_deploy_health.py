"""Pieces of the deployment that run without a network: an arm's safety hold in its diagnostics,
the DDS discovery settings, launch prefixes, and Ctrl-C/SIGTERM as a stop request (a bag
closed, a run ended with a reason instead of an exception)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from robot.safety import Watchdog
from sorting.bags import bag_info
from sorting.cli.run_cmd import parse_prefixes
from sorting.config.line import DEFAULT_LINE, parse_line
from sorting.deploy.config import DeployConfig, load_deployment
from sorting.deploy.dds import network_config_xml
from sorting.deploy.errors import DdsError, DeployConfigError
from sorting.deploy.health import OK, WARN, HealthNode
from sorting.deploy.inprocess_run import run_in_process
from sorting.deploy.processes import Supervisor
from sorting.deploy.signals import stop_on_signals
from sorting.msgs import new
from sorting.msgs.convert import header
from sorting.runtime import InProcessExecutor, Node, NodeContext, SimClock

OBJECTS = "crmsort_msgs/msg/SortObjectArray"


class _Arm(Node):
    """Stands in for an arm node: tracking messages feed its motion-safety watchdog."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.watchdog = Watchdog(0.5, sources=("tracking",))
        ctx.create_subscription(OBJECTS, "sorting/objects", self._on_objects, 5)

    def _on_objects(self, msg: Any) -> None:
        t = msg.header.stamp
        self.watchdog.feed(t.sec + t.nanosec * 1e-9, "tracking")


class _Tracker(Node):
    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.on = True
        self.pub = ctx.create_publisher(OBJECTS, "sorting/objects", 5)
        ctx.create_timer(0.1, self._tick)

    def _tick(self) -> None:
        if self.on:
            now = self.ctx.get_clock().now().nanoseconds
            self.pub.publish(new(OBJECTS, header=header(now, "belt")))


def test_arm_hold_and_its_reason_are_in_the_diagnostics() -> None:
    ex = InProcessExecutor(SimClock())
    tracker = ex.add_node(_Tracker, "tracker", namespace="/line1")
    ex.add_node(_Arm, "arm1", namespace="/line1")
    health = ex.add_node(lambda ctx: HealthNode(ctx, ex), "health", namespace="/line1",
                         parameters={"period_s": 0.25, "stale_after_s": 1.0})

    def arm_status() -> Any:
        (st,) = [s for s in health.last.status if s.name == "/line1/arm1"]
        return st, {kv.key: kv.value for kv in st.values}

    ex.spin_until(1_000_000_000)
    st, values = arm_status()
    assert st.level == OK and values["watchdog"] == "ok"
    tracker.on = False  # tracking goes silent at t = 1 s (last message stamped 1.0 s)
    ex.spin_until(1_750_000_000)
    st, values = arm_status()
    assert st.level == WARN and values["watchdog"] == "hold"
    assert "watchdog: stale data (tracking 0.750 s old; timeout 0.5 s): arms hold" in st.message
    tracker.on = True
    ex.spin_until(2_500_000_000)
    st, values = arm_status()
    assert st.level == OK and values["watchdog"] == "ok" and st.message == "ok"
    # nodes without a safety watchdog get no such value
    (trk,) = [s for s in health.last.status if s.name == "/line1/tracker"]
    assert "watchdog" not in {kv.key for kv in trk.values}


def test_discovery_announces_often_enough_to_heal_a_cut() -> None:
    xml = network_config_xml(["eth1"], ["10.0.0.11", "10.0.0.12"])
    assert "<SPDPInterval>1s</SPDPInterval>" in xml and "<LeaseDuration>2s</LeaseDuration>" in xml
    assert 'NetworkInterface name="eth1" multicast="false"' in xml
    assert '<Peer address="10.0.0.12"/>' in xml and "<AllowMulticast>false" in xml
    with pytest.raises(DdsError, match="spdp_interval_s must be > 0"):
        network_config_xml(spdp_interval_s=0.0)


def test_launch_prefix_and_report_timeout_are_checked() -> None:
    line, _ = load_deployment(DEFAULT_LINE)
    deploy = DeployConfig(groups={"sim": ["sim_line", "line_monitor"], "perception": ["*"]})
    sup = Supervisor(DEFAULT_LINE, line, deploy,
                     launch_prefix={"perception": ["ip", "netns", "exec", "cam"]})
    cmd = sup.child_command("perception")
    assert cmd[:4] == ["ip", "netns", "exec", "cam"] and "sorting.deploy.group" in cmd
    assert sup.child_command("sim")[1:3] == ["-m", "sorting.deploy.group"]
    with pytest.raises(DeployConfigError, match=r"group 'camera': no such group; groups are"):
        Supervisor(DEFAULT_LINE, line, deploy, launch_prefix={"camera": ["ssh", "cam"]})
    with pytest.raises(DeployConfigError, match=r"report timeout 1.5 s: must exceed the DDS"):
        Supervisor(DEFAULT_LINE, line, deploy, report_timeout_s=1.5)
    assert parse_prefixes(["perception=ip netns exec 'cam 1'"]) == {
        "perception": ["ip", "netns", "exec", "cam 1"]}
    with pytest.raises(DeployConfigError, match="expected GROUP=COMMAND"):
        parse_prefixes(["perception"])
    with pytest.raises(DeployConfigError, match="given twice"):
        parse_prefixes(["a=ssh x", "a=ssh y"])


def test_signals_become_stop_requests_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    got: list[str] = []
    again: list[bool] = []
    with stop_on_signals(got.append, lambda: again.append(True)) as active:
        assert active
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # a second signal: no exception, on_again
    assert got == ["SIGTERM", "SIGINT"] and again == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_in_process_run_stops_on_sigterm_and_closes_the_bag(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_LINE.read_text())
    for sensor in ("camera", "hsi", "xrf"):
        data["sensors"].setdefault(sensor, {})["enabled"] = False
    line = parse_line(data, "small.yaml")
    bag = tmp_path / "bag"
    done = threading.Event()

    def _terminate_once_running() -> None:  # the recorder opens the bag when the line starts
        while not bag.exists() and not done.wait(0.05):
            pass
        if not done.wait(1.5):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=_terminate_once_running)
    killer.start()
    try:
        res = run_in_process(line, DeployConfig(), None, bag, rate=None, dds=False)
    finally:
        done.set()
        killer.join()
    assert res.stop_reason == "SIGTERM" and res.interrupted
    # it ran (how far in 1.5 s of wall time depends on the machine's load) and stopped
    assert res.sim_duration_s > 0 and res.counts["/line1/belt/joint_states"] >= 1
    info = bag_info(tmp_path / "bag")
    assert {t.name: t.count for t in info.topics if t.count} == res.counts
