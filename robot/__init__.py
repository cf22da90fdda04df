"""crmsort: robot package."""
