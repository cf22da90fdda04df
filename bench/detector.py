"""Detector benchmark: our ONNX Runtime line detector beside Ultralytics' own predict paths.

Same frames (simulated line camera, 640 x 480), same weights, one process:

- ``ultralytics .pt``: ``YOLO(best.pt).predict`` at imgsz 640 (torch, CPU);
- ``ultralytics .onnx``: ``YOLO(model.onnx).predict`` on the exported 640 x 640 ONNX file;
- ``ultralytics .pt (trained size)``: ``predict`` at the training imgsz (the equal-accuracy
  peer of ``ours trained size``);
- ``ours 640``: :class:`OnnxDetector` on the same ONNX file, frame by frame;
- ``ours 640 pipelined``: pre-processing of frame i+1 on a second thread during inference;
- ``raw session.run 640``: ONNX Runtime alone on a prepared tensor (the floor); the
  pipeline overhead is ``ours / raw - 1``;
- ``ours 480x640 (rect)``: an export whose input fits the 4:3 frame (no padding rows);
- ``ours 480x640 int8``: that model with static INT8 quantization (QDQ, per channel,
  calibrated on frames of the training distribution; the detect head's decoding kept float);
- ``ours trained size``: the export at the training resolution (input-size choice);
- ``ours 480x640 (rect) grey world`` / ``ours 480x640 int8 grey world``: the same with the
  detector's colour constancy (``grey_world=True``) before the letterbox.

Accuracy: mAP50-95 / mAP50 of each of our variants and of the ``.pt`` path (our matcher,
:mod:`perception.detector.evaluate`) on the val images of ``--data``.
Frames per second = frames / wall time (best of ``--repeat``). Ratio = fps / fastest
Ultralytics fps.

Run: ``.venv/bin/python -m bench.detector [--weights best.pt] [--data DIR/data.yaml]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from perception.detector.evaluate import EvalReport, ImageResult, evaluate_results, folder_results
from perception.detector.export import export_onnx
from perception.detector.metadata import load_metadata, save_metadata
from perception.detector.offline import REPO_ROOT, configure_ultralytics_offline
from perception.detector.onnx_detector import OnnxDetector
from sorting.cli.output import console

SHIPPED = REPO_ROOT / "datasets" / "models" / "detector" / "crmsort_yolo11n.onnx"
OUT = REPO_ROOT / "bench" / "out" / "detector"


def line_frames(n: int, seed: int = 7) -> list[np.ndarray]:
    """``n`` frames of the line camera (640 x 480 RGB) with 3-10 catalog objects each."""
    from calibration.camera import PinholeCamera
    from perception.catalog import load_catalog
    from perception.sensors.camera import RgbCameraSim
    from sorting.sim.spawner import ObjectSpawner

    cam = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0)
    rng = np.random.default_rng(seed)
    sim = RgbCameraSim(cam, rng)
    spawner = ObjectSpawner(load_catalog(), rng)
    frames = []
    for _ in range(n):
        k = int(rng.integers(3, 11))
        objs = [spawner.spawn(i, 1.2 + rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3))
                for i in range(k)]
        frames.append(sim.render(objs, belt_position_m=float(rng.uniform(0, 5)),
                                 belt_speed_mps=0.5))
    return frames


def _fps(fn: Callable[[], None], n: int, repeat: int) -> float:
    fn()  # warm-up (allocations, ORT arena, torch fusions)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def quantize_int8(model: Path, out: Path, calib: list[np.ndarray]) -> Path:
    """Static INT8 (QDQ) copy of ``model``, calibrated on ``calib`` frames; head kept float."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    det = OnnxDetector(model)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter([{det.input_name: det.preprocess(f)[0].copy()} for f in calib])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    graph = onnx.load(str(model)).graph
    # the last block decodes boxes (DFL, anchors, strides) and class sigmoids: INT8 there
    # costs accuracy for little time, so it stays float
    head = [n.name for n in graph.node if n.name.startswith("/model.23/") and n.op_type != "Conv"]
    quantize_static(
        str(model), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head,
    )
    save_metadata(out, load_metadata(model))
    return out


def _ultra_results(model: Any, data: Path, imgsz: int) -> list[ImageResult]:
    import cv2

    from perception.detector.evaluate import read_yolo_labels
    from perception.detector.train import read_data_yaml

    root, _ = read_data_yaml(data)
    out = []
    for p in sorted((root / "images" / "val").glob("*.jpg")):
        bgr = cv2.imread(str(p))
        if bgr is None:
            raise FileNotFoundError(p)
        (r,) = model.predict(bgr, imgsz=imgsz, conf=0.001, iou=0.7, verbose=False)
        h, w = bgr.shape[:2]
        gb, gc = read_yolo_labels(root / "labels" / "val" / f"{p.stem}.txt", w, h)
        out.append(ImageResult(gb, gc, r.boxes.xyxy.cpu().numpy().astype(np.float64),
                               r.boxes.conf.cpu().numpy().astype(np.float64),
                               r.boxes.cls.cpu().numpy().astype(np.int64)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detector")
    ap.add_argument("--weights", default=None,
                    help="best.pt (default: the one the shipped ONNX was exported from)")
    ap.add_argument("--data", default=None, help="labelled set for accuracy (val split)")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    con = console()
    meta = load_metadata(SHIPPED)
    weights = Path(args.weights or meta.extra.get("exported_from", ""))
    if not weights.is_file():
        con.print(f"[red]weights {weights} not found: pass --weights best.pt[/]")
        return 2
    trained = load_metadata(weights).imgsz[1]
    OUT.mkdir(parents=True, exist_ok=True)
    con.print("exporting variants ...")
    sq = export_onnx(weights, OUT / "sq640.onnx", imgsz=(640, 640))
    rect = export_onnx(weights, OUT / "rect480x640.onnx", imgsz=(480, 640))
    small_hw = (round(trained * 0.75 / 32) * 32, trained)
    small = export_onnx(weights, OUT / f"rect{small_hw[0]}x{small_hw[1]}.onnx", imgsz=small_hw)
    frames = line_frames(args.frames)
    int8 = quantize_int8(rect, OUT / "rect480x640_int8.onnx", frames[: min(16, len(frames))])

    configure_ultralytics_offline()
    from ultralytics import YOLO  # type: ignore[attr-defined]

    n = len(frames)
    bgr = [f[..., ::-1].copy() for f in frames]
    rows: list[tuple[str, float, str]] = []
    accuracy: dict[str, EvalReport] = {}
    data = Path(args.data) if args.data else None

    u_pt = YOLO(str(weights))
    u_onnx = YOLO(str(sq), task="detect")

    def run_pt() -> None:
        for b in bgr:
            u_pt.predict(b, imgsz=640, verbose=False)

    def run_uo() -> None:
        for b in bgr:
            u_onnx.predict(b, imgsz=640, verbose=False)

    def run_pt_small() -> None:
        for b in bgr:
            u_pt.predict(b, imgsz=trained, verbose=False)

    fps_pt = _fps(run_pt, n, args.repeat)
    fps_uo = _fps(run_uo, n, args.repeat)
    fps_pt_small = _fps(run_pt_small, n, args.repeat)
    rows += [("ultralytics .pt (640, rect)", fps_pt, "pt"), ("ultralytics .onnx 640", fps_uo, ""),
             (f"ultralytics .pt ({trained}, rect)", fps_pt_small, "pt_small")]

    variants = {"640": (sq, False), "480x640 (rect)": (rect, False),
                "480x640 int8": (int8, False),
                f"{small_hw[0]}x{small_hw[1]} (trained size)": (small, False),
                "480x640 (rect) grey world": (rect, True),
                "480x640 int8 grey world": (int8, True)}
    for name, (path, grey) in variants.items():
        det = OnnxDetector(path, grey_world=grey)

        def run_seq(d: OnnxDetector = det) -> None:
            for f in frames:
                d.detect(f)

        def run_pipe(d: OnnxDetector = det) -> None:
            for _ in d.detect_stream(iter(frames)):
                pass

        fps_seq = _fps(run_seq, n, args.repeat)
        fps_pipe = _fps(run_pipe, n, args.repeat)
        rows.append((f"ours {name}", fps_seq, name))
        rows.append((f"ours {name} pipelined", fps_pipe, name))
        if name == "640":
            tensor, _ = det.preprocess(frames[0])

            def run_raw(d: OnnxDetector = det, t: np.ndarray = tensor) -> None:
                for _ in range(n):
                    d.infer(t)

            fps_raw = _fps(run_raw, n, args.repeat)
            rows.append(("raw session.run 640", fps_raw, ""))
        if data is not None:
            res = folder_results(OnnxDetector(path, conf=0.001, grey_world=grey), data)
            accuracy[name] = evaluate_results(res, det.names, str(data), str(path))[0]
    if data is not None:
        accuracy["pt"] = evaluate_results(_ultra_results(u_pt, data, 640), meta.classes,
                                          str(data), str(weights))[0]
        accuracy["pt_small"] = evaluate_results(_ultra_results(u_pt, data, trained),
                                                meta.classes, str(data), str(weights))[0]

    best_ultra = max(fps_pt, fps_uo)  # the fastest Ultralytics path at 640 px
    table = Table(title=f"detector, {n} frames 640x480, {platform.processor() or 'cpu'}")
    for col in ("path", "frames/s", "ms/frame", "x fastest ultralytics", "mAP50-95", "mAP50"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, fps, key in rows:
        acc = accuracy.get(key)
        table.add_row(name, f"{fps:.1f}", f"{1000 / fps:.1f}", f"{fps / best_ultra:.2f}",
                      f"{acc.map50_95:.3f}" if acc else "", f"{acc.map50:.3f}" if acc else "")
    con.print(table)
    raw = next(f for nm, f, _ in rows if nm.startswith("raw"))
    ours = next(f for nm, f, _ in rows if nm == "ours 640")
    ours_p = next(f for nm, f, _ in rows if nm == "ours 640 pipelined")
    con.print(f"pipeline overhead over raw session.run at 640: sequential "
              f"{100 * (raw / ours - 1):.1f} %, pipelined {100 * (raw / ours_p - 1):.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
