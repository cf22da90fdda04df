"""Reference (unfused) prediction of :class:`~perception.hsi.classifier.HsiClassifier`.

The straightforward form of the classifier's decision rule, kept to check the fused fast
path in :meth:`HsiClassifier.predict` against (tests) and to time it as "before" (bench):
project, divide by the mean level, add the log-level term, subtract the offset, squared
distances to every class mean, ``softmax(-d^2 / 2)`` over all classes, reject and black rules.
It does no band or flag checks: pass finite spectra ``(n, B)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perception.hsi.classifier import HsiClassifier, Prediction
from perception.hsi.library import UNKNOWN_LABEL


def reference_predict(
    clf: HsiClassifier, spectra: NDArray[np.floating], chunk: int = 32768
) -> Prediction:
    """Labels and confidence ``(n,)`` of finite reflectance spectra ``(n, B)``, float32 math."""
    x = np.asarray(spectra, dtype=np.float32).reshape(-1, clf.bands)
    n = x.shape[0]
    labels = np.empty(n, dtype=np.uint8)
    conf = np.empty(n, dtype=np.float32)
    ones = np.full((clf.bands, 1), 1.0 / clf.bands, np.float32)
    wext_t = np.ascontiguousarray(np.hstack([clf.projection, ones]).T)
    k = clf.projection.shape[1]
    mu2 = np.ascontiguousarray(-2.0 * clf.means, dtype=np.float32)
    musq = np.sum(clf.means.astype(np.float32) ** 2, axis=1)
    lab_table = clf.class_labels.astype(np.uint8)
    for s in range(0, n, chunk):
        p = wext_t @ x[s : s + chunk].T  # (k+1, c)
        m = p[k]
        mpos = np.maximum(m, 1e-6)
        z = p[:k] * (1.0 / mpos)[None, :]
        z += clf.level_weights[:, None] * np.log(mpos)[None, :]
        z -= clf.offset[:, None]
        d2 = mu2 @ z
        d2 += musq[:, None]
        smin = d2.min(axis=0)
        best = np.zeros(smin.size, dtype=np.intp)
        for ci in range(1, d2.shape[0]):
            best[d2[ci] == smin] = ci
        d2 -= smin[None, :]
        d2 *= -0.5
        c = 1.0 / np.exp(d2).sum(axis=0)
        dmin = smin + np.einsum("ij,ij->j", z, z)
        lab = lab_table[best]
        reject = (dmin > clf.reject_d2) | (c < clf.min_confidence)
        lab[reject] = UNKNOWN_LABEL
        black = (m < clf.black_level) & ((lab == UNKNOWN_LABEL) | (lab == clf.black_label))
        black |= m < 0.5 * clf.black_level
        lab[black] = clf.black_label
        c[black] = 1.0 - m[black] / clf.black_level
        labels[s : s + chunk] = lab
        conf[s : s + chunk] = c
    return Prediction(labels, conf)
