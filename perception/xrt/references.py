"""Dark and flat references of a DE-XRT line scanner: average N lines of each, check them.

``dark``: lines taken with the tube off; ``flat``: lines with the tube on and only the belt in
the beam. Per pixel (either layer): *saturated* when any flat line reaches ``full_scale``;
*dead* when the averaged ``flat − dark`` is below ``min_response`` counts (``not_above_dark``
the subset where it is <= 0); *noisy* when the pixel's line-to-line spread in the dark or the
flat exceeds ``noisy_factor`` times the median pixel's. Saturated pixels are made dead in
the references handed to :class:`~perception.xrt.transmission.TransmissionCalibrator`
(their flat is not a measurement), so they come out flagged ``FLAG_DEAD``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrt.errors import XrtReferenceError
from perception.xrt.transmission import TransmissionCalibrator

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def pixel_list(mask: BoolArray, limit: int = 12) -> str:
    """``"3, 17, 200"`` of the True indices of ``mask`` (``" ..."`` past ``limit``)."""
    idx = [int(i) for i in np.flatnonzero(mask)]
    return ", ".join(str(i) for i in idx[:limit]) + (" ..." if len(idx) > limit else "")


@dataclass(frozen=True)
class XrtReferences:
    """Averaged references (W, 2) counts, the per-pixel masks (W,), and the noise: dark read
    noise (counts, median pixel, per layer) and the flat's relative line-to-line noise (per
    layer) and of its average (``rel_noise``, the quality figure, worst layer)."""

    dark: FloatArray
    flat: FloatArray
    n_lines: int
    dead: BoolArray
    not_above_dark: BoolArray
    saturated: BoolArray
    noisy: BoolArray
    dark_noise_counts: FloatArray
    flat_rel_noise: FloatArray
    rel_noise: float

    @property
    def bad(self) -> BoolArray:
        out: BoolArray = self.dead | self.saturated
        return out

    def flat_for_calibrator(self) -> FloatArray:
        """The flat with saturated pixels set to their dark (so they are dead downstream)."""
        out = self.flat.copy()
        out[self.saturated] = self.dark[self.saturated]
        return out

    def calibrator(self) -> TransmissionCalibrator:
        return TransmissionCalibrator(self.dark, self.flat_for_calibrator())

    def guidance(self) -> list[str]:
        """What to do next, one message each."""
        out = []
        if self.saturated.any():
            out.append(f"{int(self.saturated.sum())} saturated pixels {pixel_list(self.saturated)}"
                       ": lower the tube current or the detector gain and re-take the flat")
        if self.not_above_dark.any():
            out.append(f"flat not above dark at pixels {pixel_list(self.not_above_dark)}: "
                       "dead detector channels (flagged dead); replace the board if they grow")
        weak = self.dead & ~self.not_above_dark
        if weak.any():
            out.append(f"weak pixels (flat - dark below the minimum) {pixel_list(weak)}: "
                       "flagged dead; check nothing lies on the belt there")
        if self.noisy.any():
            out.append(f"noisy pixels {pixel_list(self.noisy)}: kept, but their masses are "
                       "noisier; check the detector board's connector")
        if not out:
            out.append("no dead, saturated or noisy pixels: references are good for a shift")
        return out


def _stack(name: str, a: object) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise XrtReferenceError(f"{name} reference: expected N lines x W pixels x 2 layers, got "
                                f"shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = ~np.all(np.isfinite(arr), axis=(0, 2))
        raise XrtReferenceError(f"{name} reference: NaN/inf counts at pixels {pixel_list(bad)}"
                                ": re-take it")
    return arr


def xrt_references(dark_lines: object, flat_lines: object, full_scale: float = 65535.0,
                   min_response: float = 100.0, min_lines: int = 8,
                   max_bad_fraction: float = 0.05, noisy_factor: float = 4.0) -> XrtReferences:
    """Average and check N dark and N flat lines (N x W x 2 raw counts; see the module
    docstring). Raises :class:`XrtReferenceError` for mis-shaped or non-finite takes, fewer
    than ``min_lines`` lines in either, a flat darker than the dark (swapped, tube off), or
    more than ``max_bad_fraction`` of the pixels dead or saturated (naming them)."""
    d = _stack("dark", dark_lines)
    f = _stack("flat", flat_lines)
    if d.shape[1:] != f.shape[1:]:
        raise XrtReferenceError(f"dark lines are W x layers = {d.shape[1:]} but flat lines "
                                f"{f.shape[1:]}: take both with the same detector settings")
    n = min(d.shape[0], f.shape[0])
    if n < min_lines:
        raise XrtReferenceError(f"{d.shape[0]} dark and {f.shape[0]} flat lines, need >= "
                                f"{min_lines} of each: capture {min_lines - n} more")
    dark, flat = d.mean(axis=0), f.mean(axis=0)
    resp = flat - dark
    w = dark.shape[0]
    if float(np.median(resp)) <= 0:
        raise XrtReferenceError(
            f"flat reference not above the dark (median flat - dark = {np.median(resp):.1f} "
            "counts): is the tube on for the flat take and off for the dark? (swapped?)")
    saturated = np.any(f >= full_scale, axis=(0, 2))
    not_above = np.any(resp <= 0, axis=1)
    dead = np.any(resp < min_response, axis=1) & ~saturated
    for mask, what in ((saturated, "saturated"), (dead, "dead (flat - dark < "
                                                        f"{min_response:g} counts)")):
        if mask.mean() > max_bad_fraction:
            raise XrtReferenceError(
                f"{int(mask.sum())} of {w} pixels {what}: {pixel_list(mask)}; beyond "
                f"{max_bad_fraction:.0%} the references are not usable: check the tube, the "
                "detector gain and that the belt is empty, then re-take both")
    sd_d, sd_f = d.std(axis=0, ddof=1), f.std(axis=0, ddof=1)
    good = ~(dead | saturated)
    med_d = np.median(sd_d[good], axis=0) if good.any() else np.ones(2)
    med_f = np.median(sd_f[good], axis=0) if good.any() else np.ones(2)
    noisy = (np.any(sd_d > noisy_factor * np.maximum(med_d, 1e-9), axis=1)
             | np.any(sd_f > noisy_factor * np.maximum(med_f, 1e-9), axis=1)) & good
    med_resp = np.median(resp[good], axis=0) if good.any() else np.ones(2)
    flat_rel = med_f / np.maximum(med_resp, 1e-9)
    rel = float(np.max(flat_rel) / np.sqrt(f.shape[0]))
    return XrtReferences(dark, flat, n, dead, not_above, saturated, noisy, med_d, flat_rel, rel)


def split_takes(raw: NDArray[np.floating], min_response: float = 100.0,
                object_drop: float = 0.03, guard_lines: int = 3
                ) -> tuple[BoolArray, BoolArray, BoolArray]:
    """Masks (N,) of the tube-off, the empty-belt and the live lines in a recording of raw
    lines (N, W, 2) taken as: tube off, then tube on with the belt empty, then anything. A
    line is tube-off when its median high-layer count is in the lowest fifth of the range;
    empty-belt when live and no pixel's high-layer transmission (against the per-pixel median
    of the live lines) drops by more than ``object_drop``, ``guard_lines`` lines from any
    object. Raises :class:`XrtReferenceError` when either take is missing."""
    r = np.asarray(raw, dtype=np.float64)
    if r.ndim != 3 or r.shape[-1] != 2 or r.shape[0] < 2:
        raise XrtReferenceError(f"raw lines: expected N >= 2 lines x W pixels x 2 layers, got "
                                f"shape {r.shape}")
    m = np.median(r[..., 1], axis=1)
    lo, hi = float(np.percentile(m, 1)), float(np.percentile(m, 99))
    dark = m < lo + 0.2 * (hi - lo)
    # tube-off lines sit near the dark level, far below the flat (not a few % under it)
    if hi - lo < max(min_response, 0.5 * hi) or not dark.any() or dark.all():
        raise XrtReferenceError("the recording has no tube-off lines, or no lines with the "
                                "tube on: record a few seconds with the tube off first")
    d = r[dark].mean(axis=0)
    live = ~dark
    resp = np.median(r[live], axis=0) - d
    ok = resp[:, 1] >= min_response
    t = (r[live][:, ok, 1] - d[ok, 1]) / resp[ok, 1]
    obj = np.zeros(r.shape[0], dtype=bool)
    obj[np.flatnonzero(live)] = np.any(t < 1.0 - object_drop, axis=1)
    near = np.convolve(obj.astype(float), np.ones(2 * guard_lines + 1), mode="same") > 0
    flat = live & ~near
    if not flat.any():
        raise XrtReferenceError("no empty-belt lines in the recording: run the belt empty "
                                "with the tube on before the plates")
    return dark, flat, live
