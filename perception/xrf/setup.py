"""The XRF instrument set-up as configuration: tube, geometry, detector and MCA.

A set-up is a pydantic model loaded from YAML (``datasets/xrf/setup_default.yaml`` is the
default). Energies are keV, lengths µm or mm as the field name says, angles degrees measured
from the sample surface, times seconds.

Example::

    setup = load_setup()                      # the shipped default
    setup.detector.sigma_kev(6.4)             # Gaussian σ of the detector at Fe Kα
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import xraylib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from perception.xrf.errors import SetupError

DEFAULT_SETUP = Path(__file__).resolve().parents[2] / "datasets" / "xrf" / "setup_default.yaml"

#: mean energy to create one electron-hole pair in Si (keV)
SI_PAIR_ENERGY_KEV = 3.85e-3
MN_KA_KEV = 5.899


def _symbol(value: str) -> str:
    try:
        z = xraylib.SymbolToAtomicNumber(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an element symbol") from exc
    if z <= 0:
        raise ValueError(f"{value!r} is not an element symbol")
    return value


class Layer(BaseModel):
    """A filter or window layer: element (or formula) and thickness."""

    model_config = ConfigDict(extra="forbid")
    material: str = Field(description="element symbol or chemical formula, e.g. 'Al', 'N2O'")
    thickness_um: float = Field(gt=0)
    density_g_cm3: float | None = Field(
        default=None, gt=0, description="default: element density (elements only)"
    )

    @field_validator("material")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            xraylib.CompoundParser(v)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not an element or formula") from exc
        return v

    def density(self) -> float:
        """Density in g/cm³ (the element's if not given; a formula needs it given)."""
        if self.density_g_cm3 is not None:
            return self.density_g_cm3
        try:
            z = xraylib.SymbolToAtomicNumber(self.material)
        except ValueError as exc:
            raise SetupError(
                f"layer {self.material!r}: density_g_cm3 is required for a formula"
            ) from exc
        return float(xraylib.ElementDensity(z))


class Tube(BaseModel):
    """X-ray tube: anode, high voltage, current, exit window, optional primary filters."""

    model_config = ConfigDict(extra="forbid")
    anode: str = "Rh"
    voltage_kv: float = Field(default=50.0, gt=4.0, le=100.0)
    current_ua: float = Field(default=100.0, gt=0.0)
    be_window_um: float = Field(default=125.0, ge=0.0)
    electron_incidence_deg: float = Field(default=90.0, gt=0.0, le=90.0)
    takeoff_deg: float = Field(default=20.0, gt=0.0, le=90.0)
    filters: list[Layer] = Field(default_factory=list)
    energy_step_kev: float = Field(default=0.2, gt=0.0, le=1.0)

    _v_anode = field_validator("anode")(_symbol)


class Geometry(BaseModel):
    """Incidence and take-off angles from the sample surface; air path; instrument constant."""

    model_config = ConfigDict(extra="forbid")
    incidence_deg: float = Field(default=45.0, gt=0.0, le=90.0)
    takeoff_deg: float = Field(default=45.0, gt=0.0, le=90.0)
    air_path_mm: float = Field(default=10.0, ge=0.0)
    geometry_factor_sr: float = Field(
        default=4.0e-6,
        gt=0.0,
        description="tube-beam solid angle × detector solid angle / 4π (sr), lumps the geometry",
    )

    @property
    def scatter_angle_rad(self) -> float:
        """Scattering angle (rad) between incident and detected beam (reflection geometry)."""
        return math.pi - math.radians(self.incidence_deg + self.takeoff_deg)


class Detector(BaseModel):
    """Silicon drift / Si-PIN detector: thicknesses, resolution and dead time."""

    model_config = ConfigDict(extra="forbid")
    si_thickness_um: float = Field(default=500.0, gt=0.0)
    be_window_um: float = Field(default=12.5, ge=0.0)
    fwhm_mn_ka_ev: float = Field(default=140.0, gt=100.0, le=1000.0)
    fano: float = Field(default=0.114, gt=0.0, lt=1.0)
    dead_time_s: float = Field(default=1.5e-6, ge=0.0, description="non-paralyzable")
    pileup_time_s: float = Field(default=0.4e-6, ge=0.0, description="pile-up resolving time")

    @property
    def noise_fwhm_ev(self) -> float:
        """Electronic noise FWHM (eV) implied by the FWHM at Mn Kα and Fano statistics."""
        fano_var = 2.3548**2 * self.fano * SI_PAIR_ENERGY_KEV * MN_KA_KEV * 1e6
        return math.sqrt(max(self.fwhm_mn_ka_ev**2 - fano_var, 1.0))

    def sigma_kev(self, energy_kev: float) -> float:
        """Gaussian σ (keV) of the detector response at ``energy_kev``."""
        noise = self.noise_fwhm_ev * 1e-3 / 2.3548
        return math.sqrt(noise**2 + self.fano * SI_PAIR_ENERGY_KEV * energy_kev)


class Mca(BaseModel):
    """Nominal channel calibration: E(i) = offset_kev + gain × i, gain = full_scale / channels."""

    model_config = ConfigDict(extra="forbid")
    channels: int = Field(default=2048, ge=64, le=16384)
    full_scale_kev: float = Field(default=40.96, gt=1.0)
    offset_kev: float = Field(default=0.0)

    def gain_kev_per_channel(self, channels: int | None = None) -> float:
        """keV per channel for ``channels`` (default: the set-up's channel count)."""
        return self.full_scale_kev / float(channels or self.channels)


class XrfSetup(BaseModel):
    """The whole instrument set-up (tube, geometry, detector, MCA, analysis defaults)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    tube: Tube = Field(default_factory=Tube)
    geometry: Geometry = Field(default_factory=Geometry)
    detector: Detector = Field(default_factory=Detector)
    mca: Mca = Field(default_factory=Mca)
    fit_min_kev: float = Field(default=2.6, gt=0.5)
    fit_max_kev: float = Field(default=32.0, gt=1.0)
    fp_relative_u: float = Field(
        default=0.03,
        ge=0.0,
        lt=1.0,
        description="relative standard uncertainty assigned to FP sensitivities without standards",
    )
    kind: Literal["xrf_setup"] = "xrf_setup"


def load_setup(path: str | Path | None = None) -> XrfSetup:
    """Load an ``XrfSetup`` from YAML (default: ``datasets/xrf/setup_default.yaml``).

    Raises ``SetupError`` naming the file and YAML path of every problem.
    """
    p = Path(path) if path is not None else DEFAULT_SETUP
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SetupError(f"{p}: cannot read set-up: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SetupError(f"{p}: YAML syntax error: {exc}") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{p}: expected a mapping at the top level")
    try:
        return XrfSetup.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{p}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        raise SetupError("\n".join(lines)) from exc
