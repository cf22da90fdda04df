"""``crmsort schedule generate`` and ``crmsort schedule eval``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sorting.cli.main import main


def test_generate_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.csv"
    assert main(["schedule", "generate", "--density", "dense", "--seed", "2", "--arms", "2",
                 "--duration-s", "6", "-o", str(out)]) == 0
    assert out.exists() and (tmp_path / "s.arms.json").exists()
    capsys.readouterr()
    assert main(["schedule", "eval", str(out), "--policies", "online,fifo,optimum"]) == 0
    text = capsys.readouterr().out
    for word in ("online", "fifo", "optimum", "missed most"):
        assert word in text
    assert "greedy" not in text


def test_eval_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"belt_speed_mps": 0.4, "arms": [], "objects": []}')
    assert main(["schedule", "eval", str(bad)]) == 2
    assert "arms" in capsys.readouterr().err
    ok = Path(__file__).resolve().parents[2] / "datasets" / "streams" / "example_medium.json"
    assert main(["schedule", "eval", str(ok), "--policies", "online,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
