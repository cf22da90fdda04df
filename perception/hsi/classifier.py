"""Per-pixel material classifier for reflectance spectra: normalized derivative + PCA/LDA.

Features of a spectrum x (B bands, reflectance): the level-normalized spectrum x / m, its
first difference (shape, insensitive to an additive offset and to brightness) and the log
level log m, with m = mean(x). PCA (denoising, conditioning) then Fisher LDA map them to
k = C - 1 dimensions in which the within-class scatter is white; a pixel's class is the
nearest class mean there (a Gaussian classifier with shared covariance), its confidence
the posterior ``softmax(-d^2 / 2)`` of that class. Because everything before the division
by m is linear (difference, PCA, LDA, even the offset, since ``c = m c / m``), prediction is
one float32 matmul over the 224 bands per chunk plus a small one over the k features::

    P = X @ [W - c/B | 1/B]          (n, k+1);  m = P[:, k];  z' = P[:, :k] / m;  l = log m
    h = [mu | mu.a ; a | 0] @ [z' | l]^T     (C+1, n), class-major, float32
    h_c - |mu_c|^2 / 2 = -(d^2_c - |z|^2) / 2  with  z = z' + a l;  h_C = a . z'

so the winner is ``argmax h``, its confidence ``1 / sum_c exp(h_c - h_max)`` and its
distance ``|z|^2 - 2 h_max`` with ``|z|^2`` from ``|[z' | l]|^2`` and ``h_C``.
(:mod:`perception.hsi.classifier_reference` keeps the unfused form for tests and timing.)

Outcomes: a material label (catalog ``hsi_id``), :data:`BELT_LABEL`, the black label
(carbon-black plastic) when ``m < black_level`` ("black / unknown": no usable NIR signal,
the polymer cannot be named), or :data:`UNKNOWN_LABEL` when the nearest mean is farther
than ``reject_d2`` or the posterior is below ``min_confidence`` (reject class).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from perception.hsi.library import BELT_LABEL, UNKNOWN_LABEL
from perception.sensors.hsi.errors import BandMismatchError, HsiError, NonFiniteDataError

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]
FORMAT = "crmsort-hsi-lda/1"
WAVELENGTH_TOL_NM = 0.5


class ModelFileError(HsiError):
    """A model file is missing, unreadable or inconsistent; the message names file and field."""


def check_bands(
    wavelengths_nm: FloatArray, expected_nm: FloatArray, what: str = "spectra"
) -> None:
    """Raise :class:`BandMismatchError` naming the disagreement if the band sets differ."""
    got = np.asarray(wavelengths_nm, dtype=np.float64).reshape(-1)
    exp = np.asarray(expected_nm, dtype=np.float64)
    if got.size != exp.size:
        raise BandMismatchError(
            f"{what} have {got.size} bands but the model was trained on {exp.size} "
            f"({exp[0]:.1f}-{exp[-1]:.1f} nm)"
        )
    diff = np.abs(got - exp)
    if np.any(diff > WAVELENGTH_TOL_NM):
        i = int(np.argmax(diff > WAVELENGTH_TOL_NM))
        raise BandMismatchError(
            f"{what}: band {i} is at {got[i]:.2f} nm but the model's band {i} is at "
            f"{exp[i]:.2f} nm (tolerance {WAVELENGTH_TOL_NM} nm)"
        )


@dataclass
class Prediction:
    """Per-pixel outcome: ``labels`` (n,) uint8, ``confidence`` (n,) float32 in 0-1."""

    labels: NDArray[np.uint8]
    confidence: F32


@dataclass(frozen=True)
class _Fused:
    """Prediction matrices derived from a model (see :meth:`HsiClassifier._fused_matrices`)."""

    key: tuple[int, int, int, int]
    w: F32
    mat: F32
    const: F32
    a_sq_m1: np.float32
    lab_table: NDArray[np.uint8]


@dataclass
class HsiClassifier:
    """A trained classifier (see the module docstring); build with :func:`fit_classifier`."""

    wavelengths_nm: FloatArray
    band_model: str
    class_labels: NDArray[np.int64]
    class_names: list[str]
    projection: F32
    level_weights: F32
    offset: F32
    means: F32
    black_label: int
    black_level: float
    reject_d2: float
    min_confidence: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def bands(self) -> int:
        return int(self.wavelengths_nm.size)

    def predict(
        self, spectra: FloatArray | F32, wavelengths_nm: FloatArray | None = None,
        flags: NDArray[np.uint8] | None = None, chunk: int = 8192, workers: int = 1,
    ) -> Prediction:
        """Classify reflectance spectra ``(..., B)``; returns labels and confidence ``(...)``.

        Pixels with ``flags != 0`` (saturated, dead) get :data:`UNKNOWN_LABEL` and 0
        confidence. Spectra are processed in chunks of ``chunk`` rows (8192 x 224 float32 =
        7 MiB, which keeps the intermediates in cache); ``workers > 1`` spreads the chunks
        over that many threads (numpy releases the GIL in the matmuls and ufuncs; worth it
        for batches of many chunks on idle cores; the result does not depend on ``workers``,
        while another ``chunk`` changes confidences in float32's last bits, as BLAS blocks
        its sums by the matrix's size). Raises :class:`BandMismatchError` when
        ``wavelengths_nm`` (or the band count) disagrees with the model,
        :class:`NonFiniteDataError` for a NaN/inf spectrum that is not flagged (the first such
        spectrum is named), :class:`HsiError` for ``chunk`` or ``workers`` below 1.
        """
        if chunk < 1 or workers < 1:
            raise HsiError(f"predict: chunk={chunk} and workers={workers} must be >= 1")
        x = np.asarray(spectra)
        if x.shape[-1] != self.bands:
            raise BandMismatchError(
                f"spectra have {x.shape[-1]} bands but the model ({self.band_model}) was "
                f"trained on {self.bands}"
            )
        if wavelengths_nm is not None:
            check_bands(wavelengths_nm, self.wavelengths_nm)
        shape = x.shape[:-1]
        x2: F32 = np.asarray(x.reshape(-1, self.bands), dtype=np.float32)
        n = x2.shape[0]
        labels = np.empty(n, dtype=np.uint8)
        conf = np.empty(n, dtype=np.float32)
        flat_flags = None if flags is None else np.asarray(flags).reshape(-1)
        fused = self._fused_matrices()
        starts = range(0, n, chunk)

        def run(s: int) -> None:
            self._predict_chunk(x2[s : s + chunk], s, n, fused, flat_flags,
                                labels[s : s + chunk], conf[s : s + chunk])

        if workers == 1 or len(starts) < 2:
            for s in starts:
                run(s)
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
                for fut in [pool.submit(run, s) for s in starts]:
                    fut.result()  # in chunk order: the first bad spectrum is the one named
        if flat_flags is not None:
            labels[flat_flags != 0] = UNKNOWN_LABEL
            conf[flat_flags != 0] = 0.0
        return Prediction(labels.reshape(shape), conf.reshape(shape))

    def _fused_matrices(self) -> _Fused:
        """The model folded for prediction (cached per set of model arrays).

        ``w`` (B, k+1) = ``[projection - offset / B | 1 / B]``: since ``m = x . 1/B``, the
        offset ``-c`` of ``z`` equals ``-(m c) / m`` and folds into the matmul, whose last
        column is ``m`` itself. With ``z' = P[:, :k] / m`` and ``l = log m`` the features are
        ``z = z' + a l``; the row ``[z' | l]`` times ``mat.T`` (C+1, k+1) gives, per class,
        ``mu_c . z' + (mu_c . a) l`` and in the last row ``a . z'``. Adding ``const`` =
        ``-|mu_c|^2 / 2`` yields ``h_c = -(d2_c - |z|^2) / 2``.
        """
        key = (id(self.projection), id(self.offset), id(self.level_weights), id(self.means))
        cached = self.__dict__.get("_fused")
        if isinstance(cached, _Fused) and cached.key == key:
            return cached
        b = self.bands
        proj = self.projection.astype(np.float64)
        a = self.level_weights.astype(np.float64)
        mu = self.means.astype(np.float64)
        w = np.empty((b, proj.shape[1] + 1), dtype=np.float64)
        w[:, :-1] = proj - self.offset.astype(np.float64)[None, :] / b
        w[:, -1] = 1.0 / b
        mat = np.zeros((mu.shape[0] + 1, mu.shape[1] + 1), dtype=np.float64)
        mat[:-1, :-1] = mu
        mat[:-1, -1] = mu @ a
        mat[-1, :-1] = a
        fused = _Fused(
            key=key, w=w.astype(np.float32), mat=mat.astype(np.float32),
            const=(-0.5 * np.sum(mu**2, axis=1)).astype(np.float32)[:, None],
            a_sq_m1=np.float32(a @ a - 1.0), lab_table=self.class_labels.astype(np.uint8),
        )
        self.__dict__["_fused"] = fused
        return fused

    def _predict_chunk(
        self, xc: F32, s: int, n: int, fused: _Fused, flat_flags: NDArray[np.uint8] | None,
        lab_out: NDArray[np.uint8], conf_out: F32,
    ) -> None:
        """Classify rows ``xc`` (rows ``s..`` of ``n``) into the output views (see
        :meth:`_fused_matrices`); raises :class:`NonFiniteDataError` for an unflagged NaN."""
        k = fused.w.shape[1] - 1
        ncls = fused.const.shape[0]
        with np.errstate(invalid="ignore", over="ignore"):  # inf bands: checked below
            p = xc @ fused.w  # (c, k+1) row-major: OpenBLAS's fastest layout for this shape
        m = p[:, k].copy()
        bad = ~np.isfinite(m)
        if bad.any():
            rows = np.flatnonzero(bad) + s
            if flat_flags is None or np.any(flat_flags[rows] == 0):
                first = int(rows[0] if flat_flags is None else rows[flat_flags[rows] == 0][0])
                raise NonFiniteDataError(
                    f"spectrum {first} (of {n}) has NaN/inf values and is not flagged"
                )
            m[bad] = 1.0
            p[bad] = 0.0
        mpos = np.maximum(m, np.float32(1e-6))
        p *= (np.float32(1.0) / mpos)[:, None]
        lg = np.log(mpos)
        p[:, k] = lg  # p = [z' | log m]
        h = fused.mat @ p.T  # (C+1, c) class-major: every reduction runs along rows
        hc = h[:ncls]
        hc += fused.const
        hmax = hc.max(axis=0)
        best = np.zeros(hmax.size, dtype=np.intp)
        for ci in range(1, ncls):
            best[hc[ci] == hmax] = ci
        # |z|^2 = |z'|^2 + 2 l (a . z') + l^2 |a|^2, and |[z' | l]|^2 = |z'|^2 + l^2
        zsq = np.einsum("ij,ij->i", p, p)
        zsq += lg * (np.float32(2.0) * h[ncls] + lg * fused.a_sq_m1)
        dmin = zsq - np.float32(2.0) * hmax
        hc -= hmax[None, :]
        np.exp(hc, out=hc)
        c = np.float32(1.0) / hc.sum(axis=0)
        lab = fused.lab_table[best]
        reject = (dmin > self.reject_d2) | (c < self.min_confidence)
        lab[reject] = UNKNOWN_LABEL
        # no usable NIR signal: black unless the model names a (dark) material itself
        black = (m < self.black_level) & ((lab == UNKNOWN_LABEL) | (lab == self.black_label))
        black |= m < 0.5 * self.black_level
        lab[black] = self.black_label
        c[black] = 1.0 - m[black] / self.black_level
        lab[bad] = UNKNOWN_LABEL
        c[bad] = 0.0
        lab_out[:] = lab
        conf_out[:] = c

    # -- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> tuple[Path, Path]:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (metadata); returns both paths."""
        path = Path(path)
        npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
        np.savez_compressed(
            npz, projection=self.projection, level_weights=self.level_weights,
            offset=self.offset, means=self.means, class_labels=self.class_labels,
        )
        meta = {
            "format": FORMAT,
            "band_model": self.band_model,
            "bands": self.bands,
            "wavelengths_nm": [round(float(w), 4) for w in self.wavelengths_nm],
            "class_names": self.class_names,
            "class_labels": [int(v) for v in self.class_labels],
            "black_label": self.black_label,
            "black_level": self.black_level,
            "reject_d2": self.reject_d2,
            "min_confidence": self.min_confidence,
            "meta": self.meta,
        }
        js.write_text(json.dumps(meta, indent=1) + "\n")
        return npz, js

    @classmethod
    def load(cls, path: Path, wavelengths_nm: FloatArray | None = None) -> HsiClassifier:
        """Read a model written by :meth:`save`; checks that the files agree with each other.

        With ``wavelengths_nm`` (the camera's bands), also checks the model was trained on
        them: :class:`BandMismatchError` if not. Raises :class:`ModelFileError` otherwise.
        """
        path = Path(path)
        npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
        try:
            meta = json.loads(js.read_text())
            with np.load(npz) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: cannot read model: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{js}: format {meta.get('format')!r}, expected {FORMAT!r}")
        for key in ("projection", "level_weights", "offset", "means", "class_labels"):
            if key not in arrays:
                raise ModelFileError(f"{npz}: missing array {key!r}")
        wl = np.asarray(meta["wavelengths_nm"], dtype=np.float64)
        proj = arrays["projection"].astype(np.float32)
        if proj.shape[0] != wl.size or wl.size != meta.get("bands"):
            raise ModelFileError(
                f"{npz}: projection has {proj.shape[0]} rows but {js} lists {wl.size} "
                f"wavelengths and bands={meta.get('bands')}"
            )
        labels = arrays["class_labels"].astype(np.int64)
        if list(labels) != meta["class_labels"] or len(meta["class_names"]) != labels.size:
            raise ModelFileError(f"{js}: class_labels/class_names disagree with {npz}")
        if arrays["means"].shape != (labels.size, proj.shape[1]):
            raise ModelFileError(f"{npz}: means shape {arrays['means'].shape} is inconsistent")
        if wavelengths_nm is not None:
            check_bands(wavelengths_nm, wl, what=f"camera bands for model {path.name}")
        return cls(
            wavelengths_nm=wl, band_model=str(meta["band_model"]), class_labels=labels,
            class_names=list(meta["class_names"]), projection=proj,
            level_weights=arrays["level_weights"].astype(np.float32),
            offset=arrays["offset"].astype(np.float32),
            means=arrays["means"].astype(np.float32), black_label=int(meta["black_label"]),
            black_level=float(meta["black_level"]), reject_d2=float(meta["reject_d2"]),
            min_confidence=float(meta["min_confidence"]), meta=dict(meta.get("meta", {})),
        )


@dataclass(frozen=True)
class FitOptions:
    """Training knobs: PCA dimensions, LDA ridge (fraction of mean within-class variance),
    reject quantile and factor, minimum confidence."""

    n_pca: int = 90
    ridge: float = 1e-4
    reject_quantile: float = 0.999
    reject_factor: float = 2.0
    min_confidence: float = 0.5
    max_fit_rows: int = 150_000


def _features(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    m = x.mean(axis=1)
    xn = x / m[:, None]
    return np.hstack([xn, np.diff(xn, axis=1), np.log(m)[:, None]]), m


def fit_classifier(
    spectra: FloatArray, labels: NDArray[np.int64], wavelengths_nm: FloatArray,
    band_model: str, names: dict[int, str], black_label: int,
    options: FitOptions | None = None, rng: np.random.Generator | None = None,
) -> HsiClassifier:
    """Fit PCA + LDA on reflectance ``spectra`` (n, B) with integer ``labels`` (n,).

    ``names`` maps each label to its name (material id or ``belt``). Rows with non-finite
    values are dropped. The black level is set between the brightest black-plastic pixels
    (99th percentile of their mean reflectance) and the darkest pixels of every other class
    (1st percentile); below it, a pixel the model rejects or calls black is reported black,
    and below half of it every pixel is. Raises :class:`HsiError` with fewer than two classes.
    """
    opt = options or FitOptions()
    rng = rng or np.random.default_rng(0)
    x = np.asarray(spectra, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    keep = np.all(np.isfinite(x), axis=1) & (x.mean(axis=1) > 1e-3)
    x, y = x[keep], y[keep]
    if x.shape[0] > opt.max_fit_rows:
        sel = np.sort(rng.choice(x.shape[0], opt.max_fit_rows, replace=False))
        x, y = x[sel], y[sel]
    classes = np.unique(y)
    if classes.size < 2:
        raise HsiError(f"need at least two classes to fit, got {classes.tolist()}")
    b = x.shape[1]
    f, m = _features(x)
    mu_f = f.mean(axis=0)
    fc = f - mu_f
    sub = fc[rng.choice(fc.shape[0], min(fc.shape[0], 20_000), replace=False)]
    _, _, vt = np.linalg.svd(sub, full_matrices=False)
    v = vt[: opt.n_pca].T  # (2B, p)
    g = fc @ v
    means = np.stack([g[y == c].mean(axis=0) for c in classes])
    resid = g - means[np.searchsorted(classes, y)]
    sw = resid.T @ resid / g.shape[0]
    sw += opt.ridge * np.trace(sw) / sw.shape[0] * np.eye(sw.shape[0])
    gm = g.mean(axis=0)
    counts = np.array([(y == c).sum() for c in classes], dtype=np.float64)
    dm = means - gm
    sb = (dm * counts[:, None]).T @ dm / counts.sum()
    evals, evecs = scipy.linalg.eigh(sb, sw)
    a = evecs[:, np.argsort(evals)[::-1][: classes.size - 1]]  # (p, k), a^T sw a = I
    # fold difference + PCA + LDA into one linear map of x / m
    d = np.zeros((b, 2 * b - 1))
    d[:, :b] = np.eye(b)
    idx = np.arange(b - 1)
    d[idx + 1, b + idx] = 1.0
    d[idx, b + idx] = -1.0
    proj = d @ v[: 2 * b - 1] @ a
    level = v[2 * b - 1] @ a
    offset = mu_f @ v @ a
    z = (x / m[:, None]) @ proj + np.log(m)[:, None] * level[None, :] - offset[None, :]
    cmeans = np.stack([z[y == c].mean(axis=0) for c in classes])
    own = np.sum((z - cmeans[np.searchsorted(classes, y)]) ** 2, axis=1)
    reject = float(np.quantile(own, opt.reject_quantile) * opt.reject_factor)
    black = y == black_label
    if black.any() and (~black).any():
        hi = float(np.quantile(m[black], 0.99))
        lo = float(np.quantile(m[~black & (y != BELT_LABEL)], 0.01))
        black_level = 0.5 * (hi + lo) if lo > hi else hi
    else:
        black_level = 0.0
    return HsiClassifier(
        wavelengths_nm=np.asarray(wavelengths_nm, dtype=np.float64), band_model=band_model,
        class_labels=classes, class_names=[names[int(c)] for c in classes],
        projection=proj.astype(np.float32), level_weights=level.astype(np.float32),
        offset=offset.astype(np.float32), means=cmeans.astype(np.float32),
        black_label=int(black_label), black_level=black_level, reject_d2=reject,
        min_confidence=opt.min_confidence, meta={"fit": asdict(opt), "rows": int(x.shape[0])},
    )
