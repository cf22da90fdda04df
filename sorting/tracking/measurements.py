"""Measurements in belt-surface coordinates, as the tracker consumes them.

Every measurement carries ``s_m`` (position along the belt surface:
belt-frame x minus the encoder position at the stamp), ``y_m`` (across),
and an approximate footprint ``length_m`` × ``width_m`` for gating and
coverage. The payload says what the sensor found.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


Measurement = ClassMeasurement | VolumeMeasurement | XrfMeasurement | MaterialMeasurement
