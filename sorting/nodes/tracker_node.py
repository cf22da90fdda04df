"""Tracker node: fuses detections, volumes, XRF and materials into ``sorting/objects``.

Subscribes (relative to the line namespace): ``belt/joint_states``,
``camera/detections`` (vision_msgs/Detection2DArray), ``depth/volumes``
(crmsort_msgs/ObjectVolumeArray), ``xrf/result`` (crmsort_msgs/XrfResult),
``hsi/material_map`` (crmsort_msgs/MaterialMap), ``xrt/objects``
(crmsort_msgs/XrtObjectArray) and
``robot/<arm>/pick_result`` for each arm. Publishes ``sorting/objects``
(crmsort_msgs/SortObjectArray) at ``sorting.publish_rate_hz``. Objects that
leave the belt or are picked are booked into the grade ledger
(:mod:`sorting.accounting`), whose books it publishes on ``sorting/balance``
(crmsort_msgs/MassBalance: the run's and the shift in progress) at
``sorting.balance_rate_hz``.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration.camera import ray_plane_z
from calibration.store import load_store
from perception.catalog import load_catalog
from perception.detector.confusion import load_confusion
from perception.xrt.stack import ForeignRegion
from sorting.accounting import RESIDUE, GradeLedger, Shifts
from sorting.config.cameras import calibration_path, measured_rgb_camera
from sorting.config.line import LineConfig
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.nodes.balance import SCOPE_RUN, SCOPE_SHIFT, balance_msg
from sorting.runtime.context import Node, NodeContext
from sorting.sim.spawner import resolve_mix
from sorting.tracking.fusion import ObjectEstimate, estimate
from sorting.tracking.measurements import (
    ClassMeasurement,
    VolumeMeasurement,
    XrfMeasurement,
    XrtMeasurement,
)
from sorting.tracking.priors import UNKNOWN_CLASS, class_priors
from sorting.tracking.tracker import Track, Tracker, TrackerConfig, TrackState, top_vote
from sorting.tracking.xrf_response import STORE_NAME as XRF_RESPONSE
from sorting.tracking.xrf_response import (
    element_responses_from_results,
    responses_from_results,
)
from sorting.tracking.xrt_evidence import foreign_cells

PICKED = 0  # crmsort_msgs/PickResult.OUTCOME_PICKED
METAL_LABEL = 253  # crmsort_msgs/MaterialMap.METAL


class EncoderHistory:
    """Recent (t, belt position) readings; position at any stamp by interpolation."""

    def __init__(self, maxlen: int = 4000) -> None:
        self.t: deque[int] = deque(maxlen=maxlen)
        self.p: deque[float] = deque(maxlen=maxlen)
        self.v = 0.0

    def add(self, t_ns: int, pos: float, vel: float) -> None:
        if self.t and t_ns <= self.t[-1]:
            return
        self.t.append(t_ns)
        self.p.append(pos)
        self.v = vel

    def at(self, t_ns: int) -> float | None:
        if not self.t:
            return None
        if t_ns >= self.t[-1]:
            return self.p[-1] + self.v * (t_ns - self.t[-1]) * 1e-9
        i = bisect.bisect_left(self.t, t_ns)
        if i == 0:
            return self.p[0]
        t0, t1 = self.t[i - 1], self.t[i]
        p0, p1 = self.p[i - 1], self.p[i]
        return p0 + (p1 - p0) * (t_ns - t0) / (t1 - t0)

    @property
    def latest(self) -> float:
        return self.p[-1] if self.p else 0.0


EDGE_PX = 2.0  # a box this close to the image border is cut by it
#: an image border that reaches this close to the belt's edge hides no more of an object than
#: the strip beyond it: a box touching it is whole (objects near the belt edge stay whole)
BELT_EDGE_STRIP_M = 0.03
REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_confusion(path: str, ctx: NodeContext) -> dict[str, dict[str, float]] | None:
    """The detector's measured confusion likelihoods, or None (symmetric model) when no file
    is configured or it is missing; a file that is there but broken is an error."""
    if not path:
        return None
    p = Path(path) if Path(path).is_absolute() else REPO_ROOT / path
    if not p.exists():
        ctx.get_logger().warning(f"detector confusion {p} missing: symmetric confusion from "
                                 "sorting.detector_accuracy")
        return None
    return load_confusion(p).likelihoods()


def _load_xrf_response(line: LineConfig, ctx: NodeContext
                       ) -> tuple[dict[str, tuple[float, float]],
                                  dict[str, dict[str, tuple[float, float]]]]:
    """The XRF response per class and per element of a class (``xrf.class_response``) from
    the line's calibration store; empty (analyses at face value) with a warning when the
    store has none."""
    path = calibration_path(line)
    store = load_store(path) if path.is_file() else None
    if store is None or XRF_RESPONSE not in store.calibrations:
        ctx.get_logger().warning(f"no {XRF_RESPONSE} in {path}: XRF analyses taken at face "
                                 "value (run `crmsort calibrate xrf-types`)")
        return {}, {}
    entry = store.get(XRF_RESPONSE)
    measured_at = entry.inputs.get("live_time_s")
    live = line.sensors.xrf.live_time_s
    if isinstance(measured_at, (int, float)) and abs(float(measured_at) - live) > 1e-6 * live:
        ctx.get_logger().warning(
            f"{XRF_RESPONSE} in {path} was measured at {measured_at:g} s of live time, the "
            f"line runs {live:g} s: re-run `crmsort calibrate xrf-types` (the factors hold "
            "for the counts they were measured with)")
    return responses_from_results(entry.results), element_responses_from_results(entry.results)


def _extent(v: Any) -> tuple[float, float]:
    """Axis-aligned footprint (along, across the belt) of an ObjectVolume's oriented box:
    the tracker's footprints are axis-aligned, a blob's box is not."""
    q = v.box_pose.orientation
    yaw = 2.0 * float(np.arctan2(q.z, q.w))
    c, s = abs(float(np.cos(yaw))), abs(float(np.sin(yaw)))
    length, width = float(v.box_size_m.x), float(v.box_size_m.y)
    return length * c + width * s, length * s + width * c


class TrackerNode(Node):
    """Belt tracker, fusion and grade accounting of one line (see the module docstring)."""

    def __init__(self, ctx: NodeContext, line: LineConfig, arms: Sequence[str] = ()) -> None:
        super().__init__(ctx)
        self.line = line
        self.policy = line.sorting
        self.camera = measured_rgb_camera(line)  # as calibrated, never the simulator's truth
        self.cutting_borders = self._cutting_borders(line.belt.width_m / 2)
        self.tracker = Tracker(TrackerConfig(gate_m=self.policy.track_gate_m,
                                             belt_length_m=line.belt.length_m))
        self.priors = class_priors()
        catalog = load_catalog()
        # the class posterior's prior: the detector classes' shares of the configured feed
        specs, probs = resolve_mix(catalog, line.feed.mix)
        self.feed_weights = {c.name: float(p) for c, p in zip(specs, probs, strict=True)
                             if c.name in self.priors}
        # material density (uniform over the catalog range: mean, range/sqrt(12)) for objects
        # whose class is unknown; "metal" (HSI cannot tell metals apart) spans Al to Cu
        self.material_density = {
            m.id: ((m.density_kg_m3.min + m.density_kg_m3.max) / 2,
                   (m.density_kg_m3.max - m.density_kg_m3.min) / 12**0.5)
            for m in catalog.materials.values()
        }
        self.material_density["metal"] = (5700.0, 3200.0 / 12**0.5)
        self.confusion = _load_confusion(self.policy.detector_confusion, ctx)
        self.xrf_response, self.xrf_element_response = _load_xrf_response(line, ctx)
        self.ledger = GradeLedger(Shifts(self.policy.shift_hours, self.policy.shift_start_hour),
                                  bins=self.policy.bins)
        self.start_ns = ctx.get_clock().now().nanoseconds
        self.encoder = EncoderHistory()
        self.estimates: dict[int, ObjectEstimate] = {}
        self.finished: list[tuple[Track, ObjectEstimate]] = []
        self.xrf_x_m = line.sensors.xrf.x_m
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states", self._on_belt,
                                100)
        ctx.create_subscription("vision_msgs/msg/Detection2DArray", "camera/detections",
                                self._on_detections, 10)
        ctx.create_subscription("crmsort_msgs/msg/ObjectVolumeArray", "depth/volumes",
                                self._on_volumes, 10)
        ctx.create_subscription("crmsort_msgs/msg/XrfResult", "xrf/result", self._on_xrf, 10)
        self.hsi_x_m = line.sensors.hsi.x_m
        ctx.create_subscription("crmsort_msgs/msg/MaterialMap", "hsi/material_map",
                                self._on_material_map, 10)
        ctx.create_subscription("crmsort_msgs/msg/XrtObjectArray", "xrt/objects",
                                self._on_xrt, 10)
        for arm in arms:
            ctx.create_subscription("crmsort_msgs/msg/PickResult", f"robot/{arm}/pick_result",
                                    self._on_pick_result, 10)
        self.pub = ctx.create_publisher("crmsort_msgs/msg/SortObjectArray", "sorting/objects", 10)
        ctx.create_timer(1.0 / self.policy.publish_rate_hz, self._publish)
        self.balance_pub = ctx.create_publisher("crmsort_msgs/msg/MassBalance",
                                                "sorting/balance", 10)
        ctx.create_timer(1.0 / self.policy.balance_rate_hz, self.publish_balance)

    # -- inputs ------------------------------------------------------------------------------
    def _on_belt(self, msg: Any) -> None:
        self.encoder.add(stamp_ns(msg.header.stamp), float(msg.position[0]),
                         float(msg.velocity[0]) if len(msg.velocity) else 0.0)

    def _on_detections(self, msg: Any) -> None:
        t_ns = stamp_ns(msg.header.stamp)
        p = self.encoder.at(t_ns)
        if p is None or not msg.detections:
            return
        uv = []
        for d in msg.detections:
            cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
            hw, hh = d.bbox.size_x / 2, d.bbox.size_y / 2
            uv += [(cx, cy), (cx - hw, cy - hh), (cx + hw, cy + hh)]
        pts = self._image_to_belt(np.array(uv, dtype=np.float64))
        dets = []
        cut_left, cut_top, cut_right, cut_bottom = self.cutting_borders
        for k, d in enumerate(msg.detections):
            c, a, b = pts[3 * k], pts[3 * k + 1], pts[3 * k + 2]
            if not np.all(np.isfinite([c, a, b])) or not d.results:
                continue
            hyp = max(d.results, key=lambda r: r.hypothesis.score).hypothesis
            cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
            hw, hh = d.bbox.size_x / 2, d.bbox.size_y / 2
            edge = EDGE_PX
            truncated = bool((cut_left and cx - hw <= edge) or (cut_top and cy - hh <= edge)
                             or (cut_right and cx + hw >= self.camera.width - edge)
                             or (cut_bottom and cy + hh >= self.camera.height - edge))
            dets.append(ClassMeasurement(
                t_ns=t_ns, s_m=float(c[0]) - p, y_m=float(c[1]),
                length_m=abs(float(b[0] - a[0])), width_m=abs(float(b[1] - a[1])),
                class_name=str(hyp.class_id), score=float(hyp.score), truncated=truncated,
            ))
        self.tracker.add_detections(dets)

    def _cutting_borders(self, belt_half_width_m: float) -> tuple[bool, bool, bool, bool]:
        """Which image borders (left, top, right, bottom) can cut an object: all but those
        whose middle, on the belt, lies within ``BELT_EDGE_STRIP_M`` of the belt's edge or
        beyond it (nothing lies past the belt: a box touching such a border is whole, give
        or take the strip)."""
        w, h = self.camera.width, self.camera.height
        mids = np.array([[0.0, h / 2], [w / 2, 0.0], [w, h / 2], [w / 2, h]], dtype=np.float64)
        pts = self._image_to_belt(mids)
        return tuple(  # type: ignore[return-value]
            not (np.isfinite(p[1]) and abs(float(p[1])) >= belt_half_width_m - BELT_EDGE_STRIP_M)
            for p in pts)

    def _image_to_belt(self, uv: np.ndarray) -> np.ndarray:
        return ray_plane_z(self.camera.pixel_rays(uv), 0.0)

    def _on_volumes(self, msg: Any) -> None:
        t_ns = stamp_ns(msg.header.stamp)
        p = self.encoder.at(t_ns)
        if p is None:
            return
        blobs = [
            VolumeMeasurement(
                t_ns=t_ns, s_m=float(v.belt_x_m) - p, y_m=float(v.y_m),
                length_m=ext[0], width_m=ext[1],
                volume_m3=float(v.volume_m3), volume_u_m3=float(v.volume_u_m3),
                height_m=float(v.height_m), grasp_s_m=float(v.grasp_point.x) - p,
                grasp_y_m=float(v.grasp_point.y), grasp_z_m=float(v.grasp_point.z),
                truncated=bool(v.truncated),
            )
            for v, ext in ((v, _extent(v)) for v in msg.volumes)
        ]
        self.tracker.add_volumes(blobs)

    def _on_xrf(self, msg: Any) -> None:
        if self.xrf_x_m is None:
            return
        t_ns = stamp_ns(msg.header.stamp)
        elements = list(msg.elements)
        lod = list(getattr(msg, "lod", []))
        # an element whose analysis is not finite is no measurement (never let a NaN into
        # the books)
        ok = [i for i, (f, u) in enumerate(zip(msg.mass_fraction, msg.mass_fraction_u,
                                                strict=True))
              if np.isfinite(f) and np.isfinite(u)]
        spot = XrfMeasurement(
            t_ns=t_ns, s_m=float(self.xrf_x_m) - float(msg.belt_position_m),
            y_m=float(msg.spot_y_m), radius_m=float(msg.spot_radius_m),
            fractions={elements[i]: float(msg.mass_fraction[i]) for i in ok},
            uncertainties={elements[i]: float(msg.mass_fraction_u[i]) for i in ok},
            lod={e: float(x) for e, x in zip(elements, lod, strict=False)},
        )
        if not spot.fractions:
            return
        self.tracker.add_xrf(spot)

    def _on_material_map(self, msg: Any) -> None:
        rows, cols = int(msg.rows), int(msg.cols)
        if rows == 0 or cols == 0:
            return
        res = float(msg.resolution_m)
        # row r was seen at encoder p_r = belt_position_m + r*res, at belt x = hsi_x
        s_rows = self.hsi_x_m - (float(msg.belt_position_m) + res * np.arange(rows))
        y_cols = float(msg.origin_y_m) + res * np.arange(cols)
        names = {i: str(n) for i, n in enumerate(msg.material_names)}
        names[METAL_LABEL] = "metal"  # belt and unknown cells do not vote
        self.tracker.add_material_grid(
            stamp_ns(msg.header.stamp),
            np.asarray(msg.material, dtype=np.uint8).reshape(rows, cols),
            np.asarray(msg.confidence, dtype=np.float32).reshape(rows, cols),
            s_rows, y_cols, names,
        )

    def _on_xrt(self, msg: Any) -> None:
        # an object's lines were taken at encoder p (its cells' weighted mean) at the
        # scanner's x: on the belt surface at s = x - p
        t_ns = stamp_ns(msg.header.stamp)
        views = []
        for o in msg.objects:
            a_high = np.asarray(o.a_high, dtype=np.float64)
            cos = np.asarray(o.cos_theta, dtype=np.float64)
            dx = np.asarray(o.cell_dx_m, dtype=np.float64)
            cy = np.asarray(o.cell_y_m, dtype=np.float64)
            if a_high.size == 0 or not cos.size == dx.size == cy.size == a_high.size:
                continue
            s = float(msg.x_m) - float(o.belt_position_m)
            views.append(XrtMeasurement(
                t_ns=t_ns, s_m=s, y_m=float(o.y_m),
                length_m=float(o.length_m), width_m=float(o.width_m),
                cell_area_m2=float(o.cell_area_m2), source_height_m=float(o.source_height_m),
                noise_a_high=float(o.noise_a_high),
                a_low=np.asarray(o.a_low, dtype=np.float64), a_high=a_high, cos_theta=cos,
                opaque_cells=int(o.opaque_cells), truncated=bool(o.truncated),
                cell_s_m=s - dx, cell_y_m=cy))
        self.tracker.add_xrt(views, split=self._foreign_cells)

    def _foreign_cells(self, tr: Track, v: XrtMeasurement
                       ) -> tuple[ForeignRegion, NDArray[np.float64]] | None:
        """Another object in ``tr``'s X-ray view (read against its leading class's material)."""
        prior = self.priors.get(top_vote(tr.class_votes) or UNKNOWN_CLASS) or self.priors.get(
            UNKNOWN_CLASS)
        return foreign_cells(tr, v, prior) if prior is not None else None

    def _on_pick_result(self, msg: Any) -> None:
        if int(msg.outcome) == PICKED:
            self.book_pick(int(msg.object_id), str(msg.target_bin))

    def book_pick(self, track_id: int, bin_name: str) -> bool:
        """Book track ``track_id`` as picked into ``bin_name``; False if it is not live."""
        tr = self.tracker.mark_picked(track_id, bin_name)
        if tr is not None:
            self._book(tr, bin_name)
        return tr is not None

    # -- outputs -----------------------------------------------------------------------------
    def _book(self, tr: Track, destination: str) -> None:
        est = self._estimate(tr)
        self.ledger.book(est, destination, self.ctx.get_clock().now().nanoseconds,
                         wanted_bin=self.target_bin(est))
        self.finished.append((tr, est))
        self.estimates.pop(tr.track_id, None)

    def _estimate(self, tr: Track) -> ObjectEstimate:
        return estimate(tr, self.priors, self.policy.prices_eur_per_kg, self.material_density,
                        feed_weights=self.feed_weights,
                        detector_accuracy=self.policy.detector_accuracy,
                        detector_confusion=self.confusion, xrf_response=self.xrf_response,
                        xrf_element_response=self.xrf_element_response)

    def target_bin(self, est: ObjectEstimate) -> str:
        """The sort policy's bin for an estimate (:meth:`SortingConfig.target_bin`)."""
        return self.policy.target_bin(est.class_name, est.class_confidence, est.value_eur)

    def _publish(self) -> None:
        now = self.ctx.get_clock().now().nanoseconds
        p = self.encoder.at(now)
        if p is None:
            return
        self.tracker.merge_duplicates(now_ns=now)
        for tr in self.tracker.retire(p):
            self._book(tr, RESIDUE)
        objects = []
        live = self.tracker.live()
        for tr in self.tracker.tracks.values():
            est = self._estimate(tr)
            self.estimates[tr.track_id] = est
            # tentative tracks (only partial views so far) and tracks not yet settled (seen
            # whole once, just now) are kept and booked, not offered
            if tr.settled(now, self.tracker.config.settle_s):
                objects.append(self._to_msg(tr, est, p, self.tracker.pick_views(tr, live)))
        self.pub.publish(new("crmsort_msgs/msg/SortObjectArray", header=header(now, "belt"),
                             belt_position_m=p, objects=objects))

    def publish_balance(self) -> None:
        """The running books and the shift in progress's on ``sorting/balance``."""
        now = self.ctx.get_clock().now().nanoseconds
        self.balance_pub.publish(balance_msg(self.ledger, SCOPE_RUN, self.start_ns, now))
        shifts = self.ledger.shifts
        if shifts is not None:
            start = shifts.start_of(now)
            shift = self.ledger.by_shift.get(start) or GradeLedger(bins=self.policy.bins)
            self.balance_pub.publish(balance_msg(shift, SCOPE_SHIFT, start, now))

    def _to_msg(self, tr: Track, est: ObjectEstimate, p: float,
                views: list[VolumeMeasurement] | None = None) -> Any:
        # where to pick: the 3D sensor's grasp points of ``views`` (Tracker.pick_views) are
        # better than the fused centre (camera boxes of partial or mis-classified views pull
        # it around)
        if views is None:
            views = self.tracker.pick_views(tr)
        # and how high: the top at the grasp point (the pick height), not the view's highest
        # top -- a thin strip lying on a board raises that, and the cup aimed beside the
        # strip stopped that far above the board
        if views:
            s = float(np.median([v.grasp_s_m for v in views]))
            y = float(np.median([v.grasp_y_m for v in views]))
            z = float(np.median([v.grasp_z_m for v in views]))
        else:
            s, y = tr.s_m, tr.y_m
            z = float(np.median([v.height_m for v in tr.volumes])) if tr.volumes else 0.0
        return new(
            "crmsort_msgs/msg/SortObject", id=tr.track_id,
            state=int(tr.state if tr.state != TrackState.TRACKING else 0),
            class_name=est.class_name, class_confidence=est.class_confidence,
            material=est.material, material_confidence=est.material_confidence,
            belt_x_m=s + p, y_m=y,
            height_m=z,
            volume_m3=est.volume_m3,
            volume_u_m3=est.volume_u_m3, mass_kg=est.mass_kg, mass_u_kg=est.mass_u_kg,
            composition_source=1 if est.composition_source == "xrf" else 0,
            elements=list(est.elements),
            mass_fraction=np.array(est.fractions, dtype=np.float32),
            mass_fraction_u=np.array(est.fractions_u, dtype=np.float32),
            element_mass_kg=np.array(est.element_mass_kg, dtype=np.float32),
            element_mass_u_kg=np.array(est.element_mass_u_kg, dtype=np.float32),
            value_eur=est.value_eur, value_u_eur=est.value_u_eur,
            # an object under another cannot be reached by the cup: let it pass
            target_bin=self.target_bin(est) if tr.covered_by is None else "",
        )
