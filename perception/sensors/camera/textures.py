"""Procedural albedo textures (linear RGB, 0-1) for objects and for the belt.

Object textures live in the object's own frame, so they move and turn with
it: a texture is an array ``(n_v, n_u, 3)`` float32 whose column ``j`` and row
``i`` cover ``u = (j + 0.5) * texel - length / 2`` and
``v = (i + 0.5) * texel - width / 2``. The same appearance (pattern, colours,
``texture_seed``), size and texel give the same texture, bit for bit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.errors import SensorError
from perception.sensors.scene import Appearance

Texture = NDArray[np.float32]
Rgb = tuple[float, float, float]

PATTERNS = ("plain", "pcb", "keys", "screen", "metal", "rock", "label", "stripes", "cable")
_PATTERN_CODE = {name: i for i, name in enumerate(PATTERNS)}
_MAX_TEXELS = 1024


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_texels: float) -> Texture:
    """Zero-mean, roughly unit-variance noise with features ``scale_texels`` wide."""
    h, w = shape
    sh = max(2, math.ceil(h / scale_texels) + 1)
    sw = max(2, math.ceil(w / scale_texels) + 1)
    small = rng.standard_normal((sh, sw)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big, dtype=np.float32)


def _fill(shape: tuple[int, int], rgb: Rgb) -> Texture:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float32), (*shape, 3)).copy()


def _mul(tex: Texture, factor: Texture) -> Texture:
    return np.asarray(tex * factor[..., None], dtype=np.float32)


def _px(length_m: float, texel: float) -> int:
    return max(1, round(length_m / texel))


def _rect(tex: Texture, x0: int, y0: int, x1: int, y1: int, rgb: Rgb | Texture) -> None:
    h, w = tex.shape[:2]
    x0, x1 = max(0, min(x0, x1)), min(w, max(x0, x1))
    y0, y1 = max(0, min(y0, y1)), min(h, max(y0, y1))
    if x1 > x0 and y1 > y0:
        tex[y0:y1, x0:x1] = rgb


def _plain(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    shape = (tex.shape[0], tex.shape[1])
    f = 1.0 + 0.05 * smooth_noise(rng, shape, 0.008 / texel) + 0.02 * rng.standard_normal(shape)
    return _mul(tex, f.astype(np.float32))


def _pcb(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    base = np.asarray(app.base_rgb, dtype=np.float32)
    tex = _plain(tex, app, rng, texel)
    area_cm2 = h * w * texel * texel * 1e4
    # copper traces under the solder mask show as lighter lines
    traces = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(area_cm2 * 1.5) + 3):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        thick = max(1, round(float(rng.uniform(0.25e-3, 0.8e-3)) / texel))
        for _ in range(int(rng.integers(1, 4))):
            seg = _px(float(rng.uniform(0.003, 0.03)), texel)
            ang = float(rng.integers(0, 8)) * math.pi / 4
            nx, ny = int(x + seg * math.cos(ang)), int(y + seg * math.sin(ang))
            cv2.line(traces, (x, y), (nx, ny), 255, thick)
            x, y = nx, ny
    t = traces.astype(np.float32)[..., None] / 255.0
    tex = tex * (1 - t) + (base * 1.7 + np.float32(0.04)) * t
    # pads and vias: bare tin/gold
    for _ in range(int(area_cm2 * 3) + 4):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = _px(float(rng.uniform(0.6e-3, 1.8e-3)), texel)
        metal: Rgb = (0.62, 0.6, 0.55) if rng.random() < 0.6 else (0.75, 0.55, 0.25)
        _rect(tex, x, y, x + s, y + s, metal)
    # components: black ICs with leads, tan/black passives, a few electrolytics
    for _ in range(int(area_cm2 * 0.6) + 2):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.random()
        if kind < 0.35:
            cw = _px(float(rng.uniform(0.004, 0.02)), texel)
            ch = _px(float(rng.uniform(0.004, 0.02)), texel)
            lead = max(1, _px(0.0008, texel))
            _rect(tex, x - lead, y + lead, x + cw + lead, y + ch - lead, (0.55, 0.55, 0.52))
            _rect(tex, x, y, x + cw, y + ch, (0.03, 0.03, 0.035))
            mark = max(1, _px(0.0006, texel))
            _rect(tex, x + 2 * mark, y + 2 * mark, x + 3 * mark, y + 3 * mark, (0.25, 0.25, 0.25))
            # silkscreen outline
            cv2.rectangle(
                tex, (x - 2 * lead, y - lead), (x + cw + 2 * lead, y + ch + lead),
                (0.7, 0.7, 0.68), 1,
            )
        elif kind < 0.85:
            cw = _px(float(rng.uniform(0.001, 0.0035)), texel)
            ch = max(1, cw // 2)
            body: Rgb = (0.35, 0.27, 0.17) if rng.random() < 0.5 else (0.04, 0.04, 0.04)
            if rng.random() < 0.5:
                cw, ch = ch, cw
            _rect(tex, x, y, x + cw, y + ch, body)
        else:
            r = _px(float(rng.uniform(0.0025, 0.006)), texel)
            acc = tuple(float(c) for c in app.accent_rgb)
            cv2.circle(tex, (x, y), r, (acc[0], acc[1], acc[2]), -1)
            cv2.circle(tex, (x, y), max(1, r // 3), (0.6, 0.6, 0.6), 1)
    return np.asarray(tex, dtype=np.float32)


def _keys(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    tex = _plain(tex, app, rng, texel)
    pitch = _px(0.019, texel)
    gap = max(1, _px(0.0025, texel))
    margin_u = max(gap, (w % pitch) // 2 + gap)
    margin_v = max(gap, (h % pitch) // 2 + gap)
    acc = np.asarray(app.accent_rgb, dtype=np.float32)
    legend = np.float32(0.8) if float(acc.mean()) < 0.3 else np.float32(0.03)
    n_rows = max(1, (h - 2 * margin_v) // pitch)
    n_cols = max(1, (w - 2 * margin_u) // pitch)
    for r in range(n_rows):
        c = 0
        while c < n_cols:
            span = 1
            if r == n_rows - 1 and n_rows > 2 and c == n_cols // 3:
                span = max(1, n_cols // 3)  # space bar
            elif rng.random() < 0.08:
                span = 2
            span = min(span, n_cols - c)
            x0 = margin_u + c * pitch
            y0 = margin_v + r * pitch
            x1 = x0 + span * pitch - gap
            y1 = y0 + pitch - gap
            shade = np.float32(rng.uniform(0.93, 1.07))
            _rect(tex, x0, y0, x1, y1, acc * shade * np.float32(0.85))
            inset = max(1, gap // 2)
            _rect(tex, x0 + inset, y0 + inset, x1 - inset, y1 - inset, acc * shade)
            if span == 1:
                lw = max(1, pitch // 6)
                lx, ly = x0 + pitch // 4, y0 + pitch // 4
                _rect(tex, lx, ly, lx + lw, ly + max(1, lw // 2), np.full(3, legend))
            c += span
    return tex


def _screen(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    tex = _plain(tex, app, rng, texel)
    bezel = max(2, round(min(h, w) * float(rng.uniform(0.04, 0.08))))
    panel = np.asarray((0.012, 0.014, 0.02), dtype=np.float32)
    grad = 1.0 + 0.4 * smooth_noise(rng, (h, w), max(h, w) / 2.0)
    region = panel * np.clip(grad, 0.5, 1.6)[..., None]
    tex[bezel : h - bezel, bezel : w - bezel] = region[bezel : h - bezel, bezel : w - bezel]
    return tex


def _metal(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    streak = rng.standard_normal((h, w)).astype(np.float32)
    k = max(3, _px(0.02, texel)) | 1
    brushed = cv2.blur(streak, (k, 1)) * math.sqrt(k)
    low = smooth_noise(rng, (h, w), 0.02 / texel)
    f = 1.0 + 0.06 * brushed + 0.1 * low
    tex = _mul(tex, np.clip(f, 0.3, 2.0).astype(np.float32))
    for _ in range(int(rng.integers(0, 6))):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        c = tuple(float(min(1.0, v * 1.4)) for v in app.base_rgb)
        cv2.line(tex, p0, p1, (c[0], c[1], c[2]), 1)
    return tex


def _rock(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    base = np.asarray(app.base_rgb, dtype=np.float32)
    acc = np.asarray(app.accent_rgb, dtype=np.float32)
    t = 1 / (1 + np.exp(-2.5 * smooth_noise(rng, (h, w), 0.012 / texel)))
    tex = base * (1 - t[..., None]) + acc * t[..., None]
    fine = 1.0 + 0.15 * smooth_noise(rng, (h, w), 0.0015 / texel) + 0.06 * rng.standard_normal(
        (h, w)
    )
    tex = _mul(np.asarray(tex, dtype=np.float32), fine.astype(np.float32))
    pores = np.ones((h, w), dtype=np.float32)
    n_pores = int(h * w * texel * texel * 4e4) + 3
    for _ in range(n_pores):
        r = max(1, _px(float(rng.uniform(0.0002, 0.0012)), texel))
        cv2.circle(pores, (int(rng.integers(0, w)), int(rng.integers(0, h))), r, 0.3, -1)
    return _mul(tex, pores)


def _label(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    tex = _plain(tex, app, rng, texel)
    acc = app.accent_rgb
    paper: Rgb = (0.78, 0.78, 0.72) if acc == (0.5, 0.5, 0.5) else acc
    lw, lh = round(w * float(rng.uniform(0.3, 0.6))), round(h * float(rng.uniform(0.3, 0.6)))
    x0, y0 = int(rng.integers(0, max(1, w - lw))), int(rng.integers(0, max(1, h - lh)))
    _rect(tex, x0, y0, x0 + lw, y0 + lh, paper)
    line_h = max(1, _px(0.0015, texel))
    pitch = max(2 * line_h + 1, _px(0.004, texel))
    pad = max(1, pitch // 2)
    y = y0 + pad
    while y + line_h < y0 + lh - pad:
        x = x0 + pad
        while x < x0 + lw - pad:
            word = _px(float(rng.uniform(0.003, 0.012)), texel)
            _rect(tex, x, y, min(x + word, x0 + lw - pad), y + line_h, (0.04, 0.04, 0.05))
            x += word + max(1, line_h)
        y += pitch
    return tex


def _stripes(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    w = tex.shape[1]
    tex = _plain(tex, app, rng, texel)
    period = max(2.0, float(rng.uniform(0.005, 0.02)) / texel)
    duty = float(rng.uniform(0.3, 0.6))
    phase = float(rng.uniform(0, period))
    on = ((np.arange(w) + phase) % period) < duty * period
    acc = np.asarray(app.accent_rgb, dtype=np.float32)
    tex[:, on] = acc * (tex[:, on] / np.maximum(np.asarray(app.base_rgb, np.float32), 1e-3))
    return tex


def _cable(tex: Texture, app: Appearance, rng: np.random.Generator, texel: float) -> Texture:
    h, w = tex.shape[:2]
    tex = _plain(tex, app, rng, texel)
    n_bands = int(rng.integers(0, 3))
    acc = np.asarray(app.accent_rgb, dtype=np.float32)
    for _ in range(n_bands):
        c = int(rng.integers(0, h))
        half = max(1, round(h * float(rng.uniform(0.04, 0.1))))
        tex[max(0, c - half) : c + half] = acc
    # twisted braid / moulding marks: faint diagonal ripples along the axis
    uu, vv = np.meshgrid(np.arange(w), np.arange(h))
    period = max(3.0, 0.006 / texel)
    ripple = 1.0 + 0.05 * np.sin(2 * np.pi * (uu + 0.5 * vv) / period)
    return _mul(tex, ripple.astype(np.float32))


_GENERATORS: dict[str, Callable[[Texture, Appearance, np.random.Generator, float], Texture]] = {
    "plain": _plain,
    "pcb": _pcb,
    "keys": _keys,
    "screen": _screen,
    "metal": _metal,
    "rock": _rock,
    "label": _label,
    "stripes": _stripes,
    "cable": _cable,
}


def texture_texel(length_m: float, width_m: float, texel_m: float) -> float:
    """The texel (m) actually used: ``texel_m``, enlarged so no side exceeds 1024 texels."""
    return max(texel_m, max(length_m, width_m) / _MAX_TEXELS)


def object_texture(app: Appearance, length_m: float, width_m: float, texel_m: float) -> Texture:
    """Albedo texture ``(n_v, n_u, 3)`` float32 for an object of footprint ``length_m x width_m``.

    Deterministic in ``(app, length_m, width_m, texel_m)``; raises :class:`SensorError`
    for an unknown ``app.pattern``.
    """
    gen = _GENERATORS.get(app.pattern)
    if gen is None:
        raise SensorError(
            f"Appearance.pattern: unknown pattern {app.pattern!r}; expected one of {PATTERNS}"
        )
    texel = texture_texel(length_m, width_m, texel_m)
    shape = (_px(width_m, texel), _px(length_m, texel))
    rng = np.random.default_rng([app.texture_seed & 0xFFFFFFFF, _PATTERN_CODE[app.pattern]])
    tex = gen(_fill(shape, app.base_rgb), app, rng, texel)
    return np.ascontiguousarray(np.clip(tex, 0.0, 1.0), dtype=np.float32)


class TextureCache:
    """LRU cache of :func:`object_texture` results (objects recur in consecutive frames)."""

    def __init__(self, max_entries: int = 256) -> None:
        self._max = max_entries
        self._items: OrderedDict[tuple[object, ...], tuple[Texture, float]] = OrderedDict()

    def get(
        self, app: Appearance, length_m: float, width_m: float, texel_m: float
    ) -> tuple[Texture, float]:
        """``(texture, texel_m actually used)``."""
        key = (app, round(length_m, 6), round(width_m, 6), round(texel_m, 7))
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        texel = texture_texel(length_m, width_m, texel_m)
        value = (object_texture(app, length_m, width_m, texel_m), texel)
        self._items[key] = value
        if len(self._items) > self._max:
            self._items.popitem(last=False)
        return value


def belt_texture(
    rng: np.random.Generator, period_m: float, width_m: float, texel_m: float
) -> Texture:
    """Albedo of a used rubber conveyor belt, ``(n_y, n_x, 3)`` float32, periodic in x.

    Dark grey rubber (albedo about 0.045) with fine grain, a fabric-weave
    imprint, wear lines along the travel direction, dust specks and stains.
    Column ``j`` is belt-surface coordinate ``j * texel_m`` (wrapping at
    ``period_m``); row ``i`` is ``y = width_m / 2 - i * texel_m`` (left edge first).
    """
    nx, ny = _px(period_m, texel_m), _px(width_m, texel_m)
    base = np.asarray((0.043, 0.044, 0.046), dtype=np.float32)
    grain = 0.12 * rng.standard_normal((ny, nx)).astype(np.float32)
    grain = np.asarray(cv2.GaussianBlur(grain, (0, 0), 0.6), dtype=np.float32)
    xx = np.arange(nx, dtype=np.float32) * texel_m
    yy = np.arange(ny, dtype=np.float32) * texel_m
    pitch = float(rng.uniform(0.002, 0.0035))
    weave = 0.05 * np.outer(np.sin(2 * np.pi * yy / pitch), np.sin(2 * np.pi * xx / pitch))
    wear = smooth_noise(rng, (ny, 1), 0.004 / texel_m) * 0.06
    low = smooth_noise(rng, (ny, nx), 0.05 / texel_m) * 0.06
    f = 1.0 + grain + weave.astype(np.float32) + wear + low
    tex = base * f[..., None]
    # stains: dust (lighter, brownish) and oil (darker), soft-edged
    n_stains = int(period_m * width_m * 25) + 2
    alpha = np.zeros((ny, nx), dtype=np.float32)
    colour = np.zeros((ny, nx, 3), dtype=np.float32)
    for _ in range(n_stains):
        cx_, cy_ = int(rng.integers(0, nx)), int(rng.integers(0, ny))
        ax_ = _px(float(rng.uniform(0.004, 0.05)), texel_m)
        ay_ = _px(float(rng.uniform(0.004, 0.05)), texel_m)
        a = float(rng.uniform(0.15, 0.5))
        c: Rgb = (0.11, 0.095, 0.075) if rng.random() < 0.6 else (0.015, 0.015, 0.014)
        cv2.ellipse(alpha, (cx_, cy_), (ax_, ay_), float(rng.uniform(0, 180)), 0, 360, a, -1)
        cv2.ellipse(colour, (cx_, cy_), (ax_, ay_), 0, 0, 360, c, -1)
    alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), 2.0), dtype=np.float32)
    colour = np.asarray(cv2.GaussianBlur(colour, (0, 0), 2.0), dtype=np.float32)
    alpha *= 1.0 + 0.5 * smooth_noise(rng, (ny, nx), 0.005 / texel_m)
    alpha = np.clip(alpha, 0.0, 0.8)[..., None]
    tex = tex * (1 - alpha) + colour * alpha
    # dust specks
    n_specks = int(period_m * width_m * 3000)
    sx = rng.integers(0, nx, n_specks)
    sy = rng.integers(0, ny, n_specks)
    tex[sy, sx] = rng.uniform(0.08, 0.25, (n_specks, 1)).astype(np.float32)
    return np.ascontiguousarray(np.clip(tex, 0.0, 1.0), dtype=np.float32)
