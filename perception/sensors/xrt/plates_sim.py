"""Simulated reference plates for the XRT mass-scale calibration, and a scan of them.

A step-wedge set as XRT sorter makers use: square plates of aluminium, copper and steel of
several thicknesses, laid flat one after another along the belt centre line and moved under
the simulated scanner one pixel pitch per line. What they weigh and their face area are what
an engineer would note from a balance and a ruler (:attr:`SimPlate.mass_g`, ``area_cm2``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from perception.sensors.xrt.sim import XrtLineSim
from perception.xrt.errors import XrtSetupError

FloatArray = NDArray[np.float64]
_LOOK = Appearance((0.7, 0.7, 0.7), pattern="metal", specular=0.6)


@dataclass(frozen=True)
class SimPlate:
    """A square plate: name, composition (mass fractions), density (kg/m³), thickness (mm),
    side (m)."""

    name: str
    composition: dict[str, float]
    density_kg_m3: float
    thickness_mm: float
    side_m: float = 0.06

    @property
    def area_cm2(self) -> float:
        return self.side_m**2 * 1e4

    @property
    def mass_g(self) -> float:
        return self.density_kg_m3 * self.side_m**2 * self.thickness_mm * 1e-3 * 1e3


#: the default set: 4 aluminium, 4 copper plates and one steel plate
SIM_PLATES: tuple[SimPlate, ...] = (
    *(SimPlate(f"Al {t:g} mm", {"Al": 1.0}, 2700.0, t) for t in (2.0, 5.0, 10.0, 20.0)),
    *(SimPlate(f"Cu {t:g} mm", {"Cu": 1.0}, 8960.0, t) for t in (0.5, 1.0, 2.0, 4.0)),
    SimPlate("steel 3 mm", {"Fe": 0.985, "Mn": 0.015}, 7870.0, 3.0),
)


def plate_objects(plates: tuple[SimPlate, ...], gap_m: float = 0.05) -> list[SceneObject]:
    """The plates as scene objects on the belt centre line, the first one's centre at x = 0,
    each following the last by its side plus ``gap_m``."""
    out: list[SceneObject] = []
    x = 0.0
    for k, p in enumerate(plates):
        if p.thickness_mm <= 0 or p.side_m <= 0 or p.density_kg_m3 <= 0:
            raise XrtSetupError(f"plate {p.name!r}: thickness, side and density must be > 0")
        out.append(SceneObject(k + 1, "reference_plate", "calibration", ShapeKind.BOX,
                               (p.side_m, p.side_m, p.thickness_mm * 1e-3), x, 0.0, 0.0,
                               "metal", p.density_kg_m3, dict(p.composition), _LOOK))
        x -= p.side_m + gap_m
    return out


def scan_objects(sim: XrtLineSim, objects: list[SceneObject], lead_m: float = 0.05
                 ) -> FloatArray:
    """Raw counts (N, W, 2) of ``objects`` moving under ``sim``'s line, one pixel pitch per
    line, from before the first reaches it until the last has passed."""
    g = sim.geometry
    step = g.pixel_pitch_m
    start = g.x_m - max(o.x_m + o.footprint_radius_m() for o in objects) - lead_m
    end = g.x_m - min(o.x_m - o.footprint_radius_m() for o in objects) + lead_m
    n = int(np.ceil((end - start) / step))
    lines = []
    for k in range(n):
        shift = start + k * step
        lines.append(sim.render([replace(o, x_m=o.x_m + shift) for o in objects]))
    return np.stack(lines)
