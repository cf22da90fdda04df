"""``crmsort xrf simulate`` → ``crmsort xrf quant`` from files, with and without a standard."""

from __future__ import annotations

from pathlib import Path

import pytest

from sorting.cli.main import main


def test_simulate_then_quantify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.mca"
    std = tmp_path / "std.npz"
    assert main(["xrf", "simulate", "--composition", "Fe=0.70,Cr=0.18,Ni=0.08,Co=0.04",
                 "--live-time", "5", "-o", str(spec)]) == 0
    assert main(["xrf", "simulate", "--composition", "Fe=0.68,Cr=0.2,Ni=0.1,Co=0.02",
                 "--live-time", "10", "--seed", "1", "-o", str(std)]) == 0
    capsys.readouterr()
    assert main(["xrf", "quant", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "fundamental parameters alone" in out
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("Co "))
    assert "critical" in row and "strategic" in row            # CRM flags from the catalog
    wt = float(row.split("│")[3])
    assert abs(wt - 4.0) < 0.2                                  # 4 wt% Co within 5 % relative
    assert main(["xrf", "quant", str(spec), "--standard",
                 f"{std}=Fe=0.68,Cr=0.2,Ni=0.1,Co=0.02"]) == 0
    out = capsys.readouterr().out
    assert "standard" in out and "largest residual" in out and "fp+standards" in out


def test_bad_spectrum_file_is_one_line_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("# live_time_s=1\n# gain_kev_per_channel=0.02\n" + "5\n" * 20 + "-3\n")
    assert main(["xrf", "quant", str(bad)]) == 2
    assert "negative counts at channel 20" in capsys.readouterr().err
