"""Spectral angle mapper (SAM): the baseline classifier.

Each class is represented by one endmember spectrum e_c (the mean training spectrum); a
pixel x is given the class of the smallest angle ``arccos(x . e_c / (|x| |e_c|))``. SAM is
blind to brightness (a scaled spectrum has the same angle) but not to shape changes from
absorption depth, tilt or stray light. The same black rule as the trained classifier
applies (mean reflectance below ``black_level``); pixels whose smallest angle exceeds
``max_angle_rad`` are rejected (:data:`UNKNOWN_LABEL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perception.hsi.classifier import Prediction
from perception.hsi.library import UNKNOWN_LABEL
from perception.sensors.hsi.errors import BandMismatchError, HsiError

FloatArray = NDArray[np.float64]


@dataclass
class SamClassifier:
    """Endmembers ``(C, B)`` with their ``labels`` (C,); see the module docstring."""

    endmembers: FloatArray
    labels: NDArray[np.int64]
    black_label: int
    black_level: float
    max_angle_rad: float = 0.5

    @classmethod
    def from_training(
        cls, spectra: FloatArray, labels: NDArray[np.int64], black_label: int,
        black_level: float, max_angle_rad: float = 0.5,
    ) -> SamClassifier:
        """Endmembers = per-class mean of finite training spectra (n, B)."""
        x = np.asarray(spectra, dtype=np.float64)
        y = np.asarray(labels)
        ok = np.all(np.isfinite(x), axis=1)
        classes = np.unique(y[ok])
        if classes.size < 2:
            raise HsiError("SAM needs at least two classes")
        em = np.stack([x[ok & (y == c)].mean(axis=0) for c in classes])
        return cls(em, classes.astype(np.int64), black_label, black_level, max_angle_rad)

    def angles(self, spectra: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """Spectral angles (rad) of ``spectra`` (n, B) to every endmember, (n, C)."""
        x = np.asarray(spectra, dtype=np.float32)
        if x.shape[-1] != self.endmembers.shape[1]:
            raise BandMismatchError(
                f"spectra have {x.shape[-1]} bands, SAM endmembers {self.endmembers.shape[1]}"
            )
        e = self.endmembers / np.linalg.norm(self.endmembers, axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        cos = (x @ e.T.astype(np.float32)) / np.maximum(norms, 1e-12)[:, None]
        out: NDArray[np.float32] = np.arccos(np.clip(cos, -1.0, 1.0))
        return out

    def predict(self, spectra: NDArray[np.floating[Any]]) -> Prediction:
        """Labels (n,) uint8 and confidence ``1 - angle / max_angle`` (n,)."""
        x = np.asarray(spectra, dtype=np.float32).reshape(-1, self.endmembers.shape[1])
        ang = self.angles(x)
        best = np.argmin(ang, axis=1)
        amin = ang[np.arange(best.size), best]
        lab = self.labels.astype(np.uint8)[best]
        lab[amin > self.max_angle_rad] = UNKNOWN_LABEL
        m = x.mean(axis=1)
        lab[m < self.black_level] = self.black_label
        conf = np.clip(1.0 - amin / self.max_angle_rad, 0.0, 1.0).astype(np.float32)
        return Prediction(lab, conf)


def save_sam(sam: SamClassifier, path: str) -> None:
    """Write the endmembers and thresholds to ``path`` (npz)."""
    np.savez_compressed(
        path, endmembers=sam.endmembers, labels=sam.labels,
        params=np.array([sam.black_label, sam.black_level, sam.max_angle_rad]),
    )


def load_sam(path: str) -> SamClassifier:
    """Read :func:`save_sam` output; :class:`HsiError` naming the file if malformed."""
    try:
        with np.load(path) as z:
            em, lab, par = z["endmembers"], z["labels"], z["params"]
    except (OSError, KeyError, ValueError) as exc:
        raise HsiError(f"{path}: cannot read SAM endmembers: {exc}") from exc
    return SamClassifier(em, lab.astype(np.int64), int(par[0]), float(par[1]), float(par[2]))
