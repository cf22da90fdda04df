"""`crmsort calibrate ...` end to end on the simulated line (known truth) and on bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from calibration.records import camera_from_store
from calibration.store import load_store
from sorting.calibration_tf import tf_static_from_file
from sorting.cli.main import main
from sorting.config import load_line


def test_sim_procedures_write_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "line1.calibration.yaml"
    common = ["--store", str(store), "--run-dir", str(tmp_path / "run")]
    assert main(["calibrate", "intrinsics", "--sim", "--views", "12", "--bad-views", "1",
                 *common]) == 0
    out = capsys.readouterr().out
    assert "rejected view00" in out and "vs truth" in out
    assert main(["calibrate", "arm", "--sim", *common]) == 0
    assert "outlier point" in capsys.readouterr().out
    assert (tmp_path / "run" / "intrinsics.png").stat().st_size > 10_000
    assert (tmp_path / "run" / "arm1.png").exists()
    s = load_store(store)
    assert set(s.calibrations) == {"camera.intrinsics", "arm1.base"}
    cam = camera_from_store(s)
    # the sim line's camera: fx = (640 / 2) / tan(hfov / 2); 0.5 % bar
    c = load_line().sensors.camera
    assert abs(cam.fx / (c.width_px / 2 / math.tan(math.radians(c.hfov_deg) / 2)) - 1) < 0.005
    assert s.calibrations["arm1.base"].quality.value <= 1e-3
    tf = tf_static_from_file(store)
    assert [t.child_frame_id for t in tf.transforms] == ["arm1_base_link"]
    assert abs(tf.transforms[0].transform.translation.x - 3.0) < 2e-3
    # show flags what is missing; --strict turns that into exit status 1
    assert main(["calibrate", "show", "--store", str(store)]) == 0
    assert "missing" in capsys.readouterr().out
    assert main(["calibrate", "show", "--store", str(store), "--strict"]) == 1


def test_sim_time_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.yaml"
    assert main(["calibrate", "time-offset", "--sim", "--store", str(store),
                 "--run-dir", str(tmp_path)]) == 0
    entry = load_store(store).calibrations["depth.time_offset"]
    # truth 7.5 ms (sorting/cli/calibrate_sim.py); issue 5: within 2 ms
    assert abs(entry.results["offset_s"] - 0.0075) < 2e-3


def test_bad_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pts = tmp_path / "touch.csv"
    pts.write_text("bx,by,bz,ax,ay,az\n" + "".join(
        f"{x},0.1,0,{x},0.1,0\n" for x in (0.0, 0.1, 0.2, 0.3)))
    rc = main(["calibrate", "arm", "--csv", str(pts), "--store", str(tmp_path / "s.yaml"),
               "--run-dir", str(tmp_path)])
    assert rc == 2
    assert "lie on one line" in capsys.readouterr().err
    # extrinsics before intrinsics: the store says what to run
    rc = main(["calibrate", "extrinsics", "--sim", "--store", str(tmp_path / "s.yaml"),
               "--run-dir", str(tmp_path)])
    assert rc == 2
    assert "crmsort calibrate" in capsys.readouterr().err
    empty = tmp_path / "imgs"
    empty.mkdir()
    rc = main(["calibrate", "intrinsics", "--images", str(empty), "--run-dir", str(tmp_path),
               "--store", str(tmp_path / "s.yaml")])
    assert rc == 2
    assert "no .png/.jpg images" in capsys.readouterr().err


def test_without_store_the_cli_uses_the_store_the_line_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line YAML anywhere, named line1: `calibrate` reads and writes the store its nodes
    read, launch/line1.calibration.yaml, not one beside the YAML."""
    copy = tmp_path / "my_line.yaml"
    copy.write_text((Path(__file__).parents[2] / "launch" / "line1.yaml").read_text())
    assert main(["calibrate", "show", "--line", str(copy)]) == 0
    out = capsys.readouterr().out.replace("\n", "")
    assert "line1.calibration.yaml" in out and "xrf.energy" in out
    assert not (tmp_path / "my_line.calibration.yaml").exists()
