"""Evaluate the detector on a bag recorded from the simulated line.

For every ``camera/image_raw`` frame of the bag: run the ONNX line detector, take the
``/sim/ground_truth`` message nearest in time (objects moved along x by the belt travel in
between), and turn the truth into pixel boxes with the camera model from the bag
(``camera_info`` intrinsics + the ``/tf_static`` pose ``belt -> camera frame``): each object
is ray cast as a solid (lumps as their bounding box, as the truth carries no height field),
and its box is the tight box of its *visible* pixels. Objects less visible than
``min_visible_fraction`` or smaller than ``min_visible_px``, and distractors, are not
expected. Detections and truth are matched by IoU (:mod:`perception.detector.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera import PinholeCamera
from calibration.transforms import RigidTransform
from perception.catalog import load_catalog
from perception.detector.evaluate import EvalReport, ImageResult, evaluate_results, save_plots
from perception.detector.onnx_detector import OnnxDetector
from perception.sensors.camera.raycast import RayCaster
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.bags.reader import read_decoded
from sorting.errors import BagError
from sorting.msgs.convert import stamp_ns
from sorting.nodes.detector_node import camera_from_info
from sorting.nodes.image_decode import image_to_rgb

GT_TOPIC = "/sim/ground_truth"
STATE_ON_BELT = 0
_GREY = Appearance(base_rgb=(0.5, 0.5, 0.5))


@dataclass(frozen=True)
class _Truth:
    t_ns: int
    belt_position_m: float
    objects: list[Any]


def _yaw(q: Any) -> float:
    return float(np.arctan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z)))


def truth_objects(objects: list[Any], dx_m: float) -> list[SceneObject]:
    """Solid shapes of ``GroundTruthObject`` messages on the belt, moved by ``dx_m`` along x."""
    out: list[SceneObject] = []
    for o in objects:
        if int(o.state) != STATE_ON_BELT:
            continue
        shape = ShapeKind(int(o.shape))
        size = (float(o.dimensions_m.x), float(o.dimensions_m.y), float(o.dimensions_m.z))
        if shape == ShapeKind.LUMP:
            shape = ShapeKind.BOX
        out.append(SceneObject(
            object_id=int(o.id), class_name=str(o.class_name), stream=str(o.stream),
            shape=shape, size_m=size, x_m=float(o.pose.position.x) + dx_m,
            y_m=float(o.pose.position.y), yaw_rad=_yaw(o.pose.orientation),
            material=str(o.material), density_kg_m3=max(float(o.density_kg_m3), 1.0),
            composition={}, appearance=_GREY, z_m=float(o.pose.position.z),
        ))
    return out


def truth_boxes(
    objects: list[SceneObject], camera: PinholeCamera, class_ids: dict[str, int],
    min_visible_fraction: float = 0.3, min_visible_px: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Visible pixel boxes (N x 4 xyxy, pixel edges) and class ids of catalog-class objects."""
    hits = RayCaster(camera).cast(objects)
    boxes, ids = [], []
    for oh in hits.objects:
        obj = objects[oh.index]
        cid = class_ids.get(obj.class_name)
        if cid is None:
            continue
        sel = hits.index[oh.rows, oh.cols] == oh.index
        n = int(np.count_nonzero(sel))
        alone = oh.alone_pixels
        if n < min_visible_px or alone == 0 or n / alone < min_visible_fraction:
            continue
        rr, cc = np.nonzero(sel)
        boxes.append([oh.cols.start + cc.min(), oh.rows.start + rr.min(),
                      oh.cols.start + cc.max() + 1, oh.rows.start + rr.max() + 1])
        ids.append(cid)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(ids, dtype=np.int64)


def _camera_pose(tf_msgs: list[Any], frame_id: str) -> RigidTransform | None:
    for msg in tf_msgs:
        for t in msg.transforms:
            if t.child_frame_id == frame_id and t.header.frame_id == "belt":
                tr, q = t.transform.translation, t.transform.rotation
                return RigidTransform.from_quaternion((q.x, q.y, q.z, q.w), (tr.x, tr.y, tr.z))
    return None


def evaluate_bag(
    model: Path, bag: Path, out_dir: Path, *,
    camera_topic: str = "/line1/camera/image_raw", conf: float = 0.001,
    grey_world: bool = False,
) -> EvalReport:
    """Evaluate ``model`` on the camera frames of ``bag`` (see the module docstring).

    Writes ``report.json`` and the plots to ``out_dir`` (mAP50: matches at IoU >= 0.5;
    mAP50-95: averaged over IoU 0.5-0.95). ``grey_world``: the detector's colour constancy.
    Raises :class:`BagError` if the bag lacks frames, camera info, the camera pose or truth.
    """
    info_topic = camera_topic.rsplit("/", 1)[0] + "/camera_info"
    truths: list[_Truth] = []
    frames: list[tuple[int, Any]] = []
    infos: list[Any] = []
    tfs: list[Any] = []
    for topic, _type, _t, msg in read_decoded(bag):
        if topic == GT_TOPIC:
            truths.append(_Truth(stamp_ns(msg.header.stamp), float(msg.belt_position_m),
                                 list(msg.objects)))
        elif topic == camera_topic:
            frames.append((stamp_ns(msg.header.stamp), msg))
        elif topic == info_topic and not infos:
            infos.append(msg)
        elif topic == "/tf_static":
            tfs.append(msg)
    if not frames or not truths or not infos:
        raise BagError(f"{bag}: needs {camera_topic}, {info_topic} and {GT_TOPIC} messages "
                       f"(got {len(frames)} frames, {len(infos)} infos, {len(truths)} truths)")
    frame_id = str(frames[0][1].header.frame_id)
    pose = _camera_pose(tfs, frame_id)
    if pose is None:
        raise BagError(f"{bag}: /tf_static has no transform belt -> {frame_id}")
    base = PinholeCamera(width=1, height=1, fx=1.0, fy=1.0, cx=0.0, cy=0.0, T_belt_camera=pose)
    camera = camera_from_info(infos[0], base)
    det = OnnxDetector(Path(model), conf=conf, grey_world=grey_world)
    class_ids = {n: i for i, n in enumerate(load_catalog().class_names)}
    t_truth = np.asarray([t.t_ns for t in truths])
    pos = np.asarray([t.belt_position_m for t in truths])
    results: list[ImageResult] = []
    for t_ns, msg in frames:
        k = int(np.argmin(np.abs(t_truth - t_ns)))
        # belt travel between truth and frame, from the truth's own belt positions
        belt_now = float(np.interp(t_ns, t_truth, pos))
        objs = truth_objects(truths[k].objects, belt_now - truths[k].belt_position_m)
        gt_b, gt_c = truth_boxes(objs, camera, class_ids)
        d = det.detect(image_to_rgb(msg))
        results.append(ImageResult(gt_b, gt_c, d.boxes_xyxy.astype(np.float64),
                                   d.scores.astype(np.float64), d.class_ids))
    report, curves = evaluate_results(results, det.names, str(bag), str(model))
    save_plots(report, curves, Path(out_dir))
    return report
