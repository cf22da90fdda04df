"""ONNX Runtime line detector: same boxes as Ultralytics' own predictions on the shipped model,
class-wise NMS, letterbox geometry, and typed errors for bad models and frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration.camera import PinholeCamera
from perception.catalog import load_catalog
from perception.detector.errors import ClassMismatchError, FrameError, ModelFileError
from perception.detector.metadata import metadata_path
from perception.detector.offline import REPO_ROOT
from perception.detector.onnx_detector import OnnxDetector, grey_world, nms_classwise
from perception.sensors.camera import RgbCameraSim
from sorting.sim.spawner import ObjectSpawner

MODEL = REPO_ROOT / "datasets" / "models" / "detector" / "crmsort_yolo11n.onnx"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cam = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0)
    rng = np.random.default_rng(11)
    sim = RgbCameraSim(cam, rng)
    spawner = ObjectSpawner(load_catalog(), rng, mix={"weee": 1.0, "scrap": 1.0, "slag": 1.0})
    out = []
    for _ in range(3):
        objs = [spawner.spawn(i, 1.2 + rng.uniform(-0.3, 0.3), rng.uniform(-0.22, 0.22))
                for i in range(6)]
        out.append(sim.render(objs, belt_position_m=float(rng.uniform(0, 2))))
    return out


def test_matches_ultralytics_predictions(frames: list[np.ndarray]) -> None:
    from perception.detector.offline import configure_ultralytics_offline

    configure_ultralytics_offline()
    from ultralytics import YOLO

    ours = OnnxDetector(MODEL, conf=0.01, iou=0.7)
    theirs = YOLO(str(MODEL), task="detect")
    n_total = 0
    for rgb in frames:
        d = ours.detect(rgb)
        (r,) = theirs.predict(rgb[..., ::-1].copy(), imgsz=list(ours.input_hw), conf=0.01,
                              iou=0.7, verbose=False)
        tb = r.boxes.xyxy.cpu().numpy()
        ts = r.boxes.conf.cpu().numpy()
        tc = r.boxes.cls.cpu().numpy().astype(int)
        assert len(d) == len(tb)
        order = np.lexsort((tb[:, 0], -ts))
        mine = np.lexsort((d.boxes_xyxy[:, 0], -d.scores))
        # same input tensor and network; only float32 op order differs (torch vs numpy):
        # boxes within 0.05 px, scores within 1e-4
        np.testing.assert_array_equal(d.class_ids[mine], tc[order])
        np.testing.assert_allclose(d.boxes_xyxy[mine], tb[order], atol=0.05)
        np.testing.assert_allclose(d.scores[mine], ts[order], atol=1e-4)
        n_total += len(d)
    assert n_total >= 3  # the shipped model finds objects in these frames


def test_stream_equals_single_frames(frames: list[np.ndarray]) -> None:
    det = OnnxDetector(MODEL, conf=0.05)
    single = [det.detect(f) for f in frames]
    streamed = list(det.detect_stream(iter(frames)))
    assert len(streamed) == len(frames)
    for a, b in zip(single, streamed, strict=True):
        np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_letterbox_geometry_round_trips() -> None:
    det = OnnxDetector(MODEL)
    hi, wi = det.input_hw
    img = np.zeros((300, 500, 3), dtype=np.uint8)
    tensor, lb = det.preprocess(img)
    assert tensor.shape == (1, 3, hi, wi)
    r = min(hi / 300, wi / 500)
    assert lb.ratio == pytest.approx(r)
    # padding is grey 114 and the picture is centred
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255) or lb.pad_y == 0
    assert abs(2 * lb.pad_x + round(500 * r) - wi) <= 1
    assert abs(2 * lb.pad_y + round(300 * r) - hi) <= 1


def test_grey_world_removes_a_colour_cast(frames: list[np.ndarray]) -> None:
    frame = frames[0]
    cast = np.clip(frame * np.asarray([1.4, 1.0, 0.6]), 0, 255).astype(np.uint8)
    means = grey_world(cast).reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < 1.0  # neutral to within a grey level
    assert np.ptp(cast.reshape(-1, 3).mean(axis=0)) > 20
    grey = np.full((40, 60, 3), 90, dtype=np.uint8)
    np.testing.assert_array_equal(grey_world(grey), grey)  # nothing to correct
    # the option is applied before the letterbox, and only when asked for
    on = OnnxDetector(MODEL, grey_world=True).preprocess(cast)[0]
    off = OnnxDetector(MODEL).preprocess(cast)[0]
    np.testing.assert_array_equal(OnnxDetector(MODEL).preprocess(grey_world(cast))[0], on)
    assert not np.array_equal(on, off)


def test_nms_suppresses_within_a_class_only() -> None:
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]],
                       dtype=np.float32)
    scores = np.asarray([0.9, 0.8, 0.7, 0.6], dtype=np.float32)
    classes = np.asarray([0, 0, 1, 0])
    keep = nms_classwise(boxes, scores, classes, iou=0.5)
    assert keep.tolist() == [0, 2, 3]  # box 1 overlaps box 0 (IoU 0.68) in class 0
    assert nms_classwise(boxes, scores, classes, iou=0.7).tolist() == [0, 1, 2, 3]


def test_missing_and_corrupt_models(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        OnnxDetector(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        OnnxDetector(bad)
    good = tmp_path / "m.onnx"
    shutil.copy(MODEL, good)
    metadata_path(good).write_text("{not json")
    with pytest.raises(ModelFileError, match="JSON"):
        OnnxDetector(good)


def test_class_list_must_match_the_catalog(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(MODEL, model)
    meta = json.loads(metadata_path(MODEL).read_text())
    meta["classes"][3], meta["classes"][4] = meta["classes"][4], meta["classes"][3]
    metadata_path(model).write_text(json.dumps(meta))
    with pytest.raises(ClassMismatchError, match="class 3"):
        OnnxDetector(model)
    meta["classes"] = meta["classes"][:-1]
    metadata_path(model).write_text(json.dumps(meta))
    with pytest.raises((ClassMismatchError, ModelFileError)):
        OnnxDetector(model)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10), np.uint8),
     np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)],
)
def test_bad_frames(frame: np.ndarray) -> None:
    with pytest.raises(FrameError):
        OnnxDetector(MODEL).detect(frame)


def test_matched_class_accuracy_counts_only_boxes_on_objects() -> None:
    from perception.detector.evaluate import ImageResult, evaluate_results

    gt = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], dtype=np.float64)
    res = ImageResult(
        gt_boxes=gt, gt_classes=np.array([0, 1, 1]),
        det_boxes=np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60],
                            [80, 80, 90, 90]], dtype=np.float64),
        det_scores=np.array([0.9, 0.8, 0.7, 0.9]),
        det_classes=np.array([0, 0, 1, 1]),  # one wrong class, one box on bare belt
    )
    report, _ = evaluate_results([res], ["a", "b"], "unit", "none")
    assert report.matched_class_accuracy == pytest.approx(2 / 3)
