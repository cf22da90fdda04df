"""Dual-energy X-ray transmission line scanner: the simulator (the physics is
:mod:`perception.xrt.physics`)."""

from __future__ import annotations

from perception.sensors.xrt.sim import XrtConditions, XrtGeometry, XrtLineSim, line_period_s

__all__ = ["XrtConditions", "XrtGeometry", "XrtLineSim", "line_period_s"]
