"""PNG reports of ``crmsort calibrate xrt``: the dark/flat references and the plate residuals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from calibration.report import _save


def xrt_reference_report(dark: np.ndarray, flat: np.ndarray, dead: np.ndarray,
                         saturated: np.ndarray, noisy: np.ndarray, path: str | Path,
                         full_scale: float = 65535.0) -> Path:
    """Per-pixel dark and flat counts of both layers (W x 2), the flagged pixels marked, and
    the response ``flat - dark`` relative to its median."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    px = np.arange(dark.shape[0])
    for layer, style in ((0, "-"), (1, "--")):
        name = ("low", "high")[layer]
        axes[0].plot(px, flat[:, layer], "tab:blue", ls=style, lw=1, label=f"flat {name}")
        axes[0].plot(px, dark[:, layer], "k", ls=style, lw=1, label=f"dark {name}")
        resp = flat[:, layer] - dark[:, layer]
        axes[1].plot(px, resp / max(float(np.median(resp)), 1e-9), ls=style, lw=1,
                     label=f"{name} layer")
    for mask, colour, label in ((dead, "tab:red", "dead"), (saturated, "tab:orange",
                                                            "saturated"),
                                (noisy, "tab:purple", "noisy")):
        for i, c in enumerate(np.flatnonzero(mask)):
            for ax in axes:
                ax.axvline(c, color=colour, lw=1.2, label=label if i == 0 and ax is axes[0]
                           else None)
    axes[0].axhline(full_scale, color="tab:orange", ls=":", lw=1)
    axes[0].set_xlabel("pixel")
    axes[0].set_ylabel("counts")
    axes[0].set_title(f"{int(dead.sum())} dead, {int(saturated.sum())} saturated, "
                      f"{int(noisy.sum())} noisy pixels")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("pixel")
    axes[1].set_ylabel("(flat - dark) / median")
    axes[1].set_title("detector response (gain pattern)")
    axes[1].legend(fontsize=7)
    return _save(fig, path)


def xrt_mass_scale_report(names: Sequence[str], known_g_cm2: np.ndarray,
                          before_pct: np.ndarray, after_pct: np.ndarray,
                          path: str | Path) -> Path:
    """Areal-density error of each reference plate (inferred from its ``A_high`` vs weighed)
    with the nominal set-up and with the fitted correction."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(names) + 2), 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, before_pct, 0.4, color="tab:gray", label="nominal set-up")
    ax.bar(x + 0.2, after_pct, 0.4, color="tab:green", label="calibrated")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{n}\n{k:.2f} g/cm²" for n, k in zip(names, known_g_cm2, strict=True)],
                       fontsize=7)
    ax.set_ylabel("areal density error (%)")
    ax.set_title(f"reference plates: worst {np.max(np.abs(before_pct)):.2f} % → "
                 f"{np.max(np.abs(after_pct)):.2f} %")
    ax.legend(fontsize=8)
    return _save(fig, path)
