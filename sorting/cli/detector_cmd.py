"""``crmsort train | export | eval`` — train, export and evaluate the object detector.

Examples::

    crmsort train --data runs/detector/data/synth/data.yaml --model yolo11n.yaml \
        --epochs 12 --imgsz 320
    crmsort export --weights runs/detector/train/yolo11n/weights/best.pt --imgsz 480 640 \
        --out datasets/models/detector/crmsort_yolo11n.onnx
    crmsort eval --model datasets/models/detector/crmsort_yolo11n.onnx --data DIR/data.yaml
    crmsort eval --model datasets/models/detector/crmsort_yolo11n.onnx --bag BAG
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from sorting.cli.output import console


def register(sub: Any) -> None:
    t = sub.add_parser("train", help="train the YOLO detector offline from a model YAML")
    t.add_argument("--data", required=True, help="dataset data.yaml (crmsort dataset synth)")
    t.add_argument("--model", default="yolo11n.yaml", help="model YAML (default: %(default)s)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--imgsz", type=int, default=320, help="training image size, px")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--device", default="cpu", help="cpu, or a CUDA device index such as 0")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--project", default="runs/detector/train", help="runs folder")
    t.add_argument("--name", default="yolo11n", help="run name (folder under --project)")
    t.add_argument("--close-mosaic", type=int, default=3, help="last epochs without mosaic")
    t.add_argument("--warmup-epochs", type=float, default=3.0,
                   help="learning-rate warm-up (0 when fine-tuning from a .pt)")
    t.add_argument("--hours", type=float, default=None,
                   help="train for this wall time instead of --epochs (schedule fitted to it)")
    t.add_argument("--cache", action="store_true",
                   help="keep decoded images in RAM (faster epochs on CPU)")
    t.add_argument("--final-val-only", action="store_true",
                   help="validate after the last epoch only (best.pt is then the last epoch)")
    t.set_defaults(func=_train)

    e = sub.add_parser("export", help="export trained weights to ONNX (with metadata JSON)")
    e.add_argument("--weights", required=True, help="best.pt of a training run")
    e.add_argument("--imgsz", type=int, nargs="+", default=[480, 640],
                   help="network input: one size (square) or H W (default: %(default)s)")
    e.add_argument("--out", required=True, help="ONNX file to write")
    e.set_defaults(func=_export)

    v = sub.add_parser("eval", help="evaluate a detector on a dataset or a simulated bag")
    v.add_argument("--model", required=True, help="ONNX model (metadata JSON next to it)")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="YOLO data.yaml; evaluates its val split")
    src.add_argument("--bag", help="bag recorded from the simulated line (crmsort record)")
    v.add_argument("--out", default=None, help="report folder (default: runs/detector/eval/..)")
    v.add_argument("--conf", type=float, default=0.001, help="score threshold for mAP")
    v.add_argument("--camera-topic", default="/line1/camera/image_raw")
    v.add_argument("--grey-world", action="store_true",
                   help="colour constancy before the network (as the line's detector node "
                   "does with grey_world: true)")
    v.add_argument("--confusion-out", default=None, metavar="FILE",
                   help="also write the measured class confusion (JSON) that the tracker's "
                   "class posterior reads, e.g. datasets/models/detector/"
                   "crmsort_yolo11n.confusion.json")
    v.add_argument("--confusion-merge", nargs="+", default=[], metavar="FILE",
                   help="confusion files of other evaluations of this model whose counts are "
                   "added to this one's (more boxes per class)")
    v.set_defaults(func=_eval)


def _train(args: argparse.Namespace) -> int:
    from perception.detector.train import TrainConfig, train_detector
    from sorting.errors import ConfigError

    extra: dict[str, object] = {"warmup_epochs": args.warmup_epochs}
    if args.hours is not None:
        if not args.hours > 0:
            raise ConfigError(f"--hours must be > 0, got {args.hours}")
        extra["time"] = args.hours
    if args.cache:
        extra["cache"] = "ram"
    if args.final_val_only:
        extra["val"] = False
    cfg = TrainConfig(
        data=Path(args.data), model=args.model, epochs=args.epochs, imgsz=args.imgsz,
        batch=args.batch, workers=args.workers, device=args.device, seed=args.seed,
        project=Path(args.project), name=args.name, close_mosaic=args.close_mosaic,
        extra=extra,
    )
    argv = ["--data", args.data, "--model", args.model, "--epochs", str(args.epochs),
            "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--workers", str(args.workers),
            "--device", str(args.device), "--seed", str(args.seed),
            "--close-mosaic", str(args.close_mosaic), "--warmup-epochs", str(args.warmup_epochs)]
    if args.hours is not None:
        argv += ["--hours", str(args.hours)]
    if args.cache:
        argv += ["--cache"]
    if args.final_val_only:
        argv += ["--final-val-only"]
    command = "crmsort train " + shlex.join(argv)
    res = train_detector(cfg, command=command)
    con = console()
    con.print(f"[bold green]trained[/] {res.weights} (metadata {res.metadata})")
    for k, val in res.metrics.items():
        con.print(f"  {k:<10} {val:.3f}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from perception.detector.export import export_onnx

    size = args.imgsz
    hw = (size[0], size[0]) if len(size) == 1 else (size[0], size[1])
    out = export_onnx(Path(args.weights), Path(args.out), imgsz=hw)
    mb = out.stat().st_size / 1e6
    console().print(f"[bold green]exported[/] {out} ({mb:.1f} MB, input {hw[0]}x{hw[1]})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    con = console()
    model = Path(args.model)
    if args.data:
        from perception.detector.evaluate import evaluate_folder, print_report

        out = Path(args.out) if args.out else Path("runs/detector/eval") / model.stem
        report = evaluate_folder(model, Path(args.data), out, conf=args.conf,
                                 grey_world=args.grey_world)
        print_report(report, con.print)
        con.print(f"plots and report.json in {out}")
        _save_confusion(args, report, str(args.data))
        return 0
    from sorting.dataset.eval_bag import evaluate_bag

    out = Path(args.out) if args.out else Path("runs/detector/eval") / f"{model.stem}_bag"
    report = evaluate_bag(model, Path(args.bag), out, camera_topic=args.camera_topic,
                          conf=args.conf, grey_world=args.grey_world)
    from perception.detector.evaluate import print_report

    print_report(report, con.print)
    con.print(f"plots and report.json in {out}")
    _save_confusion(args, report, str(args.bag))
    return 0


def _save_confusion(args: argparse.Namespace, report: Any, source: str) -> None:
    if not args.confusion_out:
        return
    from perception.detector.confusion import load_confusion, save_confusion

    merge = tuple(load_confusion(Path(f)) for f in args.confusion_merge)
    conf = save_confusion(Path(args.confusion_out), list(report.names), report.confusion,
                          model=str(args.model), source=source,
                          command="crmsort " + " ".join(sys.argv[1:]), merge=merge)
    console().print(f"class confusion of {int(conf.counts.sum())} matched boxes "
                    f"(accuracy {conf.accuracy:.3f}) in {args.confusion_out}")
