"""XRF analysis: set-up, FP simulator, spectrum I/O, calibration, SNIP, fit, quantification.

Typical use::

    from perception.xrf import load_setup, read_spectrum, Quantifier
    setup = load_setup()
    result = Quantifier(setup).quantify(read_spectrum("sample.mca"))
    for e in result.elements:
        print(e.symbol, e.mass_fraction, e.mass_fraction_u, e.lod)
"""

from __future__ import annotations

from perception.xrf.balance import Balance
from perception.xrf.calibrate import EnergyCalibration, calibrate_from_lines, fit_calibration
from perception.xrf.errors import (
    CompositionError,
    FitError,
    QuantificationError,
    SetupError,
    SpectrumError,
    XrfError,
)
from perception.xrf.fit import FitConfig, FitResult, LineFitter, fit_spectrum
from perception.xrf.lines import DEFAULT_ANALYTES
from perception.xrf.physics import SpectrumSimulator, sample_spectrum
from perception.xrf.quantify import (
    ElementResult,
    Quantifier,
    QuantResult,
    Standard,
    StandardCheck,
    quantify,
)
from perception.xrf.setup import XrfSetup, load_setup
from perception.xrf.snip import snip_background
from perception.xrf.source import SimulatedSource, simulator_source
from perception.xrf.spectrum import Spectrum, read_spectrum, write_spectrum

__all__ = [
    "DEFAULT_ANALYTES", "Balance", "CompositionError", "ElementResult", "EnergyCalibration",
    "FitConfig", "FitError", "FitResult", "LineFitter", "QuantResult", "QuantificationError",
    "Quantifier", "SetupError", "SimulatedSource", "Spectrum", "SpectrumError",
    "SpectrumSimulator", "Standard", "StandardCheck", "XrfError", "XrfSetup",
    "calibrate_from_lines", "fit_calibration", "fit_spectrum", "load_setup", "quantify",
    "read_spectrum", "sample_spectrum", "simulator_source", "snip_background", "write_spectrum",
]
