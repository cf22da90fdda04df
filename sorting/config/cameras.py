"""Camera models of a line, built from its description.

Today these come from the nominal poses in the line YAML; the calibration
store (issue 5) will supply measured ones. The simulator and the perception
nodes call the same functions, so they agree unless a calibration says otherwise.
"""

from __future__ import annotations

from calibration.camera import PinholeCamera
from sorting.config.line import LineConfig


def rgb_camera(line: LineConfig) -> PinholeCamera:
    """The RGB camera looking down at the belt, from ``sensors.camera``."""
    c = line.sensors.camera
    return PinholeCamera.looking_down(
        x_m=c.x_m, y_m=c.y_m, height_m=c.height_m,
        width_px=c.width_px, height_px=c.height_px, hfov_deg=c.hfov_deg,
    )


def depth_camera(line: LineConfig) -> PinholeCamera:
    """The 3D sensor looking down at the belt, from ``sensors.depth``."""
    d = line.sensors.depth
    return PinholeCamera.looking_down(
        x_m=d.x_m, y_m=d.y_m, height_m=d.height_m,
        width_px=d.width_px, height_px=d.height_px, hfov_deg=d.hfov_deg,
    )
