"""X-ray transmission node: ``xrt/line`` (XrtLine) -> ``xrt/objects`` (XrtObjectArray).

Each line is turned into log-attenuations of both layers (flat-fielded lines as they come;
raw-count lines with dark/flat references: parameter ``calibration``, an npz with ``dark`` and
``flat`` arrays, or else the ``xrt.reference`` entry of the calibration store named by
parameter ``store``), mapped to what the nominal set-up (parameter ``tube_kv``) would have
seen when the store has an ``xrt.mass_scale`` correction
(:class:`perception.xrt.remap.AttenuationRemap`, so masses computed downstream with the
nominal tables come out right), and pushed through the streaming segmenter
(:class:`perception.xrt.LineSegmenter`). Every object it completes is published with all
its cells, their rays' angle to the vertical, and the geometry the mass needs: the cell's
horizontal area at belt level (pixel pitch scaled from the detector line to the belt by the
fan's magnification, times the encoder advance per line) and the source height.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import CalibrationError
from calibration.store import load_store
from calibration.xrt_records import xrt_correction, xrt_reference_file
from perception.xrt import (
    LineSegmenter,
    TransmissionCalibrator,
    XrtBlob,
    XrtSetup,
    log_attenuation_of,
)
from perception.xrt.errors import XrtDataError, XrtError
from perception.xrt.geometry import blob_geometry
from perception.xrt.remap import AttenuationRemap
from perception.xrt.setup_fit import SetupCorrection
from sorting.errors import ConfigError
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.runtime.context import Node, NodeContext

ENCODING_RAW_COUNTS = 0


def xrt_line_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data (W, 2) float64, flags (W,) uint8) of an XrtLine; raises XrtDataError naming the
    line when sizes disagree or it does not have two layers."""
    w, layers = int(msg.width), int(msg.layers)
    if layers != 2:
        raise XrtDataError(f"XrtLine {msg.line_index}: expected 2 layers, got {layers}")
    data = np.asarray(msg.data, dtype=np.float64)
    if data.size != w * layers:
        raise XrtDataError(f"XrtLine {msg.line_index}: {data.size} values, expected "
                           f"width*layers = {w}*{layers}")
    flags = np.asarray(msg.flags, dtype=np.uint8)
    if flags.size != w:
        raise XrtDataError(f"XrtLine {msg.line_index}: {flags.size} flags for {w} pixels")
    return data.reshape(w, layers), flags


class XrtNode(Node):
    """Segments X-ray transmission lines into objects (see the module docstring)."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        calib = str(ctx.declare_parameter("calibration", "").value or "")
        store = str(ctx.declare_parameter("store", "").value or "")
        tube_kv = float(ctx.declare_parameter("tube_kv", 160.0).value)
        self.frame_id = str(ctx.declare_parameter("frame_id", "belt").value)
        self.x_m = float(ctx.declare_parameter("x_m", 2.3).value)
        self.calibrator: TransmissionCalibrator | None = None
        self.remap: AttenuationRemap | None = None
        self.correction: SetupCorrection | None = None
        try:
            if store and Path(store).is_file():
                st = load_store(store)
                ref = xrt_reference_file(st, Path(store))
                calib = calib or (str(ref) if ref is not None else "")
                corr = xrt_correction(st)
                if corr is not None and not SetupCorrection(*corr).is_identity:
                    nominal = XrtSetup(tube_kv=tube_kv)
                    self.correction = SetupCorrection(*corr)
                    self.remap = AttenuationRemap(nominal, self.correction.apply(nominal))
            if calib:
                with np.load(calib) as z:
                    self.calibrator = TransmissionCalibrator(z["dark"], z["flat"])
        except (OSError, KeyError, CalibrationError, XrtError) as exc:
            raise ConfigError(f"{ctx.get_name()}: XRT calibration ({calib or store}): "
                              f"{exc}") from exc
        if self.remap is not None:
            ctx.get_logger().info(f"xrt: mass-scale correction {self.correction} from {store}")
        self.segmenter = LineSegmenter()
        self.pub = ctx.create_publisher("crmsort_msgs/msg/XrtObjectArray", "xrt/objects", 10)
        ctx.create_subscription("crmsort_msgs/msg/XrtLine", "xrt/line", self._on_line, 100)
        self._geometry: tuple[float, float, float, float] | None = None
        self._last_ns = 0
        self.lines_in = 0
        self.objects_out = 0
        self.rejected = 0

    def _on_line(self, msg: Any) -> None:
        try:
            data, flags = xrt_line_arrays(msg)
            if int(msg.encoding) == ENCODING_RAW_COUNTS:
                if self.calibrator is None:
                    raise XrtDataError("raw-count XRT lines but no dark/flat references: run "
                                       "`crmsort calibrate xrt` (xrt.reference) or set the "
                                       "'calibration' parameter")
                data, flags = self.calibrator.apply(data)
            a = log_attenuation_of(data)
            if self.remap is not None:
                lo, hi = self.remap.apply(a[:, 0], a[:, 1])
                a = np.column_stack([lo, hi])
            geometry = (float(msg.y0_m), float(msg.pixel_pitch_m), float(msg.source_height_m),
                        float(msg.detector_depth_m))
            if geometry[1] <= 0 or geometry[2] <= 0:
                raise XrtDataError(f"XrtLine {msg.line_index}: pixel_pitch_m and "
                                   "source_height_m must be > 0")
            if self._geometry is not None and geometry != self._geometry:
                self._flush()
                self.segmenter = LineSegmenter()
            self._geometry = geometry
            blobs = self.segmenter.push(a[:, 0], a[:, 1], flags, float(msg.belt_position_m))
        except XrtDataError as exc:
            self.rejected += 1
            if self.rejected <= 3:
                self.ctx.get_logger().error(f"xrt: line dropped: {exc}")
            return
        self.lines_in += 1
        self._last_ns = stamp_ns(msg.header.stamp)
        self._publish(blobs)

    def _object_msg(self, b: XrtBlob) -> Any:
        assert self._geometry is not None
        y0, pitch, h, d = self._geometry
        g = blob_geometry(b, y0, pitch, h, d)
        return new(
            "crmsort_msgs/msg/XrtObject",
            belt_position_m=g.position_m, y_m=g.y_m, length_m=g.length_m, width_m=g.width_m,
            cell_area_m2=g.cell_area_m2, source_height_m=h,
            noise_a_high=float(b.noise_a_high), truncated=b.truncated,
            opaque_cells=int(np.count_nonzero(b.opaque)),
            a_low=b.a_low.astype(np.float32), a_high=b.a_high.astype(np.float32),
            cos_theta=g.cos_theta.astype(np.float32), cell_dx_m=g.cell_dx_m.astype(np.float32),
            cell_y_m=g.cell_y_m.astype(np.float32),
        )

    def _publish(self, blobs: list[XrtBlob]) -> None:
        # a one-line blob has no encoder step to give its cells a length: nothing to weigh
        objects = [self._object_msg(b) for b in blobs if b.line_step_m > 0]
        if not objects:
            return
        self.pub.publish(new("crmsort_msgs/msg/XrtObjectArray",
                             header=header(self._last_ns, self.frame_id), x_m=self.x_m,
                             objects=objects))
        self.objects_out += len(objects)

    def _flush(self) -> None:
        self._publish(self.segmenter.finish())

    def shutdown(self) -> None:
        self._flush()
