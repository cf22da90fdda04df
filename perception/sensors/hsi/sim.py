"""Push-broom hyperspectral line simulator: raw counts of one line across the belt.

The camera's line of ``width_px`` pixels lies across the belt at belt-frame ``x_m``
(pixel j centred at ``y = y0_m + j * pixel_pitch_m``). For one line:

1. Sub-pixel sampling (``oversample`` across x ``oversample_along`` along travel) with
   :func:`perception.sensors.scene.scene_height` gives, per pixel, the covered fraction of
   each visible object and of the belt: edge pixels are mixtures.
2. Each object's reflectance is its material's library spectrum (resampled to the camera's
   bands) with per-object variation drawn from ``(variation_seed, object_id)`` — brightness
   (pigment, gloss, specular metals), absorption depth (thickness, filler) and a slight
   tilt — and per-pixel texture; an object ``z`` closer to the lamps is lit more,
   ``(h_lamp / (h_lamp - z))^2``.
3. Radiance = illumination x reflectance: a halogen lamp (Planck at ``colour_temp_k``),
   ``lamp_scale`` and a quadratic ``falloff`` towards the line ends; a ``stray_fraction`` of the
   line's mean signal scatters into every pixel.
4. Counts = dark (offset + fixed pattern) + gain (quantum efficiency x pixel response
   non-uniformity) x radiance, with shot noise (``electrons_per_count``), read noise,
   quantization and clipping at ``full_scale``; ``dead_pixels`` never respond.

The dark and white references (:meth:`HsiLineSim.dark_reference`,
:meth:`HsiLineSim.white_reference`) are taken under the *reference* conditions
(``ref_conditions``), lines under ``conditions``: when the two differ (lamp drift, a cooler
lamp, other falloff), the calibrated reflectance carries that residual error, as it does
on a real line between white-reference takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from perception.sensors.hsi.bands import BandModel
from perception.sensors.hsi.errors import SourceError
from perception.sensors.linescan import LineGeometry
from perception.sensors.scene import SceneObject, scene_height

FloatArray = NDArray[np.float64]
_METAL_IDS = ("steel", "stainless", "aluminium", "copper", "brass", "ndfeb")


class LibraryLike(Protocol):
    """What the simulator needs of :class:`perception.hsi.library.SpectralLibrary`."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def labels(self) -> tuple[int, ...]: ...

    def resampled(self, bands: BandModel) -> FloatArray: ...


@dataclass(frozen=True)
class HsiGeometry(LineGeometry):
    """The camera's line (:class:`LineGeometry`) and its lamp's height above the belt (m)."""

    lamp_height_m: float = 0.5


@dataclass(frozen=True)
class HsiConditions:
    """Illumination and sensor noise of one line (see the module docstring).

    ``lamp_scale`` is relative to the reference take; ``falloff`` the relative illumination
    drop at the line ends; counts are of a 12-bit sensor by default.
    """

    lamp_scale: float = 1.0
    colour_temp_k: float = 3000.0
    falloff: float = 0.20
    stray_fraction: float = 0.005
    read_noise_counts: float = 2.0
    electrons_per_count: float = 8.0
    dark_level_counts: float = 150.0
    white_peak_counts: float = 2600.0
    full_scale: float = 4095.0


@dataclass(frozen=True)
class ObjectVariation:
    """Ranges of per-object spectral variation (uniform draws)."""

    brightness: tuple[float, float] = (0.8, 1.2)
    metal_brightness: tuple[float, float] = (0.6, 1.3)
    depth: tuple[float, float] = (0.8, 1.25)
    tilt_per_um: tuple[float, float] = (-0.04, 0.04)
    texture_sd: float = 0.02
    metal_texture_sd: float = 0.08


@dataclass
class HsiTruth:
    """Simulator truth of one line: per pixel the dominant label, its coverage, object id."""

    labels: NDArray[np.int64]
    coverage: FloatArray
    object_ids: NDArray[np.int64]


def planck_shape(wavelengths_nm: FloatArray, temp_k: float) -> FloatArray:
    """Planck spectral radiance at ``temp_k``, normalized to 1 at 1300 nm (unitless)."""
    c2 = 1.4387769e7  # nm K
    lam = np.asarray(wavelengths_nm, dtype=np.float64)
    b = lam**-5 / np.expm1(c2 / (lam * temp_k))
    ref = 1300.0**-5 / np.expm1(c2 / (1300.0 * temp_k))
    out: FloatArray = b / ref
    return out


def ingaas_qe(wavelengths_nm: FloatArray) -> FloatArray:
    """Relative quantum efficiency of an InGaAs (to 1700 nm) or extended-SWIR detector."""
    lam = np.asarray(wavelengths_nm, dtype=np.float64)
    rise = 1.0 / (1.0 + np.exp(-(lam - 930.0) / 25.0))
    cutoff = 1720.0 if lam[-1] <= 1750.0 else 2530.0
    fall = 1.0 / (1.0 + np.exp((lam - cutoff) / 20.0))
    out: FloatArray = 0.3 + 0.7 * rise * fall
    return out


@dataclass
class HsiLineSim:
    """Renders raw-count lines (W x B) of the objects on the belt (see the module docstring).

    ``library`` gives material spectra (rows ``names``, labels ``labels``: hsi_id or 254 for
    the belt); ``panel`` the white panel's reflectance per band (B,). Randomness: ``rng``
    for noise; object variation from ``variation_seed`` and the object id, so the same
    object looks the same in every line.
    """

    bands: BandModel
    library: LibraryLike
    panel: FloatArray
    rng: np.random.Generator
    geometry: HsiGeometry = field(default_factory=HsiGeometry)
    conditions: HsiConditions = field(default_factory=HsiConditions)
    ref_conditions: HsiConditions = field(default_factory=HsiConditions)
    variation: ObjectVariation = field(default_factory=ObjectVariation)
    variation_seed: int = 0
    dead_pixels: tuple[int, ...] = ()
    oversample: int = 4
    oversample_along: int = 2

    def __post_init__(self) -> None:
        self._spectra = np.asarray(self.library.resampled(self.bands), dtype=np.float64)
        if "belt" not in self.library.names:
            raise SourceError("spectral library has no 'belt' spectrum")
        self._belt = self._spectra[self.library.names.index("belt")]
        self._row = {n: i for i, n in enumerate(self.library.names)}
        w, b = self.geometry.width_px, self.bands.bands
        if np.asarray(self.panel).shape != (b,):
            raise SourceError(f"panel reflectance must have {b} bands, got {np.shape(self.panel)}")
        # fixed per-camera properties, from a generator of their own so that noise draws
        # do not change the camera
        cam_rng = np.random.default_rng([self.variation_seed, 7919])
        self._prnu = 1.0 + 0.02 * cam_rng.standard_normal((w, b))
        self._dark_pattern = 4.0 * cam_rng.standard_normal((w, b))
        qe = ingaas_qe(self.bands.centres_nm)
        self._qe = qe
        for p in self.dead_pixels:
            if not 0 <= p < w:
                raise SourceError(f"dead pixel {p} outside 0..{w - 1}")
        self._cache: dict[int, tuple[FloatArray, float, str]] = {}

    # -- illumination and sensor ----------------------------------------------------------
    def _gain(self, cond: HsiConditions) -> FloatArray:
        """Counts per unit reflectance (W, B) under ``cond`` (the lamp and the optics)."""
        w = self.geometry.width_px
        u = np.linspace(-1.0, 1.0, w)
        profile = cond.lamp_scale * (1.0 - cond.falloff * u**2)
        spec = planck_shape(self.bands.centres_nm, cond.colour_temp_k) * self._qe
        ref_spec = planck_shape(self.bands.centres_nm, self.ref_conditions.colour_temp_k)
        norm = float(np.max(ref_spec * self._qe * self.panel))
        g = (cond.white_peak_counts / norm) * profile[:, None] * spec[None, :] * self._prnu
        if self.dead_pixels:
            g[list(self.dead_pixels), :] = 0.0
        out: FloatArray = g
        return out

    def _expose(self, signal: FloatArray, cond: HsiConditions) -> FloatArray:
        """Signal counts -> raw counts with stray light, dark, shot and read noise, clipping."""
        sig = signal + cond.stray_fraction * signal.mean(axis=-2, keepdims=True)
        shot = np.sqrt(np.maximum(sig, 0.0) / cond.electrons_per_count)
        raw = (
            sig
            + cond.dark_level_counts
            + self._dark_pattern
            + shot * self.rng.standard_normal(sig.shape)
            + cond.read_noise_counts * self.rng.standard_normal(sig.shape)
        )
        out: FloatArray = np.clip(np.round(raw), 0.0, cond.full_scale)
        return out

    def dark_reference(self, n_lines: int = 16) -> FloatArray:
        """``n_lines`` dark lines (shutter closed) under the reference conditions, (N, W, B)."""
        shape = (n_lines, self.geometry.width_px, self.bands.bands)
        return self._expose(np.zeros(shape), self.ref_conditions)

    def white_reference(self, n_lines: int = 16) -> FloatArray:
        """``n_lines`` lines of the white panel under the reference conditions, (N, W, B)."""
        sig = self._gain(self.ref_conditions) * self.panel[None, :]
        return self._expose(np.broadcast_to(sig, (n_lines, *sig.shape)).copy(), self.ref_conditions)

    # -- objects --------------------------------------------------------------------------
    def object_reflectance(self, obj: SceneObject) -> tuple[FloatArray, float, str]:
        """(reflectance (B,), texture sd, material) of one object, with its own variation."""
        hit = self._cache.get(obj.object_id)
        if hit is not None and hit[2] == obj.material:
            return hit
        row = self._row.get(obj.material)
        if row is None:
            raise SourceError(
                f"object {obj.object_id}: material {obj.material!r} not in the spectral library"
            )
        v = self.variation
        r = np.random.default_rng([self.variation_seed, obj.object_id & 0x7FFFFFFF, 17])
        metal = obj.material in _METAL_IDS
        bright = r.uniform(*(v.metal_brightness if metal else v.brightness))
        depth = r.uniform(*v.depth)
        tilt = r.uniform(*v.tilt_per_um)
        base = self._spectra[row]
        mean = float(base.mean())
        lam_um = (self.bands.centres_nm - 1300.0) / 1000.0
        refl = bright * mean * (base / mean) ** depth * (1.0 + tilt * lam_um)
        out = (np.clip(refl, 1e-4, 1.5), v.metal_texture_sd if metal else v.texture_sd,
               obj.material)
        self._cache[obj.object_id] = out
        return out

    def render(
        self, objects: list[SceneObject], conditions: HsiConditions | None = None
    ) -> tuple[FloatArray, HsiTruth]:
        """Raw counts (W, B) of the line now, and the truth, for objects at their current pose.

        ``objects`` are in the belt frame at the instant of the line (the caller moves them).
        """
        cond = self.conditions if conditions is None else conditions
        g = self.geometry
        w, s, sa = g.width_px, self.oversample, self.oversample_along
        off = (np.arange(s) + 0.5) / s - 0.5
        off_a = (np.arange(sa) + 0.5) / sa - 0.5
        ys = (g.pixel_y()[:, None] + off[None, :] * g.pixel_pitch_m).reshape(-1)
        yy, xx = np.meshgrid(ys, g.x_m + off_a * g.pixel_pitch_m, indexing="ij")
        near = [
            o for o in objects if abs(o.x_m - g.x_m) <= o.footprint_radius_m() + g.pixel_pitch_m
        ]
        z, idx = scene_height(near, xx, yy)
        idx = idx.reshape(w, s * sa)
        lit = ((g.lamp_height_m / np.maximum(g.lamp_height_m - z, 0.05)) ** 2).reshape(w, -1)
        k = len(near)
        refl = np.empty((k + 1, self.bands.bands))
        tex = np.zeros(k + 1)
        labels = np.empty(k + 1, dtype=np.int64)
        ids = np.empty(k + 1, dtype=np.int64)
        for i, o in enumerate(near):
            refl[i], tex[i], _ = self.object_reflectance(o)
            labels[i] = self.library.labels[self._row[o.material]]
            ids[i] = o.object_id
        refl[k], labels[k], ids[k] = self._belt, self.library.labels[self._row["belt"]], -1
        slot = np.where(idx < 0, k, idx)
        n_sub = s * sa
        cover = np.zeros((w, k + 1))
        lit_cover = np.zeros((w, k + 1))
        rows = np.repeat(np.arange(w), n_sub)
        np.add.at(cover, (rows, slot.reshape(-1)), 1.0 / n_sub)
        np.add.at(lit_cover, (rows, slot.reshape(-1)), lit.reshape(-1) / n_sub)
        texture = 1.0 + (cover @ tex) * self.rng.standard_normal(w)
        pixel_refl = (lit_cover @ refl) * texture[:, None]
        raw = self._expose(self._gain(cond) * pixel_refl, cond)
        dom = np.argmax(cover, axis=1)
        truth = HsiTruth(labels[dom], cover[np.arange(w), dom], ids[dom])
        return raw, truth

    def with_conditions(self, conditions: HsiConditions) -> HsiLineSim:
        """A copy rendering under other conditions (same camera, same references)."""
        return replace(self, conditions=conditions)
