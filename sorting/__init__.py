"""crmsort: sorting package."""
