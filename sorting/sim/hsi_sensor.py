"""The simulated hyperspectral line-scan camera for the sim line: world objects -> messages.

:class:`HsiSensorSim` owns a :class:`perception.sensors.hsi.sim.HsiLineSim` (FX17-like
bands by default), takes its dark and white references once at start, and renders one
``crmsort_msgs/HyperspectralLine`` per call from the objects on the belt and the encoder
position — raw counts, or reflectance calibrated as a camera driver with on-board flat
fielding would deliver (``encoding``). The sim line node calls :meth:`HsiSensorSim.line_msg`
from a timer at the line rate (see the report of issue 4 for the wiring).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from perception.hsi.library import load_library, panel_reflectance
from perception.sensors.hsi.bands import BandModel, fx17
from perception.sensors.hsi.reflectance import ReflectanceCalibrator
from perception.sensors.hsi.sim import HsiConditions, HsiGeometry, HsiLineSim
from perception.sensors.hsi.source import HsiLine
from perception.sensors.scene import SceneObject
from sorting.msgs import new
from sorting.msgs.convert import header

ENCODING_RAW_COUNTS = 0
ENCODING_REFLECTANCE = 1


def hsi_line_msg(line: HsiLine, t_ns: int, frame_id: str = "hsi_optical_frame") -> Any:
    """``crmsort_msgs/HyperspectralLine`` from an :class:`HsiLine` (data pixel-major)."""
    w, b = line.data.shape
    flags = line.flags if line.flags is not None else np.zeros(w, dtype=np.uint8)
    return new(
        "crmsort_msgs/msg/HyperspectralLine",
        header=header(t_ns, frame_id),
        line_index=line.line_index,
        belt_position_m=float(line.belt_position_m),
        y0_m=float(line.y0_m),
        pixel_pitch_m=float(line.pixel_pitch_m),
        width=w,
        bands=b,
        wavelengths_nm=np.asarray(line.wavelengths_nm, dtype=np.float32),
        encoding=ENCODING_RAW_COUNTS if line.encoding == "raw" else ENCODING_REFLECTANCE,
        data=np.ascontiguousarray(line.data, dtype=np.float32).reshape(-1),
        flags=np.asarray(flags, dtype=np.uint8),
    )


class HsiSensorSim:
    """Renders ``HyperspectralLine`` messages of the world's objects (see the module docstring).

    ``x_m`` is where the line lies along the belt, ``width_m`` the belt width it spans with
    ``width_px`` pixels; ``seed`` fixes noise, camera and object variation.
    """

    def __init__(
        self, x_m: float, width_m: float = 0.8, width_px: int = 256, seed: int = 0,
        bands: BandModel | None = None, encoding: Literal["raw", "reflectance"] = "reflectance",
        conditions: HsiConditions | None = None,
    ) -> None:
        self.bands = bands or fx17()
        pitch = width_m / width_px
        geo = HsiGeometry(x_m=x_m, y0_m=-width_m / 2 + pitch / 2, pixel_pitch_m=pitch,
                          width_px=width_px)
        ss = np.random.SeedSequence(seed)
        rng = np.random.default_rng(ss.spawn(1)[0])
        self.panel = panel_reflectance(self.bands)
        self.sim = HsiLineSim(
            self.bands, load_library(), self.panel, rng, geometry=geo,
            conditions=conditions or HsiConditions(), variation_seed=int(ss.generate_state(1)[0]),
        )
        self.calibrator = ReflectanceCalibrator(
            self.sim.dark_reference(), self.sim.white_reference(), self.panel
        )
        self.encoding = encoding
        self.line_index = 0

    @property
    def geometry(self) -> HsiGeometry:
        return self.sim.geometry

    def line_msg(
        self, objects: list[SceneObject], belt_position_m: float, t_ns: int,
        frame_id: str = "hsi_optical_frame",
    ) -> Any:
        """One line of ``objects`` (belt frame, current pose) as a HyperspectralLine message."""
        raw, _ = self.sim.render(objects)
        if self.encoding == "raw":
            data = raw.astype(np.float32)
            flags = np.zeros(raw.shape[0], dtype=np.uint8)
            flags[np.any(raw >= self.sim.conditions.full_scale, axis=1)] = 1
        else:
            data, flags = self.calibrator.apply(raw)
        g = self.geometry
        line = HsiLine(data, self.bands.centres_nm, belt_position_m, t_ns * 1e-9,
                       self.encoding, flags, self.line_index, g.y0_m, g.pixel_pitch_m)
        self.line_index += 1
        return hsi_line_msg(line, t_ns, frame_id)
