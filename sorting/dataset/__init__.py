"""Datasets for the detector: synthetic generation, label checks, bag evaluation."""
