"""Per-object material: a confidence-weighted vote over the object's pixels.

Given per-pixel labels and confidences and the object's mask (from the tracker, or the
simulator's truth in evaluation), the object's material is the label with the largest
summed confidence among its pixels, ignoring :data:`UNKNOWN_LABEL` (rejected, flagged) and
:data:`BELT_LABEL` pixels (mask spill onto the belt). With no such pixel the outcome is
:data:`UNKNOWN_LABEL`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.hsi.library import BELT_LABEL, UNKNOWN_LABEL
from perception.sensors.hsi.errors import HsiError


@dataclass(frozen=True)
class ObjectVote:
    """Outcome of a vote: ``label``, its share of the vote (0-1), pixels that voted."""

    label: int
    share: float
    voters: int


def vote_object(
    labels: NDArray[np.uint8], confidence: NDArray[np.float32], mask: NDArray[np.bool_]
) -> ObjectVote:
    """Material of the object whose pixels are ``mask`` (all three arrays the same shape)."""
    if labels.shape != confidence.shape or labels.shape != mask.shape:
        raise HsiError(
            f"vote_object: labels {labels.shape}, confidence {confidence.shape} and mask "
            f"{mask.shape} must have the same shape"
        )
    lab = labels[mask]
    w = confidence[mask].astype(np.float64)
    ok = (lab != UNKNOWN_LABEL) & (lab != BELT_LABEL)
    if not ok.any():
        return ObjectVote(UNKNOWN_LABEL, 0.0, 0)
    sums = np.bincount(lab[ok], weights=np.maximum(w[ok], 1e-3), minlength=256)
    best = int(np.argmax(sums))
    return ObjectVote(best, float(sums[best] / sums.sum()), int(ok.sum()))
