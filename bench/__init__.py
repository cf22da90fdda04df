"""crmsort benchmarks.

`python -m bench` (or `make bench`) prints a table; figures go to BENCHMARKS.md.
"""
