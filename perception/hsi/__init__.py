"""Hyperspectral material models: spectral library, trainable classifier, SAM baseline."""
