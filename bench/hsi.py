"""Benchmark: HSI classifier throughput vs Spectral Python's SAM on the same 224-band spectra.

``python -m bench.hsi [--scenes 4] [--repeat 3]`` simulates held-out lines (evaluation
conditions, FX17 bands), then times on the same float32 spectra:

- ``crmsort PCA/LDA``: :meth:`perception.hsi.classifier.HsiClassifier.predict` (labels +
  confidence + reject + black rule), the shipped model;
- the same with ``workers=2`` (chunks spread over two threads, both cores);
- the unfused reference implementation of the same rule
  (:func:`perception.hsi.classifier_reference.reference_predict`, the "before" figure);
- ``SPy spectral_angles + argmin``: ``spectral.spectral_angles`` against the SAM
  endmembers shipped with the model, then ``argmin`` — the peer;

and reports spectra/s (best of ``--repeat``), the ratio, and each one's pixel accuracy on the
pixels of the data that are mostly covered by one non-black material. BLAS runs on one
thread (see below); the workers=2 row adds a second Python thread.
"""

from __future__ import annotations

import os

# one BLAS thread: on 2 shared cores OpenBLAS worker threads spin against each other and
# against the other processes (a 25x24 @ 24x32768 product took 40 ms threaded, 1 ms not);
# set before numpy loads OpenBLAS. Both classifiers run under the same setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
import time

import numpy as np
from rich.table import Table

from perception.hsi.classifier import HsiClassifier
from perception.hsi.classifier_reference import reference_predict
from perception.hsi.dataset import EVAL_RANGES, simulate_lines
from perception.hsi.evaluate import label_lut
from perception.hsi.library import BELT_LABEL, classifier_labels, load_library
from perception.hsi.sam import load_sam
from perception.sensors.hsi.bands import fx17
from sorting.cli.hsi_cmd import DEFAULT_MODEL
from sorting.cli.output import console


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hsi")
    ap.add_argument("--scenes", type=int, default=4, help="scenes of 120 lines x 256 px")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    import spectral

    con = console()
    lib, bands = load_library(), fx17()
    lines = simulate_lines(lib, bands, args.seed, args.scenes, EVAL_RANGES)
    ok = (lines.flags == 0).reshape(-1)
    x = np.ascontiguousarray(lines.reflectance.reshape(-1, bands.bands)[ok], dtype=np.float32)
    lut = label_lut(classifier_labels(lib))
    y = lut[lines.labels.reshape(-1)[ok]]
    cov = lines.coverage.reshape(-1)[ok]
    clf = HsiClassifier.load(DEFAULT_MODEL, wavelengths_nm=bands.centres_nm)
    sam = load_sam(str(DEFAULT_MODEL.with_suffix(".sam.npz")))
    scored = (cov >= 0.5) & (y != BELT_LABEL) & (y != clf.black_label)
    n = x.shape[0]

    def ours() -> np.ndarray:
        return clf.predict(x).labels

    def ours2() -> np.ndarray:
        return clf.predict(x, workers=2).labels

    def before() -> np.ndarray:
        return reference_predict(clf, x).labels

    def spy() -> np.ndarray:
        ang = spectral.spectral_angles(x.reshape(1, n, -1), sam.endmembers)
        out: np.ndarray = sam.labels[np.argmin(ang[0], axis=1)]
        return out

    results = {}
    for name, fn in (("crmsort PCA/LDA (labels, confidence, reject)", ours),
                     ("crmsort PCA/LDA, workers=2 (both cores)", ours2),
                     ("crmsort PCA/LDA unfused reference (before)", before),
                     ("SPy spectral_angles + argmin", spy)):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            lab = fn()
            best = min(best, time.perf_counter() - t0)
        acc = float((lab[scored] == y[scored]).mean())
        results[name] = (n / best, acc)
    table = Table(title=f"HSI classification, {n} spectra x {bands.bands} bands (float32), "
                        f"{platform.processor() or platform.machine()}")
    table.add_column("classifier")
    table.add_column("spectra/s", justify="right")
    table.add_column("pixel accuracy", justify="right")
    table.add_column("speed vs SPy", justify="right")
    peer = results["SPy spectral_angles + argmin"][0]
    for name, (rate, acc) in results.items():
        table.add_row(name, f"{rate:,.0f}", f"{100 * acc:.2f} %", f"{rate / peer:.2f}x")
    con.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
