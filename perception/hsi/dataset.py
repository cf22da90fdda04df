"""Simulated training and evaluation lines: random objects of every material under a belt line.

:func:`simulate_lines` drops ``objects_per_scene`` boxes and lying cylinders of materials
drawn evenly from the library onto a strip of belt, moves the strip under the line-scan
camera one pixel pitch per line, and calibrates each raw line with dark/white references
taken under the reference conditions. Illumination and noise of each scene are drawn from
a :class:`ConditionRanges`; :data:`TRAIN_RANGES` and :data:`EVAL_RANGES` do not overlap in
lamp drift, colour temperature, falloff, stray light and noise, so evaluation measures how
the classifier copes with conditions it was not trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from perception.hsi.library import SpectralLibrary, panel_reflectance
from perception.sensors.hsi.bands import BandModel
from perception.sensors.hsi.reflectance import ReflectanceCalibrator
from perception.sensors.hsi.sim import HsiConditions, HsiGeometry, HsiLineSim
from perception.sensors.scene import Appearance, SceneObject, ShapeKind

FloatArray = NDArray[np.float64]
Interval = tuple[float, float]


@dataclass(frozen=True)
class ConditionRanges:
    """Each field: intervals to draw from (one interval chosen at random, then uniform)."""

    lamp_scale: tuple[Interval, ...]
    colour_temp_k: tuple[Interval, ...]
    falloff: tuple[Interval, ...]
    stray_fraction: tuple[Interval, ...]
    read_noise_counts: tuple[Interval, ...]
    electrons_per_count: tuple[Interval, ...]

    def draw(self, rng: np.random.Generator) -> HsiConditions:
        def pick(iv: tuple[Interval, ...]) -> float:
            lo, hi = iv[int(rng.integers(len(iv)))]
            return float(rng.uniform(lo, hi))

        return HsiConditions(
            lamp_scale=pick(self.lamp_scale), colour_temp_k=pick(self.colour_temp_k),
            falloff=pick(self.falloff), stray_fraction=pick(self.stray_fraction),
            read_noise_counts=pick(self.read_noise_counts),
            electrons_per_count=pick(self.electrons_per_count),
        )


REFERENCE = HsiConditions(lamp_scale=1.0, colour_temp_k=3000.0, falloff=0.2)
TRAIN_RANGES = ConditionRanges(
    lamp_scale=((0.93, 1.07),), colour_temp_k=((2940.0, 3060.0),), falloff=((0.15, 0.25),),
    stray_fraction=((0.002, 0.008),), read_noise_counts=((1.5, 2.5),),
    electrons_per_count=((7.0, 10.0),),
)
EVAL_RANGES = ConditionRanges(
    lamp_scale=((0.86, 0.92), (1.08, 1.14)), colour_temp_k=((2860.0, 2920.0), (3080.0, 3140.0)),
    falloff=((0.08, 0.13), (0.27, 0.32)), stray_fraction=((0.009, 0.015),),
    read_noise_counts=((2.8, 4.0),), electrons_per_count=((4.5, 6.5),),
)


@dataclass
class LineSet:
    """Calibrated lines and their truth, stacked: spectra (L, W, B), labels/cov/ids (L, W)."""

    reflectance: NDArray[np.float32]
    flags: NDArray[np.uint8]
    labels: NDArray[np.int64]
    coverage: FloatArray
    object_ids: NDArray[np.int64]
    materials: dict[int, str] = field(default_factory=dict)


def random_objects(
    rng: np.random.Generator, materials: list[str], n: int, x0: float, length_m: float,
    half_width_m: float, first_id: int,
) -> list[SceneObject]:
    """``n`` boxes/cylinders of random material on ``[x0, x0 + length_m]`` x ``±half_width``."""
    out = []
    for i in range(n):
        mat = materials[int(rng.integers(len(materials)))]
        length = float(rng.uniform(0.04, 0.16))
        width = float(rng.uniform(0.03, min(length, 0.10)))
        cyl = rng.random() < 0.25
        height = width if cyl else float(rng.uniform(0.005, 0.06))
        out.append(SceneObject(
            object_id=first_id + i, class_name=f"hsi_{mat}", stream="weee",
            shape=ShapeKind.CYLINDER if cyl else ShapeKind.BOX,
            size_m=(length, width, height),
            x_m=float(rng.uniform(x0, x0 + length_m)),
            y_m=float(rng.uniform(-half_width_m, half_width_m)),
            yaw_rad=float(rng.uniform(0, math.pi)), material=mat, density_kg_m3=1000.0,
            composition={}, appearance=Appearance((0.5, 0.5, 0.5)),
        ))
    return out


def simulate_lines(
    library: SpectralLibrary, bands: BandModel, seed: int, scenes: int,
    ranges: ConditionRanges, lines_per_scene: int = 120, objects_per_scene: int = 14,
    geometry: HsiGeometry | None = None, progress: Callable[[int], None] | None = None,
) -> LineSet:
    """Render ``scenes`` x ``lines_per_scene`` calibrated lines (see the module docstring).

    Same ``seed``, same lines. Objects are ~evenly spread over the library's materials.
    """
    geo = geometry or HsiGeometry()
    rng = np.random.default_rng(seed)
    panel = panel_reflectance(bands)
    mats = list(library.material_names)
    sim = HsiLineSim(bands, library, panel, rng, geometry=geo, conditions=REFERENCE,
                     ref_conditions=REFERENCE, variation_seed=int(rng.integers(2**31)))
    cal = ReflectanceCalibrator(sim.dark_reference(), sim.white_reference(), panel)
    strip = lines_per_scene * geo.pixel_pitch_m
    half = geo.pixel_y()[-1] - 0.04
    refl, flags, labels, cover, ids = [], [], [], [], []
    for sc in range(scenes):
        cond = ranges.draw(rng)
        objs = random_objects(rng, mats, objects_per_scene, geo.x_m + 0.02, strip - 0.04,
                              half, first_id=sc * 1000 + 1)
        for li in range(lines_per_scene):
            dx = li * geo.pixel_pitch_m
            moved = [replace(o, x_m=o.x_m - dx) for o in objs]
            raw, truth = sim.render(moved, cond)
            r, f = cal.apply(raw)
            refl.append(r)
            flags.append(f)
            labels.append(truth.labels)
            cover.append(truth.coverage)
            ids.append(truth.object_ids)
        if progress is not None:
            progress(sc + 1)
    names = dict(zip(library.labels, library.names, strict=True))
    return LineSet(np.stack(refl), np.stack(flags), np.stack(labels), np.stack(cover),
                   np.stack(ids), names)
