"""Run a fresh tracker over a recorded run's sensor topics: tune tracking without re-simulating.

A run of ``crmsort demo`` that recorded the tracker's inputs (:data:`INPUT_TOPICS` under the
line's namespace, and ``/sim/ground_truth``) can be tracked again by the tracker of the tree
at hand, in about a tenth of the time the run took: the simulator, the renderers and the
detector are not run again. The output folder holds what ``crmsort eval-run`` scores: a bag
with ``/sim/ground_truth`` (as recorded) and the new ``sorting/objects``, the new tracker's
``ledger.json``, and the run's ``line.yaml``.

Picks are replayed by place: a recorded pick result names a recorded track, whose last
recorded report (``sorting/objects``, when recorded) says where on the belt it was; the new
track nearest that place (within the tracker's gate) is marked picked into that bin and
booked there, as the arm took whatever lay there. Without the recorded reports every object
is booked where the new tracker last saw it, the residue. What a replay cannot give back is
the XRF head's aim, which the recorded tracks steered: the analyses are the recorded ones.
"""

from __future__ import annotations

import itertools
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sorting.bags import BagReader, read_messages
from sorting.config import load_line
from sorting.config.line import LineConfig
from sorting.errors import SortingError
from sorting.nodes.tracker_node import PICKED, TrackerNode
from sorting.record import Recorder
from sorting.runtime import InProcessExecutor, Node, NodeContext, SimClock
from sorting.runtime.replay import replay

#: the tracker node's inputs, relative to the line's namespace (picks excluded: see above)
INPUT_TOPICS = ("belt/joint_states", "camera/detections", "depth/volumes", "xrt/objects",
                "xrf/result", "hsi/material_map")
#: without these a replay tracks nothing
REQUIRED_TOPICS = ("belt/joint_states", "camera/detections")
TRUTH_TOPIC = "/sim/ground_truth"
#: where the recorded run's own ``sorting/objects`` are replayed (the new tracker publishes
#: the original name)
RECORDED_REPORTS = "/retrack/recorded_objects"


class _PickReplay(Node):
    """Replays the recorded picks onto the new tracker's tracks by place (module docstring)."""

    def __init__(self, ctx: NodeContext, tracker: TrackerNode, topics: list[str]) -> None:
        super().__init__(ctx)
        self.tracker = tracker
        self.last: dict[int, tuple[float, float]] = {}  # recorded track id -> (s, y)
        self.replayed = self.unmatched = 0
        ctx.create_subscription("crmsort_msgs/msg/SortObjectArray", RECORDED_REPORTS,
                                self._on_reports, 10)
        for t in topics:
            ctx.create_subscription("crmsort_msgs/msg/PickResult", t, self._on_pick, 10)

    def _on_reports(self, msg: Any) -> None:
        p = float(msg.belt_position_m)
        for o in msg.objects:
            self.last[int(o.id)] = (float(o.belt_x_m) - p, float(o.y_m))

    def _on_pick(self, msg: Any) -> None:
        if int(msg.outcome) != PICKED:
            return
        place = self.last.get(int(msg.object_id))
        trk = self.tracker.tracker
        live = trk.live()
        if place is None or not live:
            self.unmatched += 1
            return
        s, y = place
        tr = min(live, key=lambda t: math.hypot(t.s_m - s, t.y_m - y))
        if math.hypot(tr.s_m - s, tr.y_m - y) > trk.config.gate_m:
            self.unmatched += 1
            return
        if self.tracker.book_pick(tr.track_id, str(msg.target_bin)):
            self.replayed += 1


def recording_topics(line: LineConfig) -> list[str]:
    """What a run of ``line`` must record for :func:`retrack`: the truth, the tracker's
    inputs, its reports and the arms' pick results."""
    ns = line.namespace.rstrip("/")
    return [TRUTH_TOPIC, *(f"{ns}/{t}" for t in INPUT_TOPICS), f"{ns}/sorting/objects",
            *(f"{ns}/robot/{a.name}/pick_result" for a in line.arms)]


@dataclass(frozen=True)
class RetrackResult:
    out: Path
    messages: int
    tracks: int
    booked: int
    picks_replayed: int
    picks_unmatched: int
    #: the tracks started, by rule (:meth:`TrackerStats.birth_summary`)
    births: str = ""


def retrack(run_dir: Path, out_dir: Path, line: LineConfig | None = None) -> RetrackResult:
    """Track ``run_dir``'s recorded inputs again into ``out_dir`` (see the module docstring).

    ``line`` defaults to the run's ``line.yaml``. Raises :class:`SortingError` naming what is
    missing when the run has no bag, the bag lacks the truth or a required input topic, or
    ``out_dir`` exists already (nothing recorded is overwritten)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    bag = run_dir / "bag"
    if not bag.exists():
        raise SortingError(f"{bag}: missing (a run folder of `crmsort demo` has bag/)")
    if out_dir.exists():
        raise SortingError(f"{out_dir}: exists already; retrack writes a new folder")
    saved = run_dir / "line.yaml"
    if line is None:
        line = load_line(saved) if saved.is_file() else load_line()
    ns = line.namespace.rstrip("/")
    inputs = [f"{ns}/{t}" for t in INPUT_TOPICS]
    recorded = set(BagReader(bag, strict=False).topics)  # declared: no scan of the messages
    missing = [t for t in [TRUTH_TOPIC, *(f"{ns}/{r}" for r in REQUIRED_TOPICS)]
               if t not in recorded]
    if missing:
        raise SortingError(
            f"{bag}: lacks {', '.join(missing)}; record the tracker's inputs, e.g. `crmsort "
            f"demo --topics {' '.join(recording_topics(line))}`")
    picks = sorted(t for t in recorded if t.startswith(f"{ns}/robot/")
                   and t.endswith("/pick_result"))
    reports = f"{ns}/sorting/objects"
    wanted = [TRUTH_TOPIC, *(t for t in inputs if t in recorded), *picks]
    if reports in recorded:
        wanted.append(reports)
    messages = read_messages(bag, topics=wanted)
    first = next(messages, None)
    if first is None:
        raise SortingError(f"{bag}: holds no messages on the tracker's inputs")
    out_dir.mkdir(parents=True)
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: TrackerNode(ctx, line, arms=()), "tracker", namespace=ns)
    arms = ex.add_node(lambda ctx: _PickReplay(ctx, node, picks), "pick_replay", namespace=ns)
    rec = Recorder(out_dir / "bag", topics={TRUTH_TOPIC, f"{ns}/sorting/objects"})
    ex.add_tap(rec)
    # the tracker's timer keeps the phase it has from t = 0, as on the recorded line, so that
    # its reports share their stamps with the recorded truth (eval-run matches on them)
    ex.spin_until(first[2])

    try:
        stats = replay(ex, itertools.chain([first], messages),
                       remap={reports: RECORDED_REPORTS})
    finally:
        ex.shutdown()
        rec.close()
    node.ledger.to_json(out_dir / "ledger.json")
    if saved.is_file():
        shutil.copy(saved, out_dir / "line.yaml")
    booked = node.ledger.accounts["feed"].objects if "feed" in node.ledger.accounts else 0
    return RetrackResult(out_dir, stats.messages, node.tracker.stats.births, booked,
                         arms.replayed, arms.unmatched, node.tracker.stats.birth_summary())
