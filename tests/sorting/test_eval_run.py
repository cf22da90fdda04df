"""``crmsort eval-run``: a short recorded demo scored against the simulator's truth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from perception.catalog import is_critical
from sorting.cli.main import main
from sorting.errors import SortingError
from sorting.evaluation.run_eval import evaluate_run


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("assay") / "run"
    rc = main(["demo", "--duration", "16", "--out", str(out), "--topics",
               "/sim/ground_truth", "/line1/sorting/objects", "/line1/sorting/balance",
               "/line1/status"])
    assert rc == 0
    return out


def test_eval_run_scores_tracks_grades_and_closure(short_run: Path) -> None:
    assert main(["eval-run", str(short_run)]) == 0
    doc = json.loads((short_run / "eval_run.json").read_text())
    assert doc["objects_seen"] >= 8
    assert 0.5 <= doc["identity_rate"] <= 1.0
    assert 0.0 <= doc["interval_coverage_object_element"] <= 1.0
    assert math.isfinite(doc["closure_mass"])
    rep = evaluate_run(short_run)
    # the truth stream holds only objects the line could see: not yet past the camera's and
    # the 3D sensor's views at the start, and gone (picked or off the end) by the end -- the
    # line booked about as many
    feed_true, feed_booked = rep.true_flows["feed"], rep.booked_flows["feed"]
    assert feed_true.objects > 0
    assert abs(feed_booked.objects - feed_true.objects) <= 0.3 * feed_true.objects + 2
    crm = rep.crm_elements()
    assert crm and all(is_critical(e) for e in crm)
    assert "Fe" not in crm  # iron is not on the EU critical list


def test_the_operators_kpis_come_from_the_lines_own_balance(short_run: Path) -> None:
    """Each LineStatus reports the objects of the last run balance the tracker published
    before it; the bins' purity, as the line expects it and as it truly was, is scored."""
    from sorting.bags import read_decoded

    last_balance = None
    statuses = 0
    for topic, _type, _t, msg in read_decoded(short_run / "bag", topics=[
            "/line1/sorting/balance", "/line1/status"]):
        if topic.endswith("balance"):
            if msg.scope == 0:
                last_balance = msg
            continue
        statuses += 1
        if last_balance is not None:
            assert msg.objects_seen == last_balance.objects[0]
            assert msg.objects_picked == sum(
                int(n) for d, n in zip(last_balance.destinations, last_balance.objects,
                                       strict=True) if d not in ("feed", "residue"))
    assert statuses >= 10 and last_balance is not None
    summary = json.loads((short_run / "summary.json").read_text())
    ledger = json.loads((short_run / "ledger.json").read_text())
    assert 0 < summary["kpis"]["objects_seen"] <= ledger["destinations"]["feed"]["objects"]
    assert summary["kpis"]["throughput_objects_per_min"] > 0
    assert main(["eval-run", str(short_run)]) == 0
    purity = json.loads((short_run / "eval_run.json").read_text())["purity"]
    bins = [d for d in ledger["destinations"] if d not in ("feed", "residue")]
    for b in bins:
        assert 0.0 <= purity[b]["expected"] <= 1.0
        assert ledger["destinations"][b]["purity"] == purity[b]["expected"]
    rep = evaluate_run(short_run)
    for b in bins:
        true = rep.true_flows.get(b)
        if true is not None:
            assert purity[b]["true"] == pytest.approx((true.belong_kg or 0.0) / true.mass_kg)


def test_a_demo_books_its_shift_too(short_run: Path) -> None:
    """The simulator's clock starts at midnight UTC: a 16 s demo lies in the night shift
    (22:00-06:00 with the default 8 h shifts from 06:00), whose books are the run's."""
    import csv

    ledger = json.loads((short_run / "ledger.json").read_text())
    assert ledger["shift_hours"] == 8.0
    (shift,) = ledger["shifts"]
    assert shift["start"] == "1969-12-31T22:00Z"
    assert shift["destinations"] == ledger["destinations"]
    rows = list(csv.DictReader((short_run / "ledger_shifts.csv").open()))
    assert len(rows) == len(ledger["elements"])
    assert {r["shift_start"] for r in rows} == {"1969-12-31T22:00Z"}


def test_shift_report_reads_the_shifts_back(short_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``crmsort shift-report``: the ledger's shifts read back as written; a shift that is not
    there and a ledger with a broken field are named."""
    from sorting.accounting import FEED, GradeLedger

    led = GradeLedger.load(short_run / "ledger.json")
    doc = json.loads((short_run / "ledger.json").read_text())
    (shift,) = led.by_shift.values()
    for r in doc["shifts"][0]["elements"]:
        assert shift.element_kg(r["destination"], r["element"]) == pytest.approx(
            (r["kg"], r["u_kg"]))
    assert shift.accounts[FEED].objects == doc["destinations"]["feed"]["objects"]
    assert main(["shift-report", str(short_run)]) == 0
    out = capsys.readouterr().out
    assert "Shift from 1969-12-31T22:00Z" in out and "recovery" in out
    assert main(["shift-report", str(short_run), "--shift", "2026-12-08T06:00Z"]) == 2
    assert "no shift starts at 2026-12-08T06:00Z (shifts: 1969-12-31T22:00Z)" in \
        capsys.readouterr().err
    del doc["shifts"][0]["destinations"]["feed"]["mass_kg"]
    (tmp_path / "ledger.json").write_text(json.dumps(doc))
    with pytest.raises(SortingError, match=r"shifts\[0\]: not a ledger summary.*mass_kg"):
        GradeLedger.load(tmp_path / "ledger.json")
    assert main(["shift-report", str(tmp_path / "none")]) == 2


def test_eval_run_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    with pytest.raises(SortingError, match=r"ledger\.json"):
        evaluate_run(tmp_path)


def test_eval_run_reports_the_uncertainty_the_line_states_for_each_grade(
        short_run: Path) -> None:
    assert main(["eval-run", str(short_run)]) == 0
    doc = json.loads((short_run / "eval_run.json").read_text())
    rep = evaluate_run(short_run)
    ledger = json.loads((short_run / "ledger.json").read_text())
    rows = {r["element"]: r for r in ledger["elements"] if r["destination"] == "feed"}
    assert doc["grades"]
    for e, g in doc["grades"].items():
        # the ledger's own u of its feed total, relative: what the line claims for the grade
        assert g["grade_u_rel"] == pytest.approx(rows[e]["u_kg"] / rows[e]["kg"])
        assert g["grade_u_rel"] > 0
    assert doc["grades_within_2u"] == sum(
        abs(rep.grade_error(e)) <= 2 * rep.grade_u(e) for e in doc["grades"])


def test_stream_identity_counts_an_object_never_tracked_as_lost() -> None:
    from sorting.evaluation.run_eval import Flow, RunReport
    from sorting.evaluation.tracking_eval import TrackingReport

    # four objects left the line; three were matched to tracks, two kept one identity
    tracking = TrackingReport(objects_seen=3, identity_kept=2, seen_ids={1, 2, 3},
                              kept_ids={1, 2})
    feed = Flow(objects=4, mass_kg=10.0, object_ids={1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0})
    rep = RunReport(tracking=tracking, true_flows={"feed": feed}, booked_flows={})
    assert tracking.identity_rate == pytest.approx(2 / 3)   # over the objects tracked
    assert rep.feed_identity_rate == pytest.approx(2 / 4)   # over every object of the stream
    assert rep.untracked() == (1, pytest.approx(4.0))


def test_eval_run_reports_identity_over_the_whole_stream(short_run: Path) -> None:
    assert main(["eval-run", str(short_run)]) == 0
    doc = json.loads((short_run / "eval_run.json").read_text())
    rep = evaluate_run(short_run)
    ids = rep.true_flows["feed"].object_ids
    assert len(ids) == rep.true_flows["feed"].objects
    assert doc["identity_rate_feed"] == pytest.approx(
        len(ids.keys() & rep.tracking.kept_ids) / len(ids))
    assert doc["untracked_objects"] == len(ids.keys() - rep.tracking.seen_ids)
    assert doc["identity_rate_feed"] <= 1.0


def test_eval_run_lists_the_objects_that_lost_their_identity(short_run: Path) -> None:
    """``--lost``: one row per object of the stream that did not keep one identity, its
    cause agreeing with the matches the identity figure was computed from."""
    assert main(["eval-run", str(short_run), "--lost"]) == 0
    doc = json.loads((short_run / "eval_run.json").read_text())
    rep = evaluate_run(short_run)
    feed = rep.true_flows["feed"].object_ids
    rows = {r["id"]: r for r in doc["lost_objects"]}
    assert set(rows) == set(feed) - rep.tracking.kept_ids
    for i, r in rows.items():
        matched = sum(rep.tracking.matches.get(i, {}).values())
        assert r["matches"] == matched
        assert (r["cause"] == "untracked") == (matched < 3)
        if "split" in r["cause"]:
            assert len(r["tracks"]) > 1
        assert 0.0 <= r["hidden_share"] <= 1.0 or math.isnan(r["hidden_share"])
        assert r["mass_kg"] == pytest.approx(feed[i])


def test_eval_run_lists_masses_per_class_and_the_furthest_tracks(short_run: Path) -> None:
    """``--masses N``: per true class the tracks' booked and true kg, summing to what the
    mass error was computed from; the N tracks furthest off, largest first."""
    assert main(["eval-run", str(short_run), "--masses", "3"]) == 0
    doc = json.loads((short_run / "eval_run.json").read_text())["masses"]
    finals = evaluate_run(short_run).tracking.finals
    assert sum(c["tracks"] for c in doc["by_class"]) == len(finals)
    assert sum(c["true_kg"] for c in doc["by_class"]) == pytest.approx(
        sum(float(t.mass_kg) for _r, t in finals.values()))
    assert sum(c["booked_kg"] for c in doc["by_class"]) == pytest.approx(
        sum(float(r.mass_kg) for r, _t in finals.values()))
    worst = doc["largest_errors"]
    assert len(worst) == min(3, len(finals))
    errors = [abs(w["error_kg"]) for w in worst]
    assert errors == sorted(errors, reverse=True)
    rest = [abs(float(r.mass_kg) - float(t.mass_kg)) for k, (r, t) in finals.items()
            if k not in {w["track_id"] for w in worst}]
    assert all(e <= errors[-1] + 1e-9 for e in rest)


def test_mass_tables_from_known_reports() -> None:
    from types import SimpleNamespace

    from sorting.evaluation.masses import largest_mass_errors, mass_by_class
    from sorting.evaluation.tracking_eval import TrackingReport

    def obj(i: int, cls: str, kg: float, u: float = 0.0) -> SimpleNamespace:
        return SimpleNamespace(id=i, class_name=cls, mass_kg=kg, mass_u_kg=u,
                               pose=SimpleNamespace(position=SimpleNamespace(y=0.1 * i)))

    rep = TrackingReport(finals={
        1: (obj(1, "board", 1.2, 0.1), obj(11, "board", 1.0)),
        2: (obj(2, "laptop", 0.5, 0.2), obj(12, "board", 2.0)),
        3: (obj(3, "cell", 0.04, 0.01), obj(13, "cell", 0.05)),
    })
    by = {c.class_name: c for c in mass_by_class(rep)}
    assert [c.class_name for c in mass_by_class(rep)] == ["board", "cell"]
    board = by["board"]
    assert (board.tracks, board.other_class) == (2, 1)
    assert board.true_kg == pytest.approx(3.0) and board.booked_kg == pytest.approx(1.7)
    assert board.booked_u_kg == pytest.approx(math.hypot(0.1, 0.2))
    assert board.z == pytest.approx(-1.3 / math.hypot(0.1, 0.2))
    assert by["cell"].rel_error == pytest.approx(-0.2)
    worst = largest_mass_errors(rep, 2)
    assert [w.track_id for w in worst] == [2, 1]
    assert worst[0].error_kg == pytest.approx(-1.5) and worst[0].z == pytest.approx(-7.5)
    assert worst[0].booked_class == "laptop" and worst[0].true_class == "board"


def test_hidden_share_of_an_object_under_another() -> None:
    """The share of a footprint under a higher object: a plate half covered by a box lying
    across it, a box on nothing."""
    from types import SimpleNamespace as Ns

    from sorting.evaluation.lost import _footprint_points, _inside, _top

    def obj(x: float, y: float, z: float, lx: float, ly: float, lz: float) -> Ns:
        return Ns(pose=Ns(position=Ns(x=x, y=y, z=z), orientation=Ns(z=0.0, w=1.0)),
                  dimensions_m=Ns(x=lx, y=ly, z=lz))

    plate = obj(0.0, 0.0, 0.005, 0.2, 0.1, 0.01)
    box = obj(0.05, 0.0, 0.03, 0.1, 0.2, 0.04)
    pts = _footprint_points(plate)
    assert _top(box) > _top(plate)
    hidden = float(_inside(box, pts).mean())
    assert abs(hidden - 0.5) < 0.06   # 11 samples a side: the edge column counts once
    assert not _inside(plate, _footprint_points(obj(1.0, 0.0, 0.0, 0.1, 0.1, 0.1))).any()


def test_eval_run_reads_the_topics_of_the_runs_own_line(
        short_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The namespace follows the run's line: the same bag saved as line "line9" is looked up
    under /line9 (and named in the error), not the fixed /line1."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(short_run, other)
    text = (other / "line.yaml").read_text()
    assert "name: line1\n" in text
    (other / "line.yaml").write_text(text.replace("name: line1\n", "name: line9\n", 1))
    rc = main(["eval-run", str(other)])
    assert rc != 0 and "/line9/sorting/objects" in capsys.readouterr().err
    assert main(["eval-run", str(other), "--namespace", "/line1"]) == 0
