"""An object's mass from its X-ray transmission cells, for an assumed bulk material.

Each cell's high-layer log-attenuation is inverted to the mass thickness along its ray
(:class:`perception.xrt.physics.AttenuationTable`); a ray at ``θ`` to the vertical crosses
``ρt / cos θ`` of a flat layer whose mass per horizontal area is ``ρt``, so

    m = Σ_cells ρt_ray(A_high) · cos θ · a_cell,

``a_cell`` the cell's horizontal area at the object's height. Noise: the bare-belt noise of
``A_high``, ``σ₀``, grows as ``σ₀ exp(A/2)`` where fewer photons get through (Poisson), and
propagates through ``dρt/dA``. With ``edges`` (:func:`perception.xrt.edges.step_edges`)
a rim cell read as a step holds ``f · ρt(A_full)`` instead. The material is the caller's
hypothesis (a class's bulk composition): how far a real object's attenuation departs from it
is the caller's term of the uncertainty, as is a cell area taken at the wrong height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrt.edges import StepEdges
from perception.xrt.errors import XrtDataError
from perception.xrt.physics import AttenuationTable


@dataclass(frozen=True)
class XrtMass:
    """Mass (kg) with its counting-noise u (kg, k=1), the share of opaque cells (a mass with
    opaque cells is a lower bound) and the number of cells."""

    mass_kg: float
    u_noise_kg: float
    opaque_share: float
    cells: int


def mass_from_cells(
    a_high: NDArray[np.floating],
    cos_theta: NDArray[np.floating],
    cell_area_m2: float,
    table: AttenuationTable,
    noise_a_high: float,
    opaque: NDArray[np.bool_] | None = None,
    edges: StepEdges | None = None,
) -> XrtMass:
    """Mass of the cells (see the module docstring). ``a_high`` and ``cos_theta`` are per
    cell; ``cell_area_m2`` > 0. Raises :class:`XrtDataError` on mismatched or non-finite
    input."""
    a = np.asarray(a_high, dtype=np.float64)
    c = np.asarray(cos_theta, dtype=np.float64)
    if a.shape != c.shape or a.ndim != 1:
        raise XrtDataError(f"a_high {a.shape} and cos_theta {c.shape}: expected equal 1-D")
    if not (np.all(np.isfinite(a)) and np.all((c > 0) & (c <= 1))):
        raise XrtDataError("a_high must be finite and cos_theta in (0, 1]")
    if not math.isfinite(cell_area_m2) or cell_area_m2 <= 0:
        raise XrtDataError(f"cell_area_m2 must be > 0, got {cell_area_m2}")
    if edges is not None and not a.shape == edges.coverage.shape == edges.a_full.shape:
        raise XrtDataError(f"edges {edges.coverage.shape} do not match a_high {a.shape}")
    area_cm2 = cell_area_m2 * 1e4
    sigma_a = max(noise_a_high, 0.0) * np.exp(np.maximum(a, 0.0) / 2)
    if edges is None:
        rho_ray, slope = table.rho_t(a), table.drho_da(a)
    else:
        # a step: f ρt(A_full), f = (1 − e^−A)/(1 − e^−A_full),
        # so d/dA = e^−A ρt(A_full)/(1 − e^−A_full)
        step = edges.coverage < 1.0
        full = table.rho_t(edges.a_full)
        rest = np.maximum(1.0 - np.exp(-edges.a_full), 1e-12)
        rho_ray = np.where(step, edges.coverage * full, table.rho_t(a))
        slope = np.where(step, np.exp(-a) * full / rest, table.drho_da(a))
    rho_t = rho_ray * c                                          # g/cm² per horizontal area
    u_cells = slope * sigma_a * c
    mass_g = float(rho_t.sum()) * area_cm2
    u_g = float(np.sqrt(np.sum(u_cells**2))) * area_cm2
    share = float(np.mean(opaque)) if opaque is not None and np.size(opaque) else 0.0
    return XrtMass(mass_g / 1000.0, u_g / 1000.0, share, int(a.size))
