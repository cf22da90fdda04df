"""Sensor drivers and simulators."""
