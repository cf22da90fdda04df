"""``crmsort retrack``: a fresh tracker over a short run's recorded sensor topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sorting.cli.main import main
from sorting.config import load_line
from sorting.errors import SortingError
from sorting.evaluation.retrack import TRUTH_TOPIC, recording_topics, retrack
from sorting.evaluation.run_eval import evaluate_run


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retrack") / "run"
    topics = recording_topics(load_line())
    assert main(["demo", "--duration", "16", "--out", str(out), "--topics", *topics]) == 0
    return out


def test_retracking_a_run_tracks_its_objects_as_the_line_did(recorded: Path,
                                                              tmp_path: Path) -> None:
    assert main(["retrack", str(recorded), "--out", str(tmp_path / "a")]) == 0
    assert main(["eval-run", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "eval_run.json").read_text())
    line_run = evaluate_run(recorded)
    again = evaluate_run(tmp_path / "a")
    # the same objects in the stream, the same tracker: about the same tracks (the arms'
    # picks are not replayed, so picked objects' tracks ride on to the belt end)
    assert again.true_flows["feed"].object_ids == line_run.true_flows["feed"].object_ids
    assert doc["objects_seen"] >= 8
    assert abs(again.tracking.objects_seen - line_run.tracking.objects_seen) <= 2
    assert again.feed_identity_rate >= line_run.feed_identity_rate - 0.1
    # the recorded picks, replayed by place, booked into their bins
    picked = {d for d in again.booked_flows if d not in ("feed", "residue")}
    assert picked and picked <= set(line_run.booked_flows)
    # deterministic: a second replay gives the same books
    retrack(recorded, tmp_path / "b")
    assert (json.loads((tmp_path / "a" / "ledger.json").read_text())
            == json.loads((tmp_path / "b" / "ledger.json").read_text()))


def test_retrack_names_what_it_lacks_and_overwrites_nothing(recorded: Path,
                                                            tmp_path: Path) -> None:
    with pytest.raises(SortingError, match="exists already"):
        retrack(recorded, recorded)
    short = tmp_path / "short"
    assert main(["demo", "--duration", "2", "--out", str(short), "--topics", TRUTH_TOPIC,
                 "/line1/sorting/objects"]) == 0
    with pytest.raises(SortingError, match=r"lacks /line1/belt/joint_states, "
                                           r"/line1/camera/detections"):
        retrack(short, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SortingError, match="bag/"):
        retrack(tmp_path / "nothing", tmp_path / "out2")
