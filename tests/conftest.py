"""Test-wide settings: property-based tests draw the same examples on every run, so CI
results are reproducible (a failure found once is found again)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("crmsort", derandomize=True, deadline=None)
settings.load_profile("crmsort")
