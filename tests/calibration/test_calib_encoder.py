"""Encoder scale from a rendered marker riding the belt; belt speed check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.camera import PinholeCamera
from calibration.detection import detect_markers
from calibration.encoder import belt_speed_check, fit_encoder_scale, marker_belt_position
from calibration.procedure_errors import DegenerateGeometryError, TooFewViewsError
from calibration.targets import MarkerTarget
from perception.sensors.camera.targets_sim import PlacedTarget, TargetRenderer, on_belt_pose

CAMERA = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0, distortion=(-0.05, 0, 0, 0, 0))
MARKER = MarkerTarget(marker_id=3, size_m=0.08, margin_m=0.01, thickness_m=0.002)
TRUE_M_PER_TICK = 1.0 / 8192.0  # a 8192-count encoder on a 1 m drum circumference


def test_scale_from_rendered_marker() -> None:
    renderer = TargetRenderer(CAMERA, np.random.default_rng(2))
    ticks, pos = [], []
    for travel in np.linspace(0.0, 0.6, 5):
        img = renderer.render([PlacedTarget(MARKER, on_belt_pose(MARKER, 0.9 + travel, 0.1))])
        corners = detect_markers(img)[3]
        pos.append(marker_belt_position(CAMERA, corners, MARKER.thickness_m))
        ticks.append(math.floor((5.0 + travel) / TRUE_M_PER_TICK))
    res = fit_encoder_scale(np.array(ticks), np.array(pos))
    # 0.6 m of travel measured to ~0.2 mm: scale within 0.1 %
    assert abs(res.m_per_tick / TRUE_M_PER_TICK - 1) < 1e-3
    assert abs(res.drift_deg) < 0.1
    assert res.rms_m < 0.5e-3
    two = fit_encoder_scale(np.array(ticks)[[0, -1]], np.array(pos)[[0, -1]])
    assert abs(two.m_per_tick / TRUE_M_PER_TICK - 1) < 1e-3
    assert math.isnan(two.std_m_per_tick)


def test_bad_readings() -> None:
    with pytest.raises(TooFewViewsError, match="need >= 2"):
        fit_encoder_scale([100], [[1.0, 0.0]])
    with pytest.raises(DegenerateGeometryError, match="run the belt"):
        fit_encoder_scale([100, 100], [[1.0, 0.0], [1.2, 0.0]])
    with pytest.raises(DegenerateGeometryError, match="lying on the belt"):
        fit_encoder_scale([100, 5000], [[1.0, 0.0], [1.0, 0.0]])


def test_speed_check() -> None:
    t = np.arange(0.0, 5.0, 0.01)
    ticks = np.floor(0.5 * t / 1e-4)
    ok = belt_speed_check(t, ticks, 1e-4, 0.5)
    assert ok.ok and abs(ok.mean_mps - 0.5) < 1e-3
    slow = belt_speed_check(t, ticks, 1e-4, 0.55)
    assert not slow.ok and "off the set" in slow.message
