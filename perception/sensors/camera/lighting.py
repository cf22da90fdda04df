"""Illumination of the belt: one directional light plus ambient light."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.errors import SensorError

FloatArray = NDArray[np.float64]


def kelvin_to_rgb(temperature_k: float) -> FloatArray:
    """Linear RGB (3,) of a black body at ``temperature_k``, scaled to unit luminance.

    Uses Tanner Helland's fit of the CIE 1964 black-body locus in sRGB (good to a
    few percent from 1000 K to 40000 K), linearised. Raises :class:`SensorError`
    outside 1000-40000 K.
    """
    if not 1000.0 <= temperature_k <= 40000.0:
        raise SensorError(f"colour_temperature_k: must be in [1000, 40000] K, got {temperature_k}")
    t = temperature_k / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * math.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    srgb = np.clip(np.array([r, g, b]) / 255.0, 1e-4, 1.0)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lum = float(lin @ np.array([0.2126, 0.7152, 0.0722]))
    out: FloatArray = lin / lum
    return out


@dataclass(frozen=True)
class Lighting:
    """Directional light plus ambient light over the belt.

    ``direction`` points from the scene toward the light, belt frame (normalised
    on use; z must be > 0). ``intensity`` is the irradiance of the direct light
    on a surface facing it and ``ambient`` the diffuse irradiance from all
    around, both relative to the camera's full scale at the reference exposure.
    ``colour_temperature_k`` tints the light (the camera white-balances to its
    own setting). Raises :class:`SensorError` for a light below the belt or
    negative intensities.
    """

    direction: tuple[float, float, float] = (0.25, 0.35, 1.0)
    intensity: float = 0.55
    ambient: float = 0.3
    colour_temperature_k: float = 5000.0

    def __post_init__(self) -> None:
        if self.direction[2] <= 0:
            raise SensorError(
                f"Lighting.direction: z must be > 0 (light above), got {self.direction}"
            )
        if self.intensity < 0 or self.ambient < 0:
            raise SensorError(
                "Lighting: intensity and ambient must be >= 0, "
                f"got {self.intensity}, {self.ambient}"
            )
        kelvin_to_rgb(self.colour_temperature_k)

    @property
    def unit_direction(self) -> FloatArray:
        d = np.asarray(self.direction, dtype=np.float64)
        out: FloatArray = d / np.linalg.norm(d)
        return out

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Lighting:
        """A random but plausible lighting (for training-data variety)."""
        elevation = math.radians(float(rng.uniform(45.0, 88.0)))
        azimuth = float(rng.uniform(-math.pi, math.pi))
        direction = (
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        )
        return cls(
            direction=direction,
            intensity=float(rng.uniform(0.3, 0.8)),
            ambient=float(rng.uniform(0.15, 0.45)),
            colour_temperature_k=float(rng.uniform(4000.0, 6500.0)),
        )
