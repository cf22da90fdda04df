"""Hyperspectral classifier node: ``hsi/line`` (HyperspectralLine) -> ``hsi/material_map``.

Each line is converted to reflectance (as it comes, or with the dark/white references of
parameter ``calibration``, an npz with ``dark``, ``white``, ``panel`` arrays, when the
camera sends raw counts), classified per pixel by the trained model (parameter ``model``:
path without suffix; default the shipped FX17 model) and placed into a belt-aligned tile:
row r holds the line taken at encoder position ``belt_position_m + r * resolution_m``
(resolution = the camera's pixel pitch; a line lands in the nearest row, rows no line
reached stay UNKNOWN). A tile of ``tile_rows`` rows is published as
``crmsort_msgs/MaterialMap`` when a line falls beyond it, and at shutdown.

Labels: catalog ``hsi_id`` (index into ``material_names``), ``MaterialMap.BELT``,
``MaterialMap.METAL`` or ``MaterialMap.UNKNOWN``; carbon-black plastic is the "black /
unknown polymer" outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perception.catalog import load_catalog
from perception.hsi.classifier import HsiClassifier
from perception.hsi.library import UNKNOWN_LABEL
from perception.sensors.hsi.reflectance import ReflectanceCalibrator
from sorting.errors import ConfigError
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.runtime.context import Node, NodeContext

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "datasets" / "models" / "hsi" / "fx17_lda"
ENCODING_RAW_COUNTS = 0


def hsi_line_arrays(msg: Any) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.float64]]:
    """(data (W, B) float32, flags (W,), wavelengths (B,)) of a HyperspectralLine message."""
    w, b = int(msg.width), int(msg.bands)
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size != w * b:
        raise ConfigError(f"HyperspectralLine {msg.line_index}: {data.size} values, "
                          f"expected width*bands = {w}*{b}")
    flags = np.asarray(msg.flags, dtype=np.uint8)
    if flags.size != w:
        flags = np.zeros(w, dtype=np.uint8)
    return data.reshape(w, b), flags, np.asarray(msg.wavelengths_nm, dtype=np.float64)


class HsiClassifierNode(Node):
    """Classifies HSI lines into MaterialMap tiles (see the module docstring)."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        model = str(ctx.declare_parameter("model", str(DEFAULT_MODEL)).value)
        self.tile_rows = int(ctx.declare_parameter("tile_rows", 32).value)
        calib = str(ctx.declare_parameter("calibration", "").value or "")
        self.frame_id = str(ctx.declare_parameter("frame_id", "belt").value)
        if self.tile_rows < 1:
            raise ConfigError(f"{ctx.get_name()}: tile_rows must be >= 1")
        self.model = HsiClassifier.load(Path(model))
        self.calibrator: ReflectanceCalibrator | None = None
        if calib:
            try:
                with np.load(calib) as z:
                    self.calibrator = ReflectanceCalibrator(z["dark"], z["white"], z["panel"])
            except (OSError, KeyError) as exc:
                raise ConfigError(f"{ctx.get_name()}: calibration {calib}: {exc}") from exc
        catalog = load_catalog()
        by_id = sorted(catalog.materials.values(), key=lambda m: m.hsi_id)
        self.names = [m.id for m in by_id]
        self.pub = ctx.create_publisher("crmsort_msgs/msg/MaterialMap", "hsi/material_map", 10)
        ctx.create_subscription("crmsort_msgs/msg/HyperspectralLine", "hsi/line", self._on_line, 50)
        self._tile: tuple[float, float, float, NDArray[np.uint8], NDArray[np.float32]] | None = None
        self._last_ns = 0
        self.lines_in = 0
        self.maps_out = 0
        self.dropped = 0

    def _on_line(self, msg: Any) -> None:
        data, flags, wl = hsi_line_arrays(msg)
        if int(msg.encoding) == ENCODING_RAW_COUNTS:
            if self.calibrator is None:
                self.dropped += 1
                if self.dropped == 1:
                    self.ctx.get_logger().error(
                        "raw-count HSI lines but no 'calibration' parameter: dropping lines")
                return
            data, flags = self.calibrator.apply(data)
        pred = self.model.predict(data, wavelengths_nm=wl, flags=flags)
        self.lines_in += 1
        self._last_ns = stamp_ns(msg.header.stamp)
        pos, res = float(msg.belt_position_m), float(msg.pixel_pitch_m)
        if res <= 0:
            raise ConfigError(f"HyperspectralLine {msg.line_index}: pixel_pitch_m must be > 0")
        if self._tile is not None:
            r = round((pos - self._tile[0]) / self._tile[2])
            if not 0 <= r < self.tile_rows:
                self._flush()
        if self._tile is None:
            w = data.shape[0]
            self._tile = (pos, float(msg.y0_m), res,
                          np.full((self.tile_rows, w), UNKNOWN_LABEL, dtype=np.uint8),
                          np.zeros((self.tile_rows, w), dtype=np.float32))
        start, _, res0, labels, conf = self._tile
        r = round((pos - start) / res0)
        labels[r] = pred.labels
        conf[r] = pred.confidence

    def _flush(self) -> None:
        if self._tile is None:
            return
        start, y0, res, labels, conf = self._tile
        rows, cols = labels.shape
        self.pub.publish(new(
            "crmsort_msgs/msg/MaterialMap", header=header(self._last_ns, self.frame_id),
            belt_position_m=start, origin_y_m=y0, resolution_m=res, rows=rows, cols=cols,
            material_names=self.names, material=labels.reshape(-1),
            confidence=conf.reshape(-1),
        ))
        self.maps_out += 1
        self._tile = None

    def shutdown(self) -> None:
        self._flush()
