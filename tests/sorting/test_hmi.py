"""The operator's web HMI: what it keeps from the line's messages, what it serves, its feeds."""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml

from sorting.accounting import RESIDUE, GradeLedger
from sorting.hmi import HmiServer, HmiState
from sorting.msgs import new
from sorting.nodes.balance import SCOPE_RUN, SCOPE_SHIFT, balance_msg
from sorting.tracking.fusion import ObjectEstimate

BINS = {"pcb": ["pcb_low_grade"]}


def _est(k: int, mass: float, cls: str, p: float = 1.0) -> ObjectEstimate:
    return ObjectEstimate(
        track_id=k, class_name=cls, class_confidence=p, material="x", material_confidence=1.0,
        volume_m3=mass / 2000, volume_u_m3=0.0, mass_kg=mass, mass_u_kg=0.1 * mass,
        composition_source="prior", elements=("Co", "Fe"), fractions=(0.01, 0.5),
        fractions_u=(0.001, 0.05), element_mass_kg=(0.01 * mass, 0.5 * mass),
        element_mass_u_kg=(0.001 * mass, 0.05 * mass), value_eur=1.0, value_u_eur=0.1,
        sensors=("camera",), class_mix=((cls, p), ("steel_scrap", 1 - p)) if p < 1 else ())


def _status(**kw: Any) -> Any:
    base: dict[str, Any] = {"state": 2, "belt_speed_mps": 0.2, "objects_seen": 3,
                            "objects_picked": 1, "objects_missed": 0,
                            "throughput_objects_per_min": 12.5,
                            "throughput_kg_per_h": 300.0, "purity": 0.9, "active_alarms": []}
    return new("crmsort_msgs/msg/LineStatus", **(base | kw))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_state_keeps_the_last_status_balances_and_node_health() -> None:
    now = [100.0]
    state = HmiState("/line1", stale_after_s=3.0, clock=lambda: now[0])
    led = GradeLedger(bins=BINS)
    led.book(_est(1, 2.0, "pcb_low_grade", 0.9), "pcb")
    led.book(_est(2, 1.0, "steel_scrap"), RESIDUE)
    state.update("/line1/status", _status(purity=math.nan))
    state.update("/line1/status", _status(objects_seen=2, active_alarms=["XRF_SPECTRUM_SILENT"]))
    state.update("/line1/sorting/balance", balance_msg(led, SCOPE_RUN, 0, 10))
    state.update("/line1/sorting/balance", balance_msg(GradeLedger(bins=BINS), SCOPE_SHIFT, 0, 10))
    state.update("/line2/status", _status(objects_seen=99))          # another line: ignored
    state.update("/diagnostics", new("diagnostic_msgs/msg/DiagnosticArray", status=[new(
        "diagnostic_msgs/msg/DiagnosticStatus", level=1, name="/line1/arm1",
        message="watchdog: stale data", hardware_id="inprocess")]))
    now[0] = 102.0
    s = state.snapshot()
    assert s["status"]["objects_seen"] == 2 and s["status"]["state"] == "RUNNING"
    assert s["status"]["alarms"] == ["XRF_SPECTRUM_SILENT"]
    assert s["balance"]["run"]["destinations"]["pcb"]["purity"] == pytest.approx(0.9)
    (co,) = s["crm"]["run"]          # Fe is not critical
    assert co["element"] == "Co" and co["fed_g"] == pytest.approx(30.0)
    assert co["picked_g"] == pytest.approx(20.0) and co["lost_g"] == pytest.approx(10.0)
    assert co["recovery"] == pytest.approx(2 / 3)
    assert s["crm"]["shift"] == []
    assert s["nodes"] == [{"name": "/line1/arm1", "level": "WARN", "hardware_id": "inprocess",
                           "message": "watchdog: stale data"}]
    assert s["age_s"] == {"status": 2.0, "balance": 2.0, "diagnostics": 2.0}
    now[0] = 110.0   # a node silent past stale_after_s
    assert state.snapshot()["nodes"][0]["level"] == "STALE"
    # purity before the first pick travels as None, not NaN
    state.update("/line1/status", _status(purity=math.nan))
    assert state.snapshot()["status"]["purity"] is None


def test_server_serves_the_page_and_the_state_as_json() -> None:
    state = HmiState("/line1")
    server = HmiServer(state, port=0, title="crmsort — line1").start()
    try:
        code, page = _get(server.url)
        assert code == 200 and "<title>crmsort — line1</title>" in page
        assert 'fetch("api/state"' in page and "http" not in page.split("<script>")[1]
        code, body = _get(server.url + "api/state")
        assert code == 200 and json.loads(body)["status"] is None      # nothing heard yet
        state.update("/line1/status", _status(purity=math.nan, objects_seen=7))
        doc = json.loads(_get(server.url + "api/state")[1])
        assert doc["status"]["objects_seen"] == 7 and doc["status"]["purity"] is None
        code, body = _get(server.url + "nope")
        assert code == 404 and "/nope: not here" in body
    finally:
        server.stop()


def test_hmi_command_shows_a_line_heard_over_dds(capsys: pytest.CaptureFixture[str]) -> None:
    """``crmsort hmi`` joins a DDS domain of its own: a LineStatus written there shows on
    its page's data."""
    from sorting.deploy.config import DeployConfig
    from sorting.deploy.dds import DdsParticipant
    from sorting.hmi.dds_source import DdsSource
    from sorting.msgs import serialize
    from sorting.runtime import QoSProfile

    domain = 100 + (os.getpid() * 13 + 91) % 120
    part = DdsParticipant(domain)
    w = part.writer("/line1/status", "crmsort_msgs/msg/LineStatus", QoSProfile())
    state = HmiState("/line1")
    source = DdsSource(state, DeployConfig(domain_id=domain)).start()
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            w.write(serialize(_status(objects_seen=41), "crmsort_msgs/msg/LineStatus"))
            stop.wait(0.1)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    try:
        end = time.monotonic() + 10
        while state.snapshot()["status"] is None and time.monotonic() < end:
            time.sleep(0.1)
        assert state.snapshot()["status"]["objects_seen"] == 41
    finally:
        stop.set()
        th.join()
        source.stop()
        part.close()
    assert source.decode_errors == 0


@pytest.mark.slow
def test_an_in_process_line_feeds_the_hmi_through_its_tap(tmp_path: Any) -> None:
    """A short in-process run (3D sensor and tracker only) with the HMI's tap: the page's
    state holds the line monitor's status and the tracker's books."""
    from sorting.config.line import DEFAULT_LINE, parse_line
    from sorting.deploy.config import DeployConfig
    from sorting.deploy.inprocess_run import run_in_process

    data = yaml.safe_load(DEFAULT_LINE.read_text())
    for sensor in ("camera", "hsi", "xrf", "xrt"):
        data["sensors"].setdefault(sensor, {})["enabled"] = False
    line = parse_line(data, "small.yaml")
    state = HmiState(line.namespace)
    res = run_in_process(line, DeployConfig(), 12.0, None, rate=None, dds=False,
                         tap=state.tap)
    assert res.stop_reason == "duration"
    s = state.snapshot()
    assert s["status"] is not None and s["status"]["belt_speed_mps"] > 0
    assert s["balance"]["run"] is not None
    fed = s["balance"]["run"]["destinations"]["feed"]["objects"]
    # the status reports the balance of up to a second before
    assert fed >= 1 and fed - 3 <= s["status"]["objects_seen"] <= fed
    assert s["nodes"] and any(n["name"] == "/line1/tracker" for n in s["nodes"])


_FAKE_DOM = r"""
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const js = page.split("<script>")[1].split("</script>")[0].replace("poll();", "");
const els = {};
function node(id) {   // textContent, as in a browser, is always a string
  let text = "";
  return { id, get textContent() { return text; }, set textContent(v) { text = String(v); },
           className: "", style: {}, children: [],
           querySelector() { return this; }, replaceChildren(...c) { this.children = c; },
           append(...c) { this.children.push(...c); } };
}
global.document = { getElementById: (id) => (els[id] = els[id] || node(id)),
                    createElement: (tag) => node(tag) };
eval(js + "\nglobal.render = render;");
render(JSON.parse(fs.readFileSync(process.argv[3], "utf8")));
const rows = (id) => els[id].children.map((tr) => tr.children.map((td) => td.textContent));
console.log(JSON.stringify({ state: els.state.textContent, stateClass: els.state.className,
  seen: els.seen.textContent, purity: els.purity.textContent, alarms: els.alarms.textContent,
  alarmsShown: els.alarms.style.display, bins: rows("bins"), crm: rows("crm"),
  nodes: rows("nodes") }));
"""


def _run_page(tmp_path: Any, snapshot: dict[str, Any], dom_js: str) -> Any:
    """Run the page's own script under node against the minimal DOM ``dom_js`` with the
    state ``snapshot``; what the DOM script prints, parsed."""
    import subprocess
    from importlib import resources

    from sorting.hmi.server import _clean

    (tmp_path / "state.json").write_text(json.dumps(_clean(snapshot)))
    (tmp_path / "dom.js").write_text(dom_js)
    page = resources.files("sorting.hmi").joinpath("page.html")
    out = subprocess.run(["node", str(tmp_path / "dom.js"), str(page),
                          str(tmp_path / "state.json")], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="needs node to run JS")
def test_the_pages_script_renders_a_state(tmp_path: Any) -> None:
    """The page's own script, run by node against a minimal DOM, fills the tiles and tables
    from a state: KPIs, alarms shown, one row per destination, the CRM row, the nodes."""
    led = GradeLedger(bins=BINS)
    led.book(_est(1, 2.0, "pcb_low_grade", 0.9), "pcb")
    led.book(_est(2, 1.0, "steel_scrap"), RESIDUE)
    state = HmiState("/line1")
    state.update("/line1/status", _status(state=4, active_alarms=["BELT_STOPPED"]))
    state.update("/line1/sorting/balance", balance_msg(led, SCOPE_RUN, 0, 10))
    state.update("/line1/sorting/balance", balance_msg(led, SCOPE_SHIFT, 0, 10))
    state.update("/diagnostics", new("diagnostic_msgs/msg/DiagnosticArray", status=[new(
        "diagnostic_msgs/msg/DiagnosticStatus", level=0, name="/line1/tracker", message="ok",
        hardware_id="inprocess")]))
    doc = _run_page(tmp_path, state.snapshot(), _FAKE_DOM)
    assert (doc["state"], doc["stateClass"]) == ("ESTOP", "ESTOP")
    assert doc["seen"] == "3" and doc["purity"] == "90.0 %"
    assert doc["alarms"] == "ALARMS: BELT_STOPPED" and doc["alarmsShown"] == "block"
    assert [r[0] for r in doc["bins"]] == ["feed", "pcb", "residue"]
    assert doc["bins"][1] == ["pcb", "1", "2.00", "90.0 %", "1", "2.00", "90.0 %"]
    assert doc["crm"] == [["Co", "30.00", "20.00", "10.00", "66.7 %", "30.00", "20.00",
                           "66.7 %"]]
    assert doc["nodes"] == [["/line1/tracker", "OK", "inprocess", "ok"]]


# -- commands ----------------------------------------------------------------------------------

def _post(url: str, body: bytes | str) -> tuple[int, dict[str, Any]]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode())


class _ControlledLine:
    """A line controller alone in an in-process executor, with the in-process HMI's command
    inlet, and an HMI server in front; :meth:`post` posts from another thread while the
    executor spins here (its callbacks run on this thread only)."""

    def __init__(self, read_only: bool = False) -> None:
        from sorting.deploy.inprocess_run import CommandInlet
        from sorting.hmi.commands import QueueSink
        from sorting.nodes.line_control import LineControlNode
        from sorting.runtime import InProcessExecutor, SimClock

        self.ex = InProcessExecutor(SimClock())
        self.sink = QueueSink()
        self.control = self.ex.add_node(LineControlNode, "line_control", namespace="/line1")
        self.ex.add_node(lambda ctx: CommandInlet(ctx, self.sink), "command_inlet",
                         namespace="/line1")
        self.state = HmiState("/line1")
        self.bus: list[tuple[str, Any]] = []
        self.ex.add_tap(self._tap)
        self.server = HmiServer(self.state, port=0, commands=self.sink,
                                read_only=read_only).start()

    def _tap(self, topic: str, _t: str, _ns: int, msg: Any) -> None:
        self.state.tap(topic, _t, _ns, msg)
        self.bus.append((topic, msg))

    def post(self, body: bytes | str) -> tuple[int, dict[str, Any]]:
        got: list[tuple[int, dict[str, Any]]] = []
        th = threading.Thread(target=lambda: got.append(_post(self.server.url + "api/command",
                                                              body)))
        th.start()
        while th.is_alive():
            self.ex.spin_for(0.05)
            time.sleep(0.005)
        return got[0]

    def commands(self) -> list[Any]:
        return [m for t, m in self.bus if t == "/line1/control/command"]

    def close(self) -> None:
        self.server.stop()
        self.ex.shutdown()


def test_a_posted_command_goes_on_the_bus_and_the_lines_answer_comes_back() -> None:
    from sorting.control import Command, LineState

    line = _ControlledLine()
    try:
        code, doc = line.post(json.dumps({"command": "estop", "reason": "hand in the chute"}))
        assert code == 200, doc
        assert doc["command"] == "ESTOP" and doc["accepted"] is True and "E-stop latched" in \
            doc["message"]
        (cmd,) = line.commands()
        assert (cmd.command, cmd.source, cmd.reason) == (Command.ESTOP, "hmi",
                                                         "hand in the chute")
        assert line.control.controller.state == LineState.ESTOP
        # the line refuses a START while the E-stop is latched: 409 with its reason
        code, doc = line.post('{"command": "start"}')
        assert code == 409 and doc["accepted"] is False and "RESET first" in doc["message"]
        code, doc = line.post('{"command": "Reset", "reason": "chute clear"}')
        assert code == 200 and line.control.controller.state == LineState.STOPPED
        snap = json.loads(_get(line.server.url + "api/state")[1])
        assert snap["commands"] is True and snap["control"]["state"] == "STOPPED"
        assert snap["control"]["last"]["command"] == "RESET"
        # bad requests: typed, named, nothing sent
        n = len(line.commands())
        code, doc = line.post('{"command": "halt"}')
        assert code == 400 and "unknown line command 'halt'" in doc["error"]
        code, doc = line.post("not json")
        assert code == 400 and "not JSON" in doc["error"]
        code, doc = line.post('{"command": "stop", "reason": 5}')
        assert code == 400 and "reason: expected a string" in doc["error"]
        code, doc = line.post('["stop"]')
        assert code == 400 and "expected a JSON object" in doc["error"]
        assert len(line.commands()) == n
    finally:
        line.close()


def test_a_read_only_hmi_answers_403_and_sends_nothing() -> None:
    line = _ControlledLine(read_only=True)
    try:
        code, doc = line.post('{"command": "estop"}')
        assert code == 403 and "read-only" in doc["error"]
        assert line.commands() == []
        assert json.loads(_get(line.server.url + "api/state")[1])["commands"] is False
    finally:
        line.close()
    # an HMI given nowhere to send commands is read-only too
    server = HmiServer(HmiState("/line1"), port=0).start()
    try:
        assert _post(server.url + "api/command", '{"command": "stop"}')[0] == 403
    finally:
        server.stop()


def test_the_dds_sink_publishes_the_command_on_the_lines_domain() -> None:
    """``crmsort hmi``'s commands: a LineCommand written on ``/line1/control/command`` over
    DDS reaches a reader of that topic in another participant, stamped (DDS source time)
    on the line's clock as the HMI last heard it, which a ``--processes`` line needs."""
    from sorting.control import Command
    from sorting.deploy.dds import DataWait, DdsParticipant
    from sorting.hmi.commands import DdsCommandSink, command_msg
    from sorting.msgs import deserialize
    from sorting.runtime import QoSProfile

    domain = 100 + (os.getpid() * 17 + 53) % 120
    line_side = DdsParticipant(domain)
    hmi_side = DdsParticipant(domain)
    try:
        reader = line_side.reader("/line1/control/command", "crmsort_msgs/msg/LineCommand",
                                  QoSProfile(depth=10))
        heard = HmiState("/line1")
        heard.update("/line1/status", _status(header=new("std_msgs/msg/Header", stamp=new(
            "builtin_interfaces/msg/Time", sec=5, nanosec=250))))
        assert heard.line_time_ns() == 5_000_000_250
        sink = DdsCommandSink(hmi_side, "/line1", heard.line_time_ns)
        got: list[Any] = []
        source_t: list[int] = []
        wait = DataWait(line_side, [reader])
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            sink.send(command_msg(Command.STOP, "hmi", "jam at the infeed", stamp_ns=123))
            if wait.wait(0.2):
                for raw, t in reader.take():
                    got.append(deserialize(raw, "crmsort_msgs/msg/LineCommand"))
                    source_t.append(t)
        assert got, "no LineCommand heard over DDS"
        m = got[0]
        assert (m.command, m.source, m.reason) == (Command.STOP, "hmi", "jam at the infeed")
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (0, 123)
        assert source_t[0] == 5_000_000_250
    finally:
        hmi_side.close()
        line_side.close()


_FAKE_DOM_BUTTONS = r"""
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const js = page.split("<script>")[1].split("</script>")[0].replace("poll();", "");
const els = {};
function node(id) {
  let text = "";
  return { id, get textContent() { return text; }, set textContent(v) { text = String(v); },
           className: "", style: {}, children: [], disabled: false,
           querySelector() { return this; }, replaceChildren(...c) { this.children = c; },
           append(...c) { this.children.push(...c); } };
}
global.document = { getElementById: (id) => (els[id] = els[id] || node(id)),
                    createElement: (tag) => node(tag) };
const posts = [], asked = [];
let yes = true;
global.confirm = (q) => { asked.push(q); return yes; };
global.fetch = async (url, opts) => {
  posts.push({ url, method: opts.method, body: JSON.parse(opts.body) });
  const refused = posts.length !== 1;
  const cmd = JSON.parse(opts.body).command.toUpperCase();
  const message = refused ? "E-stop latched: RESET first" : "E-stop latched";
  return { ok: true, status: 200,
           json: async () => ({ command: cmd, accepted: !refused, message }) };
};
eval(js + "\nglobal.render = render;");
const base = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const ids = ["btnEstop", "btnStart", "btnStop", "btnReset"];
(async () => {
  const out = {};
  render(Object.assign({}, base, { commands: true }));
  out.enabled = ids.map((i) => !els[i].disabled);
  await els.btnEstop.onclick();
  out.estop = { posts: posts.length, asked: asked.length, post: posts[0],
                answer: els.answer.textContent, cls: els.answer.className };
  yes = false; await els.btnStart.onclick();
  out.startDeclined = { posts: posts.length, asked: asked.length };
  yes = true; await els.btnStart.onclick();
  out.start = { posts: posts.length, asked: asked.length, answer: els.answer.textContent,
                cls: els.answer.className };
  await els.btnStop.onclick();
  out.stop = { posts: posts.length, asked: asked.length, body: posts[posts.length - 1].body };
  await els.btnReset.onclick();
  out.reset = { posts: posts.length, asked: asked.length, body: posts[posts.length - 1].body };
  render(Object.assign({}, base, { commands: false }));
  out.readOnly = ids.map((i) => els[i].disabled);
  out.mode = els.mode.textContent;
  console.log(JSON.stringify(out));
})();
"""


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="needs node to run JS")
def test_the_pages_buttons_post_commands_and_only_estop_never_asks(tmp_path: Any) -> None:
    """The page's script under node: E-stop posts at once without a confirmation; Start and
    Reset ask first (declined: nothing is posted); Stop does not ask; the line's answer is
    shown; a read-only HMI's buttons are disabled."""
    doc = _run_page(tmp_path, HmiState("/line1").snapshot(), _FAKE_DOM_BUTTONS)
    assert doc["enabled"] == [True, True, True, True]
    assert doc["estop"]["posts"] == 1 and doc["estop"]["asked"] == 0
    assert doc["estop"]["post"] == {"url": "api/command", "method": "POST",
                                    "body": {"command": "estop", "reason": ""}}
    assert doc["estop"]["answer"] == "ESTOP accepted: E-stop latched"
    assert doc["estop"]["cls"] == "accepted"
    assert doc["startDeclined"] == {"posts": 1, "asked": 1}        # asked, declined, not sent
    assert doc["start"]["posts"] == 2 and doc["start"]["asked"] == 2
    assert doc["start"]["answer"] == "START refused: E-stop latched: RESET first"
    assert doc["start"]["cls"] == "refused"
    assert doc["stop"] == {"posts": 3, "asked": 2, "body": {"command": "stop", "reason": ""}}
    assert doc["reset"] == {"posts": 4, "asked": 3, "body": {"command": "reset", "reason": ""}}
    assert doc["readOnly"] == [True, True, True, True]
    assert doc["mode"].startswith("Read-only view")
