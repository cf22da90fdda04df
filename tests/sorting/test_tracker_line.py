"""The tracker node on the simulated line, fed by an oracle detector (a test double).

The oracle turns simulator truth into Detection2DArray messages with pixel
noise and misses — standing in for the trained detector so that the tracker's
association, belt-coordinate conversion and lifecycle are tested on their
own. The tracker itself never sees the truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sorting.config import load_line
from sorting.config.cameras import rgb_camera
from sorting.evaluation.tracking_eval import evaluate_tracking, median_abs
from sorting.line import build_sim_line
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.nodes.tracker_node import TrackerNode
from sorting.record import Recorder
from sorting.runtime import InProcessExecutor, Node, NodeContext, SimClock


class OracleDetector(Node):
    """Projects true objects into the image: footprint bbox, 2 px noise, 10 % misses."""

    def __init__(self, ctx: NodeContext, camera: Any) -> None:
        super().__init__(ctx)
        self.camera = camera
        self.truth: list[Any] = []
        self.rng = np.random.default_rng(3)
        ctx.create_subscription("crmsort_msgs/msg/GroundTruthObjectArray", "/sim/ground_truth",
                                self._on_truth, 5)
        ctx.create_subscription("sensor_msgs/msg/Image", "camera/image_raw", self._on_image, 5)
        self.pub = ctx.create_publisher("vision_msgs/msg/Detection2DArray", "camera/detections", 5)

    def _on_truth(self, msg: Any) -> None:
        self.truth = [o for o in msg.objects if o.state == 0]

    def _on_image(self, img: Any) -> None:
        dets = []
        for o in self.truth:
            if self.rng.random() < 0.1:
                continue
            yaw = 2 * np.arctan2(o.pose.orientation.z, o.pose.orientation.w)
            c, s = np.cos(yaw), np.sin(yaw)
            hl, hw = o.dimensions_m.x / 2, o.dimensions_m.y / 2
            corners = [(o.pose.position.x + c * a - s * b, o.pose.position.y + s * a + c * b, 0.0)
                       for a in (-hl, hl) for b in (-hw, hw)]
            uv, _ = self.camera.project(np.array(corners))
            if not np.all(np.isfinite(uv)):
                continue
            lo, hi = uv.min(axis=0), uv.max(axis=0)
            if hi[0] < 0 or hi[1] < 0 or lo[0] > img.width or lo[1] > img.height:
                continue
            lo = np.clip(lo, 0, [img.width, img.height])
            hi = np.clip(hi, 0, [img.width, img.height])
            ctr = (lo + hi) / 2 + self.rng.normal(0, 2.0, 2)
            dets.append(new(
                "vision_msgs/msg/Detection2D", header=img.header,
                results=[new("vision_msgs/msg/ObjectHypothesisWithPose",
                             hypothesis=new("vision_msgs/msg/ObjectHypothesis",
                                            class_id=o.class_name, score=0.9))],
                bbox=new("vision_msgs/msg/BoundingBox2D",
                         center=new("vision_msgs/msg/Pose2D",
                                    position=new("vision_msgs/msg/Point2D", x=ctr[0], y=ctr[1])),
                         size_x=hi[0] - lo[0], size_y=hi[1] - lo[1]),
            ))
        self.pub.publish(new("vision_msgs/msg/Detection2DArray",
                             header=header(stamp_ns(img.header.stamp), img.header.frame_id),
                             detections=dets))


def test_tracker_keeps_identities_on_the_simulated_line(tmp_path: Path) -> None:
    base = load_line()
    # the class posterior weighs detector votes by the detector's accuracy: the oracle's
    line = base.model_copy(update={
        "sorting": base.sorting.model_copy(update={"detector_accuracy": 0.9})})
    ex = InProcessExecutor(SimClock())
    build_sim_line(line, ex, perception=False)
    ex.add_node(lambda ctx: OracleDetector(ctx, rgb_camera(line)), "oracle", namespace="/line1")
    tracker = ex.add_node(lambda ctx: TrackerNode(ctx, line), "tracker", namespace="/line1")
    rec = Recorder(tmp_path / "bag", topics={"/sim/ground_truth", "/line1/sorting/objects"})
    ex.add_tap(rec)
    ex.spin_until(30_000_000_000)
    ex.shutdown()
    rec.close()
    report = evaluate_tracking(tmp_path / "bag")
    assert report.objects_seen > 25  # ~37 objects pass the camera in 30 s
    # issue 6 asks >= 99 % on the real pipeline; with an oracle the tracker alone must do it
    assert report.identity_rate >= 0.99, report
    assert report.class_accuracy >= 0.99
    # volumes here are class priors (no 3D node in this test): mass errors are the prior's
    # spread, so only check they are finite and booked
    assert np.isfinite(median_abs(report.mass_rel_err))
    assert tracker.ledger.accounts["feed"].objects > 10


def test_only_image_borders_inside_the_belt_cut_an_objects_box() -> None:
    """The line's camera sees the belt across to within 2 cm of its edges: a box touching
    the top or bottom border (across the belt) is whole, nothing lies beyond; the left and
    right borders (along the belt) cut objects coming into and leaving the view. A narrower
    view across the belt cuts objects at all four borders."""
    line = load_line()
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: TrackerNode(ctx, line), "tracker", namespace="/line1")
    assert node.cutting_borders == (True, False, True, False)
    wide = line.model_copy(update={"belt": line.belt.model_copy(update={"width_m": 1.2})})
    node = ex.add_node(lambda ctx: TrackerNode(ctx, wide), "tracker2", namespace="/line1")
    assert node.cutting_borders == (True, True, True, True)
    ex.shutdown()
