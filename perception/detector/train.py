"""Train a YOLO detector offline with Ultralytics, from a model YAML, and record its metadata.

``train_detector`` builds the network from a model YAML (``yolo11n.yaml``: no pretrained
weights, nothing downloaded), trains on a YOLO dataset, and writes next to the best weights
``best.json`` (:mod:`perception.detector.metadata`): class list, dataset fingerprint,
training command, final validation metrics, git revision. The class list of the dataset
must equal the catalog's. Ultralytics shows its own progress bars; the run folder
``project/name`` holds ``results.csv`` (per-epoch losses and metrics) and ``weights/``.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from perception.detector.classes import check_class_names
from perception.detector.errors import TrainingError
from perception.detector.metadata import (
    ModelMetadata,
    dataset_fingerprint,
    git_revision,
    save_metadata,
)
from perception.detector.offline import REPO_ROOT, configure_ultralytics_offline

METRIC_KEYS = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``extra`` is passed to ``YOLO.train`` unchanged (e.g. ``mosaic``).

    ``imgsz`` in px (square training size), ``batch`` images per step, ``workers``
    data-loader processes, ``device`` as Ultralytics spells it (``cpu``, ``0``).
    """

    data: Path
    model: str = "yolo11n.yaml"
    epochs: int = 30
    imgsz: int = 320
    batch: int = 16
    workers: int = 2
    device: str = "cpu"
    seed: int = 0
    project: Path = REPO_ROOT / "runs" / "detector" / "train"
    name: str = "yolo11n"
    close_mosaic: int = 3
    patience: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """Where the run went: ``run_dir``, ``weights`` (best.pt), ``metadata`` (best.json)."""

    run_dir: Path
    weights: Path
    metadata: Path
    metrics: dict[str, float]


def read_data_yaml(data: Path) -> tuple[Path, list[str]]:
    """Dataset root and class names from a YOLO ``data.yaml``.

    The root is the YAML's ``path`` (relative to the YAML's folder) or the YAML's folder.
    Raises :class:`TrainingError` for a missing/invalid file or missing ``names``.
    """
    data = Path(data)
    try:
        doc = yaml.safe_load(data.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingError(f"{data}: cannot read dataset YAML ({exc})") from exc
    if not isinstance(doc, dict) or "names" not in doc:
        raise TrainingError(f"{data}: dataset YAML needs a 'names' mapping")
    names_raw = doc["names"]
    if isinstance(names_raw, dict):
        names = [str(names_raw[k]) for k in sorted(names_raw, key=int)]
    elif isinstance(names_raw, list):
        names = [str(n) for n in names_raw]
    else:
        raise TrainingError(f"{data}: 'names' must be a list or an id -> name mapping")
    root = data.parent.resolve()
    if doc.get("path"):
        root = (data.parent / str(doc["path"])).resolve()
    return root, names


def _metrics(raw: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, name in METRIC_KEYS.items():
        if raw and key in raw:
            out[name] = float(raw[key])
    return out


def train_detector(config: TrainConfig, command: str | None = None) -> TrainResult:
    """Train (see the module docstring); ``command`` is recorded (default: this process's argv).

    Raises :class:`TrainingError` for a bad dataset YAML or a run without weights, and
    :class:`ClassMismatchError` if the dataset's classes differ from the catalog's.
    """
    data = Path(config.data).resolve()
    _root, names = read_data_yaml(data)
    check_class_names(names, str(data))
    if not config.model.endswith((".yaml", ".yml")) and not Path(config.model).is_file():
        raise TrainingError(
            f"model {config.model!r}: give a model YAML (e.g. yolo11n.yaml) or a local .pt file; "
            "named .pt weights would be downloaded"
        )
    # Ultralytics' progress bars and per-epoch lines are the training progress display
    os.environ.setdefault("YOLO_VERBOSE", "True")
    configure_ultralytics_offline()
    from ultralytics import YOLO  # type: ignore[attr-defined]

    from perception.detector.offline import disable_settings_sync

    disable_settings_sync()
    model = YOLO(config.model)
    model.train(
        data=str(data),
        epochs=config.epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        workers=config.workers,
        device=config.device,
        seed=config.seed,
        deterministic=True,
        project=str(Path(config.project).resolve()),
        name=config.name,
        exist_ok=True,
        plots=False,
        amp=False,
        close_mosaic=config.close_mosaic,
        patience=config.patience,
        # a .pt starts from its weights (fine-tuning); a YAML from scratch
        pretrained=not config.model.endswith((".yaml", ".yml")),
        verbose=True,
        **config.extra,
    )
    trainer = model.trainer
    if trainer is None:
        raise TrainingError("Ultralytics returned no trainer")
    run_dir = Path(trainer.save_dir)
    weights = Path(trainer.best)
    if not weights.is_file():
        weights = Path(trainer.last)
    if not weights.is_file():
        raise TrainingError(f"{run_dir}: training wrote no weights")
    metrics = _metrics(getattr(trainer, "metrics", None)) or results_csv_metrics(run_dir)
    cmd = command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    meta_path = write_run_metadata(config, weights, run_dir, metrics, cmd)
    return TrainResult(run_dir=run_dir, weights=weights, metadata=meta_path, metrics=metrics)


def results_csv_metrics(run_dir: Path) -> dict[str, float]:
    """Validation metrics of the last epoch in ``run_dir/results.csv`` ({} if none)."""
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        return {}
    rows = [r.split(",") for r in path.read_text().splitlines() if r.strip()]
    if len(rows) < 2:
        return {}
    header = [h.strip() for h in rows[0]]
    return _metrics(dict(zip(header, (float(v) for v in rows[-1]), strict=False)))


def write_run_metadata(
    config: TrainConfig, weights: Path, run_dir: Path, metrics: dict[str, float], command: str
) -> Path:
    """Write the metadata JSON next to ``weights`` of a run (also usable for a run that was
    stopped early: pass its ``last.pt`` or ``best.pt``). Returns the JSON path."""
    data = Path(config.data).resolve()
    root, names = read_data_yaml(data)
    meta = ModelMetadata(
        classes=names,
        imgsz=(config.imgsz, config.imgsz),
        dataset_fingerprint=dataset_fingerprint(root),
        training_command=command,
        metrics=metrics,
        git_revision=git_revision(REPO_ROOT),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        extra={
            "model_yaml": config.model,
            "epochs": config.epochs,
            "imgsz": config.imgsz,
            "batch": config.batch,
            "seed": config.seed,
            "dataset": str(data),
            "run_dir": str(run_dir),
        },
    )
    return save_metadata(weights, meta)
