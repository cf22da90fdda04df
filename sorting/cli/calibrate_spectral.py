"""The two spectral calibrations behind ``crmsort calibrate hsi|xrf``.

- :func:`hsi_references`: average N dark and N white lines (N x W x B counts) of the
  hyperspectral line camera, check them (white above dark, saturated and dead pixels) and
  build the :class:`~perception.sensors.hsi.reflectance.ReflectanceCalibrator` they imply.
- :func:`xrf_energy`: find the known lines of a reference sample in a spectrum and fit the
  energy scale channel → keV (:func:`perception.xrf.calibrate.calibrate_from_lines`), with
  per-line residuals and 1-σ uncertainties of gain and offset.

Each raises a :class:`~calibration.errors.CalibrationError` subclass whose message says what
to do (check the lamp, close the shutter, put the reference sample in place ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xraylib
from numpy.typing import NDArray
from scipy.optimize import curve_fit

from calibration.errors import CalibrationError
from calibration.procedure_errors import PoorFitError, TooFewViewsError
from perception.sensors.hsi.errors import HsiError
from perception.sensors.hsi.reflectance import ReflectanceCalibrator
from perception.xrf.calibrate import EnergyCalibration, calibrate_from_lines, fit_calibration
from perception.xrf.errors import XrfError
from perception.xrf.lines import atomic_number, edge_kev
from perception.xrf.snip import snip_background
from perception.xrf.spectrum import Spectrum

FloatArray = NDArray[np.float64]


class HsiReferenceError(CalibrationError):
    """Dark / white references unusable: missing, mis-shaped, swapped, saturated, dead."""


class XrfReferenceError(CalibrationError):
    """The reference sample's lines are not in the spectrum (or the composition is unusable)."""


# -- hyperspectral dark and white references ---------------------------------------------------
@dataclass(frozen=True)
class HsiReferences:
    """Averaged references (W x B counts), the bad pixels and the noise of the averages.

    ``dead`` / ``saturated`` are (W,) masks; ``noise_dark`` / ``noise_white`` the standard
    error of the mean per band (median over pixels, counts, (B,)); ``rel_noise`` the
    median over bands of ``noise_white / (white - dark)`` (unitless).
    """

    dark: FloatArray
    white: FloatArray
    n_lines: int
    dead: NDArray[np.bool_]
    saturated: NDArray[np.bool_]
    noise_dark: FloatArray
    noise_white: FloatArray
    rel_noise: float
    calibrator: ReflectanceCalibrator

    @property
    def dead_columns(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.dead)]

    @property
    def saturated_columns(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.saturated)]

    def guidance(self) -> list[str]:
        """What to do next, one message each."""
        out = []
        if self.saturated.any():
            out.append(f"{int(self.saturated.sum())} saturated pixels at columns "
                       f"{_cols(self.saturated_columns)}: lower the exposure or the lamp "
                       "power and re-take the white reference")
        if self.dead.any():
            out.append(f"{int(self.dead.sum())} dead pixels at columns "
                       f"{_cols(self.dead_columns)}: their reflectance is flagged (NaN); clean "
                       "the lens / slit if they move, else map them out")
        if not out:
            out.append("no dead or saturated pixels: references are good for a shift")
        return out


def _cols(cols: list[int]) -> str:
    return ", ".join(str(c) for c in cols[:12]) + (" ..." if len(cols) > 12 else "")


def _stack(name: str, a: object, what_to_do: str) -> FloatArray:
    if a is None:
        raise HsiReferenceError(f"{name} reference missing: {what_to_do}")
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise HsiReferenceError(
            f"{name} reference: expected N lines x W pixels x B bands, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise HsiReferenceError(f"{name} reference has NaN/inf counts: re-take it")
    return arr


def hsi_references(
    dark_lines: object,
    white_lines: object,
    panel_reflectance: FloatArray,
    full_scale: float = 4095.0,
    min_response: float = 20.0,
    min_lines: int = 8,
    max_bad_fraction: float = 0.05,
) -> HsiReferences:
    """Average and validate N dark and N white lines (N x W x B raw counts).

    A pixel is *saturated* when any white line reaches ``full_scale`` in any band, *dead*
    when the averaged ``white - dark`` is below ``min_response`` counts in some band.
    Raises :class:`HsiReferenceError` (missing or mis-shaped frames, white darker than dark,
    more than ``max_bad_fraction`` bad pixels) and :class:`TooFewViewsError` (fewer than
    ``min_lines`` lines in either take), each saying what to do.
    """
    dark_s = _stack("dark", dark_lines, "close the shutter and capture the dark lines")
    white_s = _stack("white", white_lines,
                     "put the white panel under the line and capture the white lines")
    if dark_s.shape[1:] != white_s.shape[1:]:
        raise HsiReferenceError(
            f"dark lines are W x B = {dark_s.shape[1:]} but white lines {white_s.shape[1:]}: "
            "take both with the same camera settings (binning, band selection)"
        )
    n = min(dark_s.shape[0], white_s.shape[0])
    if n < min_lines:
        raise TooFewViewsError(
            f"{dark_s.shape[0]} dark and {white_s.shape[0]} white lines, need >= {min_lines} "
            f"of each: capture {min_lines - n} more"
        )
    dark = dark_s.mean(axis=0)
    white = white_s.mean(axis=0)
    resp = white - dark
    med = float(np.median(resp))
    if med <= 0:
        raise HsiReferenceError(
            f"white reference darker than the dark (median white - dark = {med:.1f} counts): "
            "check the lamp is on and the white panel is under the line, close the shutter "
            "for the dark take (references swapped?), then re-take both"
        )
    w = dark.shape[0]
    saturated = np.any(white_s >= full_scale, axis=(0, 2))
    dead = np.any(resp < min_response, axis=1) & ~saturated
    if saturated.mean() > max_bad_fraction:
        raise HsiReferenceError(
            f"white reference saturated in {int(saturated.sum())} of {w} pixels (full scale "
            f"{full_scale:g} counts): lower the exposure time or the lamp power and re-take it"
        )
    if dead.mean() > max_bad_fraction:
        raise HsiReferenceError(
            f"white not above the dark by {min_response:g} counts in {int(dead.sum())} of {w} "
            f"pixels (columns {_cols([int(i) for i in np.flatnonzero(dead)])}): check the lamp, "
            "that the panel covers the whole line and the shutter is open for the white take"
        )
    noise_d = np.median(dark_s.std(axis=0, ddof=1), axis=0) / np.sqrt(dark_s.shape[0])
    noise_w = np.median(white_s.std(axis=0, ddof=1), axis=0) / np.sqrt(white_s.shape[0])
    good = ~(dead | saturated)
    rel = float(np.median(noise_w / np.maximum(np.median(resp[good], axis=0), 1e-9)))
    # saturated pixels are made dead for the calibrator (their white is not a measurement)
    white_cal = white.copy()
    white_cal[saturated] = dark[saturated]
    try:
        cal = ReflectanceCalibrator(dark, white_cal, panel_reflectance, full_scale,
                                    min_response, max_dead_fraction=1.0)
    except HsiError as exc:
        raise HsiReferenceError(f"references rejected: {exc}") from None
    return HsiReferences(dark, white, n, dead, saturated,
                         noise_d, noise_w, rel, cal)


# -- XRF energy calibration --------------------------------------------------------------------
@dataclass(frozen=True)
class RefLine:
    """A known line of the reference: label (``"Fe Ka"``), intensity-weighted energy (keV)."""

    label: str
    energy_kev: float


def _weighted(z: int, names: Sequence[str]) -> float:
    es, ws = [], []
    for n in names:
        macro = getattr(xraylib, f"{n}_LINE")
        try:
            es.append(float(xraylib.LineEnergy(z, macro)))
            ws.append(float(xraylib.RadRate(z, macro)))
        except ValueError:
            continue
    return float(np.average(es, weights=ws))


def reference_lines(
    composition: Mapping[str, float], voltage_kv: float = 50.0,
    min_kev: float = 3.0, max_kev: float = 30.0, min_fraction: float = 0.01,
) -> list[RefLine]:
    """The main line of every element with mass fraction >= ``min_fraction``: Kα (Kα1/Kα2
    weighted by radiative rate) when the K edge is below 0.9 × ``voltage_kv``, else Lα;
    kept when within ``min_kev..max_kev``. Raises :class:`XrfReferenceError` for an unknown
    symbol or fewer than three lines (a line fit needs a spread of energies)."""
    out: list[RefLine] = []
    for sym, frac in composition.items():
        if frac < min_fraction:
            continue
        try:
            z = atomic_number(sym)
        except ValueError:
            raise XrfReferenceError(f"reference composition: {sym!r} is not an element") from None
        if edge_kev(z, "K") < 0.9 * voltage_kv:
            out.append(RefLine(f"{sym} Ka", _weighted(z, ("KL3", "KL2"))))
        else:
            out.append(RefLine(f"{sym} La", _weighted(z, ("L3M5", "L3M4"))))
    out = sorted((r for r in out if min_kev <= r.energy_kev <= max_kev),
                 key=lambda r: r.energy_kev)
    if len(out) < 3:
        raise XrfReferenceError(
            f"reference {dict(composition)} gives {len(out)} usable lines between {min_kev:g} "
            f"and {max_kev:g} keV, need >= 3 spread over the range: use a multi-element disc "
            "or a brass / steel standard"
        )
    return out


@dataclass(frozen=True)
class XrfEnergyResult:
    """The fitted scale with 1-σ uncertainties, per-line residuals (keV) and significances."""

    calibration: EnergyCalibration
    lines: list[RefLine]
    u_gain_kev_per_channel: float
    u_offset_kev: float
    significance: FloatArray
    nominal_gain_kev_per_channel: float
    nominal_offset_kev: float

    @property
    def gain_change(self) -> float:
        """Fitted gain / the spectrum's nominal gain - 1."""
        return self.calibration.gain_kev_per_channel / self.nominal_gain_kev_per_channel - 1.0


def _significance(spec: Spectrum, energy_kev: float, sigma_kev: float) -> float:
    """Net peak counts / sqrt(total) in ±2σ around the highest net channel within ±5σ of
    where ``spec``'s calibration puts ``energy_kev``."""
    g = spec.gain_kev_per_channel
    bg = snip_background(spec.counts, max(4, int(4 * sigma_kev / g)))
    net = spec.counts - bg
    c0 = spec.channel_of(energy_kev)
    half = max(2, round(5 * sigma_kev / g))
    lo, hi = max(0, int(c0) - half), min(spec.channels, int(c0) + half + 1)
    if hi - lo < 3:
        return 0.0
    peak = lo + int(np.argmax(net[lo:hi]))
    w = max(2, round(2 * sigma_kev / g))
    a, b = max(0, peak - w), min(spec.channels, peak + w + 1)
    n = float(net[a:b].sum())
    return n / float(np.sqrt(max(float(spec.counts[a:b].sum()), 1.0)))


def _gauss_centre(net: FloatArray, c0: float, sigma_ch: float) -> float:
    """Centre (channel) of a Gaussian + constant fitted over ±2.5σ around ``c0``; ``c0`` when
    the fit fails or moves more than σ."""
    half = max(3, round(2.5 * sigma_ch))
    c = round(c0)
    lo, hi = max(0, c - half), min(net.size, c + half + 1)
    x = np.arange(lo, hi, dtype=np.float64)
    y = net[lo:hi]

    def model(xx: FloatArray, a: float, mu: float, s: float, b: float) -> FloatArray:
        out: FloatArray = a * np.exp(-0.5 * ((xx - mu) / s) ** 2) + b
        return out

    try:
        p, _ = curve_fit(model, x, y, p0=(float(y.max()), c0, sigma_ch, 0.0),
                         sigma=np.sqrt(np.maximum(y, 1.0)), maxfev=2000)
    except (RuntimeError, ValueError):
        return c0
    mu = float(p[1])
    return mu if np.isfinite(mu) and abs(mu - c0) < sigma_ch else c0


def xrf_energy(
    spectrum: Spectrum,
    lines: Sequence[RefLine],
    sigma_kev: float = 0.07,
    min_significance: float = 10.0,
    max_rms_ev: float = 20.0,
) -> XrfEnergyResult:
    """Fit channel → keV from ``lines`` of the reference sample in ``spectrum``.

    ``spectrum`` carries the current (nominal) calibration, used to find each line within
    ±5σ. Raises :class:`XrfReferenceError` when a line's peak is below ``min_significance``
    (net / sqrt(total) counts) or not found, :class:`PoorFitError` when the RMS residual
    exceeds ``max_rms_ev``.
    """
    sig = np.array([_significance(spectrum, r.energy_kev, sigma_kev) for r in lines])
    weak = [f"{r.label} ({r.energy_kev:.3f} keV, {s:.1f})"
            for r, s in zip(lines, sig, strict=True) if s < min_significance]
    if weak:
        raise XrfReferenceError(
            f"{spectrum.source}: no clear peak (significance < {min_significance:g}) for "
            f"{', '.join(weak)}: put the reference sample in front of the head, check the "
            "tube is on and measure longer; if the peaks are far off, set a rough "
            "calibration first (--gain/--offset)"
        )
    try:
        rough = calibrate_from_lines(spectrum, [r.energy_kev for r in lines], sigma_kev)
        # refine each centroid by a Gaussian + constant fit to the net peak (the windowed
        # centroid is pulled by the low-energy tail and by where the window's edges fall)
        g = spectrum.gain_kev_per_channel
        net = spectrum.counts - snip_background(spectrum.counts, max(4, int(4 * sigma_kev / g)))
        chans = [_gauss_centre(net, c, sigma_kev / g) for c in rough.channels]
        cal = fit_calibration(chans, [r.energy_kev for r in lines])
    except XrfError as exc:
        raise XrfReferenceError(f"{spectrum.source}: {exc}: measure the reference again") from None
    ch = cal.channels
    dof = ch.size - 2
    s2 = float(np.sum(cal.residuals_kev**2)) / dof if dof > 0 else float("nan")
    x = np.column_stack([np.ones_like(ch), ch])
    cov = s2 * np.linalg.inv(x.T @ x)
    rms_ev = cal.rms_residual_kev * 1e3
    if rms_ev > max_rms_ev:
        worst = int(np.argmax(np.abs(cal.residuals_kev)))
        raise PoorFitError(
            f"energy fit RMS {rms_ev:.1f} eV > {max_rms_ev:g} eV (worst {lines[worst].label}: "
            f"{cal.residuals_kev[worst] * 1e3:+.1f} eV): is the composition right? an "
            "interfering element or a sum peak may sit on that line; drop it (--lines)"
        )
    return XrfEnergyResult(cal, list(lines), float(np.sqrt(cov[1, 1])), float(np.sqrt(cov[0, 0])),
                           sig, spectrum.gain_kev_per_channel, spectrum.offset_kev)
