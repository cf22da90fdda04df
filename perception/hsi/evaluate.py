"""Training and evaluation on simulated lines: metrics against the simulator's truth.

Pixels are scored against the label of the material covering most of the pixel; ``pure``
pixels are fully covered by one object (coverage 1), ``dominant`` ones at least half.
Saturated/dead pixels (flags) are excluded from accuracy and counted separately. Objects
are scored by :func:`perception.hsi.vote.vote_object` over their pixels with coverage >= 0.5
(the mask a tracker would give), for objects with at least ``min_object_pixels`` of them.
Black plastic is scored separately: the issue asks that it be *reported as such*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from perception.hsi.classifier import FitOptions, HsiClassifier, Prediction, fit_classifier
from perception.hsi.dataset import LineSet
from perception.hsi.library import BELT_LABEL, UNKNOWN_LABEL
from perception.hsi.sam import SamClassifier
from perception.hsi.vote import vote_object


class _Predicts(Protocol):
    def predict(self, spectra: NDArray[np.floating[Any]]) -> Prediction: ...


def label_lut(mapping: dict[int, int]) -> NDArray[np.int64]:
    """A 256-entry table applying a label map (e.g. metals -> metal group)."""
    lut = np.arange(256, dtype=np.int64)
    for k, v in mapping.items():
        lut[k] = v
    return lut


def train_models(
    lines: LineSet, lut: NDArray[np.int64], wavelengths_nm: NDArray[np.float64],
    band_model: str, names: dict[int, str], black_label: int, min_coverage: float = 0.75,
    options: FitOptions | None = None, seed: int = 0,
) -> tuple[HsiClassifier, SamClassifier]:
    """Fit the classifier and the SAM baseline on unflagged pixels of ``min_coverage``."""
    b = lines.reflectance.shape[-1]
    x = lines.reflectance.reshape(-1, b)
    y = lut[lines.labels.reshape(-1)]
    sel = (lines.coverage.reshape(-1) >= min_coverage) & (lines.flags.reshape(-1) == 0)
    clf = fit_classifier(x[sel], y[sel], wavelengths_nm, band_model, names, black_label,
                         options, np.random.default_rng(seed))
    sam = SamClassifier.from_training(x[sel], y[sel], black_label, clf.black_level)
    return clf, sam


@dataclass
class EvalReport:
    """Accuracy figures (fractions 0-1) and the confusion matrix over ``labels``."""

    pixel_acc_pure: float
    pixel_acc_dominant: float
    reject_rate: float
    flagged_rate: float
    black_reported: float
    belt_acc: float
    object_acc: float
    objects: int
    labels: list[int]
    confusion: NDArray[np.int64]
    object_errors: list[tuple[int, int, float]] = field(default_factory=list)


def evaluate(
    model: _Predicts, lines: LineSet, lut: NDArray[np.int64], black_label: int,
    min_object_pixels: int = 5, flagged_aware: bool = True,
) -> EvalReport:
    """Score ``model`` on ``lines`` (see the module docstring)."""
    b = lines.reflectance.shape[-1]
    x = lines.reflectance.reshape(-1, b)
    flags = lines.flags.reshape(-1)
    y = lut[lines.labels.reshape(-1)]
    cov = lines.coverage.reshape(-1)
    ok = flags == 0
    xs = np.where(ok[:, None], x, np.float32(1.0)) if not flagged_aware else x
    if isinstance(model, HsiClassifier):
        pred = model.predict(xs, flags=flags)
    else:
        pred = model.predict(np.where(ok[:, None], x, np.float32(1.0)))
        pred.labels[~ok] = UNKNOWN_LABEL
    lab = pred.labels.astype(np.int64)
    material = (y != BELT_LABEL) & (y != black_label) & ok
    pure = material & (cov >= 1.0)
    dom = material & (cov >= 0.5)
    black = (y == black_label) & (cov >= 1.0) & ok
    belt = (y == BELT_LABEL) & (cov >= 1.0) & ok
    labels = sorted(set(np.unique(y[ok & (cov >= 1.0)]).tolist()) | {UNKNOWN_LABEL})
    index = {v: i for i, v in enumerate(labels)}
    conf = np.zeros((len(labels), len(labels)), dtype=np.int64)
    sel = ok & (cov >= 1.0)
    ti = np.array([index[v] for v in y[sel]])
    pi = np.array([index.get(v, index[UNKNOWN_LABEL]) for v in lab[sel]])
    np.add.at(conf, (ti, pi), 1)
    ids = lines.object_ids.reshape(-1)
    n_obj = good = 0
    errors = []
    for oid in np.unique(ids[ids >= 0]):
        mask = (ids == oid) & (cov >= 0.5)
        if mask.sum() < min_object_pixels:
            continue
        v = vote_object(pred.labels, pred.confidence, mask)
        truth = int(y[mask][0])
        n_obj += 1
        if v.label == truth:
            good += 1
        else:
            errors.append((truth, v.label, v.share))
    return EvalReport(
        pixel_acc_pure=float((lab[pure] == y[pure]).mean()),
        pixel_acc_dominant=float((lab[dom] == y[dom]).mean()),
        reject_rate=float((lab[dom] == UNKNOWN_LABEL).mean()),
        flagged_rate=float((~ok & (y != BELT_LABEL)).sum() / max((y != BELT_LABEL).sum(), 1)),
        black_reported=float((lab[black] == black_label).mean()) if black.any() else float("nan"),
        belt_acc=float((lab[belt] == BELT_LABEL).mean()),
        object_acc=good / max(n_obj, 1), objects=n_obj, labels=labels, confusion=conf,
        object_errors=errors,
    )
