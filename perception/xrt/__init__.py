"""Dual-energy X-ray transmission (DE-XRT): physics, line-scan segmentation, mass per object.

A researcher can use it without a line::

    from perception.xrt import XrtSetup, AttenuationTable, bulk_attenuation
    table = AttenuationTable(XrtSetup(), bulk_attenuation({"Cu": 0.2}, "C5H8O2"))
    table.rho_t(0.8)   # g/cm^2 of that material behind a high-energy log-attenuation of 0.8
"""

from __future__ import annotations

from perception.xrt.decompose import (
    TwoMaterial,
    attenuation_ratio,
    decompose_two,
    separability,
)
from perception.xrt.edges import StepEdges, cell_grid, step_edges
from perception.xrt.errors import XrtDataError, XrtError, XrtSetupError
from perception.xrt.geometry import BlobGeometry, blob_geometry
from perception.xrt.mass import XrtMass, mass_from_cells
from perception.xrt.physics import (
    AttenuationTable,
    XrtSetup,
    bulk_attenuation,
    rest_formula,
)
from perception.xrt.segment import LineSegmenter, XrtBlob
from perception.xrt.transmission import TransmissionCalibrator, log_attenuation_of

__all__ = [
    "AttenuationTable",
    "BlobGeometry",
    "LineSegmenter",
    "StepEdges",
    "TransmissionCalibrator",
    "TwoMaterial",
    "XrtBlob",
    "XrtDataError",
    "XrtError",
    "XrtMass",
    "XrtSetup",
    "XrtSetupError",
    "attenuation_ratio",
    "blob_geometry",
    "bulk_attenuation",
    "cell_grid",
    "decompose_two",
    "log_attenuation_of",
    "mass_from_cells",
    "rest_formula",
    "separability",
    "step_edges",
]
