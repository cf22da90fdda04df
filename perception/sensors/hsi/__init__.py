"""Hyperspectral line-scan camera: band models, reflectance calibration, line sources, simulator."""
