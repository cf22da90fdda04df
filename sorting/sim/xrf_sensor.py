"""The simulated XRF head: what the DP5 emulator counts, from the objects under the spot.

The head sits at belt x ``x_m`` on a traverse across the belt; its spot (radius
``spot_radius_m``) is wherever the traverse was last told to go (``aim``). When
the emulator asks for counts, the spot disk is sampled against the scene
height map: the share of the spot on each object weights that object's
expected spectrum (per second, cached per object, from the FP simulator of
:mod:`perception.xrf`), the rest sees bare belt (rubber: scatter only). Counts
are Poisson draws of that mixture. Linear mixing of side-by-side areas is the
approximation; the belt moves during the live time is not modelled (the
snapshot is taken when the acquisition is read).

Object compositions in the catalog list the elements XRF can see; the rest
of the mass (plastics, oxides) is added here as a light-element balance per
material family, since the physics needs a whole sample.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from numpy.typing import NDArray

from perception.catalog import load_catalog
from perception.sensors.scene import SceneObject, scene_height
from perception.xrf.physics import SpectrumSimulator
from perception.xrf.setup import XrfSetup

BELT_COMPOSITION = {"C": 0.86, "H": 0.11, "O": 0.03}  # rubber
# the simulated detector's true energy scale differs from the set-up's nominal one, so the
# line needs its measured calibration (`crmsort calibrate xrf --sim` finds these back)
TRUE_GAIN_FACTOR = 1.007
TRUE_OFFSET_KEV = 0.015


@cache
def _families() -> dict[str, str]:
    return {m.id: m.family for m in load_catalog().materials.values()}


def bulk_composition(obj: SceneObject) -> dict[str, float]:
    """The object's XRF-visible composition plus a light-element balance summing to 1.

    The balance follows the catalog's material family: oxygen for minerals (slag,
    ceramics, glass: oxides), carbon for metals (the little that is left), and C, H, O
    in a polymer-like ratio for polymers, composites and organics.
    """
    comp = {e: float(f) for e, f in obj.composition.items() if f > 0}
    rest = 1.0 - sum(comp.values())
    family = _families().get(obj.material, "composite")
    if rest > 1e-6:
        if family == "mineral":
            comp["O"] = comp.get("O", 0.0) + rest
        elif family == "metal":
            comp["C"] = comp.get("C", 0.0) + rest
        else:  # polymers, laminates, composite devices: C, H, O
            for e, share in (("C", 0.6), ("H", 0.07), ("O", 0.33)):
                comp[e] = comp.get(e, 0.0) + share * rest
    total = sum(comp.values())
    return {e: f / total for e, f in comp.items()}


class XrfSpotSim:
    """Counts source for the DP5 emulator (see the module docstring)."""

    def __init__(self, x_m: float, spot_radius_m: float, objects: Callable[[], list[SceneObject]],
                 setup: XrfSetup | None, rng: np.random.Generator) -> None:
        self.x_m = x_m
        self.spot_radius_m = spot_radius_m
        self.y_m = 0.0
        self._objects = objects
        self._sim = SpectrumSimulator(setup)
        self._rng = rng
        self._per_second: dict[tuple[int, int], NDArray[np.float64]] = {}
        g = (np.arange(9) + 0.5) / 9 * 2 - 1
        u, v = np.meshgrid(g, g)
        inside = u * u + v * v <= 1
        self._disk = np.column_stack([u[inside], v[inside]])
        self.acquisitions = 0

    def aim(self, y_m: float) -> None:
        self.y_m = float(y_m)

    def _rate(self, key: int, comp: dict[str, float], channels: int) -> NDArray[np.float64]:
        cache_key = (key, channels)
        if cache_key not in self._per_second:
            gain = self._sim.setup.mca.gain_kev_per_channel(channels) * TRUE_GAIN_FACTOR
            ex = self._sim.expected(comp, 1.0, channels=channels, gain_kev_per_channel=gain,
                                    offset_kev=TRUE_OFFSET_KEV)
            self._per_second[cache_key] = np.asarray(ex.counts, dtype=np.float64)
            if len(self._per_second) > 400:  # objects long gone
                self._per_second.pop(next(iter(self._per_second)))
        return self._per_second[cache_key]

    def coverage(self) -> dict[int, float]:
        """Share of the spot on each object id (topmost surface), now."""
        objs = self._objects()
        xs = self.x_m + self.spot_radius_m * self._disk[:, 0]
        ys = self.y_m + self.spot_radius_m * self._disk[:, 1]
        _, idx = scene_height(objs, xs, ys)
        out: dict[int, float] = {}
        for k in idx[idx >= 0]:
            oid = objs[int(k)].object_id
            out[oid] = out.get(oid, 0.0) + 1.0 / len(idx)
        return out

    def __call__(self, time_s: float, channels: int) -> NDArray[np.int64]:
        """Poisson counts for ``time_s`` of live time into ``channels`` channels."""
        objs = {o.object_id: o for o in self._objects()}
        cov = self.coverage()
        rate = (1.0 - sum(cov.values())) * self._rate(-1, BELT_COMPOSITION, channels)
        for oid, share in cov.items():
            rate = rate + share * self._rate(oid, bulk_composition(objs[oid]), channels)
        self.acquisitions += 1
        return self._rng.poisson(rate * time_s).astype(np.int64)
