"""The detector's measured class confusion: which class it names for a box on an object of each
true class, from an evaluation on held-out data, and the likelihoods ``P(named k | true c)``
that a class posterior needs.

A detector does not confuse every pair of classes equally: grey metals with one another,
phones with tablets, slag lumps with slag lumps. Counting boxes matched to ground truth
(``crmsort eval``'s confusion matrix without its background row and column) gives

    P(k | c) = (n_kc + α) / (Σ_k' n_k'c + K α)

with ``α`` pseudo-counts per cell (few boxes per class on a few hundred frames; a pair
never seen confused keeps a small probability). The file (JSON, ``format``
``crmsort-detector-confusion/1``) ships next to the model it was measured for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from perception.detector.errors import ModelFileError

FORMAT = "crmsort-detector-confusion/1"


@dataclass(frozen=True)
class DetectorConfusion:
    """Counts ``counts[k, c]`` of boxes named ``names[k]`` on objects of class ``names[c]``."""

    names: tuple[str, ...]
    counts: NDArray[np.float64]
    model: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        k = len(self.names)
        if self.counts.shape != (k, k) or not np.all(np.isfinite(self.counts)) or np.any(
                self.counts < 0):
            raise ModelFileError(f"confusion: expected {k}x{k} finite counts >= 0, got shape "
                                 f"{self.counts.shape}")

    @property
    def accuracy(self) -> float:
        """Share of the matched boxes that name their object's class."""
        total = float(self.counts.sum())
        return float(np.trace(self.counts)) / total if total > 0 else 0.0

    def likelihoods(self, alpha: float = 0.5) -> dict[str, dict[str, float]]:
        """``{true c: {named k: P(k | c)}}`` with ``alpha`` pseudo-counts per cell."""
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        k = len(self.names)
        p = (self.counts + alpha) / (self.counts.sum(axis=0, keepdims=True) + k * alpha)
        return {c: {n: float(p[i, j]) for i, n in enumerate(self.names)}
                for j, c in enumerate(self.names)}


def save_confusion(path: Path, names: list[str], confusion: list[list[int]], *, model: str,
                   source: str, command: str,
                   merge: tuple[DetectorConfusion, ...] = ()) -> DetectorConfusion:
    """Write the matched part of an evaluation's confusion matrix (rows named, columns true,
    the last row and column — background — dropped) to ``path``, plus the counts of the
    confusions in ``merge`` (other evaluations of the same model, same classes); return it."""
    cm = np.asarray(confusion, dtype=np.float64)
    k = len(names)
    if cm.shape != (k + 1, k + 1):
        raise ModelFileError(f"confusion: expected {k + 1}x{k + 1} with background, got "
                             f"{cm.shape}")
    counts = cm[:k, :k].copy()
    sources = [source]
    for other in merge:
        if other.names != tuple(names):
            raise ModelFileError(f"confusion to merge ({other.source}): its classes differ "
                                 "from the model's")
        counts += other.counts
        sources.append(other.source)
    out = DetectorConfusion(tuple(names), counts, model=model, source=" + ".join(sources))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "format": FORMAT, "model": model, "source": out.source, "command": command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "names": list(names), "counts_named_by_true": out.counts.astype(int).tolist(),
        "matched_class_accuracy": out.accuracy,
    }, indent=1))
    return out


def load_confusion(path: Path) -> DetectorConfusion:
    """Read a confusion file; :class:`ModelFileError` naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot read the detector confusion ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a detector confusion file (format {FORMAT!r})")
    try:
        names = tuple(str(n) for n in data["names"])
        counts = np.asarray(data["counts_named_by_true"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: field {exc} missing or malformed") from exc
    try:
        return DetectorConfusion(names, counts, model=str(data.get("model", "")),
                                 source=str(data.get("source", "")))
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
