"""The line detector: a YOLO11 ONNX model run with ONNX Runtime (no torch).

Pipeline per RGB frame (H x W x 3 uint8):

0. optionally (``grey_world``) colour constancy: each channel scaled so that the frame's
   mean colour is neutral grey (the grey-world assumption; on the default grey belt under
   white-balanced light it changes almost nothing, under a coloured belt or tinted light it
   undoes the cast the model was not trained on);
1. letterbox to the network input ``(h_in, w_in)``: scale ``r = min(h_in/H, w_in/W)``,
   resize (bilinear) to ``round(W r) x round(H r)``, pad with grey 114 centred (the
   Ultralytics convention, so boxes agree with its own predictions), scale to 0-1, CHW;
2. ``session.run`` -> ``(4 + nc, A)``: per anchor centre x/y, width, height (input px) and
   the class scores;
3. decode: best class per anchor, keep scores ``> conf``, boxes to corners;
4. class-wise non-maximum suppression (IoU ``> iou`` suppressed, within a class only);
5. boxes back to frame pixels: ``(xy - pad) / r``, clipped to the frame.

Belt coordinates come from the camera model: the ray through the box centre meets the
plane ``z = z_m`` of the belt frame (:func:`calibration.camera.ray_plane_z`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from calibration.camera import PinholeCamera, ray_plane_z
from perception.detector.classes import check_class_names
from perception.detector.errors import FrameError, ModelFileError
from perception.detector.metadata import ModelMetadata, load_metadata, metadata_path

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
U8 = NDArray[np.uint8]

PAD_VALUE = 114
MAX_NMS = 30000
_CLASS_OFFSET_PX = 7680.0


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the network input: scale ``ratio`` and padding (px)."""

    ratio: float
    pad_x: int
    pad_y: int
    frame_hw: tuple[int, int]


@dataclass(frozen=True)
class Detections:
    """Detections of one frame: ``boxes_xyxy`` N x 4 (frame px, edges), ``scores`` N,
    ``class_ids`` N (catalog ids), ``names`` the model's class list (id -> name)."""

    boxes_xyxy: F32
    scores: F32
    class_ids: I64
    names: Sequence[str]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def class_names(self) -> list[str]:
        return [self.names[int(c)] for c in self.class_ids]

    @property
    def centres_px(self) -> F64:
        """Box centres ``(u, v)`` in frame pixels, N x 2."""
        b = self.boxes_xyxy.astype(np.float64)
        return np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2])


def validate_frame(image: NDArray[np.generic]) -> U8:
    """Return ``image`` as an H x W x 3 uint8 array or raise :class:`FrameError`."""
    if not isinstance(image, np.ndarray):
        raise FrameError(f"frame: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise FrameError(f"frame: expected dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise FrameError(f"frame: expected H x W x 3 (RGB), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FrameError(f"frame: empty image of shape {image.shape}")
    return np.asarray(image, dtype=np.uint8)


def grey_world(image: U8) -> U8:
    """``image`` (H x W x 3 uint8) with each channel scaled so that the mean colour is
    neutral (channel means all equal to their average), clipped to 0-255. A channel with a
    zero mean is left as it is."""
    means = np.asarray(cv2.mean(image)[:3], dtype=np.float64)
    target = float(means.mean())
    gains = np.where(means > 0, target / np.maximum(means, 1e-9), 1.0)
    if np.allclose(gains, 1.0, atol=1e-3):
        return image
    lut = np.clip(np.arange(256, dtype=np.float64)[:, None] * gains[None, :] + 0.5, 0, 255)
    return np.asarray(cv2.LUT(np.ascontiguousarray(image),
                              lut.astype(np.uint8).reshape(256, 1, 3)), dtype=np.uint8)


def nms_classwise(boxes: F32, scores: F32, class_ids: I64, iou: float) -> I64:
    """Indices kept by greedy class-wise NMS, by descending score.

    Boxes of different classes are moved apart by ``class_id * 7680`` px so one pass
    suppresses within classes only; each step compares the best remaining box with all
    others at once (vectorised IoU).
    """
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    off = boxes + (class_ids.astype(np.float32) * np.float32(_CLASS_OFFSET_PX))[:, None]
    x1, y1, x2, y2 = off[:, 0], off[:, 1], off[:, 2], off[:, 3]
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        ih = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        ious = inter / (area[i] + area[rest] - inter + 1e-9)
        order = rest[ious <= iou]
    return np.asarray(keep, dtype=np.int64)


def _onnx_metadata(session: ort.InferenceSession, path: Path) -> ModelMetadata:
    # fallback for ONNX files exported by Ultralytics directly: it stores names and imgsz
    props = session.get_modelmeta().custom_metadata_map
    try:
        names_raw = ast.literal_eval(props["names"])
        imgsz = ast.literal_eval(props["imgsz"])
        names = [str(names_raw[k]) for k in sorted(names_raw)]
        return ModelMetadata(classes=names, imgsz=(int(imgsz[0]), int(imgsz[1])))
    except (KeyError, ValueError, SyntaxError, TypeError, IndexError) as exc:
        raise ModelFileError(
            f"{metadata_path(path)}: metadata JSON missing and {path} carries no usable "
            f"'names'/'imgsz' metadata ({exc})"
        ) from exc


class OnnxDetector:
    """Runs an exported YOLO11 ONNX model on RGB frames (see the module docstring).

    ``conf``: score threshold (0-1); ``iou``: NMS IoU threshold; ``agnostic``: NMS across
    classes (one box per object, as a sorting line wants; class-wise by default, as
    Ultralytics' own evaluation does); ``max_det``: most boxes kept per frame; ``threads``:
    ONNX Runtime intra-op threads (default: its own choice). Metadata comes from the JSON
    next to the model (or, failing that, Ultralytics' ONNX metadata). Raises
    :class:`ModelFileError` for a missing or unloadable model or one whose output does not
    fit its class list, and :class:`ClassMismatchError` if ``check_classes`` and the classes
    differ from the catalog's. ``grey_world``: colour constancy before the letterbox (step 0
    of the module docstring); off by default, so the output equals Ultralytics' own."""

    def __init__(
        self,
        model_path: Path,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        agnostic: bool = False,
        max_det: int = 300,
        threads: int | None = None,
        check_classes: bool = True,
        grey_world: bool = False,
    ) -> None:
        path = Path(model_path)
        self.grey_world = grey_world
        if not path.is_file():
            raise ModelFileError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelFileError(f"{path}: not a loadable ONNX model ({exc})") from exc
        self.path = path
        self.metadata = (
            load_metadata(path) if metadata_path(path).is_file()
            else _onnx_metadata(self.session, path)
        )
        if check_classes:
            check_class_names(self.metadata.classes, str(metadata_path(path)))
        self.names: list[str] = list(self.metadata.classes)
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not all(isinstance(s, int) for s in shape[2:]):
            raise ModelFileError(f"{path}: expected a static 1x3xHxW input, got {shape}")
        self.input_name: str = inp.name
        self.input_hw: tuple[int, int] = (int(shape[2]), int(shape[3]))
        out_shape = self.session.get_outputs()[0].shape
        if len(out_shape) != 3 or out_shape[1] != 4 + len(self.names):
            raise ModelFileError(
                f"{path}: output shape {out_shape} does not fit {len(self.names)} classes "
                f"(expected (1, {4 + len(self.names)}, anchors))"
            )
        self.conf = conf
        self.iou = iou
        self.agnostic = agnostic
        self.max_det = max_det

    # -- the three stages -----------------------------------------------------------------
    def preprocess(self, image: U8, out: F32 | None = None) -> tuple[F32, Letterbox]:
        """Letterboxed network input ``(1, 3, h_in, w_in)`` float32 and its geometry."""
        img = validate_frame(image)
        if self.grey_world:
            img = grey_world(img)
        h, w = img.shape[:2]
        hi, wi = self.input_hw
        r = min(hi / h, wi / w)
        nw, nh = max(round(w * r), 1), max(round(h * r), 1)
        if (nw, nh) != (w, h):
            img = np.asarray(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR),
                             dtype=np.uint8)
        left = round((wi - nw) / 2 - 0.1)
        top = round((hi - nh) / 2 - 0.1)
        buf = out if out is not None else np.empty((1, 3, hi, wi), dtype=np.float32)
        if nw != wi or nh != hi:
            buf.fill(np.float32(PAD_VALUE / 255.0))
        np.multiply(
            img.transpose(2, 0, 1), np.float32(1 / 255.0),
            out=buf[0, :, top : top + nh, left : left + nw], casting="unsafe",
        )
        return buf, Letterbox(ratio=r, pad_x=left, pad_y=top, frame_hw=(h, w))

    def infer(self, tensor: F32) -> F32:
        """Raw network output for one input tensor, ``(4 + nc, anchors)``."""
        out = self.session.run(None, {self.input_name: tensor})[0]
        return np.asarray(out[0], dtype=np.float32)

    def postprocess(self, raw: F32, lb: Letterbox) -> Detections:
        """Decode, class-wise NMS and map back to frame pixels (see the module docstring)."""
        scores_all = raw[4:]
        cls = np.argmax(scores_all, axis=0)
        score = scores_all[cls, np.arange(scores_all.shape[1])]
        sel = np.flatnonzero(score > self.conf)
        if sel.size > MAX_NMS:
            sel = sel[np.argsort(-score[sel])[:MAX_NMS]]
        xywh = raw[:4, sel].T
        boxes = np.empty_like(xywh)
        boxes[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
        boxes[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
        sc = score[sel].astype(np.float32)
        cid = cls[sel].astype(np.int64)
        groups = np.zeros_like(cid) if self.agnostic else cid
        keep = nms_classwise(boxes, sc, groups, self.iou)[: self.max_det]
        boxes, sc, cid = boxes[keep], sc[keep], cid[keep]
        boxes[:, [0, 2]] -= lb.pad_x
        boxes[:, [1, 3]] -= lb.pad_y
        boxes /= np.float32(lb.ratio)
        h, w = lb.frame_hw
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return Detections(boxes_xyxy=boxes.astype(np.float32), scores=sc, class_ids=cid,
                          names=self.names)

    # -- public entry points -----------------------------------------------------------
    def detect(self, image: U8) -> Detections:
        """Detections in one RGB frame (H x W x 3 uint8). Raises :class:`FrameError`."""
        tensor, lb = self.preprocess(image)
        return self.postprocess(self.infer(tensor), lb)

    def detect_stream(self, frames: Iterable[U8]) -> Iterator[Detections]:
        """Detections of each frame in order, pre-processing frame ``i + 1`` on a second
        thread while the network runs on frame ``i`` (ONNX Runtime releases the GIL)."""
        it = iter(frames)
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = next(it, None)
            if first is None:
                return
            pending: Future[tuple[F32, Letterbox]] = pool.submit(self.preprocess, first)
            while True:
                tensor, lb = pending.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending = pool.submit(self.preprocess, nxt)
                raw = self.infer(tensor)
                yield self.postprocess(raw, lb)
                if nxt is None:
                    return


def belt_points(dets: Detections, camera: PinholeCamera, z_m: float = 0.0) -> F64:
    """Belt-frame points (N x 3, m) where the rays through the box centres meet ``z = z_m``.

    ``camera`` must be the camera that took the frame (intrinsics in frame pixels; pixel
    centres at integer coordinates, so the centre of box edges ``x0..x1`` is
    ``(x0 + x1) / 2 - 0.5``). Rows are NaN where a ray misses the plane.
    """
    if len(dets) == 0:
        return np.zeros((0, 3))
    uv = dets.centres_px - 0.5
    return ray_plane_z(camera.pixel_rays(uv), z_m)
