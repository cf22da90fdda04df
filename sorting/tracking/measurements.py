"""Measurements in belt-surface coordinates, as the tracker consumes them.

Every measurement carries ``s_m`` (position along the belt surface:
belt-frame x minus the encoder position at the stamp), ``y_m`` (across),
and an approximate footprint ``length_m`` × ``width_m`` for gating and
coverage. The payload says what the sensor found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ClassMeasurement:
    """A camera detection: class name and score."""

    t_ns: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    class_name: str
    score: float
    truncated: bool = False    # the box touches the image border: a partial view


@dataclass(frozen=True)
class VolumeMeasurement:
    """A 3D blob: volume ± u (m³), height (m), grasp point (belt-surface s, y, z)."""

    t_ns: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    volume_m3: float
    volume_u_m3: float
    height_m: float
    grasp_s_m: float = 0.0
    grasp_y_m: float = 0.0
    grasp_z_m: float = 0.0
    truncated: bool = False    # touches the edge of the sensor's view: partial object


@dataclass(frozen=True)
class XrfMeasurement:
    """An XRF spot: composition (fractions) ± u of what lay under a circular spot."""

    t_ns: int
    s_m: float
    y_m: float
    radius_m: float
    fractions: dict[str, float]
    uncertainties: dict[str, float]
    lod: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MaterialMeasurement:
    """Material votes from the spectral classifier over an object's footprint."""

    t_ns: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    votes: dict[str, float]


@dataclass(frozen=True, eq=False)
class XrtLayer:
    """Another object's layer over (or under) some cells of a view: its bulk attenuation
    ``mu`` (cm²/g on the scanner's energy grid), its mass thickness ``rho_t`` (g/cm²) and
    which cells it covers."""

    mu: NDArray[np.float64]
    rho_t: float
    cells: NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class XrtMeasurement:
    """An object seen through by X-ray transmission: every cell's log-attenuation of both
    layers, its ray's angle to the vertical and its position on the belt surface (``cell_s_m``,
    ``cell_y_m``); the cell's horizontal area at belt level and the source height (a cell at
    height z covers ``(H - z)/H`` of it). ``shared``: the cells are this object's part of a
    view that held several; ``layer``: another object lies over some of them."""

    t_ns: int
    s_m: float
    y_m: float
    length_m: float
    width_m: float
    cell_area_m2: float
    source_height_m: float
    noise_a_high: float
    a_low: NDArray[np.float64]
    a_high: NDArray[np.float64]
    cos_theta: NDArray[np.float64]
    opaque_cells: int = 0
    truncated: bool = False
    cell_s_m: NDArray[np.float64] | None = None
    cell_y_m: NDArray[np.float64] | None = None
    shared: bool = False
    #: another object's layer on some of the cells (an object found lying under a track's)
    layer: XrtLayer | None = None

    @property
    def opaque_share(self) -> float:
        return self.opaque_cells / self.a_high.size if self.a_high.size else 0.0


Measurement = (ClassMeasurement | VolumeMeasurement | XrfMeasurement | MaterialMeasurement
               | XrtMeasurement)
