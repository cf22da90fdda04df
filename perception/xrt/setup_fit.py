"""Mass-scale calibration of a DE-XRT scanner: fit how the real set-up departs from its model.

The attenuation model (:mod:`perception.xrt.physics`) predicts ``A_low``, ``A_high`` behind a
mass thickness from the nominal :class:`XrtSetup`. A real tube runs a few kV off its dial and
filters are never exactly their nominal thickness, which scales the model's spectra and so
every mass the line computes. Like XRT sorter makers do with step wedges, reference plates
of known material and areal density ``ρt = m / a`` (g/cm²) are passed under the scanner;
:func:`fit_setup_correction` finds the :class:`SetupCorrection` — tube voltage offset
``ΔkV``, tube-filter thickness factor ``f_filter``, inter-layer filter factor ``f_inter`` —
that minimises, over plates ``p`` and layers ``l``,

    Σ_p,l ( A_l(setup ⊕ correction, μ_p, ρt_p / cos θ_p) / A_l,measured,p − 1 )²

(relative residuals, so thin and thick plates weigh alike). The residual reported per plate is
the areal density the model infers from the measured ``A_high`` against the plate's known one,
in %, before (nominal set-up) and after (corrected). Three parameters need plates of at least
two materials (a light and a heavy one) and more plates than parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from perception.xrt.errors import XrtFitError, XrtPlateError, XrtSetupError
from perception.xrt.physics import AttenuationTable, XrtSetup, bulk_attenuation, log_attenuation

FloatArray = NDArray[np.float64]
#: bounds of the fit: ±60 kV, filters between 0.2x and 5x their nominal thickness
KV_BOUND = 60.0
SCALE_BOUNDS = (0.2, 5.0)


@dataclass(frozen=True)
class SetupCorrection:
    """How a scanner departs from its nominal set-up: tube voltage offset (kV), tube-filter and
    inter-layer-filter thickness factors (1 = nominal). Raises :class:`XrtSetupError` for
    non-finite values or factors <= 0."""

    tube_kv_delta: float = 0.0
    filter_scale: float = 1.0
    interlayer_scale: float = 1.0

    def __post_init__(self) -> None:
        vals = (self.tube_kv_delta, self.filter_scale, self.interlayer_scale)
        if not all(math.isfinite(v) for v in vals) or min(vals[1:]) <= 0:
            raise XrtSetupError(f"set-up correction: expected finite values and factors > 0, "
                                f"got ΔkV {vals[0]}, filter x{vals[1]}, interlayer x{vals[2]}")

    @property
    def is_identity(self) -> bool:
        return self == SetupCorrection()

    def apply(self, setup: XrtSetup) -> XrtSetup:
        """``setup`` with the correction applied (raises :class:`XrtSetupError` when the
        voltage leaves the model's range)."""
        if self.is_identity:
            return setup
        return dataclasses.replace(
            setup, tube_kv=setup.tube_kv + self.tube_kv_delta,
            tube_filter=dataclasses.replace(
                setup.tube_filter, thickness_mm=setup.tube_filter.thickness_mm * self.filter_scale),
            interlayer=dataclasses.replace(
                setup.interlayer,
                thickness_mm=setup.interlayer.thickness_mm * self.interlayer_scale))


@dataclass(frozen=True)
class PlateReading:
    """A reference plate as measured: its name, bulk composition (element mass fractions, the
    rest filled by ``rest``), known areal density (g/cm² = mass / area), and the mean
    measured log-attenuations of its interior cells, their mean ray cos θ and cell count."""

    name: str
    composition: Mapping[str, float]
    areal_density_g_cm2: float
    a_low: float
    a_high: float
    cos_theta: float = 1.0
    cells: int = 0
    rest: str = "C"

    def __post_init__(self) -> None:
        vals = (self.areal_density_g_cm2, self.a_low, self.a_high, self.cos_theta)
        if not all(math.isfinite(v) for v in vals):
            raise XrtPlateError(f"plate {self.name!r}: non-finite reading {vals}")
        if self.areal_density_g_cm2 <= 0 or not 0 < self.cos_theta <= 1:
            raise XrtPlateError(f"plate {self.name!r}: areal density must be > 0 g/cm² and "
                                f"cos θ in (0, 1], got {vals[0]}, {vals[3]}")
        if self.a_high <= 0 or self.a_low <= 0:
            raise XrtPlateError(f"plate {self.name!r}: log-attenuation {self.a_low:.4f}, "
                                f"{self.a_high:.4f} not > 0: is the plate in the beam?")


@dataclass(frozen=True)
class SetupFit:
    """The fitted correction, the corrected set-up, per-plate areal-density errors (%, inferred
    vs known) with the nominal and with the corrected set-up, and the RMS relative residual of
    the log-attenuations after the fit."""

    correction: SetupCorrection
    setup: XrtSetup
    plates: tuple[PlateReading, ...]
    error_before_pct: FloatArray
    error_after_pct: FloatArray
    rms_rel_residual: float

    @property
    def max_error_before_pct(self) -> float:
        return float(np.max(np.abs(self.error_before_pct)))

    @property
    def max_error_after_pct(self) -> float:
        return float(np.max(np.abs(self.error_after_pct)))


def predicted_attenuation(setup: XrtSetup, plate: PlateReading) -> FloatArray:
    """``(A_low, A_high)`` the model of ``setup`` predicts behind ``plate``."""
    mu = bulk_attenuation(plate.composition, plate.rest, setup)
    rt = np.array([plate.areal_density_g_cm2 / plate.cos_theta])
    out: FloatArray = log_attenuation(setup, mu, rt)[0]
    return out


def areal_density_error_pct(setup: XrtSetup, plate: PlateReading) -> float:
    """(areal density the model of ``setup`` infers from the plate's ``A_high``) / known − 1,
    in %."""
    table = AttenuationTable(setup, bulk_attenuation(plate.composition, plate.rest, setup))
    rho_t = float(table.rho_t(np.array([plate.a_high]))[0]) * plate.cos_theta
    return 100.0 * (rho_t / plate.areal_density_g_cm2 - 1.0)


def _check_plates(plates: Sequence[PlateReading]) -> None:
    if len(plates) < 4:
        raise XrtPlateError(f"{len(plates)} reference plates, need >= 4 (three parameters are "
                            "fitted): pass more plates, of at least two materials")
    materials = {tuple(sorted(p.composition.items())) for p in plates}
    if len(materials) < 2:
        raise XrtPlateError("all reference plates are of one material: the voltage and the "
                            "filters cannot be told apart; add plates of a second material "
                            "(e.g. copper next to aluminium)")


def fit_setup_correction(plates: Sequence[PlateReading], nominal: XrtSetup | None = None,
                         max_rms_rel: float = 0.02) -> SetupFit:
    """Fit the :class:`SetupCorrection` of ``nominal`` to the plate readings (see the module
    docstring). Raises :class:`XrtPlateError` for fewer than 4 plates or a single material,
    :class:`XrtFitError` when the fit fails or its RMS relative residual exceeds
    ``max_rms_rel``."""
    _check_plates(plates)
    base = nominal or XrtSetup()
    meas = np.array([[p.a_low, p.a_high] for p in plates])

    def residuals(x: FloatArray) -> FloatArray:
        setup = SetupCorrection(float(x[0]), float(x[1]), float(x[2])).apply(base)
        pred = np.array([predicted_attenuation(setup, p) for p in plates])
        out: FloatArray = (pred / meas - 1.0).ravel()
        return out

    lo_kv = max(-KV_BOUND, 21.0 + base.e_min_kev + base.e_step_kev - base.tube_kv)
    bounds = ([lo_kv, SCALE_BOUNDS[0], SCALE_BOUNDS[0]],
              [min(KV_BOUND, 600.0 - base.tube_kv), SCALE_BOUNDS[1], SCALE_BOUNDS[1]])
    try:
        res = least_squares(residuals, np.array([0.0, 1.0, 1.0]), bounds=bounds,
                            diff_step=1e-3, x_scale=np.array([5.0, 0.1, 0.1]))
    except (ValueError, XrtSetupError) as exc:
        raise XrtFitError(f"mass-scale fit failed: {exc}") from None
    if not res.success:
        raise XrtFitError(f"mass-scale fit did not converge: {res.message}")
    corr = SetupCorrection(float(res.x[0]), float(res.x[1]), float(res.x[2]))
    setup = corr.apply(base)
    rms = float(np.sqrt(np.mean(res.fun**2)))
    before = np.array([areal_density_error_pct(base, p) for p in plates])
    after = np.array([areal_density_error_pct(setup, p) for p in plates])
    if rms > max_rms_rel:
        worst = int(np.argmax(np.abs(after)))
        raise XrtFitError(
            f"mass-scale fit: RMS relative residual {rms:.2%} > {max_rms_rel:.2%} (worst plate "
            f"{plates[worst].name}: {after[worst]:+.1f} %): check the plates' materials and "
            "areal densities, and that each passed flat and whole under the scanner")
    return SetupFit(corr, setup, tuple(plates), before, after, rms)
