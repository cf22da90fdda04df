"""Simulated dual-energy X-ray transmission line scanner: objects on the belt → raw counts.

Geometry: a point source ``source_height_m`` above the belt's centre line at belt
``x = x_m`` fans across the belt onto a line of ``width_px`` sandwich detectors
``detector_depth_m`` under the belt surface (pixel centres at ``y0_m + i · pitch``). The ray to
detector point ``y_d`` crosses height ``z`` at ``y = y_d (H − z)/(H + d)`` and runs at
``cos θ = (H + d)/sqrt((H + d)² + y_d²)`` to the vertical; through an object it crosses the
object's vertical chord (``SceneObject.thickness``) at the ray's position half-way up the
object, lengthened by ``1/cos θ``. Each pixel is sampled on ``oversample`` × ``oversample_along``
rays (partial volume at object edges: the layer averages transmissions, the log comes after).

Each object is homogeneous: its bulk density (``density_kg_m3``, fill factor included) and its
bulk composition (the listed element fractions, the rest filled by the light compound its
class's material family implies, :func:`perception.xrt.physics.rest_formula`). Per layer and
pixel the detector absorbs ``photons`` photons with only the belt in the beam (Poisson,
energy-weighted: signal ``Σ p(E) E/Ē T(E)``, variance ``Σ p(E) (E/Ē)² T(E)``), plus a fixed
per-pixel gain pattern, a dark offset with its pattern, read noise, 16-bit clipping.

The scanner renders with its *true* set-up: ``setup`` (what the line's model assumes) with
``conditions.deviation`` applied (tube voltage off its dial, filters thicker or thinner than
nominal; none by default), which is what ``crmsort calibrate xrt`` measures and corrects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from perception.sensors.linescan import LineGeometry
from perception.sensors.scene import SceneObject
from perception.xrt.errors import XrtSetupError
from perception.xrt.physics import XrtSetup, bulk_attenuation, layer_spectra
from perception.xrt.setup_fit import SetupCorrection

FloatArray = NDArray[np.float64]
RestFn = Callable[[SceneObject], str]


@dataclass(frozen=True)
class XrtGeometry(LineGeometry):
    """The scanner's detector line (:class:`LineGeometry`, under the belt), its source's
    height above the belt and the detectors' depth under it (m)."""

    x_m: float = 2.3
    source_height_m: float = 1.0
    detector_depth_m: float = 0.03

    def __post_init__(self) -> None:
        if self.width_px < 1 or self.pixel_pitch_m <= 0:
            raise XrtSetupError(f"XRT geometry: width_px {self.width_px} and pixel_pitch_m "
                                f"{self.pixel_pitch_m} must be > 0")
        if self.source_height_m <= 0 or self.detector_depth_m < 0:
            raise XrtSetupError("XRT geometry: source_height_m must be > 0, "
                                "detector_depth_m >= 0")


@dataclass(frozen=True)
class XrtConditions:
    """Detector exposure: photons absorbed per pixel and line with only the belt in the beam
    (low, high layer), dark level, read noise (counts), flat-field level, ADC full scale, and
    the scanner's true ``deviation`` from its nominal set-up (simulator truth)."""

    photons: tuple[float, float] = (2.0e5, 1.0e5)
    dark_counts: float = 400.0
    read_noise_counts: float = 3.0
    flat_counts: float = 50000.0
    full_scale: float = 65535.0
    deviation: SetupCorrection = field(default_factory=SetupCorrection)


@dataclass
class XrtLineSim:
    """Renders one line of raw counts (W, 2) of the objects under the scanner.

    ``rest`` gives each object's light-element filler formula; ``rng`` draws the noise; the
    fixed pixel patterns come from ``pattern_seed``.
    """

    rng: np.random.Generator
    rest: RestFn
    setup: XrtSetup = field(default_factory=XrtSetup)
    geometry: XrtGeometry = field(default_factory=XrtGeometry)
    conditions: XrtConditions = field(default_factory=XrtConditions)
    pattern_seed: int = 0
    oversample: int = 2
    oversample_along: int = 2

    def __post_init__(self) -> None:
        self.true_setup = self.conditions.deviation.apply(self.setup)
        spectra = layer_spectra(self.true_setup)
        e = spectra.energies
        ebar = spectra.mean_energy
        self._p1 = spectra.photons * (e[None, :] / ebar[:, None])          # (2, E)
        self._p2 = spectra.photons * (e[None, :] / ebar[:, None]) ** 2
        w = self.geometry.width_px
        r = np.random.default_rng([self.pattern_seed, 4243])
        self._gain = self.conditions.flat_counts / np.asarray(self.conditions.photons)[None, :] * (
            1.0 + 0.02 * r.standard_normal((w, 2)))
        self._dark = self.conditions.dark_counts + 5.0 * r.standard_normal((w, 2))
        self._mu: dict[int, tuple[dict[str, float], FloatArray]] = {}

    def attenuation(self, obj: SceneObject) -> FloatArray:
        """μ(E) (cm²/g) of an object's bulk material (cached by object id and composition)."""
        hit = self._mu.get(obj.object_id)
        if hit is not None and hit[0] == obj.composition:
            return hit[1]
        mu = bulk_attenuation(obj.composition, self.rest(obj), self.true_setup)
        self._mu[obj.object_id] = (obj.composition, mu)
        return mu

    def forget(self, keep_ids: set[int]) -> None:
        """Drop cached attenuations of objects no longer in ``keep_ids``."""
        for oid in [k for k in self._mu if k not in keep_ids]:
            del self._mu[oid]

    def _expose(self, q: FloatArray, v: FloatArray) -> FloatArray:
        c = self.conditions
        raw = (self._dark + self._gain * (q + np.sqrt(np.maximum(v, 0.0))
                                          * self.rng.standard_normal(q.shape))
               + c.read_noise_counts * self.rng.standard_normal(q.shape))
        out: FloatArray = np.clip(np.round(raw), 0.0, c.full_scale)
        return out

    def dark_reference(self, n_lines: int = 16) -> FloatArray:
        """``n_lines`` lines with the tube off, (N, W, 2)."""
        shape = (n_lines, self.geometry.width_px, 2)
        return self._expose(np.zeros(shape), np.zeros(shape))

    def flat_reference(self, n_lines: int = 16) -> FloatArray:
        """``n_lines`` lines with only the belt in the beam, (N, W, 2)."""
        photons = np.asarray(self.conditions.photons)
        q = np.broadcast_to(photons, (n_lines, self.geometry.width_px, 2)).copy()
        return self._expose(q, q.copy())

    def transmission(self, objects: list[SceneObject]) -> tuple[FloatArray, FloatArray]:
        """Noise-free (signal, variance) per pixel and layer relative to the flat field, (W, 2):
        what the layers would integrate now, before Poisson and read noise."""
        g = self.geometry
        s, sa = self.oversample, self.oversample_along
        w = g.width_px
        off = (np.arange(s) + 0.5) / s - 0.5
        off_a = (np.arange(sa) + 0.5) / sa - 0.5
        y_d = (g.pixel_y()[:, None] + off[None, :] * g.pixel_pitch_m).reshape(-1)   # (w*s,)
        xs = g.x_m + off_a * g.pixel_pitch_m                                          # (sa,)
        h, d = g.source_height_m, g.detector_depth_m
        sec = np.sqrt((h + d) ** 2 + y_d**2) / (h + d)
        near = [o for o in objects
                if abs(o.x_m - g.x_m) <= o.footprint_radius_m() + g.pixel_pitch_m]
        n_rays = y_d.size * sa
        q = np.ones((n_rays, 2))
        v = np.ones((n_rays, 2))
        if near:
            mass_t = np.zeros((n_rays, len(near)))      # g/cm² per ray and object
            for k, o in enumerate(near):
                z_mid = o.z_m + o.height_m / 2
                y_at = y_d * (h - z_mid) / (h + d)
                yy, xx = np.meshgrid(y_at, xs, indexing="ij")
                chord = o.thickness(xx, yy).reshape(-1) * np.repeat(sec, sa)
                mass_t[:, k] = chord * 100.0 * o.density_kg_m3 / 1000.0
            hit = np.flatnonzero(mass_t.max(axis=1) > 0)
            if hit.size:
                mu = np.vstack([self.attenuation(o) for o in near])             # (k, E)
                t = np.exp(-mass_t[hit] @ mu)                                     # (n, E)
                q[hit] = t @ self._p1.T
                v[hit] = t @ self._p2.T
        q = q.reshape(w, s * sa, 2).mean(axis=1)
        v = v.reshape(w, s * sa, 2).mean(axis=1)
        return q, v

    def render(self, objects: list[SceneObject]) -> FloatArray:
        """Raw counts (W, 2) of the line now, objects at their current pose in the belt frame."""
        q, v = self.transmission(objects)
        photons = np.asarray(self.conditions.photons)[None, :]
        return self._expose(q * photons, v * photons)


def line_period_s(geometry: XrtGeometry, speed_mps: float) -> float:
    """Seconds between lines for square pixels at belt speed ``speed_mps``."""
    if not math.isfinite(speed_mps) or speed_mps <= 0:
        raise XrtSetupError(f"belt speed must be > 0, got {speed_mps}")
    return geometry.pixel_pitch_m / speed_mps
