"""Export trained YOLO weights to ONNX for the line (ONNX Runtime, no torch needed there).

The ONNX graph has one input ``images`` ``(1, 3, H, W)`` float32 RGB in 0-1 and one output
``(1, 4 + nc, A)``: per anchor the box centre/size in input pixels and the class scores.
The model metadata JSON of the weights is copied next to the ONNX file with ``imgsz`` set
to the export size.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from pathlib import Path

from perception.detector.errors import ModelFileError, TrainingError
from perception.detector.metadata import ModelMetadata, load_metadata, save_metadata
from perception.detector.offline import configure_ultralytics_offline


def export_onnx(
    weights: Path, out: Path, imgsz: tuple[int, int] = (480, 640), opset: int | None = None
) -> Path:
    """Export ``weights`` (a ``.pt`` with ``.json`` metadata beside it) to ``out`` (ONNX).

    ``imgsz`` is the network input ``(height, width)`` in px, multiples of 32. Returns
    ``out``. Raises :class:`ModelFileError` for missing weights/metadata and
    :class:`TrainingError` for a bad size or a failed export.
    """
    weights = Path(weights)
    out = Path(out)
    if not weights.is_file():
        raise ModelFileError(f"{weights}: weights file not found")
    if any(s <= 0 or s % 32 for s in imgsz):
        raise TrainingError(f"imgsz {imgsz}: height and width must be positive multiples of 32")
    meta = load_metadata(weights)
    configure_ultralytics_offline()
    from ultralytics import YOLO  # type: ignore[attr-defined]

    from perception.detector.offline import disable_settings_sync

    disable_settings_sync()
    model = YOLO(str(weights))
    simplify = importlib.util.find_spec("onnxslim") is not None
    try:
        written = model.export(
            format="onnx", imgsz=list(imgsz), simplify=simplify, dynamic=False, half=False,
            opset=opset,
        )
    except Exception as exc:  # Ultralytics raises assorted errors; name the weights
        raise TrainingError(f"{weights}: ONNX export failed: {exc}") from exc
    written_path = Path(str(written))
    out.parent.mkdir(parents=True, exist_ok=True)
    if written_path.resolve() != out.resolve():
        shutil.move(str(written_path), out)
    exported = ModelMetadata(
        classes=meta.classes,
        imgsz=(int(imgsz[0]), int(imgsz[1])),
        dataset_fingerprint=meta.dataset_fingerprint,
        training_command=meta.training_command,
        metrics=meta.metrics,
        git_revision=meta.git_revision,
        created=meta.created,
        extra={
            **meta.extra,
            "exported_from": str(weights),
            "exported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "onnx_simplified": simplify,
        },
    )
    save_metadata(out, exported)
    return out
