"""crmsort: calibration package."""
