"""Synthetic detector dataset: valid YOLO labels, determinism, shifted ranges, label checker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from perception.catalog import load_catalog
from sorting.cli.main import main
from sorting.dataset.check import check_dataset, check_label_line
from sorting.dataset.synth import SynthConfig, split_of, synthesize
from sorting.errors import ConfigError

SMALL = {"width_px": 160, "height_px": 120, "images_per_scene": 3}


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p.name != "summary.json"
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    synthesize(out, SynthConfig(n_images=7, seed=3, val_fraction=0.3, masks=True, **SMALL))
    return out


def test_labels_are_valid_yolo_boxes_inside_the_image(dataset: Path) -> None:
    nc = len(load_catalog().classes)
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(load_catalog().class_names))
    images = sorted((dataset / "images").rglob("*.jpg"))
    assert len(images) == 7
    n_boxes = 0
    for img_path in images:
        split = img_path.parent.name
        img = cv2.imread(str(img_path))
        assert img.shape == (120, 160, 3)
        rows = (dataset / "labels" / split / f"{img_path.stem}.txt").read_text().split("\n")
        for line in filter(None, rows):
            cls, cx, cy, w, h = line.split()
            assert 0 <= int(cls) < nc
            x0, x1 = float(cx) - float(w) / 2, float(cx) + float(w) / 2
            y0, y1 = float(cy) - float(h) / 2, float(cy) + float(h) / 2
            # 1e-6: the 6-decimal rounding of the label text
            assert -1e-6 <= x0 < x1 <= 1 + 1e-6 and -1e-6 <= y0 < y1 <= 1 + 1e-6
            n_boxes += 1
        mask = cv2.imread(str(dataset / "masks" / split / f"{img_path.stem}.png"),
                          cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint16 and int(mask.max()) == len(list(filter(None, rows)))
    assert n_boxes > 7  # 3-14 objects per image, most of them labelled
    assert check_dataset(dataset / "data.yaml") == []


def test_same_seed_same_files_other_seed_or_shift_differs(tmp_path: Path, dataset: Path) -> None:
    again = tmp_path / "again"
    synthesize(again, SynthConfig(n_images=7, seed=3, val_fraction=0.3, masks=True, **SMALL))
    assert _digest(again) == _digest(dataset)
    other = tmp_path / "other"
    synthesize(other, SynthConfig(n_images=7, seed=4, val_fraction=0.3, masks=True, **SMALL))
    assert _digest(other) != _digest(dataset)
    shifted = tmp_path / "shifted"
    synthesize(shifted, SynthConfig(n_images=3, seed=3, shifted=True, **SMALL))
    assert len(list((shifted / "images" / "val").glob("*.jpg"))) == 3  # held-out: all val
    assert not list((shifted / "images" / "train").glob("*.jpg"))


def test_worker_processes_write_the_same_files(tmp_path: Path, dataset: Path) -> None:
    seen: list[int] = []
    par = tmp_path / "par"
    summary = synthesize(
        par, SynthConfig(n_images=7, seed=3, val_fraction=0.3, masks=True, **SMALL),
        progress=lambda done, _total: seen.append(done), jobs=2,
    )
    assert _digest(par) == _digest(dataset)
    assert sum(summary.images.values()) == 7 and seen[-1] == 7
    with pytest.raises(ConfigError, match="jobs"):
        synthesize(tmp_path / "none", SynthConfig(n_images=1, seed=0, **SMALL), jobs=0)


def test_split_spreads_val_images_evenly() -> None:
    splits = [split_of(i, 0.25) for i in range(100)]
    assert splits.count("val") == 25
    assert all(s == "train" for s in splits[:3]) and splits[3] == "val"


def test_output_folder_must_be_new(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="not empty"):
        synthesize(dataset, SynthConfig(n_images=1, seed=0, **SMALL))


def test_check_lists_every_planted_bad_label(
    tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(dataset, bad)
    label = sorted((bad / "labels" / "train").glob("*.txt"))[0]
    good = label.read_text().splitlines()[0]
    planted = [
        "22 0.5 0.5 0.1 0.1",  # class out of range
        "3 0.95 0.5 0.2 0.1",  # sticks out right
        "3 0.5 0.5 0.1",  # 4 fields
        "x 0.5 0.5 0.1 0.1",  # class not an int
        "3 0.5 0.5 0 0.1",  # zero width
        good,  # duplicate of line 1
    ]
    label.write_text("\n".join([good, *planted]) + "\n")
    (bad / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    issues = check_dataset(bad / "data.yaml")
    got = {(i.path.name, i.line): i.reason for i in issues}
    assert set(got) == {(label.name, n) for n in range(2, 8)} | {("orphan.txt", 0)}
    assert "out of range" in got[(label.name, 2)]
    assert "outside the image" in got[(label.name, 3)]
    assert "5 fields" in got[(label.name, 4)]
    assert "duplicate of line 1" in got[(label.name, 7)]
    assert main(["dataset", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{label}:2: class id 22 out of range 0..21" in out


@pytest.mark.parametrize(
    ("line", "reason"),
    [("0 0.5 0.5 0.2 0.2", None), ("0 nan 0.5 0.2 0.2", "finite"), ("-1 0.5 0.5 0.2 0.2", "range"),
     ("0 1.2 0.5 0.2 0.2", "[0, 1]")],
)
def test_label_line_reasons(line: str, reason: str | None) -> None:
    got = check_label_line(line, 22)
    assert (got is None) if reason is None else (got is not None and reason in got)
