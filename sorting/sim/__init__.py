"""The simulated line: belt, objects, sensors as the real drivers publish them."""
