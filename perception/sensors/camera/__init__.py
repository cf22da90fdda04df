"""Simulated RGB camera: ray-cast top-down rendering of the belt with labels."""

from perception.sensors.camera.lighting import Lighting, kelvin_to_rgb
from perception.sensors.camera.raycast import ObjectHits, RayCaster, SceneHits
from perception.sensors.camera.sim import (
    CameraFrame,
    CameraSimConfig,
    ObjectLabel,
    RgbCameraSim,
    motion_blur_kernel,
    srgb_to_linear,
)
from perception.sensors.camera.textures import PATTERNS, object_texture

__all__ = [
    "PATTERNS",
    "CameraFrame",
    "CameraSimConfig",
    "Lighting",
    "ObjectHits",
    "ObjectLabel",
    "RayCaster",
    "RgbCameraSim",
    "SceneHits",
    "kelvin_to_rgb",
    "motion_blur_kernel",
    "object_texture",
    "srgb_to_linear",
]
