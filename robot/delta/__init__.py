"""Rotary delta (parallel) picker: kinematics."""
