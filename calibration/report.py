"""Pictures of calibration results (PNG, matplotlib Agg): error maps, histograms, residuals.

Each function writes one PNG to ``path`` and returns the path. They need no
display (the Agg back-end is selected here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from calibration.encoder import EncoderResult
from calibration.extrinsics import ExtrinsicsResult
from calibration.intrinsics import IntrinsicsResult
from calibration.rigid import RigidFit
from calibration.time_offset import TimeOffsetResult, Track


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return p


def _error_map(ax: Any, points: np.ndarray, res: np.ndarray, size: tuple[int, int]) -> None:
    mag = np.linalg.norm(res, axis=1)
    sc = ax.scatter(points[:, 0], points[:, 1], c=mag, s=8, cmap="viridis")
    scale = 0.05 * size[0] / max(float(np.percentile(mag, 95)), 1e-6)
    ax.quiver(points[:, 0], points[:, 1], res[:, 0] * scale, -res[:, 1] * scale,
              angles="xy", scale_units="xy", scale=1.0, width=0.002, color="k", alpha=0.6)
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    ax.set_aspect("equal")
    ax.set_xlabel("u (px)")
    ax.set_ylabel("v (px)")
    plt.colorbar(sc, ax=ax, label="reprojection error (px)")


def intrinsics_report(result: IntrinsicsResult, path: str | Path) -> Path:
    """Reprojection-error map over the image, per-view RMS bars, error histogram."""
    c = result.camera
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    pts = np.concatenate(list(result.image_points.values()))
    res = np.concatenate(list(result.residuals_px.values()))
    _error_map(axes[0], pts, res, (c.width, c.height))
    axes[0].set_title(f"reprojection errors (arrows ×{0.05 * c.width:.0f}/p95)")
    names = list(result.per_view_rms_px) + [r.view_id for r in result.rejected]
    vals = list(result.per_view_rms_px.values()) + [
        r.rms_px if np.isfinite(r.rms_px) else 0.0 for r in result.rejected
    ]
    colours = ["tab:blue"] * result.n_views + ["tab:red"] * len(result.rejected)
    axes[1].bar(range(len(names)), vals, color=colours)
    axes[1].axhline(
        result.rms_px, color="k", ls="--", lw=1, label=f"overall {result.rms_px:.3f} px"
    )
    axes[1].set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    axes[1].set_ylabel("RMS error (px)")
    axes[1].set_title("per view (red: rejected)")
    axes[1].legend()
    axes[2].hist(np.linalg.norm(res, axis=1), bins=40, color="tab:blue")
    axes[2].set_xlabel("reprojection error (px)")
    axes[2].set_ylabel("corners")
    axes[2].set_title(
        f"fx={c.fx:.1f} fy={c.fy:.1f} cx={c.cx:.1f} cy={c.cy:.1f} px, {result.n_views} views"
    )
    return _save(fig, path)


def extrinsics_report(result: ExtrinsicsResult, path: str | Path) -> Path:
    """Reprojection-error map and histogram of a camera → belt solution."""
    c = result.camera
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    pts = np.concatenate(list(result.image_points.values()))
    res = np.concatenate(list(result.residuals_px.values()))
    _error_map(axes[0], pts, res, (c.width, c.height))
    t = result.T_belt_camera.translation
    axes[0].set_title(f"camera at ({t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}) m in the belt frame")
    axes[1].hist(np.linalg.norm(res, axis=1), bins=30, color="tab:green")
    axes[1].set_xlabel("reprojection error (px)")
    axes[1].set_title(
        f"RMS {result.rms_px:.3f} px, {result.belt_rms_m * 1e3:.2f} mm on the belt"
    )
    return _save(fig, path)


def encoder_report(result: EncoderResult, path: str | Path) -> Path:
    """Marker travel vs encoder ticks with the fit, and the along-travel residuals."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    tk = result.ticks
    travel = (result.positions_m - result.positions_m[0]) @ np.array(
        [np.cos(np.radians(result.drift_deg)), np.sin(np.radians(result.drift_deg))]
    )
    axes[0].plot(tk, travel * 1e3, "o", label="marker")
    axes[0].plot(tk, (tk - tk[0]) * result.m_per_tick * 1e3 + (travel - (tk - tk[0])
                 * result.m_per_tick).mean() * 1e3, "-", label="fit")
    axes[0].set_xlabel("encoder ticks")
    axes[0].set_ylabel("travel (mm)")
    axes[0].set_title(f"{result.m_per_tick * 1e6:.4f} µm/tick ({result.ticks_per_m:.2f} ticks/m)")
    axes[0].legend()
    axes[1].bar(range(tk.size), result.residuals_m * 1e3)
    axes[1].set_xlabel("reading")
    axes[1].set_ylabel("residual (mm)")
    axes[1].set_title(f"RMS {result.rms_m * 1e3:.3f} mm, drift {result.drift_deg:.3f}°")
    return _save(fig, path)


def rigid_report(fit: RigidFit, path: str | Path, unit_label: str = "touch point") -> Path:
    """Per-point residuals of a rigid fit (outliers in red)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    colours = np.where(fit.inliers, "tab:blue", "tab:red")
    ax.bar(range(fit.residuals_m.size), fit.residuals_m * 1e3, color=list(colours))
    ax.axhline(fit.rms_m * 1e3, color="k", ls="--", lw=1, label=f"RMS {fit.rms_m * 1e3:.3f} mm")
    ax.set_xlabel(unit_label)
    ax.set_ylabel("residual (mm)")
    ax.set_yscale("log")
    ax.set_title(f"{int(fit.inliers.sum())} inliers, outliers: {fit.outlier_indices or 'none'}")
    ax.legend()
    return _save(fig, path)


def time_offset_report(
    tracks_a: Sequence[Track],
    tracks_b: Sequence[Track],
    result: TimeOffsetResult,
    path: str | Path,
    names: tuple[str, str] = ("A", "B"),
) -> Path:
    """Both sensors' tracks after shifting B by the offset, and B's residuals."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (a, b) in enumerate(zip(tracks_a, tracks_b, strict=True)):
        axes[0].plot(a.t_s, a.x_m, "o", ms=3, color="tab:blue", label=names[0] if i == 0 else None)
        axes[0].plot(b.t_s + result.offset_s, b.x_m, "s", ms=3, color="tab:orange",
                     label=f"{names[1]} + offset" if i == 0 else None)
    axes[0].set_xlabel("time (s)")
    axes[0].set_ylabel("belt x (m)")
    axes[0].set_title(f"offset {result.offset_s * 1e3:.2f} ± {result.std_s * 1e3:.2f} ms")
    axes[0].legend()
    axes[1].plot(result.residuals_m * 1e3, "o-")
    axes[1].set_xlabel(f"{names[1]} sample")
    axes[1].set_ylabel("residual (mm)")
    axes[1].set_title(f"RMS {result.rms_m * 1e3:.3f} mm")
    return _save(fig, path)


def hsi_reference_report(
    dark: np.ndarray,
    white: np.ndarray,
    dead: np.ndarray,
    saturated: np.ndarray,
    path: str | Path,
    full_scale: float = 4095.0,
) -> Path:
    """Per-pixel mean dark and white counts (W x B references averaged over bands, with the
    band range shaded) and the pixels flagged dead (red) or saturated (orange)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    cols = np.arange(dark.shape[0])
    for ax, ref, name, colour in ((axes[0], white, "white", "tab:blue"),
                                  (axes[0], dark, "dark", "k")):
        ax.fill_between(cols, ref.min(axis=1), ref.max(axis=1), color=colour, alpha=0.2)
        ax.plot(cols, ref.mean(axis=1), color=colour, label=f"{name} (mean, band range)")
    for mask, colour, label in ((dead, "tab:red", "dead"), (saturated, "tab:orange",
                                                              "saturated")):
        for i, c in enumerate(np.flatnonzero(mask)):
            axes[0].axvline(c, color=colour, lw=1.5, label=label if i == 0 else None)
    axes[0].axhline(full_scale, color="tab:orange", ls=":", lw=1)
    axes[0].set_xlabel("pixel (column)")
    axes[0].set_ylabel("counts")
    axes[0].set_title(f"{int(dead.sum())} dead, {int(saturated.sum())} saturated pixels")
    axes[0].legend(fontsize=7)
    resp = white - dark
    good = ~(dead | saturated)
    axes[1].plot(np.median(resp[good], axis=0), color="tab:blue")
    axes[1].set_xlabel("band")
    axes[1].set_ylabel("white - dark (counts, median over good pixels)")
    axes[1].set_title("response per band")
    return _save(fig, path)


def xrf_energy_report(
    labels: Sequence[str],
    channels: np.ndarray,
    energies_kev: np.ndarray,
    residuals_kev: np.ndarray,
    gain_kev_per_channel: float,
    offset_kev: float,
    path: str | Path,
    spectrum_counts: np.ndarray | None = None,
) -> Path:
    """The spectrum with the reference lines marked (when given) and the per-line energy
    residuals (eV) of the channel → keV fit."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    if spectrum_counts is not None:
        e = offset_kev + gain_kev_per_channel * np.arange(spectrum_counts.size)
        axes[0].semilogy(e, np.maximum(spectrum_counts, 0.5), lw=0.7, color="k")
        for lab, en in zip(labels, energies_kev, strict=True):
            axes[0].axvline(en, color="tab:red", lw=0.8, alpha=0.6)
            axes[0].text(en, float(spectrum_counts.max()), lab, rotation=90, fontsize=7,
                         va="top", ha="right")
        axes[0].set_xlabel("energy (keV, new calibration)")
        axes[0].set_ylabel("counts")
    else:
        axes[0].plot(channels, energies_kev, "o")
        axes[0].set_xlabel("channel")
        axes[0].set_ylabel("keV")
    axes[0].set_title(f"E = {offset_kev * 1e3:.1f} eV + {gain_kev_per_channel * 1e3:.4f} eV × ch")
    axes[1].bar(range(len(labels)), residuals_kev * 1e3, color="tab:blue")
    axes[1].set_xticks(range(len(labels)), list(labels), rotation=45, fontsize=8)
    axes[1].axhline(0.0, color="k", lw=0.8)
    axes[1].set_ylabel("residual (eV)")
    rms = float(np.sqrt(np.mean(residuals_kev**2))) * 1e3
    axes[1].set_title(f"per-line residuals, RMS {rms:.1f} eV")
    return _save(fig, path)
