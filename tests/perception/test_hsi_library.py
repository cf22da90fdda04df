"""The spectral library: catalog coverage, regeneration, agreement with measured PVC."""

from __future__ import annotations

import numpy as np

from perception.catalog import load_catalog
from perception.hsi.library import hsi_root, load_library, load_reference
from perception.hsi.synth import LIBRARY_GRID_NM, load_features, synthesize


def test_library_covers_the_catalog_and_regenerates_exactly() -> None:
    lib = load_library()
    cat = load_catalog()
    for name, spec in cat.materials.items():
        assert lib.labels[lib.index(name)] == spec.hsi_id
    spectra = synthesize(load_features(hsi_root() / "features.yaml"))
    for name in lib.names:
        # the CSV holds 5 decimals
        np.testing.assert_allclose(lib.spectrum(name), spectra[name], atol=6e-6)
    assert np.array_equal(lib.wavelengths_nm, LIBRARY_GRID_NM)


def _minimum_near(wl: np.ndarray, r: np.ndarray, centre: float, half: float = 40.0) -> float:
    m = (wl > centre - half) & (wl < centre + half)
    return float(wl[m][np.argmin(r[m])])


def test_synthetic_pvc_absorptions_sit_where_measured_pvc_has_them() -> None:
    lib = load_library()
    wl, measured = load_reference("pvc_white")
    synth = np.interp(wl, lib.wavelengths_nm, lib.spectrum("pvc"))
    for centre in (1195.0, 1720.0, 2310.0):
        # 5 nm grid, bands tens of nm wide: minima within two grid steps
        assert abs(_minimum_near(wl, measured, centre) - _minimum_near(wl, synth, centre)) <= 10
    # carbon-black plastic: as dark and flat as the measured black PVC (2-7 %)
    wl_b, black = load_reference("pvc_black")
    band = (wl_b >= 900) & (wl_b <= 1700)
    ours = np.interp(wl_b[band], lib.wavelengths_nm, lib.spectrum("carbon_black_plastic"))
    assert abs(ours.mean() - black[band].mean()) < 0.02 and ours.max() < 0.07
