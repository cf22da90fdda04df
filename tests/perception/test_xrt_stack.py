"""Another object inside one X-ray view (:mod:`perception.xrt.stack`) and a material read
behind another's layer (:class:`perception.xrt.physics.LayeredTable`), on cells computed
from the scanner's physics with counting noise."""

from __future__ import annotations

import numpy as np
import pytest

from perception.xrt import AttenuationTable, XrtDataError, XrtSetup, bulk_attenuation
from perception.xrt.errors import XrtSetupError
from perception.xrt.physics import LayeredTable, log_attenuation
from perception.xrt.stack import foreign_region

SETUP = XrtSetup()
PLASTIC = bulk_attenuation({"Br": 0.01}, "C8H8", SETUP)
STEEL = bulk_attenuation({"Fe": 0.7, "Cr": 0.18, "Ni": 0.1}, "C", SETUP)
NOISE = 0.0033


def _cells(rho_plastic: np.ndarray, rho_steel: np.ndarray, seed: int = 1
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a_low, a_high, rows, cols) of a grid of cells behind the given mass thicknesses."""
    mu = rho_plastic.reshape(-1)[:, None] * PLASTIC + rho_steel.reshape(-1)[:, None] * STEEL
    a = log_attenuation(SETUP, mu, np.ones(1))      # both layers along each ray
    rng = np.random.default_rng(seed)
    a = a + NOISE * np.exp(a / 2) * rng.standard_normal(a.shape)
    rows, cols = np.indices(rho_plastic.shape)
    return a[:, 0], a[:, 1], rows.reshape(-1), cols.reshape(-1)


def test_a_plate_hidden_under_a_plastic_box_is_found() -> None:
    board = np.full((60, 90), 1.2)            # g/cm²: a plastic box lying flat
    steel = np.zeros_like(board)
    steel[20:40, 30:55] = 0.6                 # a steel plate under it (0.8 mm), hidden whole
    lo, hi, r, c = _cells(board, steel)
    table = AttenuationTable(SETUP, PLASTIC)
    reg = foreign_region(lo, hi, r, c, np.ones(lo.size, bool), table, NOISE)
    assert reg is not None
    truth = steel.reshape(-1) > 0
    iou = np.count_nonzero(reg.cells & truth) / np.count_nonzero(reg.cells | truth)
    assert iou > 0.9, iou
    assert np.array_equal(reg.stacked, reg.cells)
    assert abs(reg.own_rho_t / 1.2 - 1) < 0.02
    # the stacked cells read behind the plastic layer give the steel back
    behind = LayeredTable(SETUP, STEEL, PLASTIC, reg.own_rho_t)
    rho = behind.rho_t(hi[truth])
    assert abs(float(np.median(rho)) / 0.6 - 1) < 0.03


@pytest.mark.parametrize("shape", ["plate", "lump"])
def test_an_object_of_one_material_is_not_split(shape: str) -> None:
    """A flat plate, and a lump whose thickness runs from its rim to twice its median at the
    centre (a thickness profile of one material is no second object)."""
    rows, cols = np.indices((50, 50))
    if shape == "plate":
        rho = np.full((50, 50), 2.0)
    else:
        r2 = ((rows - 24.5) ** 2 + (cols - 24.5) ** 2) / 25.0**2
        rho = np.where(r2 < 1, 6.0 * np.sqrt(np.clip(1 - r2, 0, 1)), 0.0)
    keep = rho.reshape(-1) > 0
    lo, hi, r, c = _cells(rho, np.zeros_like(rho), seed=4)
    table = AttenuationTable(SETUP, STEEL)
    mat_lo, mat_hi = _cells(np.zeros_like(rho), rho / 3.0, seed=4)[:2]   # steel itself
    assert foreign_region(mat_lo[keep], mat_hi[keep], r[keep], c[keep], np.ones(keep.sum(), bool),
                          table, NOISE) is None
    assert foreign_region(lo[keep], hi[keep], r[keep], c[keep], np.ones(keep.sum(), bool),
                          AttenuationTable(SETUP, PLASTIC), NOISE) is None


def test_layered_table_reads_the_layer_alone_at_zero() -> None:
    t = LayeredTable(SETUP, STEEL, PLASTIC, 1.5)
    layer = log_attenuation(SETUP, PLASTIC, np.array(1.5))
    assert abs(float(t.a_high(0.0)) - float(layer[1])) < 1e-9
    assert abs(float(t.a_low(0.0)) - float(layer[0])) < 1e-9
    assert float(t.rho_t(np.array([0.9 * float(layer[1])]))[0]) == 0.0
    with pytest.raises(XrtSetupError, match="layer"):
        LayeredTable(SETUP, STEEL, PLASTIC[:-1], 1.0)
    with pytest.raises(XrtSetupError, match="layer"):
        LayeredTable(SETUP, STEEL, PLASTIC, -1.0)


def test_foreign_region_rejects_mismatched_cells() -> None:
    table = AttenuationTable(SETUP, PLASTIC)
    with pytest.raises(XrtDataError, match="expected equal"):
        foreign_region(np.ones(60), np.ones(60), np.zeros(60, np.int64), np.zeros(59, np.int64),
                       np.ones(60, bool), table, NOISE)
