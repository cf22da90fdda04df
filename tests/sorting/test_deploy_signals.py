"""``crmsort run --processes`` under SIGTERM and Ctrl-C: exit status 0, every node process
shut down (none killed for ignoring SIGTERM, none left behind), the bag closed and holding
exactly what the printed summary counts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from sorting.bags import bag_info
from sorting.config.line import DEFAULT_LINE

REPO = Path(__file__).resolve().parents[2]
CRMSORT = REPO / ".venv" / "bin" / "crmsort"
ROW = re.compile(r"│\s*(/\S+)\s*│\s*(\d+)\s*│")


def _domain(tag: str) -> int:
    return 100 + (os.getpid() * 7 + sum(map(ord, tag))) % 120


def _line(tmp_path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_LINE.read_text())
    for sensor in ("camera", "hsi", "xrf"):  # a small line: two processes, quick to start
        data["sensors"].setdefault(sensor, {})["enabled"] = False
    data["deploy"] = {"groups": {"sim": ["sim_line", "line_monitor"], "perception": ["*"]}}
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _children(domain: int) -> list[int]:
    """PIDs of node-group processes of the run on ``domain`` (their command line names it)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "sorting.deploy.group" in cmd and f'"domain_id": {domain}' in cmd:
            out.append(int(d.name))
    return out


class _Run:
    """``crmsort -v run LINE --processes`` in a session of its own (as a terminal would
    start it), stderr collected line by line."""

    def __init__(self, line: Path, domain: int, bag: Path) -> None:
        if not CRMSORT.exists():
            pytest.skip(f"{CRMSORT} not found (make env)")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        self.domain = domain
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [str(CRMSORT), "-v", "run", str(line), "--processes", "--domain", str(domain),
             "--record", str(bag)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line.rstrip())

    def wait_for(self, cond: str, timeout_s: float = 180.0) -> None:
        while time.monotonic() - self.t0 < timeout_s:
            if cond == "ready" and sum("is ready" in e for e in self.err) >= 2:
                return
            if cond == "children" and len(_children(self.domain)) >= 2:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail(f"no {cond!r} within {timeout_s} s; stderr: {self.err[-20:]}")

    def finish(self) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=120)
        self._reader.join(timeout=5)
        return self.proc.returncode, out


def _check_clean(run: _Run, rc: int, out: str, bag: Path, signame: str) -> dict[str, int]:
    assert rc == 0, (out[-2000:], run.err[-30:])
    assert f"stopped by {signame}" in out
    assert not [e for e in run.err if "ignored SIGTERM" in e], run.err  # none needed SIGKILL
    time.sleep(0.2)
    assert _children(run.domain) == []
    counts = {t: int(n) for t, n in ROW.findall(out)}
    info = bag_info(bag)  # closed: metadata and summary written
    assert {t.name: t.count for t in info.topics if t.count} == counts
    return counts


@pytest.mark.slow
def test_sigterm_stops_every_process_and_closes_the_bag(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    run = _Run(_line(tmp_path), _domain("sigterm"), bag)
    run.wait_for("ready")
    time.sleep(1.5)  # the line runs (real time)
    run.proc.send_signal(signal.SIGTERM)
    rc, out = run.finish()
    counts = _check_clean(run, rc, out, bag, "SIGTERM")
    assert counts.get("/line1/belt/joint_states", 0) >= 50  # it did run: 100 Hz encoder


@pytest.mark.slow
def test_ctrl_c_while_starting_stops_cleanly(tmp_path: Path) -> None:
    # a terminal's Ctrl-C goes to the whole foreground process group; 2.5 s after they
    # appear the node processes are past their imports, building their nodes (they used to
    # ignore the supervisor's SIGTERM there and be killed 5 s later)
    bag = tmp_path / "bag"
    run = _Run(_line(tmp_path), _domain("ctrlc"), bag)
    run.wait_for("children")
    time.sleep(2.5)
    os.killpg(run.proc.pid, signal.SIGINT)
    rc, out = run.finish()
    _check_clean(run, rc, out, bag, "SIGINT")
