"""Camera models of a line, built from its description.

Today these come from the nominal poses in the line YAML; the calibration
store (issue 5) will supply measured ones. The simulator and the perception
nodes call the same functions, so they agree unless a calibration says otherwise.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from calibration.camera import PinholeCamera
from calibration.records import camera_from_store
from calibration.store import load_store
from sorting.config.line import REPO_ROOT, LineConfig

log = logging.getLogger(__name__)


def rgb_camera(line: LineConfig) -> PinholeCamera:
    """The RGB camera looking down at the belt, from ``sensors.camera``."""
    c = line.sensors.camera
    return PinholeCamera.looking_down(
        x_m=c.x_m, y_m=c.y_m, height_m=c.height_m,
        width_px=c.width_px, height_px=c.height_px, hfov_deg=c.hfov_deg,
        yaw_rad=math.radians(c.yaw_deg),
    )


def depth_camera(line: LineConfig) -> PinholeCamera:
    """The 3D sensor looking down at the belt, from ``sensors.depth``."""
    d = line.sensors.depth
    return PinholeCamera.looking_down(
        x_m=d.x_m, y_m=d.y_m, height_m=d.height_m,
        width_px=d.width_px, height_px=d.height_px, hfov_deg=d.hfov_deg,
        yaw_rad=math.radians(d.yaw_deg),
    )


def calibration_path(line: LineConfig) -> Path:
    """Where the line's calibration store lives: ``launch/<line>.calibration.yaml``."""
    return REPO_ROOT / "launch" / f"{line.name}.calibration.yaml"


def measured_rgb_camera(line: LineConfig) -> PinholeCamera:
    """The RGB camera as the line's calibration store measured it.

    Falls back to the nominal model of the line YAML (with a warning) when
    there is no store, no camera entry, or the stored image size disagrees
    with the YAML (the camera was changed after calibrating).
    """
    path = calibration_path(line)
    nominal = rgb_camera(line)
    if not path.is_file():
        log.warning("%s: no calibration store; using the nominal camera of the line YAML", path)
        return nominal
    store = load_store(path)
    if "camera.intrinsics" not in store.calibrations:
        log.warning("%s: no camera.intrinsics; using the nominal camera", path)
        return nominal
    cam = camera_from_store(store, "camera")
    if (cam.width, cam.height) != (nominal.width, nominal.height):
        log.warning("%s: calibrated for %dx%d but the line says %dx%d; using the nominal camera",
                    path, cam.width, cam.height, nominal.width, nominal.height)
        return nominal
    return cam
