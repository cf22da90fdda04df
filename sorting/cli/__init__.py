"""The ``crmsort`` command line."""
