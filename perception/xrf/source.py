"""Counts source for the DP5 emulator: ``simulator_source(composition, setup, rng)`` returns a
callable ``source(live_time_s, channels) -> counts`` (int64 [channels]) drawing Poisson counts of
the simulated spectrum. Expected spectra are cached per channel count, so repeated acquisitions
cost one Poisson draw each. ``source.real_time_s(live_time_s)`` and ``source.input_rate_cps``
give the dead-time figures the emulator reports in its status block.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from perception.xrf.errors import CompositionError
from perception.xrf.physics import ExpectedSpectrum, SpectrumSimulator, check_composition
from perception.xrf.setup import XrfSetup, load_setup


class SimulatedSource:
    """Callable counts source for one fixed sample (see module docstring)."""

    def __init__(self, composition: Mapping[str, float], setup: XrfSetup,
                 rng: np.random.Generator) -> None:
        self.composition = check_composition(composition)
        self.setup = setup
        self.rng = rng
        self._sim = SpectrumSimulator(setup)
        self._per_second: dict[int, ExpectedSpectrum] = {}

    def expected(self, channels: int) -> ExpectedSpectrum:
        """Expected spectrum for 1 s of live time on ``channels`` channels (cached)."""
        if channels not in self._per_second:
            self._per_second[channels] = self._sim.expected(self.composition, 1.0, channels)
        return self._per_second[channels]

    def __call__(self, live_time_s: float, channels: int) -> NDArray[np.int64]:
        if not live_time_s >= 0 or channels < 16:
            raise CompositionError(
                f"source: live_time_s must be ≥ 0 and channels ≥ 16, got {live_time_s}, {channels}")
        if live_time_s == 0:
            return np.zeros(channels, dtype=np.int64)
        lam = self.expected(channels).counts * live_time_s
        return np.asarray(self.rng.poisson(lam), dtype=np.int64)

    def real_time_s(self, live_time_s: float) -> float:
        """Real time (s) an acquisition of ``live_time_s`` takes (non-paralyzable dead time)."""
        ex = self.expected(self.setup.mca.channels)
        return live_time_s * ex.real_time_s / ex.live_time_s

    @property
    def input_rate_cps(self) -> float:
        """Input count rate (counts/s) at the detector."""
        return self.expected(self.setup.mca.channels).input_rate_cps


def simulator_source(composition: Mapping[str, float], setup: XrfSetup | None = None,
                     rng: np.random.Generator | None = None) -> SimulatedSource:
    """A counts source for ``composition`` (mass fractions summing to 1) on ``setup``."""
    return SimulatedSource(composition, setup or load_setup(),
                           rng if rng is not None else np.random.default_rng(0))
