"""crmsort: calibration package."""

from calibration.camera import CameraInfoFields, PinholeCamera, Rays, ray_plane_z
from calibration.errors import CalibrationError
from calibration.transforms import RigidTransform

__all__ = [
    "CalibrationError",
    "CameraInfoFields",
    "PinholeCamera",
    "Rays",
    "RigidTransform",
    "ray_plane_z",
]
