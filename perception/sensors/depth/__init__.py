"""Simulated 3D sensor (structured light / time of flight) looking down at the belt."""

from perception.sensors.depth.sim import DepthFrame, DepthSensorSim, DepthSimConfig

__all__ = ["DepthFrame", "DepthSensorSim", "DepthSimConfig"]
