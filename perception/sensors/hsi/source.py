"""Line-scan sources: one interface, three implementations (simulator, ENVI replay, GenICam).

A :class:`LineScanSource` yields :class:`HsiLine` objects: one line of ``W`` spatial pixels
x ``B`` bands (raw counts or reflectance), the band centres, the belt position (m, from
the encoder) and time at which it was taken. Implementations:

- :class:`SimulatedLineSource`: :class:`perception.sensors.hsi.sim.HsiLineSim` over a scene
  function ``t -> (objects, belt_position_m)``;
- :class:`EnviCubeSource`: replay of an ENVI cube (rows = lines) read with Spectral Python
  (``spectral.envi.open``); :func:`save_envi_cube` writes one (``spectral.envi.save_image``),
  with the wavelengths and per-line belt positions in the header;
- :class:`GenICamLineSource`: a live GenICam/GigE Vision camera through ``harvesters``
  (optional; import-guarded). It cannot be exercised without a camera and a GenTL
  producer (.cti); it is not tested here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from perception.sensors.hsi.errors import BandMismatchError, SourceError
from perception.sensors.hsi.sim import HsiLineSim
from perception.sensors.scene import SceneObject

FloatArray = NDArray[np.float64]
Encoding = Literal["raw", "reflectance"]


@dataclass
class HsiLine:
    """One line: ``data`` (W, B) float32, ``wavelengths_nm`` (B,), belt position (m), time (s).

    ``flags`` (W,) uint8 as in ``crmsort_msgs/HyperspectralLine`` (0 ok, 1 saturated,
    2 dead); ``y0_m``/``pixel_pitch_m`` place the pixels across the belt.
    """

    data: NDArray[np.float32]
    wavelengths_nm: FloatArray
    belt_position_m: float
    t_s: float
    encoding: Encoding = "raw"
    flags: NDArray[np.uint8] | None = None
    line_index: int = 0
    y0_m: float = 0.0
    pixel_pitch_m: float = 0.0

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != np.asarray(self.wavelengths_nm).size:
            raise BandMismatchError(
                f"line {self.line_index}: data shape {self.data.shape} does not match "
                f"{np.asarray(self.wavelengths_nm).size} wavelengths"
            )
        if self.flags is None:
            self.flags = np.zeros(self.data.shape[0], dtype=np.uint8)


class LineScanSource(Protocol):
    """Anything that yields :class:`HsiLine` objects."""

    @property
    def wavelengths_nm(self) -> FloatArray: ...

    def lines(self) -> Iterator[HsiLine]: ...


SceneFn = Callable[[float], tuple[list[SceneObject], float]]


@dataclass
class SimulatedLineSource:
    """Simulated lines at ``line_rate_hz`` for ``n_lines``; ``scene(t)`` gives objects + belt."""

    sim: HsiLineSim
    scene: SceneFn
    line_rate_hz: float
    n_lines: int

    @property
    def wavelengths_nm(self) -> FloatArray:
        return self.sim.bands.centres_nm

    def lines(self) -> Iterator[HsiLine]:
        g = self.sim.geometry
        for i in range(self.n_lines):
            t = i / self.line_rate_hz
            objects, pos = self.scene(t)
            raw, _ = self.sim.render(objects)
            yield HsiLine(raw.astype(np.float32), self.wavelengths_nm, pos, t, "raw",
                          line_index=i, y0_m=g.y0_m, pixel_pitch_m=g.pixel_pitch_m)


def save_envi_cube(
    path: Path, lines: list[HsiLine], description: str = "crmsort hyperspectral lines"
) -> Path:
    """Write lines as an ENVI BIL cube (rows = lines) with wavelengths, belt positions, times.

    Returns the header path. Raises :class:`BandMismatchError` if the lines disagree in
    shape or wavelengths, :class:`SourceError` for an empty list.
    """
    from spectral import envi

    if not lines:
        raise SourceError(f"{path}: no lines to save")
    first = lines[0]
    for ln in lines:
        if ln.data.shape != first.data.shape or not np.allclose(
            ln.wavelengths_nm, first.wavelengths_nm
        ):
            raise BandMismatchError(f"{path}: line {ln.line_index} differs in shape/bands")
    cube = np.stack([ln.data for ln in lines]).astype(np.float32)
    hdr = Path(path).with_suffix(".hdr")
    meta = {
        "description": description,
        "wavelength": [f"{w:.4f}" for w in first.wavelengths_nm],
        "wavelength units": "Nanometers",
        "crmsort encoding": first.encoding,
        "crmsort belt position m": [f"{ln.belt_position_m:.6f}" for ln in lines],
        "crmsort time s": [f"{ln.t_s:.6f}" for ln in lines],
        "crmsort y0 m": f"{first.y0_m:.6f}",
        "crmsort pixel pitch m": f"{first.pixel_pitch_m:.6f}",
    }
    envi.save_image(str(hdr), cube, metadata=meta, interleave="bil", force=True, ext=".img")
    return hdr


@dataclass
class EnviCubeSource:
    """Replays an ENVI cube line by line (rows = lines, columns = pixels, bands).

    Belt positions/times come from the ``crmsort belt position m`` / ``crmsort time s``
    header fields when present, else from ``line_pitch_m`` and ``line_rate_hz``.
    """

    path: Path
    line_pitch_m: float = 0.003125
    line_rate_hz: float = 160.0

    def __post_init__(self) -> None:
        from spectral import envi

        hdr = Path(self.path).with_suffix(".hdr")
        if not hdr.is_file():
            raise SourceError(f"{hdr}: ENVI header not found")
        try:
            self._img: Any = envi.open(str(hdr))
        except Exception as exc:  # spectral raises its own and OS errors
            raise SourceError(f"{hdr}: cannot open ENVI cube: {exc}") from exc
        meta = self._img.metadata
        if "wavelength" not in meta:
            raise SourceError(f"{hdr}: header has no 'wavelength' field")
        self._wl = np.asarray([float(w) for w in meta["wavelength"]], dtype=np.float64)
        rows, _, bands = self._img.shape
        if self._wl.size != bands:
            raise BandMismatchError(f"{hdr}: {bands} bands but {self._wl.size} wavelengths")
        pos = meta.get("crmsort belt position m")
        t = meta.get("crmsort time s")
        self._pos = (np.asarray([float(v) for v in pos]) if pos is not None
                     else np.arange(rows) * self.line_pitch_m)
        self._t = (np.asarray([float(v) for v in t]) if t is not None
                   else np.arange(rows) / self.line_rate_hz)
        if self._pos.size != rows or self._t.size != rows:
            raise SourceError(f"{hdr}: {rows} lines but {self._pos.size} belt positions")
        enc = str(meta.get("crmsort encoding", "reflectance"))
        if enc not in ("raw", "reflectance"):
            raise SourceError(f"{hdr}: crmsort encoding {enc!r} is not raw/reflectance")
        self._enc: Encoding = "raw" if enc == "raw" else "reflectance"
        self._y0 = float(meta.get("crmsort y0 m", 0.0))
        self._pitch = float(meta.get("crmsort pixel pitch m", self.line_pitch_m))

    @property
    def wavelengths_nm(self) -> FloatArray:
        return self._wl

    def lines(self) -> Iterator[HsiLine]:
        cube = self._img.open_memmap(interleave="bip")
        for i in range(cube.shape[0]):
            yield HsiLine(np.asarray(cube[i], dtype=np.float32), self._wl, float(self._pos[i]),
                          float(self._t[i]), self._enc, line_index=i, y0_m=self._y0,
                          pixel_pitch_m=self._pitch)


@dataclass
class GenICamLineSource:
    """A live GenICam line-scan camera (e.g. Specim FX17 over GigE Vision) via ``harvesters``.

    ``cti`` is the GenTL producer file; the camera must deliver one line per buffer as a
    2-D ``Mono12/Mono16`` image of ``bands`` rows x ``width`` columns (spectral axis
    vertical, as the FX series does). ``belt_position`` returns the current encoder
    position (m). Raises :class:`SourceError` if ``harvesters`` is not installed or no
    camera is found. Not exercised in tests (no camera here).
    """

    cti: Path
    wavelengths: FloatArray
    belt_position: Callable[[], float]
    serial: str | None = None

    @property
    def wavelengths_nm(self) -> FloatArray:
        return np.asarray(self.wavelengths, dtype=np.float64)

    def lines(self) -> Iterator[HsiLine]:  # pragma: no cover - needs hardware
        try:
            from harvesters.core import Harvester
        except ImportError as exc:
            raise SourceError("GenICam source needs the optional package 'harvesters'") from exc
        h = Harvester()
        h.add_file(str(self.cti))
        h.update()
        if not h.device_info_list:
            raise SourceError(f"{self.cti}: no GenICam device found")
        ia = h.create({"serial_number": self.serial} if self.serial else 0)
        ia.start()
        try:
            i = 0
            while True:
                with ia.fetch() as buf:
                    comp = buf.payload.components[0]
                    frame = comp.data.reshape(comp.height, comp.width).astype(np.float32)
                    t = float(buf.timestamp_ns) * 1e-9
                if frame.shape[0] != self.wavelengths_nm.size:
                    raise BandMismatchError(
                        f"camera delivers {frame.shape[0]} bands, {self.wavelengths_nm.size} "
                        "wavelengths configured"
                    )
                yield HsiLine(frame.T.copy(), self.wavelengths_nm, self.belt_position(), t,
                              "raw", line_index=i)
                i += 1
        finally:
            ia.stop()
            ia.destroy()
            h.reset()
