"""Arm drivers behind one interface: simulated, serial G-code, joint-trajectory output."""
