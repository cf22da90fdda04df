"""Model metadata: the JSON file that travels next to every trained or exported model.

For ``model.pt`` or ``model.onnx`` the metadata is ``model.json`` in the same folder::

    {"format": "crmsort-detector/1", "classes": [...], "imgsz": [h, w],
     "dataset_fingerprint": "sha256:...", "training_command": "...", "metrics": {...},
     "git_revision": "...", "created": "...", ...}

The dataset fingerprint is a SHA-256 over the sorted relative paths of a YOLO dataset's
images and the bytes of its label files, so two runs on the same data share it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perception.detector.errors import ModelFileError

FORMAT = "crmsort-detector/1"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class ModelMetadata:
    """What a model file carries beside its weights (see the module docstring).

    ``imgsz``: network input ``(height, width)`` in px; ``metrics``: name -> value (mAP50,
    mAP50-95, precision, recall, ...); ``extra`` free-form (epochs, source weights ...).
    """

    classes: list[str]
    imgsz: tuple[int, int]
    dataset_fingerprint: str = ""
    training_command: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    git_revision: str = "unknown"
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"format": FORMAT, **asdict(self)}
        data["imgsz"] = list(self.imgsz)
        return json.dumps(data, indent=1)


def metadata_path(model_path: Path) -> Path:
    """``foo/model.json`` for ``foo/model.onnx`` or ``foo/model.pt``."""
    return Path(model_path).with_suffix(".json")


def save_metadata(model_path: Path, meta: ModelMetadata) -> Path:
    """Write ``meta`` next to ``model_path``; returns the JSON path."""
    path = metadata_path(model_path)
    path.write_text(meta.to_json())
    return path


def load_metadata(model_path: Path) -> ModelMetadata:
    """Read the metadata JSON next to ``model_path``.

    Raises :class:`ModelFileError` if it is missing, not JSON, of another format, or lacks
    ``classes``/``imgsz``.
    """
    path = metadata_path(model_path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model metadata missing (expected next to {model_path})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{path}: 'format' must be {FORMAT!r}")
    try:
        classes = [str(c) for c in data["classes"]]
        h, w = (int(v) for v in data["imgsz"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: needs 'classes' (list) and 'imgsz' ([h, w]): {exc}") \
            from exc
    return ModelMetadata(
        classes=classes,
        imgsz=(h, w),
        dataset_fingerprint=str(data.get("dataset_fingerprint", "")),
        training_command=str(data.get("training_command", "")),
        metrics={str(k): float(v) for k, v in dict(data.get("metrics", {})).items()},
        git_revision=str(data.get("git_revision", "unknown")),
        created=str(data.get("created", "")),
        extra=dict(data.get("extra", {})),
    )


def dataset_fingerprint(root: Path) -> str:
    """SHA-256 of a YOLO dataset folder: sorted relative image paths + label file bytes.

    ``root`` holds ``images/`` and ``labels/``; returns ``"sha256:<hex>"``. Raises
    :class:`ModelFileError` if ``root/images`` does not exist.
    """
    root = Path(root)
    if not (root / "images").is_dir():
        raise ModelFileError(f"{root}: no images/ folder (not a YOLO dataset root)")
    h = hashlib.sha256()
    for p in sorted((root / "images").rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            h.update(p.relative_to(root).as_posix().encode() + b"\n")
    for p in sorted((root / "labels").rglob("*.txt")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return "sha256:" + h.hexdigest()


def git_revision(repo: Path) -> str:
    """``git describe --always --dirty`` of ``repo``, or ``"unknown"`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"
