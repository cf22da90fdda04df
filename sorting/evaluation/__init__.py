"""Evaluation against simulator truth: the only code that may read /sim/ground_truth."""
