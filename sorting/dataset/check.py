"""Check a YOLO detection dataset: every label line, every image/label pair.

A problem is a :class:`LabelIssue` ``file:line: reason`` (line 0 for whole-file problems).
Checked: ``data.yaml`` has ``names`` equal to the catalog's detector classes; each label line
has 5 fields ``cls cx cy w h``; ``cls`` an integer in ``0..nc-1``; coordinates finite numbers
in ``[0, 1]``; ``w``, ``h`` > 0; the box lies inside the image (``cx +- w/2`` and
``cy +- h/2`` within ``[0, 1]``, 1e-6 slack for the 6-decimal rounding); no duplicate lines;
every label file has an image and every image a label file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from perception.detector.classes import detector_class_names
from perception.detector.metadata import IMAGE_SUFFIXES
from perception.detector.train import read_data_yaml

EDGE_SLACK = 1e-6


@dataclass(frozen=True)
class LabelIssue:
    """One problem: ``path``, 1-based ``line`` (0: the whole file) and ``reason``."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def check_label_line(text: str, nc: int) -> str | None:
    """The reason a label line is bad, or ``None`` if it is a valid ``cls cx cy w h`` box."""
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields 'cls cx cy w h', got {len(fields)}"
    try:
        cls = int(fields[0])
    except ValueError:
        return f"class id {fields[0]!r} is not an integer"
    if not 0 <= cls < nc:
        return f"class id {cls} out of range 0..{nc - 1}"
    try:
        cx, cy, w, h = (float(f) for f in fields[1:])
    except ValueError:
        return f"coordinates must be numbers, got {' '.join(fields[1:])!r}"
    if not all(math.isfinite(v) for v in (cx, cy, w, h)):
        return "coordinates must be finite"
    if w <= 0 or h <= 0:
        return f"box width/height must be > 0, got {w} x {h}"
    if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
        return "coordinates must be normalised to [0, 1]"
    lo = min(cx - w / 2, cy - h / 2)
    hi = max(cx + w / 2, cy + h / 2)
    if lo < -EDGE_SLACK or hi > 1 + EDGE_SLACK:
        return f"box extends outside the image (edges {lo:.6f} .. {hi:.6f})"
    return None


def check_dataset(data_yaml: Path) -> list[LabelIssue]:
    """All problems of the dataset described by ``data_yaml`` (see the module docstring).

    Raises :class:`TrainingError` if the YAML cannot be read at all.
    """
    data_yaml = Path(data_yaml)
    root, names = read_data_yaml(data_yaml)
    issues: list[LabelIssue] = []
    expected = detector_class_names()
    if names != expected:
        issues.append(LabelIssue(data_yaml, 0, f"names differ from the catalog's {len(expected)}"
                                 f" detector classes (got {len(names)})"))
    nc = len(names)
    images = {
        p.relative_to(root / "images").with_suffix(""): p
        for p in (root / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    }
    labels = {p.relative_to(root / "labels").with_suffix(""): p
              for p in (root / "labels").rglob("*.txt")}
    for key in sorted(set(images) - set(labels)):
        issues.append(LabelIssue(images[key], 0, "image has no label file"))
    for key in sorted(labels):
        path = labels[key]
        if key not in images:
            issues.append(LabelIssue(path, 0, "label file has no image"))
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(LabelIssue(path, 0, f"unreadable: {exc}"))
            continue
        seen: dict[str, int] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            reason = check_label_line(line, nc)
            if reason is None and line.strip() in seen:
                reason = f"duplicate of line {seen[line.strip()]}"
            if reason is not None:
                issues.append(LabelIssue(path, n, reason))
            seen.setdefault(line.strip(), n)
    return issues
