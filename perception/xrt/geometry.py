"""Where an X-ray object lies and how its cells map onto the belt, from the fan-beam geometry.

The source is ``H`` above the belt, the detector line ``d`` under it. A detector pixel at
across-belt position ``y_d`` sees belt level at ``y = y_d H / (H + d)`` (the fan's
magnification) along a ray at ``cos θ = (H + d) / sqrt((H + d)² + y_d²)`` to the vertical;
along the belt a cell is one encoder step long (the line scan moves the object, the fan does
not spread that way). Centres are weighted by the high-layer attenuation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.xrt.segment import XrtBlob

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BlobGeometry:
    """An object's encoder position and across-belt centre (m), its extent along and across
    the belt, one cell's horizontal area at belt level (m²), and per cell: the ray's cos θ,
    the encoder offset from the centre and the across-belt position at belt level."""

    position_m: float
    y_m: float
    length_m: float
    width_m: float
    cell_area_m2: float
    cos_theta: FloatArray
    cell_dx_m: FloatArray
    cell_y_m: FloatArray


def blob_geometry(blob: XrtBlob, y0_m: float, pitch_m: float, source_height_m: float,
                  detector_depth_m: float) -> BlobGeometry:
    """The geometry of ``blob`` on a detector line whose pixel 0 lies at ``y0_m`` with
    ``pitch_m`` spacing (see the module docstring)."""
    h, d = source_height_m, detector_depth_m
    y_det = y0_m + pitch_m * blob.cols.astype(np.float64)
    mag = h / (h + d)
    y = y_det * mag
    w = np.maximum(blob.a_high, 0.0) + 1e-9
    centre = float(np.average(blob.positions_m, weights=w))
    return BlobGeometry(
        position_m=centre, y_m=float(np.average(y, weights=w)),
        length_m=float(np.ptp(blob.positions_m) + blob.line_step_m),
        width_m=float(np.ptp(y) + pitch_m * mag),
        cell_area_m2=float(pitch_m * mag * blob.line_step_m),
        cos_theta=(h + d) / np.sqrt((h + d) ** 2 + y_det**2),
        cell_dx_m=blob.positions_m - centre, cell_y_m=y,
    )
