"""The simulated X-ray transmission scanner of the sim line: world objects -> ``XrtLine``.

:class:`XrtSensorSim` owns a :class:`perception.sensors.xrt.XrtLineSim`, takes its dark and
flat references once at start (tube off; only the belt in the beam) and renders one
``crmsort_msgs/XrtLine`` per call, flat-fielded as a scanner's driver delivers it
(``ENCODING_TRANSMISSION``, opaque and dead pixels flagged), or, with ``sensors.xrt.encoding:
raw_counts``, the raw detector counts (``ENCODING_RAW_COUNTS``) that the XRT node flat-fields
with the stored ``xrt.reference``. ``sensors.xrt.sim_deviation`` sets how the simulated
scanner's true set-up departs from the nominal one (what ``crmsort calibrate xrt`` corrects).
Each object's light-element filler follows its class's catalog material family
(:func:`perception.xrt.rest_formula`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perception.catalog import Catalog, load_catalog
from perception.sensors.scene import SceneObject
from perception.sensors.xrt import XrtConditions, XrtGeometry, XrtLineSim
from perception.xrt import TransmissionCalibrator, XrtSetup, rest_formula
from perception.xrt.materials import class_rest
from perception.xrt.setup_fit import SetupCorrection
from sorting.config.line import LineConfig, XrtConfig
from sorting.msgs import new
from sorting.msgs.convert import header

ENCODING_RAW_COUNTS = 0
ENCODING_TRANSMISSION = 1


def true_deviation(cfg: XrtConfig) -> SetupCorrection:
    """The simulated scanner's true departure from its nominal set-up (``sim_deviation``)."""
    d = cfg.sim_deviation
    return SetupCorrection(d.tube_kv_delta, 1.0 + d.filter_thickness_pct / 100.0,
                           1.0 + d.interlayer_thickness_pct / 100.0)


class XrtSensorSim:
    """Renders ``XrtLine`` messages of the world's objects (see the module docstring)."""

    def __init__(self, line: LineConfig, seed: int = 0,
                 catalog: Catalog | None = None) -> None:
        cfg = line.sensors.xrt
        pitch = line.belt.width_m / cfg.width_px
        self.geometry = XrtGeometry(
            x_m=cfg.x_m, y0_m=-line.belt.width_m / 2 + pitch / 2, pixel_pitch_m=pitch,
            width_px=cfg.width_px, source_height_m=cfg.source_height_m,
            detector_depth_m=cfg.detector_depth_m)
        self.setup = XrtSetup(tube_kv=cfg.tube_kv)
        rest = class_rest(catalog or load_catalog())
        ss = np.random.SeedSequence(seed)
        self.sim = XrtLineSim(
            np.random.default_rng(ss.spawn(1)[0]),
            rest=lambda o: rest.get(o.class_name, rest_formula(None)),
            setup=self.setup, geometry=self.geometry,
            conditions=XrtConditions(deviation=true_deviation(cfg)),
            pattern_seed=int(ss.generate_state(1)[0]))
        self.raw_counts = cfg.encoding == "raw_counts"
        self.calibrator = TransmissionCalibrator(self.sim.dark_reference(),
                                                 self.sim.flat_reference())
        self.line_index = 0

    def line_msg(self, objects: list[SceneObject], encoder_m: float, t_ns: int,
                 frame_id: str = "xrt_frame") -> Any:
        """One line (flat-fielded, or raw counts) of what lies under the scanner now."""
        raw = self.sim.render(objects)
        if self.raw_counts:
            t, flags = raw, np.zeros(raw.shape[0], dtype=np.uint8)
        else:
            t, flags = self.calibrator.apply(raw)
        if self.line_index % 256 == 0:
            self.sim.forget({o.object_id for o in objects})
        g = self.geometry
        msg = new(
            "crmsort_msgs/msg/XrtLine", header=header(t_ns, frame_id),
            line_index=self.line_index, belt_position_m=float(encoder_m),
            y0_m=float(g.y0_m), pixel_pitch_m=float(g.pixel_pitch_m),
            source_height_m=float(g.source_height_m), detector_depth_m=float(g.detector_depth_m),
            tube_kv=float(self.setup.tube_kv), width=g.width_px, layers=2,
            encoding=ENCODING_RAW_COUNTS if self.raw_counts else ENCODING_TRANSMISSION,
            data=np.ascontiguousarray(t, dtype=np.float32).reshape(-1),
            flags=flags.astype(np.uint8),
        )
        self.line_index += 1
        return msg
