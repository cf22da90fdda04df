"""Tracker, fusion and grade accounting on synthetic measurement streams with known truth."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sorting.accounting import FEED, RESIDUE, GradeLedger
from sorting.tracking import fusion
from sorting.tracking.fusion import estimate
from sorting.tracking.measurements import ClassMeasurement, VolumeMeasurement, XrfMeasurement
from sorting.tracking.priors import ClassPrior
from sorting.tracking.tracker import Track, Tracker, TrackerConfig, spot_coverage, top_vote

PRIOR = ClassPrior(
    class_name="widget", volume_m3=1e-4, volume_sd_m3=2e-5, density_kg_m3=2000.0,
    density_sd_kg_m3=200.0, mass_kg=0.2, mass_sd_kg=0.05,
    composition={"Co": 0.05, "Cu": 0.10}, composition_sd={"Co": 0.01, "Cu": 0.02},
)


def _stream(rng: np.random.Generator, n: int = 40) -> list[tuple[float, float]]:
    """Object positions on the belt surface, at least 12 cm apart."""
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        s, y = float(rng.uniform(-10, 0)), float(rng.uniform(-0.35, 0.35))
        if all(math.hypot(s - a, y - b) > 0.12 for a, b in pts):
            pts.append((s, y))
    return pts


def test_each_object_keeps_one_identity_through_noisy_missed_detections() -> None:
    rng = np.random.default_rng(1)
    truth = _stream(rng)
    tr = Tracker(TrackerConfig(gate_m=0.06))
    for frame in range(3):
        dets = [
            ClassMeasurement(frame, s + rng.normal(0, 0.01), y + rng.normal(0, 0.01), 0.08, 0.05,
                             "widget", 0.9)
            for s, y in truth
            if rng.random() > 0.15 or frame == 0  # 15 % missed detections after the first
        ]
        tr.add_detections(dets)
    blobs = [VolumeMeasurement(10, s + rng.normal(0, 0.005), y, 0.08, 0.05, 1e-4, 1e-6, 0.02)
             for s, y in truth]
    tr.add_volumes(blobs)
    assert len(tr.tracks) == len(truth)  # no duplicates, no losses
    for t in tr.tracks.values():
        d = min(math.hypot(t.s_m - s, t.y_m - y) for s, y in truth)
        assert d < 0.02  # averaged position within 2 sigma of one 1 cm measurement
        assert t.sensors == {"camera", "depth"}


def test_merged_blob_moves_nobody_and_shares_its_volume_as_low_grade_views() -> None:
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.05, 0.05, "a", 0.9),
                       ClassMeasurement(0, 0.06, 0.0, 0.10, 0.05, "b", 0.9)])
    tr.add_volumes([VolumeMeasurement(1, 0.04, 0.0, 0.16, 0.06, 3e-4, 1e-6, 0.02)])
    assert tr.stats.merged_blobs == 1
    a, b = sorted(tr.tracks.values(), key=lambda t: t.s_m)
    assert (a.s_m, b.s_m) == (0.0, 0.06)  # positions untouched
    assert a.volumes[0].volume_m3 == pytest.approx(1e-4)  # footprint shares 1 : 2
    assert b.volumes[0].volume_m3 == pytest.approx(2e-4)
    assert a.volumes[0].truncated and b.volumes[0].truncated


def test_pieces_of_one_object_in_one_frame_are_one_view_their_sum() -> None:
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.20, 0.06, "stainless_steel_scrap", 0.9)])
    # a 4 mm plate cut in three by the 3D sensor's noise, then seen whole once
    tr.add_volumes([VolumeMeasurement(1, -0.04, 0.0, 0.11, 0.05, 20e-6, 1e-6, 0.005),
                    VolumeMeasurement(1, 0.05, 0.01, 0.06, 0.04, 8e-6, 1e-6, 0.005),
                    VolumeMeasurement(1, 0.08, -0.02, 0.03, 0.02, 2e-6, 1e-6, 0.005)])
    tr.add_volumes([VolumeMeasurement(2, 0.0, 0.0, 0.20, 0.06, 31e-6, 1e-6, 0.005)])
    (t,) = tr.tracks.values()
    assert [v.volume_m3 for v in t.volumes] == pytest.approx([30e-6, 31e-6])
    assert t.volumes[0].volume_u_m3 == pytest.approx(math.sqrt(3) * 1e-6)
    assert t.volumes[0].length_m == pytest.approx(0.19)  # from -0.095 to 0.095
    # a blob beside the plate that the gate hands to it is no piece of it: a view of its own
    # (nearer the track's centre than the plate's one visible piece, so the gate gives it)
    tr.add_volumes([VolumeMeasurement(3, 0.09, 0.0, 0.02, 0.05, 5e-6, 1e-6, 0.005),
                    VolumeMeasurement(3, 0.0, 0.05, 0.03, 0.03, 90e-6, 1e-6, 0.005)])
    assert len(tr.tracks) == 1
    assert sorted(v.volume_m3 for v in t.volumes[2:]) == pytest.approx([5e-6, 90e-6])


def test_split_detection_does_not_make_a_second_track() -> None:
    tr = Tracker(TrackerConfig(gate_m=0.03))
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.30, 0.20, "laptop", 0.9)])
    tr.add_detections([ClassMeasurement(1, 0.0, 0.0, 0.30, 0.20, "laptop", 0.9),
                       ClassMeasurement(1, 0.10, 0.05, 0.1, 0.1, "keyboard", 0.5)])
    assert len(tr.tracks) == 1
    assert tr.stats.split_detections == 1


def test_an_object_lying_on_another_gets_its_own_track_once_boxed_in_three_frames() -> None:
    tr = Tracker()
    laptop = ClassMeasurement(0, 0.0, 0.0, 0.34, 0.24, "laptop", 0.9)
    tr.add_detections([laptop])
    for f in (1, 2, 3):
        tr.add_detections([replace(laptop, t_ns=f),
                           ClassMeasurement(f, 0.06 + 0.003 * f, -0.04, 0.10, 0.07,
                                            "pcb_high_grade", 0.7)])
        # two frames of the PCB are not enough: a split box also shows twice now and then
        assert len(tr.live()) == (2 if f == 3 else 1)
    top = max(tr.live(), key=lambda t: t.track_id)
    assert top_vote(top.class_votes) == "pcb_high_grade" and top.detections == 3
    assert tr.stats.stacked_births == 1 and tr.stats.split_detections == 2
    tr.add_detections([replace(laptop, t_ns=4),
                       ClassMeasurement(4, 0.07, -0.04, 0.10, 0.07, "pcb_high_grade", 0.7)])
    assert len(tr.live()) == 2 and top.detections == 4  # the PCB's box now goes to its track


def test_split_boxes_that_change_class_or_place_or_are_large_start_no_track() -> None:
    tr = Tracker()
    laptop = ClassMeasurement(0, 0.0, 0.0, 0.34, 0.24, "laptop", 0.9)
    tr.add_detections([laptop])
    boxes = [ClassMeasurement(1, 0.06, 0.0, 0.1, 0.1, "keyboard", 0.6),
             ClassMeasurement(2, 0.06, 0.0, 0.1, 0.1, "tablet", 0.6),    # votes split
             ClassMeasurement(3, -0.08, 0.05, 0.1, 0.1, "keyboard", 0.6),  # elsewhere
             ClassMeasurement(4, 0.0, 0.0, 0.30, 0.2, "tablet", 0.6),    # most of the laptop
             ClassMeasurement(5, 0.0, 0.0, 0.30, 0.2, "tablet", 0.6),
             ClassMeasurement(6, 0.0, 0.0, 0.30, 0.2, "tablet", 0.6),
             ClassMeasurement(7, 0.06, 0.0, 0.1, 0.1, "laptop", 0.6)]    # the owner's class
    for b in boxes:
        tr.add_detections([replace(laptop, t_ns=b.t_ns), b])
    assert len(tr.live()) == 1 and tr.stats.stacked_births == 0



def test_a_box_of_another_class_on_a_blob_of_its_own_beside_a_track_is_another_object() -> None:
    """Seed 42, 800 s: a 6 cm HDD magnet lies beside a brass fitting, its edge under it. The
    camera boxes the fitting, and in two frames the magnet, off the fitting's centre but on
    its footprint (a split, as large as the fitting: no stack); the 3D sensor then sees two
    whole blobs, the fitting's and, a step lower, the magnet's. Box and blob together start
    the magnet's track; either alone, or a box of the fitting's own class, does not."""
    brass = ClassMeasurement(0, 0.0, 0.0, 0.06, 0.06, "brass_fitting", 0.9)
    magnet = ClassMeasurement(1, -0.03, -0.018, 0.05, 0.06, "hdd_vcm_magnet_assembly", 0.49)
    own = VolumeMeasurement(2, 0.001, 0.0, 0.07, 0.08, 6.1e-5, 3e-6, 0.030)
    side = VolumeMeasurement(2, -0.032, -0.017, 0.05, 0.07, 1.1e-5, 1e-6, 0.010)

    def run(box: ClassMeasurement | None, blobs: list[VolumeMeasurement]) -> Tracker:
        tr = Tracker()
        tr.add_detections([brass])
        tr.add_detections([replace(brass, t_ns=1)] + ([box] if box is not None else []))
        assert len(tr.live()) == 1
        tr.add_volumes(blobs)
        return tr

    tr = run(magnet, [own, side])
    assert tr.stats.side_births == 1 and len(tr.live()) == 2
    (fitting,) = [t for t in tr.live() if top_vote(t.class_votes) == "brass_fitting"]
    (other,) = [t for t in tr.live() if t is not fitting]
    assert top_vote(other.class_votes) == "hdd_vcm_magnet_assembly" and other.detections == 1
    assert other.volumes == [side] and fitting.volumes == [own]
    assert other.sensors == {"camera", "depth"} and fitting.track_id in other.apart_from
    assert tr.merge_duplicates() == 0
    assert tr.stats.birth_summary() == (
        "2 tracks started, of them 1 beside another (a camera box on a 3D blob)")
    for box, blobs in ((None, [own, side]),                                  # no box
                       (magnet, [side]),                                     # no own blob
                       (replace(magnet, class_name="brass_fitting"), [own, side]),
                       (replace(magnet, s_m=0.02, y_m=0.01), [own, side])):  # elsewhere
        tr = run(box, blobs)
        assert tr.stats.side_births == 0 and len(tr.live()) == 1
        assert tr.stats.birth_summary() == "1 track started"
    # the split boxes are remembered for stack_expire_s only (a line runs for hours)
    tr = run(None, [])
    for k in range(2, 200):
        tr.add_detections([replace(brass, t_ns=int(k * 1e9)),
                           replace(magnet, t_ns=int(k * 1e9))])
    assert tr.stats.split_detections == 198 and len(tr._side_boxes) <= 2


def test_a_grasp_point_on_a_smaller_track_lying_on_a_board_is_not_the_boards() -> None:
    """Seed 42, 800 s: a slag lump lies on a board; the 3D sensor first sees them as one blob,
    its grasp point on the lump's top, then apart. Once the lump has a track, the board is
    picked where its own blob's grasp point lies, not on the lump (the cup would lift it)."""
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.20, 0.20, "pcb_high_grade", 0.9)])
    (board,) = tr.tracks.values()
    pile = VolumeMeasurement(1, 0.0, 0.0, 0.22, 0.22, 3.7e-4, 1e-5, 0.039,
                             grasp_s_m=-0.02, grasp_y_m=-0.003, grasp_z_m=0.047)
    cut = replace(pile, t_ns=2, grasp_s_m=-0.01, grasp_y_m=0.0, truncated=True)
    alone = VolumeMeasurement(3, 0.01, 0.0, 0.22, 0.22, 2.5e-4, 1e-5, 0.016,
                              grasp_s_m=0.012, grasp_y_m=0.01, grasp_z_m=0.015)
    board.volumes.extend([pile, cut, alone])
    assert tr.pick_views(board) == [pile, alone]  # whole views only
    # the lump's track (found by the X-ray scanner), smaller than the board, holds the
    # pile's grasp point
    lump = tr._new_track(4, -0.03, 0.008, 0.07, 0.06)
    assert tr.pick_views(board) == [alone]
    assert tr.pick_views(board, [board]) == [pile, alone]
    # a larger neighbour's footprint holding a grasp point does not drop it
    lump.length_m, lump.width_m = 0.5, 0.4
    assert tr.pick_views(board) == [pile, alone]


def test_a_thin_blob_beside_a_tracks_whole_blob_is_another_object() -> None:
    """Seed 42, 800 s: a 7 mm aluminium strip lies 59 % under a tablet. The 3D sensor sees
    the tablet whole (its blob spans the camera's box) and, beside that blob, the strip's end
    (8 mm, thin as a plate's piece). With the tablet whole in its own blob, the strip's blob
    is no piece of it: it starts a track. Where the tablet's own blob is itself a piece (it
    spans under 80 % of the box), the thin blobs are the tablet's pieces, joined, as before;
    and a blob on another track's footprint is left to that one."""
    tablet_box = ClassMeasurement(0, 0.0, 0.0, 0.32, 0.32, "tablet", 0.7)
    own = VolumeMeasurement(1, -0.005, -0.026, 0.34, 0.27, 7.1e-4, 2e-5, 0.017)
    strip = VolumeMeasurement(1, 0.099, 0.115, 0.22, 0.18, 7.2e-5, 4e-6, 0.008)
    crumb = VolumeMeasurement(1, -0.026, 0.063, 0.04, 0.03, 3e-6, 1e-6, 0.009)

    def run(blobs: list[VolumeMeasurement], *, neighbour: bool = False) -> tuple[Tracker, Track]:
        tr = Tracker()
        tr.add_detections([tablet_box] + ([ClassMeasurement(
            0, 0.16, 0.20, 0.10, 0.10, "cable_piece", 0.8)] if neighbour else []))
        tab = next(t for t in tr.live() if top_vote(t.class_votes) == "tablet")
        tr.add_volumes(blobs)
        return tr, tab

    tr, tab = run([own, crumb, strip])
    assert tr.stats.apart_births == 1 and len(tr.live()) == 2
    (other,) = [t for t in tr.live() if t is not tab]
    assert other.volumes == [strip] and tab.track_id in other.apart_from
    assert tab.volumes == [own, crumb]  # within the gate, as before
    tr, tab = run([replace(own, length_m=0.25), crumb, strip])
    assert tr.stats.apart_births == 0 and len(tr.live()) == 1
    assert sorted(v.volume_m3 for v in tab.volumes) == pytest.approx([7.5e-5, 7.1e-4])
    tr, tab = run([own, crumb, strip], neighbour=True)
    assert tr.stats.apart_births == 0 and len(tr.live()) == 2

@pytest.mark.parametrize(("ds", "expected"), [(0.0, 1.0), (0.05, 0.5), (0.2, 0.0)])
def test_spot_coverage(ds: float, expected: float) -> None:
    # a 1 cm spot on a 10 cm square: fully on, centred on the edge (half), off
    assert spot_coverage(ds, 0.0, 0.01, 0.10, 0.10) == pytest.approx(expected, abs=0.05)


def _track_with(xrf: list[tuple[float, float]] | None = None) -> Tracker:
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.10, 0.10, "widget", 0.9)])
    tr.add_volumes([VolumeMeasurement(1, 0.0, 0.0, 0.10, 0.10, 1.2e-4, 0.6e-5, 0.012)])
    for co, u in xrf or []:
        tr.add_xrf(XrfMeasurement(2, 0.0, 0.0, 0.01, {"Co": co}, {"Co": u}))
    return tr


def test_fusion_mass_and_uncertainty_from_volume_and_density_prior() -> None:
    tr = _track_with()
    est = estimate(next(iter(tr.tracks.values())), {"widget": PRIOR}, {"Co": 30.0})
    assert est.mass_kg == pytest.approx(1.2e-4 * 2000)
    # (u_m/m)^2 = (0.6e-5/1.2e-4)^2 + (200/2000)^2
    assert est.mass_u_kg / est.mass_kg == pytest.approx(math.hypot(0.05, 0.1))
    assert est.composition_source == "prior"
    co, co_u = est.element("Co")
    assert co == pytest.approx(0.24 * 0.05)
    assert co_u == pytest.approx(math.hypot(0.05 * est.mass_u_kg, 0.24 * 0.01))
    assert est.value_eur == pytest.approx(30.0 * co)


def test_fusion_uses_xrf_when_the_spot_covers_the_object() -> None:
    tr = _track_with([(0.08, 0.004), (0.09, 0.004)])
    est = estimate(next(iter(tr.tracks.values())), {"widget": PRIOR}, {})
    i = est.elements.index("Co")
    assert est.composition_source == "xrf"
    # the two spots (equal weights, full coverage): 0.085 ± 0.004/√2, then with the prior
    # 0.05 ± 0.01 by inverse variance
    w_x, w_p = 2 / 0.004**2, 1 / 0.01**2
    assert est.fractions[i] == pytest.approx((0.085 * w_x + 0.05 * w_p) / (w_x + w_p))
    assert est.fractions_u[i] == pytest.approx(1 / math.sqrt(w_x + w_p))
    assert est.element("Cu")[0] == pytest.approx(est.mass_kg * 0.10)  # prior where XRF is silent


def test_cut_views_alone_are_weighed_against_the_classs_volume_spread() -> None:
    """A track seen only in views cut at the 3D sensor's edge (± 40 %) is pulled towards its
    class's log-normal volume, the more the narrower the class; a whole view is not."""
    from sorting.tracking.fusion import TRUNCATED_REL_U, with_log_prior

    # equal log variances: the posterior's log mean halfway, its log variance halved
    s2 = math.log1p(0.3**2)
    v, u = with_log_prior(2.0 * math.exp(0.5 * s2), 2.0 * math.exp(0.5 * s2) * 0.3,
                          math.log(1.0), math.sqrt(s2))
    assert v == pytest.approx(math.sqrt(2.0) * math.exp(0.25 * s2))
    assert u / v == pytest.approx(math.sqrt(math.expm1(s2 / 2)))
    narrow = replace(PRIOR, log_volume_mean=math.log(1e-4), log_volume_sd=0.1)
    wide = replace(PRIOR, log_volume_mean=math.log(1e-4), log_volume_sd=2.0)

    def booked(truncated: bool, prior: ClassPrior) -> tuple[float, float]:
        tr = Tracker()
        tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.10, 0.10, "widget", 0.9)])
        tr.add_volumes([VolumeMeasurement(1, 0.0, 0.0, 0.10, 0.10, 2e-4, 1e-5, 0.02,
                                          truncated=truncated)])
        est = estimate(next(iter(tr.tracks.values())), {"widget": prior}, {})
        return est.volume_m3, est.volume_u_m3

    assert booked(False, narrow)[0] == pytest.approx(2e-4)  # a whole view: as measured
    v_n, u_n = booked(True, narrow)
    v_w, u_w = booked(True, wide)
    assert 1e-4 < v_n < 1.2e-4 and u_n / v_n < 0.15   # the narrow class decides
    assert 1.9e-4 < v_w < 2.1e-4 and u_w / v_w == pytest.approx(TRUNCATED_REL_U, rel=0.1)


def test_ledger_grade_recovery_closure() -> None:
    tr = _track_with()
    est = estimate(next(iter(tr.tracks.values())), {"widget": PRIOR}, {})
    led = GradeLedger()
    led.book(est, "pcb")
    led.book(est, "pcb")
    led.book(est, RESIDUE)
    assert led.recovery("pcb", "Co") == pytest.approx(2 / 3)
    assert led.grade("pcb", "Co") == pytest.approx(0.05)
    assert led.closure_error("Co") == pytest.approx(0.0, abs=1e-12)
    assert led.element_kg(FEED, "Co")[0] == pytest.approx(3 * est.element("Co")[0])


def test_ledger_keeps_the_balance_per_shift_too(tmp_path: Path) -> None:
    """Shifts of 8 h from 06:00 UTC: objects booked at 05:59, 06:00 and 13:59 fall into the
    night shift and the early shift; the shifts' books add up to the running ones and are
    written to JSON and CSV with their start."""
    import csv
    import json

    from sorting.accounting import Shifts, shift_label

    tr = _track_with()
    est = estimate(next(iter(tr.tracks.values())), {"widget": PRIOR}, {})
    hour = 3600 * 10**9
    day = 24 * hour * 20_000  # some day well after the epoch
    led = GradeLedger(Shifts(hours=8.0, start_hour=6.0))
    led.book(est, "pcb", day + 6 * hour - 60 * 10**9)
    led.book(est, "pcb", day + 6 * hour)
    led.book(est, RESIDUE, day + 14 * hour - 1)
    night, early = sorted(led.by_shift)
    assert (night, early) == (day - 2 * hour, day + 6 * hour)
    assert shift_label(early).endswith("T06:00Z") and shift_label(night).endswith("T22:00Z")
    assert led.by_shift[night].accounts[FEED].objects == 1
    assert led.by_shift[early].accounts[FEED].objects == 2
    assert led.by_shift[early].recovery("pcb", "Co") == pytest.approx(0.5)
    assert sum(led.by_shift[t].element_kg(FEED, "Co")[0] for t in led.by_shift) == \
        pytest.approx(led.element_kg(FEED, "Co")[0])
    led.to_json(tmp_path / "ledger.json")
    doc = json.loads((tmp_path / "ledger.json").read_text())
    assert [s["start"] for s in doc["shifts"]] == [shift_label(night), shift_label(early)]
    assert doc["shifts"][1]["destinations"]["pcb"]["objects"] == 1
    led.to_shifts_csv(tmp_path / "shifts.csv")
    rows = list(csv.DictReader((tmp_path / "shifts.csv").open()))
    assert {r["shift_start"] for r in rows} == {shift_label(night), shift_label(early)}
    # a ledger without shifts (or a booking without a time) keeps only the running books
    plain = GradeLedger()
    plain.book(est, "pcb", day)
    assert not plain.by_shift and plain.accounts[FEED].objects == 1
    with pytest.raises(ValueError, match="shift hours"):
        Shifts(hours=0.0)


def test_grade_recovery_curve_runs_from_everything_to_nothing() -> None:
    from sorting.accounting import grade_recovery_curve

    tr = _track_with()
    base = estimate(next(iter(tr.tracks.values())), {"widget": PRIOR}, {"Co": 30.0})
    cheap = base.__class__(**{**base.__dict__, "value_eur": 0.01, "track_id": 2})
    curve = grade_recovery_curve([base, cheap], "Co", [0.0, 0.1, 1e9])
    assert curve[0][2] == pytest.approx(1.0)  # threshold 0: everything picked
    assert curve[1][2] == pytest.approx(0.5)  # only the valuable one
    assert curve[2][2] == 0.0  # nothing worth that much
    assert curve[0][1] == pytest.approx(0.05)  # grade of a Co-at-5 % product


def test_two_tracks_on_one_large_object_are_merged() -> None:
    tr = Tracker(TrackerConfig(gate_m=0.05))
    # a laptop seen whole, then only its far half at the image edge: the centres differ by
    # 9 cm, more than the gate, but the half view lies on the whole one
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.34, 0.24, "laptop", 0.9)])
    tr._new_track(1, 0.09, 0.0, 0.16, 0.24).class_votes["laptop"] = 0.5
    assert len(tr.tracks) == 2
    assert tr.merge_duplicates() == 1
    (only,) = tr.tracks.values()
    assert only.track_id == 1 and only.class_votes["laptop"] == pytest.approx(1.4)
    # two neighbours that merely touch stay two objects
    tr2 = Tracker()
    tr2.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.10, 0.10, "a", 0.9),
                        ClassMeasurement(0, 0.11, 0.0, 0.10, 0.10, "b", 0.9)])
    assert tr2.merge_duplicates() == 0
    # a PCB lying on an aluminium sheet, tracked separately: on its footprint, but another
    # class, so it stays its own object
    tr3 = Tracker()
    tr3.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.30, 0.20, "aluminium_scrap", 0.9)])
    tr3._new_track(1, 0.06, 0.0, 0.10, 0.08).class_votes["pcb_high_grade"] = 0.9
    assert tr3.merge_duplicates() == 0


def test_material_grid_votes_only_cells_under_the_footprint() -> None:
    tr = Tracker()
    # footprint 10.5 cm: the cells at +-5 cm are inside, those at +-6 cm outside
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.105, 0.105, "widget", 0.9)])
    s_rows = np.linspace(-0.2, 0.2, 41)  # 1 cm cells
    y_cols = np.linspace(-0.2, 0.2, 41)
    labels = np.full((41, 41), 254, dtype=np.uint8)  # belt everywhere...
    labels[13:28, 13:28] = 0  # ABS under and around the object (|s|, |y| <= 7 cm)
    labels[0, 0] = 1  # and one PC cell far away
    conf = np.ones((41, 41), dtype=np.float32)
    tr.add_material_grid(5, labels, conf, s_rows, y_cols, {0: "abs", 1: "pc"})
    (track,) = tr.tracks.values()
    assert track.material_votes == pytest.approx({"abs": 121.0})
    assert "hsi" in track.sensors


def test_a_truncated_blob_neither_starts_a_track_nor_gives_a_volume() -> None:
    tr = Tracker()
    tr.add_volumes([VolumeMeasurement(0, 0.0, 0.0, 0.05, 0.05, 5e-5, 1e-6, 0.02,
                                      truncated=True)])
    assert not tr.tracks  # a partial view at the edge of the 3D sensor: no birth
    tr.add_volumes([VolumeMeasurement(1, 0.0, 0.0, 0.10, 0.05, 1e-4, 1e-6, 0.02)])
    (only,) = tr.tracks.values()
    tr.add_volumes([VolumeMeasurement(2, 0.03, 0.0, 0.04, 0.05, 4e-5, 1e-6, 0.02,
                                      truncated=True)])
    assert len(tr.tracks) == 1 and [v.truncated for v in only.volumes] == [False, True]


def test_a_blob_overlapping_a_camera_track_joins_it_instead_of_starting_one() -> None:
    tr = Tracker(TrackerConfig(gate_m=0.05))
    # the camera boxed the left part of a 20 cm strip; the 3D blob has the whole strip
    tr.add_detections([ClassMeasurement(0, -0.06, 0.0, 0.08, 0.03, "copper_scrap", 0.8)])
    tr.add_volumes([VolumeMeasurement(1, 0.0, 0.02, 0.20, 0.03, 3e-5, 1e-6, 0.005)])
    assert len(tr.tracks) == 1
    assert next(iter(tr.tracks.values())).sensors == {"camera", "depth"}


def test_fusion_volume_prefers_whole_views_and_bounds_with_partial_ones() -> None:
    from sorting.tracking.fusion import track_volume
    from sorting.tracking.tracker import Track

    tr = Track(1, 0.0, 0.0, 0.3, 0.2, born_ns=0)
    assert track_volume(tr) is None
    tr.volumes += [VolumeMeasurement(0, 0, 0, 0.3, 0.2, v, 1e-6, 0.05, truncated=True)
                   for v in (1e-3, 2.5e-3)]
    v, u = track_volume(tr)  # type: ignore[misc]
    assert v == pytest.approx(1.75e-3) and u == pytest.approx(0.4 * 1.75e-3)
    tr.volumes += [VolumeMeasurement(0, 0, 0, 0.3, 0.2, v, 2e-5, 0.05) for v in (3e-3, 3.1e-3)]
    v, u = track_volume(tr)  # type: ignore[misc]
    assert v == pytest.approx(3.05e-3)  # median of the whole views only


def test_a_track_is_confirmed_by_its_first_whole_view_not_by_partial_ones() -> None:
    tr = Tracker(TrackerConfig(gate_m=0.05))
    # a keyboard entering the camera's view: two frames of boxes cut by the image border
    for frame, s in enumerate((0.0, 0.02)):
        tr.add_detections([ClassMeasurement(frame, s, 0.0, 0.10, 0.15, "keyboard", 0.8,
                                            truncated=True)])
    (track,) = tr.tracks.values()
    assert not track.confirmed  # its position is a partial box's centre
    tr.add_detections([ClassMeasurement(2, 0.15, 0.0, 0.44, 0.15, "keyboard", 0.8)])
    assert len(tr.tracks) == 1 and track.confirmed
    # an object the camera missed, seen whole by the 3D sensor: confirmed at birth
    tr.add_volumes([VolumeMeasurement(3, 1.0, 0.2, 0.10, 0.05, 1e-4, 1e-6, 0.02)])
    (blob_track,) = [t for t in tr.tracks.values() if t is not track]
    assert blob_track.confirmed


def test_without_class_priors_the_xrf_reading_stands() -> None:
    tr = _track_with([(0.08, 0.004)])
    est = estimate(next(iter(tr.tracks.values())), {}, {})
    i = est.elements.index("Co")
    assert est.composition_source == "xrf"
    assert est.fractions[i] == pytest.approx(0.08)
    assert est.fractions_u[i] == pytest.approx(0.004)


def test_an_object_partly_under_another_gets_its_own_track_from_the_3d_sensor() -> None:
    tr = Tracker()
    # the camera boxed a laptop; a steel piece lies partly under its corner, unseen
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.40, 0.30, "laptop", 0.9)])
    (laptop,) = tr.tracks.values()
    # the 3D sensor sees the pile (on the laptop's centre) and, apart from it by a step in
    # height, the end of the steel piece sticking out (thick, off the laptop's centre)
    pile = VolumeMeasurement(1, 0.01, 0.0, 0.40, 0.30, 4e-3, 1e-4, 0.05)
    steel = VolumeMeasurement(1, 0.15, 0.10, 0.10, 0.08, 2.5e-4, 1e-5, 0.03)
    tr.add_volumes([pile, steel])
    assert tr.stats.apart_births == 1 and len(tr.live()) == 2
    other = next(t for t in tr.live() if t is not laptop)
    assert (other.s_m, other.y_m) == (0.15, 0.10) and other.volumes == [steel]
    assert laptop.volumes == [pile]
    assert tr.merge_duplicates() == 0  # its footprint lies wholly on the laptop's
    # next frame: the steel's blob goes to its track; the pile's now covers both tracks'
    # centres, so it is shared out between them as partial views
    tr.add_volumes([replace(pile, t_ns=2), replace(steel, t_ns=2)])
    assert len(tr.live()) == 2 and tr.stats.apart_births == 1
    assert [v.truncated for v in other.volumes] == [False, True, False]
    assert [v.truncated for v in laptop.volumes] == [False, True]


def test_a_small_blob_off_a_tracks_centre_is_no_whole_view_of_it() -> None:
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.36, 0.28, "keyboard", 0.9)])
    (kb,) = tr.tracks.values()
    # the pile's blob is cut by the sensor's edge, a 3 cm corner sticks out whole: it is
    # not the keyboard (its volume and grasp point would be a corner's)
    tr.add_volumes([VolumeMeasurement(1, 0.11, -0.10, 0.06, 0.04, 1.2e-5, 1e-6, 0.011)])
    assert len(tr.live()) == 1 and tr.stats.apart_births == 0
    assert [v.truncated for v in kb.volumes] == [True]
    # a blob of that size on the track's centre is a whole view
    tr.add_volumes([VolumeMeasurement(2, 0.01, 0.0, 0.06, 0.04, 1.2e-5, 1e-6, 0.011)])
    assert [v.truncated for v in kb.volumes] == [True, False]
    # a thick 2.5 cm blob off its centre while the keyboard has its own blob: a cut of the
    # keyboard by the 3D sensor (a key block), no object of its own
    tr.add_volumes([VolumeMeasurement(3, 0.01, 0.0, 0.36, 0.28, 1.5e-3, 1e-5, 0.03),
                    VolumeMeasurement(3, 0.12, -0.09, 0.025, 0.025, 1.2e-5, 1e-6, 0.024)])
    assert len(tr.live()) == 1 and tr.stats.apart_births == 0
    assert [v.truncated for v in kb.volumes] == [True, False, False, True]


def test_a_track_seen_whole_once_is_offered_after_settling() -> None:
    tr = Tracker(TrackerConfig(settle_s=1.0))
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.10, 0.05, "pcb_low_grade", 0.9)])
    (t,) = tr.tracks.values()
    assert t.confirmed and not t.settled(int(0.5e9), 1.0)
    assert t.settled(int(1.0e9), 1.0)
    tr.add_detections([ClassMeasurement(int(0.5e9), 0.0, 0.0, 0.10, 0.05, "pcb_low_grade",
                                        0.9)])
    assert t.settled(int(0.5e9), 1.0)  # seen whole twice
    partial = tr._new_track(0, 1.0, 0.0, 0.1, 0.1)
    assert not partial.settled(int(5e9), 1.0)  # never seen whole: not offered at all


def test_a_box_of_part_of_an_object_never_seen_whole_is_merged_into_it() -> None:
    """A laptop's corner boxed at the camera's edge as another class (one frame, cut by the
    border) starts a tentative track on the laptop's footprint; the 3D blob of the laptop
    covers both centres and is shared out. Once settled it is the laptop's, whatever its
    one box said: its id goes, its share of each blob joins the laptop's again (booked
    apart, it was the laptop's mass twice, a seed-7 assay's largest over-bookings)."""
    tr = Tracker(TrackerConfig(gate_m=0.05, settle_s=1.0))
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.39, 0.33, "laptop", 0.9)])
    (laptop,) = tr.tracks.values()
    corner = tr._new_track(0, 0.09, 0.02, 0.14, 0.28)
    corner.class_votes["stainless_steel_scrap"] = 0.5
    blob = VolumeMeasurement(int(0.5e9), 0.0, 0.0, 0.41, 0.35, 2.0e-3, 4e-5, 0.03)
    tr.add_volumes([blob])
    assert sorted(v.volume_m3 for v in laptop.volumes + corner.volumes) == pytest.approx(
        sorted([2.0e-3 * a / (a + 0.14 * 0.28) for a in (0.39 * 0.33,)]
               + [2.0e-3 * 0.14 * 0.28 / (0.39 * 0.33 + 0.14 * 0.28)]))
    # too young: it may be an object coming into the camera's view
    assert tr.merge_duplicates(now_ns=int(0.5e9)) == 0
    assert tr.merge_duplicates(now_ns=int(1.0e9)) == 1
    (only,) = tr.live()
    assert only is laptop and len(laptop.volumes) == 1
    assert laptop.volumes[0].volume_m3 == pytest.approx(2.0e-3)
    # a confirmed object of another class lying on the laptop stays apart (a PCB on it)
    pcb = tr._new_track(0, 0.05, 0.0, 0.10, 0.08)
    pcb.class_votes["pcb_high_grade"] = 0.9
    pcb.whole_views = 2
    assert tr.merge_duplicates(now_ns=int(5e9)) == 0


def test_a_spot_inside_two_boxes_goes_to_the_track_it_was_aimed_at() -> None:
    """A PCB lying on a keyboard: both boxes hold the whole spot, which the head aimed at the
    PCB's centre. It belonged to whichever track came first; it goes to the PCB."""
    t = Tracker()
    keyboard = t._new_track(0, 0.0, 0.0, 0.42, 0.21)
    pcb = t._new_track(0, 0.10, 0.05, 0.20, 0.12)
    spot = XrfMeasurement(1, 0.10, 0.05, 0.012, {"Cu": 0.1}, {"Cu": 0.01})
    assert t.add_xrf(spot) is pcb and not keyboard.xrf
    # at the keyboard's centre, off the PCB: the keyboard's
    assert t.add_xrf(replace(spot, s_m=-0.12, y_m=-0.05)) is keyboard


def test_a_silent_xrf_analysis_books_a_trace_at_its_stream_total_not_at_zero() -> None:
    """A trace most objects hold below the detection limit (Nb in stainless: lognormal,
    mean 200 ppm): the fit drops its group under 2 u, so most analyses read 0. Booked as
    0 ± u the stream held a fraction of its Nb; weighed as an upper bound it holds it all."""
    rng = np.random.default_rng(3)
    sigma = math.log(4.0)

    def draw(n: int) -> np.ndarray:
        return rng.lognormal(math.log(2e-4) - sigma**2 / 2, sigma, n)

    samples = draw(300)
    prior = replace(PRIOR, composition={**PRIOR.composition, "Nb": float(samples.mean())},
                    composition_sd={**PRIOR.composition_sd, "Nb": float(samples.std(ddof=1))},
                    composition_samples={"Nb": np.sort(samples)})
    u = 9e-5
    truth = draw(400)
    booked, silent = [], 0
    for f in truth:
        read = f + rng.normal(0.0, u)
        read = read if abs(read) >= fusion.XRF_SILENT_SIGMA * u else 0.0
        silent += read == 0.0
        tr = _track_with()
        tr.add_xrf(XrfMeasurement(2, 0.0, 0.0, 0.01, {"Nb": max(read, 0.0)}, {"Nb": u}))
        est = estimate(next(iter(tr.tracks.values())), {"widget": prior}, {})
        booked.append(est.fractions[est.elements.index("Nb")])
    assert silent > 150        # most analyses are silent on it
    assert sum(booked) / truth.sum() == pytest.approx(1.0, abs=0.08)
    # a silent analysis still says the object holds little: below the class's mean
    tr = _track_with()
    tr.add_xrf(XrfMeasurement(2, 0.0, 0.0, 0.01, {"Nb": 0.0}, {"Nb": u}))
    est = estimate(next(iter(tr.tracks.values())), {"widget": prior}, {})
    f, f_u = est.fractions[est.elements.index("Nb")], est.fractions_u[est.elements.index("Nb")]
    assert 0.0 < f < 2 * u < prior.composition["Nb"]
    assert 0.0 < f_u < 2 * u


def test_a_whole_box_takes_over_a_partial_track_of_another_class() -> None:
    """A large board enters the camera's view: the first box, cut by the border, is of a
    corner and named high-grade; the next, whole, names it low-grade, centred farther off
    than the gate. The whole box is the better view of the same object: it moves the
    partial track there and confirms it, rather than being dropped as a split (a seed-42
    assay's 3 kg board was never offered, its two partial tracks sharing its blob)."""
    tr = Tracker(TrackerConfig(gate_m=0.08))
    tr.add_detections([ClassMeasurement(0, 0.085, -0.03, 0.24, 0.37, "pcb_high_grade", 0.65,
                                        truncated=True)])
    (t,) = tr.tracks.values()
    assert not t.confirmed
    tr.add_detections([ClassMeasurement(1, 0.0, 0.0, 0.43, 0.42, "pcb_low_grade", 0.58)])
    assert list(tr.tracks.values()) == [t] and tr.stats.split_detections == 0
    assert t.confirmed and (t.s_m, t.y_m) == (0.0, 0.0)
    assert set(t.class_votes) == {"pcb_high_grade", "pcb_low_grade"}
    # a whole box of another class that holds only part of a partial track is not its view
    tr2 = Tracker(TrackerConfig(gate_m=0.08))
    tr2.add_detections([ClassMeasurement(0, 0.15, 0.0, 0.20, 0.20, "laptop", 0.8,
                                         truncated=True)])
    tr2.add_detections([ClassMeasurement(1, 0.0, 0.0, 0.20, 0.20, "keyboard", 0.8)])
    assert len(tr2.tracks) == 2
    # nor is one boxed as its own class in two frames: another object coming into view,
    # overlapping the whole box's (a piece of aluminium scrap under a laptop's end)
    tr3 = Tracker(TrackerConfig(gate_m=0.08))
    for f in (0, 1):
        tr3.add_detections([ClassMeasurement(f, 0.19, 0.07, 0.04, 0.17, "aluminium_scrap", 0.9,
                                             truncated=True)])
    tr3.add_detections([ClassMeasurement(2, 0.0, 0.07, 0.43, 0.38, "laptop", 0.9)])
    assert len(tr3.tracks) == 2


def test_a_weakly_boxed_object_gets_a_track_once_boxed_at_one_place_in_three_frames() -> None:
    """Under ``birth_score`` a box starts no track; boxed at one place three frames running
    (its class may change: the detector is unsure of an odd piece) it is an object."""
    weak = [("copper_scrap", 0.33), ("copper_scrap", 0.33), ("hard_disk_drive", 0.27)]
    tr = Tracker(TrackerConfig(birth_score=0.35))
    for f, (cls, score) in enumerate(weak):
        assert not tr.tracks
        tr.add_detections([ClassMeasurement(f, 0.002 * f, 0.0, 0.06, 0.18, cls, score)])
    (t,) = tr.tracks.values()
    assert t.confirmed and t.detections == 3
    assert t.class_votes == pytest.approx({"copper_scrap": 0.66, "hard_disk_drive": 0.27})
    # weak boxes that wander (noise on the belt, parts of neighbours) start nothing
    tr = Tracker(TrackerConfig(birth_score=0.35))
    for f, (cls, score) in enumerate(weak):
        tr.add_detections([ClassMeasurement(f, 0.05 * f, 0.0, 0.06, 0.18, cls, score)])
    assert not tr.tracks


def test_a_sliver_just_off_a_tracks_footprint_is_a_piece_of_it() -> None:
    """A 2 cm blob just past a turned tablet's footprint (its corner, which the axis-aligned
    footprint of the smoothed boxes leaves out) is a partial view of it, not an object; the
    same sliver farther off is an object of its own."""
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.23, 0.27, "tablet", 0.9)])
    (tab,) = tr.tracks.values()
    tr.add_volumes([VolumeMeasurement(1, -0.135, -0.06, 0.02, 0.02, 2e-6, 1e-7, 0.008)])
    assert list(tr.tracks.values()) == [tab]
    assert [v.truncated for v in tab.volumes] == [True]
    tr.add_volumes([VolumeMeasurement(2, -0.20, -0.06, 0.02, 0.02, 2e-6, 1e-7, 0.008)])
    assert len(tr.tracks) == 2


def test_a_whole_blob_that_only_touches_a_footprint_is_an_object_of_its_own() -> None:
    """A seed-7 steel piece in full view beside a tablet: its whole 3D blob overlapped the
    tablet's axis-aligned footprint by a third of its own area and was booked to the tablet,
    so the steel was never tracked. A whole blob needs half its area on a footprint; a blob
    cut by the sensor's edge still joins at a third (its centre is not the object's)."""
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.13, 0.30, 0.25, "tablet", 0.9)])
    (tab,) = tr.tracks.values()
    edge = VolumeMeasurement(1, 0.0, -0.014, 0.084, 0.122, 1.1e-4, 4e-6, 0.022,
                             truncated=True)
    tr.add_volumes([edge])
    assert list(tr.tracks.values()) == [tab] and tab.volumes == [edge]
    tr.add_volumes([replace(edge, t_ns=2, truncated=False)])
    assert len(tr.tracks) == 2 and tr.stats.births == 2
    steel = next(t for t in tr.tracks.values() if t is not tab)
    assert (steel.s_m, steel.y_m) == (0.0, -0.014) and steel.whole_views == 1


def test_a_thin_object_on_a_thick_ones_footprint_is_told_apart_by_its_height() -> None:
    """A 9 mm phone beside a 3 cm keyboard, inside the keyboard's footprint: the camera boxed
    it once (weakly), the 3D sensor saw it whole, a third of the keyboard's height. It is an
    object of its own -- unless another track lies within 10 cm of it (its blob is then
    more likely a piece of that track)."""
    def keyboard() -> tuple[Tracker, Track]:
        tr = Tracker()
        tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.45, 0.20, "keyboard", 0.9)])
        tr.add_volumes([VolumeMeasurement(1, 0.0, 0.0, 0.45, 0.20, 2.7e-3, 1e-4, 0.03)])
        (kb,) = tr.tracks.values()
        return tr, kb

    phone = VolumeMeasurement(2, 0.13, 0.05, 0.13, 0.06, 7e-5, 4e-6, 0.009)
    tr, kb = keyboard()
    tr.add_volumes([phone])
    assert tr.stats.apart_births == 1 and len(tr.live()) == 2
    other = next(t for t in tr.live() if t is not kb)
    assert other.volumes == [phone] and kb.track_id in other.apart_from
    # as tall as the keyboard: a part of it (a corner the camera's box left out)
    tr, kb = keyboard()
    tr.add_volumes([replace(phone, height_m=0.028)])
    assert tr.stats.apart_births == 0 and len(tr.live()) == 1
    assert [v.truncated for v in kb.volumes] == [False, True]
    # another track's footprint within 10 cm: no birth
    tr, kb = keyboard()
    tr.add_detections([ClassMeasurement(3, 0.13, 0.17, 0.10, 0.06, "pcb_low_grade", 0.8)])
    tr.add_volumes([phone])
    assert tr.stats.apart_births == 0 and len(tr.live()) == 2


def test_a_box_of_another_class_and_size_beside_a_track_is_another_object() -> None:
    """Seed 7, 300 s: a slag lump boxed once, then a phone (boxed as a mouse, 5× the lump's
    area) whose centre lay 7 cm off, on no part of the lump's footprint. The gate gave the
    phone's box to the lump's track, and the two objects became one. A box that names another
    class, lies off the footprint and differs in area by 2.5× or more starts its own track; a
    box of the same class there, or one that overlaps the centre, still updates the track."""
    tr = Tracker()
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.07, 0.06, "bf_slag_lump", 0.57)])
    (slag,) = tr.tracks.values()
    tr.add_detections([ClassMeasurement(1, -0.066, -0.007, 0.14, 0.15, "computer_mouse", 0.51)])
    assert len(tr.tracks) == 2 and (slag.s_m, slag.y_m) == (0.0, 0.0)
    phone = next(t for t in tr.tracks.values() if t is not slag)
    tr.add_detections([ClassMeasurement(2, 0.001, 0.001, 0.07, 0.07, "bf_slag_lump", 0.31),
                       ClassMeasurement(2, -0.064, -0.008, 0.14, 0.15, "computer_mouse", 0.56)])
    assert (slag.detections, phone.detections) == (2, 2)
    # the same class, or a box about the footprint's size, is still a view of it
    for det in (ClassMeasurement(3, 0.066, 0.0, 0.14, 0.15, "pcb_low_grade", 0.6),
                ClassMeasurement(3, 0.066, 0.0, 0.08, 0.07, "computer_mouse", 0.6)):
        one = Tracker()
        one.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.07, 0.06, det.class_name
                                             if det.length_m > 0.1 else "bf_slag_lump", 0.6)])
        one.add_detections([det])
        assert len(one.tracks) == 1


def test_a_thin_sliver_in_line_past_a_cables_box_is_the_cables_end() -> None:
    """Seed 42, 300 s: a 38 cm cable across the belt, 6 mm thick, boxed 34 cm long; the 3D
    sensor cut it into pieces, one of them 6 cm past the box's end, which started a second
    track. A thin sliver in line with a long thin track, past its end by at most 30 % of its
    length, is a piece of it; one beside the cable (off its line), or a thick one, is not."""
    def cable() -> tuple[Tracker, Track]:
        tr = Tracker()
        tr.add_detections([ClassMeasurement(0, 0.0, 0.05, 0.02, 0.34, "cable_piece", 0.6)])
        (c,) = tr.tracks.values()
        return tr, c
    tr, c = cable()
    tr.add_volumes([VolumeMeasurement(1, 0.009, -0.177, 0.01, 0.03, 1e-6, 1e-7, 0.007)])
    assert list(tr.tracks.values()) == [c] and [v.truncated for v in c.volumes] == [True]
    for off in (VolumeMeasurement(1, 0.06, -0.177, 0.01, 0.03, 1e-6, 1e-7, 0.007),
                VolumeMeasurement(1, 0.009, -0.177, 0.01, 0.03, 1e-6, 1e-7, 0.02),
                VolumeMeasurement(1, 0.0, -0.26, 0.01, 0.03, 1e-6, 1e-7, 0.007)):
        tr, c = cable()
        tr.add_volumes([off])
        assert len(tr.tracks) == 2, off


def test_a_low_blob_on_the_edge_of_a_tall_objects_footprint_is_no_whole_view_of_it() -> None:
    """Seed 7, 300 s: a 4.6 cm slag lump half over a 3 mm magnet; the magnet's blob lay on the
    lump's footprint 5 cm from its centre and was kept as a whole view, so the lump's pick
    point (the median of its whole views' grasp points) moved onto the magnet. A blob far
    lower than the object's own blob of the frame is a partial view; beside an object not
    much taller it is still a whole one."""
    def lump(h: float) -> tuple[Tracker, Track]:
        tr = Tracker()
        tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.07, 0.12, "ld_slag_lump", 0.9)])
        (t,) = tr.tracks.values()
        tr.add_volumes([
            VolumeMeasurement(1, 0.001, -0.005, 0.13, 0.15, 1.9e-4, 1e-5, h,
                              grasp_s_m=-0.01, grasp_y_m=-0.01),
            VolumeMeasurement(1, -0.003, 0.049, 0.03, 0.02, 1e-6, 1e-7, 0.005,
                              grasp_s_m=-0.003, grasp_y_m=0.048)])
        return tr, t
    tr, t = lump(0.046)
    assert len(tr.tracks) == 1
    assert [(v.height_m, v.truncated) for v in t.volumes] == [(0.046, False), (0.005, True)]
    _tr, low = lump(0.018)   # not twice the thin blob's height and 1 cm more
    assert [v.truncated for v in low.volumes] == [False, False]


def test_two_ends_of_one_object_under_a_wider_one_are_joined() -> None:
    """Seed 42: a 42 cm aluminium bar, a steel plate lying across its middle; the camera
    boxed the bar's two ends, and each end was a track of its own. Two tracks of one class,
    in line and of one width, with the gap between them wholly under a wider track of another
    class, are one object: the older keeps its id and spans both ends. Beside a plate no wider
    than they are, off each other's line, or of two classes, they stay two."""
    def scene(plate_width: float = 0.36, far_y: float = -0.044,
              far_class: str = "aluminium_scrap") -> Tracker:
        tr = Tracker()
        for t in (0, 1, 2):  # the far end is a box on the plate's footprint: 3 frames
            tr.add_detections([
                ClassMeasurement(t, -106.695, -0.057, 0.19, 0.11, "aluminium_scrap", 0.7),
                ClassMeasurement(t, -106.850, -0.039, 0.30, plate_width,
                                 "stainless_steel_scrap", 0.6),
                ClassMeasurement(t, -106.978, far_y, 0.10, 0.11, far_class, 0.5)])
        return tr
    tr = scene()
    assert len(tr.tracks) == 3
    assert tr.merge_duplicates(now_ns=3) == 1
    bar = next(t for t in tr.tracks.values() if top_vote(t.class_votes) == "aluminium_scrap")
    assert bar.track_id == 1 and len(tr.tracks) == 2
    assert bar.length_m == pytest.approx(0.978 - 0.695 + 0.095 + 0.05 + 0.0, abs=0.01)
    assert bar.s_m == pytest.approx((-107.028 - 106.600) / 2, abs=0.005)
    for kw in ({"plate_width": 0.12}, {"far_y": 0.01}, {"far_class": "copper_scrap"}):
        other = scene(**kw)  # type: ignore[arg-type]
        assert other.merge_duplicates(now_ns=3) == 0 and len(other.tracks) == 3, kw


def test_the_pick_height_is_the_top_at_the_grasp_point() -> None:
    """Seed 42, 240 s: a copper strip lies on a board, in the board's own blob; the blob's
    top (4.3 cm) is the strip's, the grasp point lies on the board beside it (3.4 cm). The
    reported pick height is the grasp point's: at the blob's top the cup stopped 9 mm above
    the board and never touched it."""
    from sorting.config import load_line
    from sorting.nodes.tracker_node import TrackerNode
    from sorting.runtime import InProcessExecutor, SimClock

    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: TrackerNode(ctx, load_line(None), arms=()), "tracker",
                       namespace="/line1")
    tr = node.tracker
    tr.add_detections([ClassMeasurement(0, 0.0, 0.0, 0.37, 0.13, "pcb_low_grade", 0.9)])
    (board,) = tr.tracks.values()
    views = [VolumeMeasurement(k, 0.0, 0.0, 0.37, 0.13, 1.6e-3, 5e-5, 0.043,
                               grasp_s_m=-0.06, grasp_y_m=0.0, grasp_z_m=z)
             for k, z in enumerate((0.0335, 0.034, 0.0345), start=1)]
    board.volumes.extend(views)
    msg = node._to_msg(board, node._estimate(board), 0.0)
    assert msg.height_m == pytest.approx(0.034)
    assert (msg.belt_x_m, msg.y_m) == (pytest.approx(-0.06), pytest.approx(0.0))
    ex.shutdown()
