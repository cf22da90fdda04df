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


def test_status_command_prints_the_lines_kpis_heard_over_dds(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A line monitor's LineStatus and one node's diagnostics on a DDS domain of its own:
    ``crmsort status`` prints the state, the KPIs and the alarms, and fails on an E-stop."""
    import os
    import threading

    from sorting.cli.main import main
    from sorting.deploy.dds import DdsParticipant
    from sorting.msgs import serialize
    from sorting.runtime import QoSProfile

    domain = 100 + (os.getpid() * 11 + 57) % 120
    part = DdsParticipant(domain)
    status_w = part.writer("/line1/status", "crmsort_msgs/msg/LineStatus", QoSProfile())
    diag_w = part.writer("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", QoSProfile())
    state = {"state": 2, "alarms": []}
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            st = new("crmsort_msgs/msg/LineStatus", state=state["state"], belt_speed_mps=0.2,
                     uptime_s=42.0, objects_seen=120, objects_picked=40, objects_missed=2,
                     throughput_objects_per_min=55.5, throughput_kg_per_h=1234.0,
                     purity=0.987, active_alarms=state["alarms"])
            status_w.write(serialize(st, "crmsort_msgs/msg/LineStatus"))
            diag = new("diagnostic_msgs/msg/DiagnosticArray", status=[new(
                "diagnostic_msgs/msg/DiagnosticStatus", level=0, name="/line1/tracker",
                message="ok", hardware_id="host/1")])
            diag_w.write(serialize(diag, "diagnostic_msgs/msg/DiagnosticArray"))
            stop.wait(0.1)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    try:
        assert main(["status", "--domain", str(domain), "--wait", "2.5"]) == 0
        out = " ".join(capsys.readouterr().out.split())  # the console wraps lines
        assert "RUNNING" in out and "120 objects seen, 40 picked, 2 missed" in out
        assert "55.5 objects/min" in out and "1234 kg/h" in out and "purity 98.7%" in out
        state.update(state=4, alarms=["ESTOP_LINE"])
        assert main(["status", "--domain", str(domain), "--wait", "2.5"]) == 1
        out = " ".join(capsys.readouterr().out.split())  # the console wraps lines
        assert "ESTOP" in out and "alarms: ESTOP_LINE" in out
    finally:
        stop.set()
        th.join()
        part.close()
