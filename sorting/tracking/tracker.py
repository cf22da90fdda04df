"""Multi-sensor tracker in belt-surface coordinates.

Objects lie still on the belt, so a track's belt-surface position ``(s, y)``
is constant up to measurement noise; what moves is the encoder. Each sensor
batch (one camera frame, one 3D frame) is associated to the live tracks by a
gated assignment (Hungarian, cost = normalized distance); single spot
measurements (XRF) go to the track whose footprint covers the spot most; an
X-ray transmission view (one pass of an object under the scanner) goes to the
track it lies on, or is shared out cell by cell among touching tracks.

Lifecycle: a track is born from an unmatched camera detection, 3D blob or X-ray view,
is updated by every sensor downstream, survives missed detections, and ends
when it leaves the belt end (``exited``) or is picked (``picked``). A 3D
blob that covers the centres of several tracks (touching objects merged)
moves none of them and is counted as ``merged``; its volume is shared out by
footprint area as low-grade views. Two detections matching one object are
resolved by the assignment (one wins, the other is dropped if it lies inside
the winner's footprint — a split), unless it is a small box of another class boxed
at the same place in several frames: an object lying on another gets its own track. A box
under the birth score starts a track only when boxed at one place in several frames. A
whole box takes over a track known only from one box cut by the image border when that
track lies nearly whole inside it, whatever class the cut box named (a part of an object
is often named another class than the whole). A whole box that names another class than a
track's, lies off its footprint and differs from it in area by ``other_object_area_ratio`` is
never associated with it (another object beside it, whose box reaches towards it). Two
tracks of one class in line, of one width, with the gap between them under a wider track of
another class, are the two ends of one object lying under that one: they are joined. A 3D
sliver just off a track's footprint, or a thin one in line with a long thin track past its
end (a cable's end that the camera's box fell short of), is a piece of it; a whole blob
that only touches a footprint is not, and a thin blob on a thick object's footprint is an
object of its own (or, within the gate of its centre, a partial view of it). An X-ray view
on no track starts one (an object too small for the camera and the 3D sensor), and so does
a region of a track's view that reads another material or a step in thickness (an object
lying under it, which only the scanner sees); such an object is not offered for picking
while the other lies on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from perception.xrt.stack import ForeignRegion
from sorting.tracking.measurements import (
    ClassMeasurement,
    MaterialMeasurement,
    VolumeMeasurement,
    XrfMeasurement,
    XrtLayer,
    XrtMeasurement,
)


class TrackState(IntEnum):
    """Matches ``crmsort_msgs/SortObject.STATE_*``."""

    TRACKING = 0
    SCHEDULED = 1
    PICKED = 2
    MISSED = 3
    EXITED = 4


@dataclass
class Track:
    """Everything the line has seen of one object."""

    track_id: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    born_ns: int
    state: TrackState = TrackState.TRACKING
    bin: str = ""
    n_pos: float = 1.0
    class_votes: dict[str, float] = field(default_factory=dict)
    volumes: list[VolumeMeasurement] = field(default_factory=list)
    xrf: list[tuple[XrfMeasurement, float]] = field(default_factory=list)  # (spot, coverage)
    material_votes: dict[str, float] = field(default_factory=dict)
    xrt: list[XrtMeasurement] = field(default_factory=list)
    #: derived figures of the X-ray views per class hypothesis, keyed by what they depend on
    xrt_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False,
                                                  compare=False)
    sensors: set[str] = field(default_factory=set)
    last_seen_ns: int = 0
    detections: int = 0
    whole_views: int = 0   # position updates from views not truncated at a sensor's edge
    #: tracks seen as separate objects beside or under this one: never merged with it
    apart_from: set[int] = field(default_factory=set)
    #: X-ray views of piles this track lies in (with others on or under it)
    piles: list[PileView] = field(default_factory=list, repr=False, compare=False)
    #: the track lying on most of this one (found under it by the X-ray scanner): not to be
    #: picked while that one is on the belt
    covered_by: int | None = None

    @property
    def confirmed(self) -> bool:
        """Seen whole at least once (camera or 3D): until then only partial views at a
        sensor's edge place it, so its position may lie on a neighbour."""
        return self.whole_views > 0

    def settled(self, now_ns: int, settle_s: float) -> bool:
        """Seen whole twice, or once and born ``settle_s`` ago: a track
        seen whole once may still be a second view of an object tracked already (merged at
        the next frame) or sit between two neighbours, so it is not offered yet."""
        return self.whole_views >= 2 or (self.whole_views == 1
                                         and now_ns - self.born_ns >= settle_s * 1e9)

    def x_at(self, encoder_m: float) -> float:
        """Belt-frame x of the track when the encoder reads ``encoder_m``."""
        return self.s_m + encoder_m

    def _move(self, s: float, y: float, weight: float) -> None:
        total = self.n_pos + weight
        self.s_m = (self.s_m * self.n_pos + s * weight) / total
        self.y_m = (self.y_m * self.n_pos + y * weight) / total
        self.n_pos = min(total, 20.0)  # keep some memory, do not freeze


@dataclass(eq=False)
class PileView:
    """One X-ray view over tracks lying on one another (``members``, the tracks whose centres
    it covers): its cells cannot be told apart, but together they weigh the whole pile, the
    objects under it that no other sensor saw included."""

    view: XrtMeasurement
    members: list[Track]
    #: derived figures of the view (its cells split between two classes), keyed by what they
    #: depend on
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)


#: another object found in a track's X-ray view whose centre lies this close to the
#: footprint of a third track is that track's (footprints are rough), not a new object
HIDDEN_CLEAR_M = 0.03
#: ... and one found in a pile's view (:meth:`Tracker._hidden_in_pile`) covers at least this
#: much (m²): there the rays cross the members' rims, whose slivers read as other materials
PILE_HIDDEN_MIN_AREA_M2 = 0.001
#: regions looked at in one pile's view before giving up
PILE_HIDDEN_TRIES = 3
#: ... and one that spans more than this share of the track's own footprint around its
#: centre is the track's own object, not another
HIDDEN_MAX_SHARE = 0.5
#: looks for another object in a track's X-ray view (see :meth:`Tracker.add_xrt`)
SplitFn = Callable[["Track", XrtMeasurement],
                   tuple[ForeignRegion, NDArray[np.float64]] | None]
#: a cell whose high-layer log-attenuation reaches this counts as opaque when a view is shared
#: out (the driver flags T_high < 1e-3, A = 6.9; noise spreads it)
OPAQUE_A_HIGH = 6.5
#: an X-ray view more than this many times the area of its track's footprint (grown by the
#: margin all round) holds more than the object: the track gets the cells on its footprint
XRT_OVERSIZE = 2.0
XRT_MARGIN_M = 0.02
PARTIAL_EXTEND_M = 0.15  # how far a view cut by the image border may hide its object
#: an X-ray view on no track starts one when it is whole and holds at least this many cells
#: (a 5 mm tantalum capacitor gives 12-15)
XRT_BIRTH_MIN_CELLS = 8


@dataclass
class TrackerConfig:
    gate_m: float = 0.08            # max centre distance for an association
    birth_score: float = 0.35       # min detection score to start a track
    belt_length_m: float = 6.0
    xrf_min_coverage: float = 0.2   # spot share on the object to count a measurement
    # an object lying on another: a whole box of another class inside a track's footprint,
    # at most this share of its area, seen in this many frames at one place, starts a track
    stack_max_area_ratio: float = 0.5
    stack_confirm_frames: int = 3
    # ... and their scores sum to this (weak boxes under birth_score count, frame by frame)
    stack_min_score_sum: float = 0.7
    stack_expire_s: float = 1.5
    # objects this thin come out of the 3D sensor in pieces (their top lies within noise of
    # its 3 mm foreground threshold): pieces of one frame on one track are then one view
    thin_piece_max_height_m: float = 0.012
    # a track is offered (sorting/objects) once seen whole twice or this long after birth
    settle_s: float = 1.0
    # a blob off a track's centre gets a track of its own only this wide and long: smaller
    # ones are the 3D sensor's cuts of the object itself (on two 800 s assays every such
    # birth below 3 cm was a second track on one object, every one above 5 cm an object)
    apart_min_side_m: float = 0.04
    # a whole box takes over a track of another class known only from partial views when
    # at least this share of the track's footprint lies inside the box and the box is at
    # least this many times the footprint's area (the rest of the object, come into view)
    partial_within_share: float = 0.9
    partial_within_growth: float = 1.5
    # a 3D blob narrower than apart_min_side_m this close to a track's footprint is a piece
    # of it (a turned object's corner, a thin object's end), not an object
    sliver_margin_m: float = 0.03
    # ... and a thin one in line with a long thin track (this many times longer than wide),
    # beyond its end by at most this share of its length, is the end of it (a cable whose
    # end the camera's box fell short of)
    line_min_aspect: float = 4.0
    line_end_share: float = 0.3
    # a whole 3D blob whose centre lies on no track's footprint goes to the footprint it
    # overlaps most only when at least this share of the smaller of the two overlaps: a whole
    # object beside another whose footprint it only touches is an object of its own
    whole_blob_min_share: float = 0.5
    # ... and such a blob off the track's centre is another object, whatever else the
    # track got this frame, when the track's object was seen this many times taller plus
    # this step (the 3D sensor sees two objects' heights where the camera saw one box)
    apart_height_ratio: float = 2.0
    apart_height_step_m: float = 0.01
    # ... and no other track's footprint lies this close to it (on a seed-42 replay a board
    # whose track knew only its cut part had its blob taken for a new object beside a laptop)
    apart_clear_m: float = 0.10
    # ... and a thin blob off the centre whose centre lies beside the track's own blob of
    # the frame, that one spanning this share of the track's footprint, is another object
    own_blob_whole_share: float = 0.8
    # two tracks of one class in line, of one width, with the gap between them under a track
    # of another class that is wider than they are by this much, spanning at most this much
    # together, are the two ends of one object lying partly under that one
    ends_under_margin_m: float = 0.02
    ends_max_span_m: float = 0.6
    # a whole box of another class whose centre lies off a track's footprint and whose area
    # differs from the footprint's this many times is another object, not a view of it
    other_object_area_ratio: float = 2.5


@dataclass
class TrackerStats:
    births: int = 0
    merged_blobs: int = 0
    split_detections: int = 0
    unassociated_xrf: int = 0
    merged_xrt: int = 0
    pile_xrt: int = 0
    pile_hidden_births: int = 0
    shared_xrt: int = 0
    cropped_xrt: int = 0
    unassociated_xrt: int = 0
    merged_tracks: int = 0
    stacked_births: int = 0
    apart_births: int = 0
    side_births: int = 0
    xrt_births: int = 0
    hidden_births: int = 0

    def birth_summary(self) -> str:
        """The tracks started and, of them, those the rules for objects on, beside or under
        others started (for an engineer tuning the tracker on a replay)."""
        rules = ", ".join(f"{n} {what}" for n, what in (
            (self.stacked_births, "lying on another (camera boxes)"),
            (self.apart_births, "beside or under another (3D blobs)"),
            (self.side_births, "beside another (a camera box on a 3D blob)"),
            (self.xrt_births, "seen by the X-ray scanner alone"),
            (self.hidden_births, "hidden under others (X-ray)")) if n)
        started = f"{self.births} track{'' if self.births == 1 else 's'} started"
        return started + (f", of them {rules}" if rules else "")


@dataclass
class _StackCandidate:
    """A box of another class seen inside a track's footprint, not yet confirmed."""

    owner_id: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    votes: dict[str, float]
    frames: int
    last_ns: int


class Tracker:
    """Associates measurements to tracks and ends tracks that leave or get picked."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: dict[int, Track] = {}
        self.finished: list[Track] = []
        self.stats = TrackerStats()
        self._next_id = 1
        self._stack_candidates: list[_StackCandidate] = []
        #: whole boxes of another class than their owner's that a split dropped: a 3D blob
        #: of its own under one confirms another object there (:meth:`_apart`)
        self._side_boxes: list[_StackCandidate] = []

    # -- association ---------------------------------------------------------------------------
    def live(self) -> list[Track]:
        """Tracks still on the belt (tracking or scheduled)."""
        return [t for t in self.tracks.values() if t.state in (TrackState.TRACKING,
                                                               TrackState.SCHEDULED)]

    def _assign(self, points: Sequence[tuple[float, float]], live: list[Track],
                allowed: NDArray[np.bool_] | None = None) -> dict[int, int]:
        """Measurement index → index into ``live`` (gated Hungarian; ``allowed``, when
        given, rules out the (measurement, track) pairs it holds False for)."""
        if not points or not live:
            return {}
        m = np.array(points)
        t = np.array([(tr.s_m, tr.y_m) for tr in live])
        d = np.hypot(m[:, None, 0] - t[None, :, 0], m[:, None, 1] - t[None, :, 1])
        big = 1e6
        ok = d <= self.config.gate_m
        if allowed is not None:
            ok &= allowed
        cost = np.where(ok, d, big)
        rows, cols = linear_sum_assignment(cost)
        return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if cost[r, c] < big}

    def _new_track(self, t_ns: int, s: float, y: float, length: float, width: float) -> Track:
        tr = Track(self._next_id, s, y, length, width, born_ns=t_ns, last_seen_ns=t_ns)
        self._next_id += 1
        self.tracks[tr.track_id] = tr
        self.stats.births += 1
        return tr

    def _inside(self, tr: Track, s: float, y: float, margin: float = 0.0,
                centre: tuple[float, float] | None = None) -> bool:
        """Whether ``(s, y)`` lies on ``tr``'s footprint (``margin`` wider), centred on
        ``centre`` when given (a position the track had earlier)."""
        cs, cy = centre if centre is not None else (tr.s_m, tr.y_m)
        return abs(s - cs) <= tr.length_m / 2 + margin and abs(y - cy) <= (
            tr.width_m / 2 + margin)

    def pick_views(self, tr: Track, live: Sequence[Track] | None = None
                   ) -> list[VolumeMeasurement]:
        """The 3D views of ``tr`` whose grasp point and height are its object's: the whole
        ones (a view cut by the sensor's edge or a blob merged with a neighbour puts them on
        the wrong surface) whose grasp point lies on no smaller live track's footprint --
        that is an object lying on ``tr`` (a slag lump on a board, seen as one blob before
        the 3D sensor told them apart): the cup would lift it, not ``tr``'s object."""
        area = tr.length_m * tr.width_m
        on = [t for t in (self.live() if live is None else live)
              if t is not tr and t.length_m * t.width_m < area]
        return [v for v in tr.volumes if not v.truncated
                and not any(self._inside(t, v.grasp_s_m, v.grasp_y_m) for t in on)]

    def add_detections(self, dets: Sequence[ClassMeasurement]) -> None:
        """One camera frame's detections.

        A box cut by the image border (``truncated``) is a partial view: its centre and
        size are not the object's, so it moves no track that has a whole view and, when no
        track is within the gate, joins the track of its class (or of none yet) that its
        footprint overlaps most rather than starting one. A whole box that finds no track
        within the gate replaces the position of a track of its class known only from partial
        views that it overlaps."""
        live = self.live()
        allowed = np.array([[self._may_be(t, d) for t in live] for d in dets], dtype=bool)
        match = self._assign([(d.s_m, d.y_m) for d in dets], live, allowed)
        for i, det in enumerate(dets):
            box = (det.s_m, det.y_m, det.length_m, det.width_m)
            # a cut box's object extends beyond it, along the belt (the direction it
            # enters and leaves the view): look for its track over a longer footprint
            ext = PARTIAL_EXTEND_M if det.truncated else 0.0
            tr: Track | None
            if i in match:
                tr = live[match[i]]
                if not det.truncated or tr.whole_views == 0:
                    self._update_position(tr, det)
            elif det.truncated and (tr := self._most_overlapped(
                    [t for t in live if _agrees(t, det.class_name)],
                    (det.s_m, det.y_m, det.length_m + 2 * ext, det.width_m),
                    extend_partial=PARTIAL_EXTEND_M)) is not None:
                pass
            elif not det.truncated and (tr := self._partial_within(live, det, box)) is not None:
                tr.s_m, tr.y_m, tr.n_pos = det.s_m, det.y_m, 1.0
                tr.length_m, tr.width_m = det.length_m, det.width_m
                tr.whole_views += 1
            else:
                owner = next((t for t in live if self._inside(t, det.s_m, det.y_m)), None)
                if owner is not None:
                    stacked = self._stacked_on(owner, det)
                    if stacked is None:
                        # a second box on an object already matched this frame: a split
                        # (or an object lying on it, not yet confirmed)
                        self.stats.split_detections += 1
                        if not det.truncated and not _agrees(owner, det.class_name):
                            self._forget_side_boxes(det.t_ns)
                            self._side_boxes.append(_StackCandidate(
                                owner.track_id, det.s_m, det.y_m, det.length_m, det.width_m,
                                {det.class_name: det.score}, 1, det.t_ns))
                        continue
                    tr = stacked
                elif det.score < self.config.birth_score:
                    # a weak box: an object only once it is boxed at one place frame after
                    # frame (a small or odd object the detector is unsure of)
                    tr = self._stacked_on(None, det)
                    if tr is None:
                        continue
                else:
                    tr = self._new_track(det.t_ns, det.s_m, det.y_m, det.length_m,
                                         det.width_m)
                    tr.whole_views = 0 if det.truncated else 1
                live.append(tr)
            tr.class_votes[det.class_name] = tr.class_votes.get(det.class_name, 0.0) + det.score
            tr.sensors.add("camera")
            tr.detections += 1
            tr.last_seen_ns = max(tr.last_seen_ns, det.t_ns)

    def _may_be(self, tr: Track, det: ClassMeasurement) -> bool:
        """Whether the whole box ``det`` may be a view of ``tr``'s object: not when it names
        another class than the track's leading one, its centre lies off the track's
        footprint and the two differ in area by ``other_object_area_ratio`` or more (another
        object beside it, whose box reaches into the track's: a phone boxed beside a slag lump
        seen once)."""
        if det.truncated or tr.whole_views == 0 or _agrees(tr, det.class_name) or self._inside(
                tr, det.s_m, det.y_m):
            return True
        a_t, a_d = tr.length_m * tr.width_m, det.length_m * det.width_m
        return max(a_t, a_d) < self.config.other_object_area_ratio * min(a_t, a_d)

    def _partial_within(self, live: list[Track], det: ClassMeasurement,
                        box: tuple[float, float, float, float]) -> Track | None:
        """The track known only from partial views that the whole box ``det`` sees whole:
        one of its class that it overlaps (``_most_overlapped``), else one of any class
        boxed once, whose footprint lies nearly whole (``partial_within_share``) inside the
        box, the box being ``partial_within_growth`` times its area or more (boxed as
        another class in two frames, it is another object coming into view, one that
        overlaps this one). A box cut by the image border shows part of a large object, and
        the detector often names a part another class than the whole (a corner of a
        low-grade board boxed as high-grade): the whole box is the better view."""
        tentative = [t for t in live if t.whole_views == 0]
        same = self._most_overlapped([t for t in tentative if _agrees(t, det.class_name)], box)
        if same is not None:
            return same
        area = det.length_m * det.width_m
        inside = [t for t in tentative if t.detections <= 1
                  and t.length_m * t.width_m * self.config.partial_within_growth <= area]
        return self._most_overlapped(inside, box, min_share=self.config.partial_within_share)

    def _stacked_on(self, owner: Track | None, det: ClassMeasurement) -> Track | None:
        """A track for an object lying on ``owner`` (or, with no owner, for an object boxed
        only weakly, under ``birth_score``) once a box has been seen there in
        ``stack_confirm_frames`` frames with scores summing to ``stack_min_score_sum``, else
        None (the box is remembered).

        Only whole boxes count; on an owner, only those that name another class than the
        owner's leading one and cover at most ``stack_max_area_ratio`` of its footprint: the
        detector's boxes on a part of an object (a split) mostly come and go or change class
        between frames, an object lying on another is boxed at the same place frame after
        frame. A weak box's class may change from frame to frame (the votes add up)."""
        cfg = self.config
        owner_id = owner.track_id if owner is not None else 0
        self._stack_candidates = [
            c for c in self._stack_candidates
            if det.t_ns - c.last_ns <= cfg.stack_expire_s * 1e9
            and (c.owner_id == 0 or c.owner_id in self.tracks)]
        if det.truncated or (owner is not None and (
                _agrees(owner, det.class_name) or det.length_m * det.width_m
                > cfg.stack_max_area_ratio * owner.length_m * owner.width_m)):
            return None
        near = [c for c in self._stack_candidates if c.owner_id == owner_id
                and c.last_ns < det.t_ns
                and np.hypot(c.s_m - det.s_m, c.y_m - det.y_m) <= cfg.gate_m / 2]
        if not near:
            self._stack_candidates.append(_StackCandidate(
                owner_id, det.s_m, det.y_m, det.length_m, det.width_m,
                {det.class_name: det.score}, 1, det.t_ns))
            return None
        c = min(near, key=lambda c: np.hypot(c.s_m - det.s_m, c.y_m - det.y_m))
        c.s_m = (c.s_m * c.frames + det.s_m) / (c.frames + 1)
        c.y_m = (c.y_m * c.frames + det.y_m) / (c.frames + 1)
        c.length_m = (c.length_m * c.frames + det.length_m) / (c.frames + 1)
        c.width_m = (c.width_m * c.frames + det.width_m) / (c.frames + 1)
        c.frames += 1
        c.last_ns = det.t_ns
        c.votes[det.class_name] = c.votes.get(det.class_name, 0.0) + det.score
        if (c.frames < cfg.stack_confirm_frames or sum(c.votes.values()) < cfg.stack_min_score_sum
                or (owner is not None and top_vote(c.votes) == top_vote(owner.class_votes))):
            return None
        self._stack_candidates.remove(c)
        tr = self._new_track(det.t_ns, c.s_m, c.y_m, c.length_m, c.width_m)
        tr.whole_views = c.frames
        tr.n_pos = float(c.frames)
        tr.detections = c.frames - 1  # the caller counts this frame's box
        c.votes[det.class_name] -= det.score  # ... and its vote
        tr.class_votes = {k: v for k, v in c.votes.items() if v > 0}
        self.stats.stacked_births += 1
        return tr

    @staticmethod
    def _update_position(tr: Track, det: ClassMeasurement) -> None:
        tr._move(det.s_m, det.y_m, det.score)
        tr.length_m = 0.7 * tr.length_m + 0.3 * det.length_m
        tr.width_m = 0.7 * tr.width_m + 0.3 * det.width_m
        if not det.truncated:
            tr.whole_views += 1

    def add_volumes(self, blobs: Sequence[VolumeMeasurement]) -> None:
        """One 3D frame's blobs.

        A blob goes to the track the gated assignment gives it, else to the one track whose
        centre it covers, else to the track whose footprint it overlaps most (a long object
        the camera boxed in part; a whole blob must overlap it by ``whole_blob_min_share``
        of the smaller of the two, a cut one by 0.3); only a whole blob (not ``truncated``
        at the edge of the view) that finds no track so starts one. Truncated blobs are kept
        (flagged): their volume is a lower bound, which fusion uses only when no whole view
        exists. Several blobs of one frame that go to one track are pieces of it (a thin
        plate that the 3D sensor's noise cuts in parts) when they are thin
        (``thin_piece_max_height_m``) and their centres lie on its footprint -- and on its own
        blob's, where that one spans ``own_blob_whole_share`` of the footprint (a thin blob
        beside it is then another object, :meth:`_apart`): they are booked as one view, their
        sum (thicker objects are cut only where they touch others, and the footprint's box
        holds the neighbours of a turned object)."""
        cfg = self.config
        live = self.live()
        match = self._assign([(b.s_m, b.y_m) for b in blobs], live)
        views: dict[int, tuple[Track, list[VolumeMeasurement]]] = {}
        # id() of the blobs that are their track's object: given by the gated assignment, or
        # covering its centre (the others reached it only by lying on its footprint)
        primary: set[int] = set()
        # positions as they were before this frame moved anybody
        before = {t.track_id: (t.s_m, t.y_m) for t in live}
        for i, blob in enumerate(blobs):
            covered = [t for t in live if abs(t.s_m - blob.s_m) <= blob.length_m / 2
                       and abs(t.y_m - blob.y_m) <= blob.width_m / 2]
            if len(covered) > 1:
                # touching objects segmented as one blob: its volume belongs to nobody alone;
                # each gets the share of its footprint, as a low-grade (truncated) view
                self.stats.merged_blobs += 1
                areas = [t.length_m * t.width_m for t in covered]
                total = sum(areas)
                for t, a in zip(covered, areas, strict=True):
                    share = a / total if total > 0 else 1.0 / len(covered)
                    t.volumes.append(replace(blob, volume_m3=share * blob.volume_m3,
                                             volume_u_m3=0.5 * share * blob.volume_m3,
                                             truncated=True))
                    t.sensors.add("depth")
                continue
            tr: Track | None
            if i in match:
                tr = live[match[i]]
                primary.add(id(blob))
                if not blob.truncated:
                    tr._move(blob.s_m, blob.y_m, 1.0)
                    tr.whole_views += 1
            elif len(covered) == 1:
                tr = covered[0]
                primary.add(id(blob))
            else:
                # a large object's blob centre can sit outside the gate (a partial view at
                # the sensor's edge, a camera box of part of the object): it still lies on
                # that object's footprint
                tr = self._owner(live, blob.s_m, blob.y_m) or self._most_overlapped(
                    live, (blob.s_m, blob.y_m, blob.length_m, blob.width_m),
                    min_share=0.3 if blob.truncated else cfg.whole_blob_min_share)
                if tr is None and min(blob.length_m, blob.width_m) < cfg.apart_min_side_m:
                    # a sliver just off a track's footprint (a turned object's corner, a thin
                    # object's end that the 3D sensor cut off): a partial view of it, not a
                    # new object
                    tr = self._nearest_within(live, blob.s_m, blob.y_m, cfg.sliver_margin_m)
                    if tr is None and blob.height_m <= cfg.thin_piece_max_height_m:
                        tr = self._in_line_with(live, blob)
                    if tr is not None:
                        blob = replace(blob, truncated=True)
                if tr is None:
                    if blob.truncated:
                        continue
                    tr = self._new_track(blob.t_ns, blob.s_m, blob.y_m, blob.length_m,
                                         blob.width_m)
                    tr.whole_views = 1
                    live.append(tr)
            views.setdefault(tr.track_id, (tr, []))[1].append(blob)
            tr.sensors.add("depth")
            tr.last_seen_ns = max(tr.last_seen_ns, blob.t_ns)
        for tr, pieces in views.values():
            # pieces lying on the track's footprint are parts of it; a blob beside it that
            # the gate gave it (a neighbour's) stays a view of its own, as before
            # -- unless the track's own blob spans its footprint: the object is whole in it,
            # and a thin blob beside that one is no piece of it
            span = self._spanning(tr, pieces, primary)
            part = [b.height_m <= cfg.thin_piece_max_height_m and self._inside(
                tr, b.s_m, b.y_m, margin=0.01, centre=before.get(tr.track_id))
                and (span is None or _holds(span, b)) for b in pieces]
            if sum(part) > 1:
                tr.volumes.append(_joined([b for b, k in zip(pieces, part, strict=True) if k]))
                pieces = [b for b, k in zip(pieces, part, strict=True) if not k]
            tr.volumes.extend(self._apart(tr, pieces, primary, before.get(tr.track_id), live))

    def _apart(self, tr: Track, pieces: list[VolumeMeasurement], primary: set[int],
               centre: tuple[float, float] | None, live: list[Track]
               ) -> list[VolumeMeasurement]:
        """``tr``'s views among this frame's ``pieces``: the blobs off its centre are not.

        A whole blob that reached ``tr`` only by lying on its footprint (not ``primary``),
        farther than the gate from its centre and at most ``stack_max_area_ratio`` of the
        footprint, is not a whole view of ``tr``'s object: a corner of a pile or a neighbour
        partly under it. When ``tr`` also got its own blob this frame and this one is thicker
        than a thin plate's piece and at least ``apart_min_side_m`` across, it is another
        object, one that the camera saw as part of
        ``tr`` (the 3D sensor sees the step in height between them): it gets a track of its
        own, never merged with ``tr``. So does such a blob, whatever else ``tr`` got this
        frame and however thin, when ``tr``'s object was seen far taller
        (``apart_height_ratio``, ``apart_height_step_m``) and no other track lies within
        ``apart_clear_m`` of it: a thin object beside or partly under a thick one. Otherwise
        it stays ``tr``'s, as a partial view (its volume and grasp point are not the
        object's) -- and so does one within the gate that stands far lower
        (``apart_height_ratio``, ``apart_height_step_m``) than the track's own blob of this
        frame or its earlier views. Unless the camera boxed another class there: a box a
        split dropped on ``tr`` (:meth:`_side_boxes_on`) and a whole blob of its own beside
        ``tr``'s, at least ``apart_min_side_m`` across, are another object whatever their
        height (a magnet whose edge lies under a brass fitting)."""
        cfg = self.config
        cs, cy = centre if centre is not None else (tr.s_m, tr.y_m)
        own = any(id(b) in primary for b in pieces)
        known = max((v.height_m for v in tr.volumes), default=0.0)
        # how tall its object stands: its earlier views and its own blob of this frame
        tall = max([known, *(b.height_m for b in pieces if id(b) in primary)])
        span = self._spanning(tr, pieces, primary)
        keep = []
        for b in pieces:
            if id(b) in primary or b.truncated:
                keep.append(b)
                continue
            boxes = self._side_boxes_on(tr, b) if own and min(
                b.length_m, b.width_m) >= cfg.apart_min_side_m else []
            if boxes:
                # the camera boxed another class there, the 3D sensor sees a blob of its own
                # beside the track's: another object, whatever its height or size
                other = self._apart_birth(tr, b, live)
                for c in boxes:
                    for k, v in c.votes.items():
                        other.class_votes[k] = other.class_votes.get(k, 0.0) + v
                    other.detections += c.frames
                    other.sensors.add("camera")
                    self._side_boxes.remove(c)
                self.stats.side_births += 1
                continue
            if (b.length_m * b.width_m > cfg.stack_max_area_ratio * tr.length_m * tr.width_m
                    or math.hypot(b.s_m - cs, b.y_m - cy) <= cfg.gate_m):
                # far lower than the object it lies beside: a thing on its footprint's edge
                # (a magnet half under a slag lump), no whole view of it
                keep.append(replace(b, truncated=True) if self._far_taller(tall, b.height_m) else b)
                continue
            step = self._far_taller(known, b.height_m) and not any(
                self._inside(t, b.s_m, b.y_m, margin=cfg.apart_clear_m)
                for t in live if t is not tr)
            # a thin blob off the track's own one, when that one spans the track's footprint
            # (no piece of the object is missing from it): another thin object beside it
            beside = span is not None and not _holds(span, b) and not any(
                self._inside(t, b.s_m, b.y_m) for t in live if t is not tr)
            if min(b.length_m, b.width_m) < cfg.apart_min_side_m or (not step and not beside and (
                    not own or b.height_m <= cfg.thin_piece_max_height_m)):
                keep.append(replace(b, truncated=True))
                continue
            self._apart_birth(tr, b, live)
            self.stats.apart_births += 1
        return keep

    def _spanning(self, tr: Track, pieces: list[VolumeMeasurement], primary: set[int]
                  ) -> VolumeMeasurement | None:
        """``tr``'s own whole blob among this frame's ``pieces`` when it spans at least
        ``own_blob_whole_share`` of the track's footprint, else None."""
        area = self.config.own_blob_whole_share * tr.length_m * tr.width_m
        return next((o for o in pieces if id(o) in primary and not o.truncated
                     and o.length_m * o.width_m >= area), None)

    def _apart_birth(self, tr: Track, b: VolumeMeasurement, live: list[Track]) -> Track:
        """A track for the whole blob ``b`` beside ``tr``: never merged with it."""
        other = self._new_track(b.t_ns, b.s_m, b.y_m, b.length_m, b.width_m)
        other.whole_views = 1
        other.volumes.append(b)
        other.sensors.add("depth")
        other.apart_from.add(tr.track_id)
        tr.apart_from.add(other.track_id)
        live.append(other)
        return other

    def _forget_side_boxes(self, t_ns: int) -> None:
        """Drop the remembered split boxes older than ``stack_expire_s`` at ``t_ns`` (or
        whose track has ended): the list stays as short as a few frames' splits."""
        expire = self.config.stack_expire_s * 1e9
        self._side_boxes = [c for c in self._side_boxes
                            if abs(t_ns - c.last_ns) <= expire and c.owner_id in self.tracks]

    def _side_boxes_on(self, tr: Track, b: VolumeMeasurement) -> list[_StackCandidate]:
        """The boxes a split dropped on ``tr`` (``_side_boxes``, seen within
        ``stack_expire_s``) that name another class than ``tr``'s leading one and whose
        centre lies on the blob ``b``'s footprint while ``b``'s centre lies in the box."""
        self._forget_side_boxes(b.t_ns)
        return [c for c in self._side_boxes
                if c.owner_id == tr.track_id and not _agrees(tr, top_vote(c.votes) or "")
                and _holds(b, c) and _holds(c, b)]

    @staticmethod
    def _most_overlapped(live: list[Track], box: tuple[float, float, float, float],
                         min_share: float = 0.3, extend_partial: float = 0.0) -> Track | None:
        """The live track whose footprint overlaps ``box`` = (s, y, length, width) most (at
        least ``min_share`` of the smaller of the two), or None; the footprints of tracks
        known only from partial views are taken ``extend_partial`` longer at both ends."""
        best: tuple[float, Track] | None = None
        for t in live:
            grow = 2 * extend_partial if t.whole_views == 0 else 0.0
            share = _box_overlap_share((t.s_m, t.y_m, t.length_m + grow, t.width_m), box)
            if share >= min_share and (best is None or share > best[0]):
                best = (share, t)
        return best[1] if best else None

    def _nearest_within(self, live: list[Track], s: float, y: float,
                        margin: float) -> Track | None:
        """The live track nearest ``(s, y)`` among those whose footprint, ``margin`` wider
        all round, holds it; None if none does."""
        near = [t for t in live if self._inside(t, s, y, margin=margin)]
        return min(near, key=lambda t: math.hypot(t.s_m - s, t.y_m - y)) if near else None

    def _far_taller(self, height_m: float, low_m: float) -> bool:
        """Whether an object ``height_m`` tall stands far above one ``low_m`` tall
        (``apart_height_ratio`` times its height plus ``apart_height_step_m``)."""
        cfg = self.config
        return height_m > cfg.apart_height_ratio * low_m + cfg.apart_height_step_m

    def _in_line_with(self, live: list[Track], blob: VolumeMeasurement) -> Track | None:
        """The long thin track (``line_min_aspect``) that the thin sliver ``blob`` lies in line
        with, beyond one of its ends by at most ``line_end_share`` of its length: the end of
        a cable the camera's box fell short of, cut off by the 3D sensor."""
        cfg = self.config
        best: tuple[float, Track] | None = None
        for t in live:
            long_m, short_m = max(t.length_m, t.width_m), min(t.length_m, t.width_m)
            if long_m < cfg.line_min_aspect * short_m:
                continue
            ds, dy = blob.s_m - t.s_m, blob.y_m - t.y_m
            along, across = (ds, dy) if t.length_m >= t.width_m else (dy, ds)
            beyond = abs(along) - long_m / 2
            if abs(across) <= short_m / 2 + 0.01 and beyond <= cfg.line_end_share * long_m and (
                    best is None or beyond < best[0]):
                best = (beyond, t)
        return best[1] if best else None

    def _owner(self, live: list[Track], s: float, y: float) -> Track | None:
        inside = [t for t in live if self._inside(t, s, y, margin=0.01)]
        return inside[0] if len(inside) == 1 else None

    def merge_duplicates(self, min_overlap: float = 0.6, now_ns: int | None = None) -> int:
        """Merge live tracks that are one object seen twice: the smaller footprint lies at
        least ``min_overlap`` on the larger and their classes do not disagree (an object
        lying on another keeps its own class), or one of them was never seen whole (a box
        of part of the other) ``settle_s`` after its birth at ``now_ns`` (an object coming
        into the camera's view is tentative for its first frames). The older track keeps its
        id, a confirmed one before a tentative one. Returns how many were merged."""
        live = sorted(self.live(), key=lambda t: t.track_id)
        merged = 0
        gone: set[int] = set()
        for i, a in enumerate(live):
            if a.track_id in gone:
                continue
            for b in live[i + 1:]:
                if b.track_id in gone or b.state != TrackState.TRACKING:
                    continue
                if b.track_id in a.apart_from or _overlap_share(a, b) < min_overlap:
                    continue
                # a track never seen whole (camera boxes and 3D views cut by a sensor's
                # edge) lying on a confirmed one is a part of it that a box took for an
                # object: its one or two frames' class does not keep them apart
                young = a if a.whole_views == 0 else b
                tentative = (now_ns is not None and (a.whole_views == 0) != (b.whole_views == 0)
                             and now_ns - young.born_ns >= self.config.settle_s * 1e9)
                if tentative or _same_kind(a, b):
                    keep, other = (b, a) if tentative and young is a else (a, b)
                    _absorb(keep, other)
                    del self.tracks[other.track_id]
                    gone.add(other.track_id)
                    merged += 1
                    if other is a:
                        break
        merged += self._merge_ends()
        self.stats.merged_tracks += merged
        return merged

    def _merge_ends(self) -> int:
        """Join each pair of tracks that are the two ends of one object sticking out from
        under another (:meth:`_ends_of_one`); the older keeps its id and spans both."""
        merged = 0
        while True:
            live = sorted((t for t in self.live() if t.state == TrackState.TRACKING
                           and t.confirmed and t.class_votes), key=lambda t: t.track_id)
            found = next(((a, b, span) for i, a in enumerate(live) for b in live[i + 1:]
                          if (span := self._ends_of_one(a, b, live)) is not None), None)
            if found is None:
                return merged
            a, b, (along_s, centre, length) = found
            _absorb(a, b)
            if along_s:
                a.s_m, a.length_m = centre, length
            else:
                a.y_m, a.width_m = centre, length
            del self.tracks[b.track_id]
            merged += 1

    def _ends_of_one(self, a: Track, b: Track, live: list[Track]
                     ) -> tuple[bool, float, float] | None:
        """Where ``a`` and ``b`` together lie if they are the two ends of one object lying
        partly under another: one leading class, in line (their centres off each other's line
        by at most a quarter of their width) and of one width (within 1.6×), spanning at most
        ``ends_max_span_m``, with the gap between their facing edges wholly on the footprint of
        one track of another class that is wider across the line by ``ends_under_margin_m``
        (an aluminium bar under a steel plate is seen as two pieces, one each side of the
        plate). Returns (whether their line runs along the belt, the centre and the length of
        both along it), else None."""
        cfg = self.config
        if b.track_id in a.apart_from or top_vote(a.class_votes) != top_vote(b.class_votes):
            return None
        ds, dy = b.s_m - a.s_m, b.y_m - a.y_m
        along_s = abs(ds) >= abs(dy)
        d, off = (abs(ds), abs(dy)) if along_s else (abs(dy), abs(ds))
        at_a, at_b = (a.s_m, b.s_m) if along_s else (a.y_m, b.y_m)
        half_a, half_b = (a.length_m / 2, b.length_m / 2) if along_s else (a.width_m / 2,
                                                                           b.width_m / 2)
        wide_a, wide_b = (a.width_m, b.width_m) if along_s else (a.length_m, b.length_m)
        gap = d - half_a - half_b
        if (off > 0.25 * min(wide_a, wide_b) or max(wide_a, wide_b) > 1.6 * min(wide_a, wide_b)
                or d + half_a + half_b > cfg.ends_max_span_m or gap <= 0.0):
            return None
        # points across the gap, on the line between the two centres
        ts = (np.arange(5) + 0.5) / 5
        start = half_a / d
        share = start + ts * gap / d
        pts = [(a.s_m + f * ds, a.y_m + f * dy) for f in share]
        wide = max(wide_a, wide_b) + cfg.ends_under_margin_m
        for c in live:
            if c is a or c is b or _agrees(c, top_vote(a.class_votes) or ""):
                continue
            if (c.width_m if along_s else c.length_m) < wide:
                continue
            if all(self._inside(c, ps, py) for ps, py in pts):
                lo, hi = min(at_a - half_a, at_b - half_b), max(at_a + half_a, at_b + half_b)
                return along_s, (lo + hi) / 2, hi - lo
        return None

    def add_xrf(self, spot: XrfMeasurement) -> Track | None:
        """One XRF spot: goes to the track whose footprint it covers most; among tracks it
        covers (nearly) as much — one lying on another, both boxes holding the spot — to the
        one whose centre it is nearest, which is where the head aimed."""
        hits = []
        for tr in self.live():
            cov = spot_coverage(spot.s_m - tr.s_m, spot.y_m - tr.y_m, spot.radius_m,
                                tr.length_m, tr.width_m)
            if cov > 0:
                hits.append((cov, math.hypot(spot.s_m - tr.s_m, spot.y_m - tr.y_m), tr))
        top = max((h[0] for h in hits), default=0.0)
        if top < self.config.xrf_min_coverage:
            self.stats.unassociated_xrf += 1
            return None
        cov, _dist, tr = min((h for h in hits if h[0] >= top - XRF_TIE_COVERAGE),
                             key=lambda h: h[1])
        tr.xrf.append((spot, cov))
        tr.sensors.add("xrf")
        tr.last_seen_ns = max(tr.last_seen_ns, spot.t_ns)
        return tr

    def add_xrt(self, views: Sequence[XrtMeasurement], split: SplitFn | None = None) -> None:
        """Objects seen through by the X-ray transmission scanner (one pass each). A view goes
        to the one track whose centre it covers, else to the track it lies on or overlaps most;
        all views a track gets are pieces of it (its mass is their sum). A view that covers
        the centres of several tracks (touching objects seen as one) is shared out cell by
        cell: each cell goes to the track whose footprint holds it (the nearest of those, or of
        all), as a ``shared`` view; when one of them lies on another (a footprint mostly inside
        the other's) the cells cannot be told apart: the view weighs the pile as a whole and
        goes to every track it covers as a :class:`PileView` (``pile_xrt``; fusion holds the
        tracks' masses to its sum), and an object hidden under the pile's bottom member away
        from the others starts a track in it (:meth:`_hidden_in_pile`).
        A view far larger than its one track's footprint (``XRT_OVERSIZE``: it holds objects
        never tracked) is cropped to the footprint (``cropped_xrt``). A whole view on no
        track (at least ``XRT_BIRTH_MIN_CELLS`` cells) starts one: an object the camera and
        the 3D sensor missed (``xrt_births``).
        ``split(track, view)`` looks for another object in a view that went to one track
        (:func:`perception.xrt.stack.foreign_region`: cells whose dual-energy ratio reads
        another material); where it finds one, that object starts a track of its own
        (``hidden_births``: mostly objects lying under another, which the camera and the 3D
        sensor cannot see) with the region's cells, those stacked under the tracked object
        marked to be read behind its layer (``XrtMeasurement.layer``), and the track keeps the
        rest, its stacked cells holding its own layer alone. A region around the track's
        centre spanning most of its footprint is the track's own object; one whose centre lies
        on a third track's footprint is that track's."""
        live = self.live()
        for v in views:
            covered = [t for t in live if abs(t.s_m - v.s_m) <= v.length_m / 2
                       and abs(t.y_m - v.y_m) <= v.width_m / 2]
            if len(covered) > 1:
                self._share_xrt(v, covered, live, split)
                continue
            tr = covered[0] if covered else (self._owner(live, v.s_m, v.y_m)
                                             or self._most_overlapped(
                                                 live, (v.s_m, v.y_m, v.length_m, v.width_m)))
            if tr is None:
                if v.truncated or v.a_high.size < XRT_BIRTH_MIN_CELLS:
                    self.stats.unassociated_xrt += 1
                    continue
                # an object no other sensor gave a track (one too small for the camera and
                # the 3D sensor: a tantalum capacitor): the scanner saw it whole
                tr = self._new_track(v.t_ns, v.s_m, v.y_m, v.length_m, v.width_m)
                tr.whole_views = 1
                live.append(tr)
                self.stats.xrt_births += 1
            elif split is not None and not v.truncated and v.cell_s_m is not None:
                region = split(tr, v)
                if region is not None:
                    v = self._split_xrt(tr, v, region, live)
            if v.length_m * v.width_m > XRT_OVERSIZE * (tr.length_m + 2 * XRT_MARGIN_M) * (
                    tr.width_m + 2 * XRT_MARGIN_M):
                # far larger than the object: it holds others the line never tracked (a
                # pile); the track gets the cells on its footprint
                self._crop_xrt(tr, v)
                continue
            self._take_xrt(tr, v)

    def _split_xrt(self, tr: Track, v: XrtMeasurement,
                   found: tuple[ForeignRegion, NDArray[np.float64]],
                   live: list[Track]) -> XrtMeasurement:
        """Start a track for the other object ``region`` found in ``tr``'s view ``v`` (or
        give its cells to the live track whose footprint holds their centre); returns the
        part of ``v`` that is ``tr``'s."""
        assert v.cell_s_m is not None and v.cell_y_m is not None
        region, layer_mu = found
        pitch = math.sqrt(v.cell_area_m2)
        cs, cy = v.cell_s_m[region.cells], v.cell_y_m[region.cells]
        length, width = float(np.ptp(cs)) + pitch, float(np.ptp(cy)) + pitch
        s_c, y_c = float(np.mean(cs)), float(np.mean(cy))
        if (length * width > HIDDEN_MAX_SHARE * tr.length_m * tr.width_m
                and abs(s_c - tr.s_m) <= tr.length_m / 4 and abs(y_c - tr.y_m) <= tr.width_m / 4):
            # the region is where the track's own object lies (its cells the other material,
            # e.g. a piece on a plate whose part of a shared view holds more plate than piece)
            return v
        keep, own_lo, own_hi = region.own_part(v.a_low, v.a_high)
        other = replace(_cells(v, region.cells),
                        layer=XrtLayer(layer_mu, region.own_rho_t,
                                       region.stacked[region.cells]))
        neighbour = self._nearest_within([t for t in live if t is not tr], s_c, y_c,
                                         margin=HIDDEN_CLEAR_M)
        if neighbour is not None:
            self._take_xrt(neighbour, other)
        else:
            new = self._new_track(v.t_ns, s_c, y_c, length, width)
            new.whole_views = 1
            if np.mean(region.stacked[region.cells]) > 0.5:
                new.covered_by = tr.track_id
            new.apart_from.add(tr.track_id)
            tr.apart_from.add(new.track_id)
            live.append(new)
            self._take_xrt(new, other)
            self.stats.hidden_births += 1
        return _cells(v, keep, own_lo, own_hi)

    @staticmethod
    def _take_xrt(tr: Track, v: XrtMeasurement) -> None:
        tr.xrt.append(v)
        tr.sensors.add("xrt")
        tr.last_seen_ns = max(tr.last_seen_ns, v.t_ns)

    def _crop_xrt(self, tr: Track, v: XrtMeasurement) -> None:
        if v.cell_s_m is None or v.cell_y_m is None:
            self.stats.merged_xrt += 1
            return
        sel = _on_footprint(tr, v.cell_s_m, v.cell_y_m, XRT_MARGIN_M)
        self.stats.cropped_xrt += 1
        if sel.any():
            self._take_xrt(tr, _cells(v, sel))

    def _hidden_in_pile(self, pile: PileView, live: list[Track], split: SplitFn) -> None:
        """Look for an object hidden under the pile's bottom member (the largest footprint
        another member lies on) in the cells the others do not cover: an object of another
        material there (a steel piece under a keyboard that a board lies on) starts a track
        of its own, a member of the pile (the pile's weighing holds its mass too). The cells
        on and near the other members' footprints (``HIDDEN_CLEAR_M``) are left out: there
        the rays cross the members lying on the bottom one, which read as another material.
        A member that lies on no other and carries none (one merely touching the stack in the
        scanner's view) is searched too, on its own footprint: under it the rays cross
        nothing else of the pile.
        A region smaller than ``PILE_HIDDEN_MIN_AREA_M2``, or one that reaches that margin
        (a member's own part running on under the bottom one), starts nothing; nor does one
        whose centre lies on another track's footprint."""
        v = pile.view
        if v.cell_s_m is None or v.cell_y_m is None:
            return
        members = pile.members

        def lies_on(a: Track, b: Track) -> bool:
            # mostly within b's footprint, smaller, and not far lower than b (then it lies
            # under b: a phone half under a display)
            if a is b or _overlap_share(a, b) < 0.5 or (
                    a.length_m * a.width_m >= b.length_m * b.width_m):
                return False
            h_a = max((m.height_m for m in a.volumes), default=None)
            h_b = max((m.height_m for m in b.volumes), default=None)
            return h_a is None or h_b is None or not self._far_taller(h_b, h_a)

        bottoms = [b for b in members if any(lies_on(a, b) for a in members)]
        if not bottoms:
            return
        bottom = max(bottoms, key=lambda t: t.length_m * t.width_m)
        stacked = {id(t) for t in members
                   if any(lies_on(t, b) or lies_on(b, t) for b in members)}
        alone = [t for t in members if id(t) not in stacked]
        self._hidden_under(bottom, pile, live, split, on_own_footprint=False)
        for host in alone:
            self._hidden_under(host, pile, live, split, on_own_footprint=True)

    def _hidden_under(self, host: Track, pile: PileView, live: list[Track], split: SplitFn,
                      on_own_footprint: bool) -> None:
        """:meth:`_hidden_in_pile`'s search under one member ``host``: in the view's cells
        clear of the other members (and, ``on_own_footprint``, on ``host``'s)."""
        v = pile.view
        assert v.cell_s_m is not None and v.cell_y_m is not None
        members = list(pile.members)
        pitch = math.sqrt(v.cell_area_m2)

        def near_others(s: NDArray[np.float64], y: NDArray[np.float64],
                        margin: float) -> NDArray[np.bool_]:
            out = np.zeros(s.size, dtype=bool)
            for t in members:
                if t is not host:
                    out |= _on_footprint(t, s, y, margin)
            return out

        sel = ~near_others(v.cell_s_m, v.cell_y_m, HIDDEN_CLEAR_M)
        if on_own_footprint:
            sel &= _on_footprint(host, v.cell_s_m, v.cell_y_m, XRT_MARGIN_M)
        if not sel.any():
            return
        part = _cells(v, sel)
        for _ in range(PILE_HIDDEN_TRIES):
            assert part.cell_s_m is not None and part.cell_y_m is not None
            found = split(host, part)
            if found is None:
                return
            cells = found[0].cells
            s_c = float(np.mean(part.cell_s_m[cells]))
            y_c = float(np.mean(part.cell_y_m[cells]))
            if (np.count_nonzero(cells) * v.cell_area_m2 >= PILE_HIDDEN_MIN_AREA_M2
                    and not near_others(part.cell_s_m[cells], part.cell_y_m[cells],
                                        HIDDEN_CLEAR_M + 2 * pitch).any()
                    and self._nearest_within([t for t in live if t is not host], s_c, y_c,
                                             margin=HIDDEN_CLEAR_M) is None):
                break
            # a sliver between the members' rims, a member's own part running on from under
            # it, or another track's object: look again without it
            if np.count_nonzero(~cells) == 0:
                return
            part = _cells(part, ~cells)
        else:
            return
        before = len(live)
        self._split_xrt(host, part, found, live)
        for new in live[before:]:
            pile.members.append(new)
            new.piles.append(pile)
        if len(live) > before:
            self.stats.pile_hidden_births += 1

    def _share_xrt(self, v: XrtMeasurement, covered: list[Track], live: list[Track],
                   split: SplitFn | None = None) -> None:
        stacked = any(_overlap_share(a, b) >= 0.5 for i, a in enumerate(covered)
                      for b in covered[i + 1:])
        if stacked and not v.truncated:
            # one lies on another: the cells cannot be shared out, but they weigh the pile
            pile = PileView(v, list(covered))
            for tr in covered:
                tr.piles.append(pile)
                tr.sensors.add("xrt")
                tr.last_seen_ns = max(tr.last_seen_ns, v.t_ns)
            self.stats.pile_xrt += 1
            if split is not None:
                self._hidden_in_pile(pile, live, split)
            return
        if stacked or v.cell_s_m is None or v.cell_y_m is None:
            self.stats.merged_xrt += 1
            return
        self.stats.shared_xrt += 1
        s = np.array([t.s_m for t in covered])
        y = np.array([t.y_m for t in covered])
        half_l = np.array([t.length_m / 2 + 0.01 for t in covered])
        half_w = np.array([t.width_m / 2 + 0.01 for t in covered])
        ds = (v.cell_s_m[:, None] - s[None, :]) / half_l[None, :]
        dy = (v.cell_y_m[:, None] - y[None, :]) / half_w[None, :]
        inside = (np.abs(ds) <= 1) & (np.abs(dy) <= 1)
        dist = np.hypot(ds, dy) + np.where(inside, 0.0, 1e3)
        owner = np.argmin(dist, axis=1)
        for k, tr in enumerate(covered):
            sel = owner == k
            if sel.any():
                part = _cells(v, sel)
                region = split(tr, part) if split is not None and not v.truncated else None
                if region is not None:
                    part = self._split_xrt(tr, part, region, live)
                self._take_xrt(tr, part)

    def add_material_grid(
        self,
        t_ns: int,
        labels: NDArray[np.uint8],
        confidence: NDArray[np.float32],
        s_rows: NDArray[np.floating[Any]],
        y_cols: NDArray[np.floating[Any]],
        label_names: Mapping[int, str],
    ) -> None:
        """A belt-aligned material grid (rows at belt-surface ``s_rows``, columns at
        ``y_cols``): each live track gets the confidence-weighted votes of the cells under
        its footprint; labels missing from ``label_names`` (belt, unknown) do not vote."""
        meas = []
        for tr in self.live():
            rs = np.abs(s_rows - tr.s_m) <= tr.length_m / 2
            cs = np.abs(y_cols - tr.y_m) <= tr.width_m / 2
            if not rs.any() or not cs.any():
                continue
            votes: dict[str, float] = {}
            cells = zip(labels[np.ix_(rs, cs)].ravel().tolist(),
                        confidence[np.ix_(rs, cs)].ravel().tolist(), strict=True)
            for label, c in cells:
                name = label_names.get(label)
                if name is not None:
                    votes[name] = votes.get(name, 0.0) + c
            if votes:
                meas.append(MaterialMeasurement(t_ns, tr.s_m, tr.y_m, tr.length_m, tr.width_m,
                                                votes))
        self.add_materials(meas)

    def add_materials(self, meas: Sequence[MaterialMeasurement]) -> None:
        live = self.live()
        match = self._assign([(m.s_m, m.y_m) for m in meas], live)
        for i, m in enumerate(meas):
            if i not in match:
                continue
            tr = live[match[i]]
            for mat, w in m.votes.items():
                tr.material_votes[mat] = tr.material_votes.get(mat, 0.0) + w
            tr.sensors.add("hsi")

    # -- lifecycle -----------------------------------------------------------------------------
    def mark_picked(self, track_id: int, bin_name: str) -> Track | None:
        tr = self.tracks.pop(track_id, None)
        if tr is None:
            return None
        tr.state = TrackState.PICKED
        tr.bin = bin_name
        self.finished.append(tr)
        for other in self.tracks.values():   # what lay under it is bare now
            if other.covered_by == track_id:
                other.covered_by = None
        return tr

    def retire(self, encoder_m: float) -> list[Track]:
        """End the tracks that have left the belt end; return them."""
        gone = []
        for tid, tr in list(self.tracks.items()):
            if tr.x_at(encoder_m) - tr.length_m / 2 > self.config.belt_length_m:
                tr.state = TrackState.EXITED
                del self.tracks[tid]
                self.finished.append(tr)
                gone.append(tr)
        return gone


#: coverages this close count as a tie between two tracks holding one spot
XRF_TIE_COVERAGE = 0.02


def spot_coverage(ds: float, dy: float, r: float, length: float, width: float) -> float:
    """Share of a circular spot (radius r, centre offset (ds, dy) from a rectangle's centre)
    that falls on the axis-aligned rectangle ``length`` × ``width`` (numerical, 0–1)."""
    if r <= 0:
        return 1.0 if abs(ds) <= length / 2 and abs(dy) <= width / 2 else 0.0
    n = 15
    g = (np.arange(n) + 0.5) / n * 2 - 1
    u, v = np.meshgrid(g, g)
    inside = u * u + v * v <= 1
    px, py = ds + r * u[inside], dy + r * v[inside]
    on = (np.abs(px) <= length / 2) & (np.abs(py) <= width / 2)
    return float(on.mean())


def _cells(v: XrtMeasurement, sel: NDArray[np.bool_], a_low: NDArray[np.float64] | None = None,
           a_high: NDArray[np.float64] | None = None) -> XrtMeasurement:
    """The part ``sel`` of an X-ray view's cells, as a ``shared`` view of its own (with the
    selected cells' values ``a_low``, ``a_high`` instead of the view's where given)."""
    assert v.cell_s_m is not None and v.cell_y_m is not None
    a_high = v.a_high[sel] if a_high is None else a_high
    return replace(
        v, s_m=float(np.mean(v.cell_s_m[sel])), y_m=float(np.mean(v.cell_y_m[sel])),
        a_low=v.a_low[sel] if a_low is None else a_low, a_high=a_high, cos_theta=v.cos_theta[sel],
        cell_s_m=v.cell_s_m[sel], cell_y_m=v.cell_y_m[sel],
        layer=None if v.layer is None else replace(v.layer, cells=v.layer.cells[sel]),
        opaque_cells=int(np.count_nonzero(a_high >= OPAQUE_A_HIGH)), shared=True)


def _absorb(keep: Track, other: Track) -> None:
    """Fold ``other``'s measurements into ``keep`` (same object, two tracks)."""
    total = keep.n_pos + other.n_pos
    keep.s_m = (keep.s_m * keep.n_pos + other.s_m * other.n_pos) / total
    keep.y_m = (keep.y_m * keep.n_pos + other.y_m * other.n_pos) / total
    keep.n_pos = min(total, 20.0)
    keep.length_m = max(keep.length_m, other.length_m)
    keep.width_m = max(keep.width_m, other.width_m)
    for k, v in other.class_votes.items():
        keep.class_votes[k] = keep.class_votes.get(k, 0.0) + v
    for k, v in other.material_votes.items():
        keep.material_votes[k] = keep.material_votes.get(k, 0.0) + v
    keep.xrt.extend(other.xrt)
    for pile in other.piles:
        members = [keep if m is other else m for m in pile.members]
        pile.members = list({id(m): m for m in members}.values())
        if pile not in keep.piles:
            keep.piles.append(pile)
    # shares of one blob that covered both (same frame, same blob): one view again
    for view in other.volumes:
        i = next((i for i, w in enumerate(keep.volumes) if w.t_ns == view.t_ns
                  and w.s_m == view.s_m and w.y_m == view.y_m), None)
        if i is None:
            keep.volumes.append(view)
        else:
            w = keep.volumes[i]
            keep.volumes[i] = replace(w, volume_m3=w.volume_m3 + view.volume_m3,
                                      volume_u_m3=math.hypot(w.volume_u_m3, view.volume_u_m3))
    keep.xrf.extend(other.xrf)
    keep.sensors |= other.sensors
    keep.apart_from |= other.apart_from
    keep.detections += other.detections
    keep.whole_views += other.whole_views
    keep.last_seen_ns = max(keep.last_seen_ns, other.last_seen_ns)


def _box_overlap_share(a: tuple[float, float, float, float],
                       b: tuple[float, float, float, float]) -> float:
    """Intersection of two axis-aligned footprints ``(s, y, length, width)`` over the
    smaller one's area (0-1)."""
    ds = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    dy = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    if ds <= 0 or dy <= 0:
        return 0.0
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ds * dy / smaller if smaller > 0 else 0.0


def _on_footprint(tr: Track, s: NDArray[np.float64], y: NDArray[np.float64],
                  margin: float) -> NDArray[np.bool_]:
    """Which of the points ``(s, y)`` lie on ``tr``'s footprint, ``margin`` wider all round."""
    return (np.abs(s - tr.s_m) <= tr.length_m / 2 + margin) & (
        np.abs(y - tr.y_m) <= tr.width_m / 2 + margin)


def _overlap_share(a: Track, b: Track) -> float:
    """Area of the two footprints' intersection over the smaller footprint (0-1)."""
    return _box_overlap_share((a.s_m, a.y_m, a.length_m, a.width_m),
                              (b.s_m, b.y_m, b.length_m, b.width_m))


def top_vote(votes: Mapping[str, float]) -> str | None:
    """The name with the most weight (ties: the first in sorted order), None if empty."""
    return max(sorted(votes), key=lambda k: votes[k]) if votes else None


def _joined(pieces: Sequence[VolumeMeasurement]) -> VolumeMeasurement:
    """One view from blobs of one frame that are pieces of one object: volumes add (u in
    quadrature), the position is the volume-weighted centroid, the extent spans all pieces,
    the grasp point is the largest piece's; truncated if any piece is."""
    v = np.array([b.volume_m3 for b in pieces])
    w = v / v.sum() if v.sum() > 0 else np.full(len(pieces), 1.0 / len(pieces))
    s0 = min(b.s_m - b.length_m / 2 for b in pieces)
    s1 = max(b.s_m + b.length_m / 2 for b in pieces)
    y0 = min(b.y_m - b.width_m / 2 for b in pieces)
    y1 = max(b.y_m + b.width_m / 2 for b in pieces)
    big = pieces[int(np.argmax(v))]
    return replace(
        big,
        s_m=float(np.dot(w, [b.s_m for b in pieces])),
        y_m=float(np.dot(w, [b.y_m for b in pieces])),
        length_m=s1 - s0, width_m=y1 - y0,
        volume_m3=float(v.sum()),
        volume_u_m3=float(math.sqrt(sum(b.volume_u_m3 ** 2 for b in pieces))),
        height_m=max(b.height_m for b in pieces),
        truncated=any(b.truncated for b in pieces),
    )


class _Box(Protocol):
    """A footprint on the belt: centre (s, y) and axis-aligned length and width (m)."""

    @property
    def s_m(self) -> float: ...
    @property
    def y_m(self) -> float: ...
    @property
    def length_m(self) -> float: ...
    @property
    def width_m(self) -> float: ...


def _holds(box: _Box, b: _Box) -> bool:
    """Whether ``b``'s centre lies on ``box``'s footprint (a blob's, a box's)."""
    return abs(b.s_m - box.s_m) <= box.length_m / 2 and abs(b.y_m - box.y_m) <= box.width_m / 2


def _agrees(t: Track, class_name: str) -> bool:
    """Whether ``class_name`` is ``t``'s leading class (or ``t`` has no class votes yet)."""
    return not t.class_votes or top_vote(t.class_votes) == class_name


def _same_kind(a: Track, b: Track) -> bool:
    if not a.class_votes or not b.class_votes:
        return True
    top_a, top_b = top_vote(a.class_votes), top_vote(b.class_votes)
    return top_a == top_b
