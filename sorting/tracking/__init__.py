"""Tracking and fusion: objects followed in belt coordinates, measurements fused into estimates.

Belt-surface coordinate: an object lying still on the belt keeps
``s = x - p(t)``, where ``x`` is its belt-frame position along the travel and
``p(t)`` the encoder's belt position. Every measurement (camera detection,
3D volume, XRF spot, material map) is converted to ``(s, y)`` with the
encoder reading at its stamp, which is how measurements taken metres apart
and seconds apart meet on one track.
"""
