"""Detector evaluation: mAP50, mAP50-95, precision/recall per class, confusion matrix, PR curves.

Matching (per image, per IoU threshold ``t`` in 0.50:0.05:0.95): candidate pairs are a
detection and a ground-truth box of the same class with IoU >= ``t``; pairs are taken in
order of decreasing IoU, each detection and each ground-truth box at most once (as in
Ultralytics' validator). AP per class and threshold is the area under the monotone
precision envelope sampled at 101 recall points; mAP averages over classes that have ground
truth. Precision and recall are read at the score threshold that maximises the mean F1 over
classes. The confusion matrix (rows predicted, columns true, last row/column background)
uses score >= 0.25 and class-agnostic matching at IoU >= 0.45.

``evaluate_folder`` runs the line detector (:class:`OnnxDetector`) on a YOLO dataset split;
``sorting.dataset.eval_bag`` feeds :func:`evaluate_results` from a replayed bag.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.detector.errors import TrainingError
from perception.detector.metadata import IMAGE_SUFFIXES
from perception.detector.onnx_detector import OnnxDetector

F64 = NDArray[np.float64]
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
CM_CONF = 0.25
CM_IOU = 0.45


@dataclass(frozen=True)
class ImageResult:
    """Truth and detections of one image: boxes N x 4 xyxy (px), class ids, scores."""

    gt_boxes: F64
    gt_classes: NDArray[np.int64]
    det_boxes: F64
    det_scores: F64
    det_classes: NDArray[np.int64]


@dataclass
class ClassMetrics:
    """One class: ground-truth count, AP at IoU 0.5, AP over 0.5:0.95, precision, recall."""

    n_gt: int
    ap50: float
    ap50_95: float
    precision: float
    recall: float


@dataclass
class EvalReport:
    """Result of an evaluation (see the module docstring); ``confusion`` as nested lists."""

    source: str
    model: str
    n_images: int
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]
    names: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def matched_class_accuracy(self) -> float:
        """Share of the boxes matched to an object (confusion matrix, background excluded)
        that name its class: the detector's per-frame class accuracy, which the tracker's
        class posterior takes as ``sorting.detector_accuracy``."""
        cm = np.asarray(self.confusion, dtype=np.float64)
        if cm.ndim != 2 or cm.shape[0] < 2:
            return 0.0
        inner = cm[:-1, :-1]
        total = float(inner.sum())
        return float(np.trace(inner)) / total if total > 0 else 0.0

    def weak_classes(self, threshold: float = 0.5) -> list[str]:
        """Classes with ground truth whose AP50 is below ``threshold``, weakest first."""
        weak = [(m.ap50, n) for n, m in self.per_class.items() if m.n_gt and m.ap50 < threshold]
        return [n for _, n in sorted(weak)]


def box_iou(a: F64, b: F64) -> F64:
    """IoU matrix (len(a) x len(b)) of xyxy boxes."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    out: F64 = inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
    return out


def match_image(r: ImageResult) -> NDArray[np.bool_]:
    """True-positive flags, detections x IoU thresholds (see the module docstring)."""
    tp = np.zeros((r.det_boxes.shape[0], IOU_THRESHOLDS.size), dtype=bool)
    if r.det_boxes.shape[0] == 0 or r.gt_boxes.shape[0] == 0:
        return tp
    iou = box_iou(r.gt_boxes, r.det_boxes) * (r.gt_classes[:, None] == r.det_classes[None, :])
    for j, t in enumerate(IOU_THRESHOLDS):
        gi, di = np.nonzero(iou >= t)
        if gi.size == 0:
            continue
        order = np.argsort(-iou[gi, di], kind="stable")
        gi, di = gi[order], di[order]
        _, first_d = np.unique(di, return_index=True)
        gi, di = gi[np.sort(first_d)], di[np.sort(first_d)]
        _, first_g = np.unique(gi, return_index=True)
        tp[di[first_g], j] = True
    return tp


def _compute_ap(recall: F64, precision: F64) -> float:
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def _confusion(results: Sequence[ImageResult], nc: int) -> NDArray[np.int64]:
    cm = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    for r in results:
        keep = r.det_scores >= CM_CONF
        db, dc = r.det_boxes[keep], r.det_classes[keep]
        iou = box_iou(r.gt_boxes, db)
        gi, di = np.nonzero(iou >= CM_IOU)
        order = np.argsort(-iou[gi, di], kind="stable")
        used_g: set[int] = set()
        used_d: set[int] = set()
        for g, d in zip(gi[order], di[order], strict=True):
            if g in used_g or d in used_d:
                continue
            used_g.add(int(g))
            used_d.add(int(d))
            cm[dc[d], r.gt_classes[g]] += 1
        for g in set(range(r.gt_boxes.shape[0])) - used_g:
            cm[nc, r.gt_classes[g]] += 1
        for d in set(range(db.shape[0])) - used_d:
            cm[dc[d], nc] += 1
    return cm


def evaluate_results(
    results: Sequence[ImageResult], names: Sequence[str], source: str, model: str
) -> tuple[EvalReport, dict[str, F64]]:
    """Metrics over ``results``; also returns the PR curves (``recall`` grid, per-class
    ``precision`` at IoU 0.5) for :func:`save_plots`."""
    nc = len(names)
    tps, confs, pcls = [], [], []
    n_gt = np.zeros(nc, dtype=np.int64)
    for r in results:
        tps.append(match_image(r))
        confs.append(r.det_scores)
        pcls.append(r.det_classes)
        np.add.at(n_gt, r.gt_classes, 1)
    tp = np.concatenate(tps) if tps else np.zeros((0, 10), dtype=bool)
    conf = np.concatenate(confs) if confs else np.zeros(0)
    pc = np.concatenate(pcls) if pcls else np.zeros(0, dtype=np.int64)
    order = np.argsort(-conf, kind="stable")
    tp, conf, pc = tp[order], conf[order], pc[order]
    grid = np.linspace(0, 1, 1000)
    p_curve = np.zeros((nc, grid.size))
    r_curve = np.zeros((nc, grid.size))
    ap = np.zeros((nc, IOU_THRESHOLDS.size))
    rec_grid = np.linspace(0, 1, 101)
    pr_at_05 = np.zeros((nc, rec_grid.size))
    for c in range(nc):
        sel = pc == c
        if n_gt[c] == 0 or not sel.any():
            continue
        tpc = np.cumsum(tp[sel], axis=0)
        fpc = np.cumsum(~tp[sel], axis=0)
        recall = tpc / n_gt[c]
        precision = tpc / (tpc + fpc)
        r_curve[c] = np.interp(-grid, -conf[sel], recall[:, 0], left=0)
        p_curve[c] = np.interp(-grid, -conf[sel], precision[:, 0], left=1)
        for j in range(IOU_THRESHOLDS.size):
            ap[c, j] = _compute_ap(recall[:, j], precision[:, j])
        env = np.flip(np.maximum.accumulate(np.flip(np.concatenate((precision[:, 0], [0.0])))))
        pr_at_05[c] = np.interp(rec_grid, np.concatenate((recall[:, 0], [1.0])), env, right=0)
    present = n_gt > 0
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
    best = int(np.argmax(f1[present].mean(axis=0))) if present.any() else 0
    per_class = {
        names[c]: ClassMetrics(
            n_gt=int(n_gt[c]), ap50=float(ap[c, 0]), ap50_95=float(ap[c].mean()),
            precision=float(p_curve[c, best]), recall=float(r_curve[c, best]),
        )
        for c in range(nc)
    }
    report = EvalReport(
        source=source,
        model=model,
        n_images=len(results),
        map50=float(ap[present, 0].mean()) if present.any() else 0.0,
        map50_95=float(ap[present].mean()) if present.any() else 0.0,
        precision=float(p_curve[present, best].mean()) if present.any() else 0.0,
        recall=float(r_curve[present, best].mean()) if present.any() else 0.0,
        per_class=per_class,
        confusion=_confusion(results, nc).tolist(),
        names=list(names),
        extra={"best_f1_conf": float(grid[best])},
    )
    return report, {"recall": rec_grid, "precision": pr_at_05}


def save_plots(report: EvalReport, curves: dict[str, F64], out_dir: Path) -> None:
    """``report.json``, ``confusion_matrix.png`` and ``pr_curves.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    data = asdict(report)
    data["matched_class_accuracy"] = report.matched_class_accuracy
    (out_dir / "report.json").write_text(json.dumps(data, indent=1))
    names = [*report.names, "background"]
    cm = np.asarray(report.confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=0, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(12, 10))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"confusion (column-normalised), score>={CM_CONF}, IoU>={CM_IOU}")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 7))
    for c, name in enumerate(report.names):
        m = report.per_class[name]
        if m.n_gt:
            ax.plot(curves["recall"], curves["precision"][c], lw=0.8,
                    label=f"{name} {m.ap50:.2f}")
    present = [c for c, n in enumerate(report.names) if report.per_class[n].n_gt]
    if present:
        ax.plot(curves["recall"], curves["precision"][present].mean(axis=0), "k", lw=2.5,
                label=f"all classes mAP50 {report.map50:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, loc="lower left", ncol=2)
    ax.set_title(f"PR curves at IoU 0.5 — {report.source}")
    fig.tight_layout()
    fig.savefig(out_dir / "pr_curves.png", dpi=110)
    plt.close(fig)


def read_yolo_labels(path: Path, w: int, h: int) -> tuple[F64, NDArray[np.int64]]:
    """Boxes (N x 4 xyxy px) and class ids of a YOLO label file for a ``w`` x ``h`` image."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()] \
        if path.is_file() else []
    if not rows:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    arr = np.asarray(rows, dtype=np.float64)
    cx, cy, bw, bh = arr[:, 1] * w, arr[:, 2] * h, arr[:, 3] * w, arr[:, 4] * h
    boxes = np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    return boxes, arr[:, 0].astype(np.int64)


def folder_results(
    detector: OnnxDetector, data_yaml: Path, split: str = "val",
    progress: Callable[[int, int], None] | None = None,
) -> list[ImageResult]:
    """Run ``detector`` over a split of a YOLO dataset; truth from its label files."""
    from perception.detector.train import read_data_yaml

    root, _ = read_data_yaml(Path(data_yaml))
    img_dir = root / "images" / split
    if not img_dir.is_dir():
        raise TrainingError(f"{data_yaml}: no images/{split} folder under {root}")
    files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out: list[ImageResult] = []
    for k, p in enumerate(files):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise TrainingError(f"{p}: unreadable image")
        rgb = np.ascontiguousarray(np.asarray(bgr, dtype=np.uint8)[..., ::-1])
        h, w = rgb.shape[:2]
        gt_b, gt_c = read_yolo_labels(root / "labels" / split / f"{p.stem}.txt", w, h)
        det = detector.detect(rgb)
        out.append(ImageResult(gt_b, gt_c, det.boxes_xyxy.astype(np.float64),
                               det.scores.astype(np.float64), det.class_ids))
        if progress is not None:
            progress(k + 1, len(files))
    return out


def evaluate_folder(
    model: Path, data_yaml: Path, out_dir: Path, conf: float = 0.001, split: str = "val",
    grey_world: bool = False,
) -> EvalReport:
    """Evaluate an ONNX model on ``split`` of a YOLO dataset; writes plots to ``out_dir``.
    ``grey_world``: the detector's colour constancy (:class:`OnnxDetector`)."""
    det = OnnxDetector(Path(model), conf=conf, iou=0.7, max_det=300, grey_world=grey_world)
    results = folder_results(det, data_yaml, split)
    report, curves = evaluate_results(results, det.names, str(data_yaml), str(model))
    save_plots(report, curves, Path(out_dir))
    return report


def print_report(report: EvalReport, emit: Callable[[str], Any] = print) -> None:
    """A plain-text table: overall figures, then one row per class."""
    emit(f"{report.source}: {report.n_images} images, model {report.model}")
    emit(f"  mAP50 {report.map50:.3f}  mAP50-95 {report.map50_95:.3f}  "
         f"P {report.precision:.3f}  R {report.recall:.3f}  "
         f"class right on matched boxes {report.matched_class_accuracy:.3f}")
    emit(f"  {'class':<34}{'n':>6}{'AP50':>8}{'AP50-95':>9}{'P':>7}{'R':>7}")
    for name, m in report.per_class.items():
        emit(f"  {name:<34}{m.n_gt:>6}{m.ap50:>8.3f}{m.ap50_95:>9.3f}"
             f"{m.precision:>7.3f}{m.recall:>7.3f}")
    weak = report.weak_classes()
    if weak:
        emit(f"  weak (AP50 < 0.5): {', '.join(weak)}")
