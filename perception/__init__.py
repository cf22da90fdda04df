"""crmsort: perception package."""
