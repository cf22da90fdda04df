"""Measured log-attenuations → what the nominal model would have seen, given a fitted set-up.

Downstream, masses are computed with the nominal :class:`XrtSetup`'s attenuation tables. When
the mass-scale calibration (:mod:`perception.xrt.setup_fit`) found that the scanner really
behaves like ``corrected``, each cell's ``(A_low, A_high)`` is mapped to the pair the nominal
set-up gives for the same material and mass thickness. The material is not known per cell, so
dual energy names it: for each element ``m`` of a family whose ratio ``A_low / A_high`` rises
with atomic number (C, Al, Ti, Fe, Cu, Zn), ``ρt_m`` solves ``A_high = A_high,m(ρt_m)`` on the
corrected set-up; the cell's ratio falls between two neighbours' ``A_low,m(ρt_m) / A_high``,
and the per-layer factors ``A_nominal,m(ρt_m) / A_corrected,m(ρt_m)`` are interpolated between
those two (clamped outside the family). Heavy elements whose K edge lies in the high layer's
band (W, Pb) fold back to low ratios and get the correction of a lighter element.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perception.xrt.errors import XrtDataError
from perception.xrt.physics import AttenuationTable, XrtSetup, bulk_attenuation

FloatArray = NDArray[np.float64]
#: elements whose A_low / A_high rises monotonically with Z at every A_high in range
FAMILY = ("C", "Al", "Ti", "Fe", "Cu", "Zn")


class AttenuationRemap:
    """Maps measured ``(A_low, A_high)`` of a scanner behaving like ``corrected`` to those of
    ``nominal`` (see the module docstring)."""

    def __init__(self, nominal: XrtSetup, corrected: XrtSetup) -> None:
        self.nominal = nominal
        self.corrected = corrected
        self._tables = [(AttenuationTable(corrected, bulk_attenuation({el: 1.0}, "C", corrected)),
                         AttenuationTable(nominal, bulk_attenuation({el: 1.0}, "C", nominal)))
                        for el in FAMILY]

    def _factors(self, a_high: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per family member (M, n): ratio A_low/A_high, low-layer factor, high-layer factor."""
        ratio, k_low, k_high = [], [], []
        a = np.maximum(a_high, 1e-6)
        for cor, nom in self._tables:
            rt = cor.rho_t(a)
            lo_c = np.maximum(cor.a_low(rt), 1e-9)
            ratio.append(lo_c / a)
            k_low.append(nom.a_low(rt) / lo_c)
            k_high.append(nom.a_high(rt) / np.maximum(cor.a_high(rt), 1e-9))
        # at vanishing A the tables' ratios are their zero-thickness slopes
        return np.array(ratio), np.array(k_low), np.array(k_high)

    def apply(self, a_low: NDArray[np.floating], a_high: NDArray[np.floating]
              ) -> tuple[FloatArray, FloatArray]:
        """Remapped ``(a_low, a_high)``, same shape as the inputs. Raises
        :class:`XrtDataError` for shapes that differ or non-finite values."""
        lo = np.asarray(a_low, dtype=np.float64)
        hi = np.asarray(a_high, dtype=np.float64)
        if lo.shape != hi.shape:
            raise XrtDataError(f"a_low {lo.shape} and a_high {hi.shape}: expected equal shapes")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise XrtDataError("remap: non-finite log-attenuation")
        flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
        ratio, k_low, k_high = self._factors(flat_hi)
        r = flat_lo / np.maximum(flat_hi, 1e-6)
        # below the first member / above the last: clamp to it
        w_low = np.where(r <= ratio[0], k_low[0], k_low[-1])
        w_high = np.where(r <= ratio[0], k_high[0], k_high[-1])
        for m in range(len(FAMILY) - 1):
            r0, r1 = ratio[m], ratio[m + 1]
            inside = (r > r0) & (r <= r1)
            t = np.clip((r - r0) / np.maximum(r1 - r0, 1e-12), 0.0, 1.0)
            w_low = np.where(inside, (1 - t) * k_low[m] + t * k_low[m + 1], w_low)
            w_high = np.where(inside, (1 - t) * k_high[m] + t * k_high[m + 1], w_high)
        return (flat_lo * w_low).reshape(lo.shape), (flat_hi * w_high).reshape(hi.shape)
