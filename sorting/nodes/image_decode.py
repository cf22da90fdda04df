"""``sensor_msgs/Image`` -> H x W x 3 uint8 RGB for the detector, for the encodings a line
camera sends: ``rgb8``, ``bgr8``, ``mono8`` and the Bayer mosaics ``bayer_{rggb,bggr,gbrg,grbg}8``
(demosaiced with OpenCV) and their 16-bit forms (scaled to 8 bit). Anything else, or a
message whose sizes do not add up, raises :class:`perception.detector.errors.FrameError`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.detector.errors import FrameError

U8 = NDArray[np.uint8]

# ROS names the 2x2 tile from the top-left pixel; OpenCV names it from the second row's
# second and third pixels, hence the swap (as cv_bridge does).
_BAYER = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
SUPPORTED = (
    "rgb8", "bgr8", "mono8",
    *(f"bayer_{p}8" for p in _BAYER), *(f"bayer_{p}16" for p in _BAYER),
)


def _layout(msg: Any) -> tuple[str, int, int]:
    enc = str(msg.encoding)
    if enc in _CHANNELS:
        return enc, _CHANNELS[enc], 1
    if enc.startswith("bayer_") and enc[6:10] in _BAYER and enc[10:] in ("8", "16"):
        return enc, 1, 1 if enc.endswith("8") else 2
    raise FrameError(f"image encoding {enc!r} not supported (supported: {', '.join(SUPPORTED)})")


def image_to_rgb(msg: Any) -> U8:
    """RGB array of a ``sensor_msgs/Image`` (see the module docstring); a copy where
    conversion is needed, else a view of ``msg.data``. Raises :class:`FrameError`."""
    enc, channels, depth = _layout(msg)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise FrameError(f"image: empty frame {w} x {h} ({enc})")
    if step < w * channels * depth:
        raise FrameError(
            f"image: step {step} B is shorter than a row of {w} px x {channels * depth} B ({enc})"
        )
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if data.size < step * h:
        raise FrameError(
            f"image: {data.size} B of data, expected step {step} x height {h} = {step * h} B"
        )
    rows = data[: step * h].reshape(h, step)[:, : w * channels * depth]
    if depth == 2:
        dt = np.dtype(">u2") if msg.is_bigendian else np.dtype("<u2")
        plane16 = np.ascontiguousarray(rows).view(dt).reshape(h, w)
        plane: U8 = (plane16 >> 8).astype(np.uint8)
    else:
        plane = rows.reshape(h, w, channels) if channels == 3 else rows.reshape(h, w)
    if enc == "rgb8":
        return plane
    if enc == "bgr8":
        return np.ascontiguousarray(plane[:, :, ::-1])
    if enc == "mono8":
        return np.ascontiguousarray(np.repeat(plane[:, :, None], 3, axis=2))
    if h < 2 or w < 2:
        raise FrameError(f"image: a Bayer frame needs at least 2 x 2 px, got {w} x {h}")
    code = _BAYER[enc[6:10]]
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(plane), code), dtype=np.uint8)
