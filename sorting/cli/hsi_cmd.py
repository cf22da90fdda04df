"""``crmsort hsi library|train|eval`` — spectral library, classifier training and evaluation.

- ``library``: regenerate ``datasets/hsi/library.csv`` from ``features.yaml``;
- ``train``: simulate calibrated training lines (seed, training condition ranges), fit the
  PCA/LDA classifier and the SAM baseline, write ``<out>.npz/.json`` and ``<out>.sam.npz``;
- ``eval``: simulate held-out lines under *other* illumination and noise
  (:data:`perception.hsi.dataset.EVAL_RANGES`), score both models, print the table and
  write a confusion-matrix PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress
from rich.table import Table

from perception.hsi.classifier import HsiClassifier
from perception.hsi.dataset import EVAL_RANGES, TRAIN_RANGES, simulate_lines
from perception.hsi.evaluate import EvalReport, evaluate, label_lut, train_models
from perception.hsi.library import (
    BLACK_MATERIAL,
    FEATURES_FILE,
    LIBRARY_FILE,
    classifier_labels,
    hsi_root,
    label_names,
    load_library,
)
from perception.hsi.sam import load_sam, save_sam
from perception.hsi.synth import LIBRARY_GRID_NM, load_features, synthesize, write_library_csv
from perception.sensors.hsi.bands import band_model
from sorting.cli.output import console

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "datasets" / "models" / "hsi" / "fx17_lda"


def register(sub: Any) -> None:
    p = sub.add_parser("hsi", help="hyperspectral library, classifier training and evaluation")
    hs = p.add_subparsers(dest="hsi_command", metavar="ACTION", required=True)
    lib = hs.add_parser("library", help="regenerate datasets/hsi/library.csv")
    lib.set_defaults(func=_library)
    for name, helptext in (("train", "train the classifier on simulated lines"),
                           ("eval", "evaluate on held-out lines (other noise/illumination)")):
        c = hs.add_parser(name, help=helptext)
        c.add_argument("--seed", type=int, default=1 if name == "train" else 2)
        c.add_argument("--scenes", type=int, default=24, help="scenes of 120 lines each")
        c.add_argument("--camera", default="fx17", help="band model (fx17, swir_1000_2500)")
        c.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                       help="model path without suffix (default: %(default)s)")
        if name == "eval":
            c.add_argument("--png", type=Path, default=Path("hsi_confusion.png"))
            c.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
        c.set_defaults(func=_train if name == "train" else _eval)


def _library(args: argparse.Namespace) -> int:
    root = hsi_root()
    spectra = synthesize(load_features(root / FEATURES_FILE))
    write_library_csv(spectra, LIBRARY_GRID_NM, root / LIBRARY_FILE)
    console().print(f"[green]wrote[/] {root / LIBRARY_FILE}: {len(spectra)} spectra, "
                    f"{LIBRARY_GRID_NM[0]:.0f}-{LIBRARY_GRID_NM[-1]:.0f} nm at 5 nm")
    return 0


def _simulate(args: argparse.Namespace, train: bool) -> Any:
    lib = load_library()
    bands = band_model(args.camera)
    with Progress(console=console(), transient=True) as prog:
        task = prog.add_task("simulating lines", total=args.scenes)
        lines = simulate_lines(lib, bands, args.seed, args.scenes,
                               TRAIN_RANGES if train else EVAL_RANGES,
                               progress=lambda n: prog.update(task, completed=n))
    return lib, bands, lines


def _train(args: argparse.Namespace) -> int:
    lib, bands, lines = _simulate(args, train=True)
    lut = label_lut(classifier_labels(lib))
    black = lib.labels[lib.index(BLACK_MATERIAL)]
    clf, sam = train_models(lines, lut, bands.centres_nm, bands.name, label_names(lib), black,
                            seed=args.seed)
    clf.meta.update({"seed": args.seed, "scenes": args.scenes, "ranges": "TRAIN_RANGES"})
    args.model.parent.mkdir(parents=True, exist_ok=True)
    npz, js = clf.save(args.model)
    save_sam(sam, str(args.model.with_suffix(".sam.npz")))
    console().print(f"[green]trained[/] {len(clf.class_labels)} classes on "
                    f"{clf.meta['rows']} pixels -> {npz}, {js}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    clf = HsiClassifier.load(args.model)
    sam = load_sam(str(args.model.with_suffix(".sam.npz")))
    lib, _bands, lines = _simulate(args, train=False)
    lut = label_lut(classifier_labels(lib))
    black = clf.black_label
    reports = {"pca-lda": evaluate(clf, lines, lut, black), "sam": evaluate(sam, lines, lut, black)}
    names = label_names(lib)
    table = Table(title=f"HSI evaluation: {args.scenes} scenes, seed {args.seed}, EVAL_RANGES")
    table.add_column("figure")
    for k in reports:
        table.add_column(k, justify="right")
    rows = [("pixel accuracy, pure (non-black)", "pixel_acc_pure"),
            ("pixel accuracy, coverage >= 0.5", "pixel_acc_dominant"),
            ("rejected (unknown)", "reject_rate"), ("saturated/dead flagged", "flagged_rate"),
            ("black plastic reported black", "black_reported"), ("belt", "belt_acc"),
            ("object accuracy (vote)", "object_acc")]
    for title, attr in rows:
        table.add_row(title, *(f"{100 * getattr(r, attr):.2f} %" for r in reports.values()))
    table.add_row("objects", *(str(r.objects) for r in reports.values()))
    con = console()
    con.print(table)
    _confusion_png(reports["pca-lda"], reports["sam"], names, args.png)
    con.print(f"confusion matrix -> {args.png}")
    if args.json is not None:
        out = {k: {a: getattr(r, a) for _, a in rows} | {"objects": r.objects,
               "object_errors": [[names.get(t, str(t)), names.get(p, str(p)), s]
                                 for t, p, s in r.object_errors]}
               for k, r in reports.items()}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _confusion_png(ours: EvalReport, sam: EvalReport, names: dict[int, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(20, 9.5))
    for ax, rep, title in ((axes[0], ours, "PCA/LDA classifier"), (axes[1], sam, "SAM baseline")):
        cm = rep.confusion.astype(np.float64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
        ticks = [names.get(v, str(v)) for v in rep.labels]
        ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=7)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (pure pixels)")
        ax.set_title(f"{title}: pure-pixel accuracy {100 * rep.pixel_acc_pure:.2f} %, "
                     f"objects {100 * rep.object_acc:.1f} %", fontsize=10)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center",
                            fontsize=5, color="w" if norm[i, j] < 0.5 else "k")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
