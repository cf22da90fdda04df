"""Domain-randomization ranges for the synthetic detector dataset: the training ranges and the
"shifted" ranges of the held-out set (other belt colours, lighting, camera heights).

Every range is ``(low, high)`` sampled uniformly unless its docstring says otherwise.
Units: m, degrees, kelvin, seconds; colours are linear-RGB multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass

Span = tuple[float, float]
Rgb = tuple[float, float, float]


@dataclass(frozen=True)
class Randomization:
    """What :mod:`sorting.dataset.synth` draws per scene group and per image.

    Scene group (one simulated camera): camera height ``camera_height_m``, tilt off the
    vertical up to ``tilt_deg`` in a random direction, yaw jitter ``yaw_deg`` (plus a
    180 degree turn with probability ``flip_probability``), field of view ``hfov_deg``;
    belt tint: one of ``belt_tints`` times a brightness in ``belt_brightness``; sensor
    full well ``full_well_e`` (shot noise), ``read_noise_e``, ``vignetting``,
    ``belt_specular``.

    Per image: light elevation ``light_elevation_deg`` (azimuth uniform), direct
    ``light_intensity``, ``ambient``, colour temperature ``colour_temperature_k``
    (the camera white-balances to ``white_balance_k``); ``objects`` per image (integers),
    share of ``distractor_probability`` clutter, ``touch_probability`` of a new object
    being dropped against the previous one and ``stack_probability`` of being dropped on
    top of it (occlusion); ``scale`` multiplies each object's size; appearance jitter:
    brightness ``albedo_scale`` per object and per-channel ``tint_sd``; motion blur from
    ``belt_speed_mps`` x ``exposure_s``; JPEG quality ``jpeg_quality`` with probability
    ``jpeg_probability``; ``gain``.
    """

    camera_height_m: Span = (0.85, 1.15)
    tilt_deg: float = 4.0
    yaw_deg: float = 4.0
    flip_probability: float = 0.5
    hfov_deg: Span = (44.0, 48.0)
    belt_tints: tuple[Rgb, ...] = (
        (1.0, 1.0, 1.0),  # grey rubber
        (1.15, 1.0, 0.85),  # brownish
        (0.9, 1.0, 1.15),  # bluish grey
        (1.0, 1.1, 1.0),  # greenish grey
    )
    belt_brightness: Span = (0.7, 2.5)
    belt_specular: Span = (0.02, 0.12)
    full_well_e: Span = (4000.0, 20000.0)
    read_noise_e: Span = (3.0, 12.0)
    vignetting: Span = (0.3, 1.2)
    light_elevation_deg: Span = (45.0, 88.0)
    light_intensity: Span = (0.3, 0.8)
    ambient: Span = (0.15, 0.45)
    colour_temperature_k: Span = (4000.0, 6500.0)
    white_balance_k: Span = (4500.0, 5500.0)
    objects: tuple[int, int] = (3, 14)
    distractor_probability: float = 0.15
    touch_probability: float = 0.3
    stack_probability: float = 0.1
    scale: Span = (0.9, 1.1)
    albedo_scale: Span = (0.75, 1.3)
    tint_sd: float = 0.06
    belt_speed_mps: Span = (0.0, 1.0)
    exposure_s: Span = (0.0003, 0.004)
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)
    gain: Span = (0.8, 1.25)


TRAIN = Randomization()
"""Ranges for the training/validation images."""

SHIFTED = Randomization(
    camera_height_m=(0.8, 1.25),
    tilt_deg=6.0,
    hfov_deg=(42.0, 50.0),
    belt_tints=(
        (0.75, 0.9, 1.5),  # blue PVC belt
        (0.8, 1.4, 0.8),  # green PVC belt
        (1.5, 0.9, 0.7),  # rust-red rubber
    ),
    belt_brightness=(0.5, 3.5),
    belt_specular=(0.08, 0.2),
    full_well_e=(2500.0, 8000.0),
    read_noise_e=(8.0, 16.0),
    light_elevation_deg=(35.0, 60.0),
    light_intensity=(0.25, 0.9),
    ambient=(0.1, 0.5),
    colour_temperature_k=(3000.0, 8000.0),
    white_balance_k=(4000.0, 6000.0),
    objects=(4, 16),
    distractor_probability=0.25,
    touch_probability=0.35,
    stack_probability=0.15,
    belt_speed_mps=(0.3, 1.2),
    exposure_s=(0.001, 0.005),
    jpeg_probability=0.7,
    jpeg_quality=(30, 80),
)
"""Ranges for the held-out set: other belt colours, harsher and warmer/colder light, lower
full well (more noise), stronger blur and JPEG artefacts, more clutter."""
