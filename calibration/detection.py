"""Finding calibration targets in images: ChArUco board corners and ArUco markers.

Images are H x W uint8, grey or RGB (RGB order, as ``sensor_msgs/Image`` rgb8).
Pixel coordinates follow OpenCV: ``(u, v)`` with integer values at pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.errors import CalibrationError
from calibration.procedure_errors import TargetNotFoundError
from calibration.targets import CharucoTarget, aruco_dictionary

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int32]


@dataclass(frozen=True)
class BoardDetection:
    """The ChArUco corners found in one image.

    ``ids`` (N,) corner ids, ``image_points`` (N x 2, px), ``object_points``
    (N x 3, m, board frame), ``image_size`` ``(width, height)`` px, ``view_id``
    a name for messages (file name, bag stamp, index).
    """

    view_id: str
    ids: IntArray
    image_points: FloatArray
    object_points: FloatArray
    image_size: tuple[int, int]

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])


def _grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise CalibrationError(f"image: expected uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 3:
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    if img.ndim == 2:
        return img
    raise CalibrationError(f"image: expected H x W or H x W x 3, got shape {img.shape}")


def detect_charuco(
    image: NDArray[np.uint8],
    target: CharucoTarget,
    view_id: str = "",
    min_corners: int = 6,
) -> BoardDetection:
    """Detect ``target``'s inner corners (sub-pixel) in ``image``.

    Raises :class:`TargetNotFoundError` when fewer than ``min_corners`` corners
    are found or they lie on one line (the message says what to check: board
    definition, focus, lighting, the whole board in view).
    """
    grey = _grey(image)
    board = target.cv_board()
    detector = cv2.aruco.CharucoDetector(board)
    corners, ids, _marker_corners, marker_ids = detector.detectBoard(grey)
    n_markers = 0 if marker_ids is None else len(marker_ids)
    n = 0 if ids is None else len(ids)
    where = f"view {view_id!r}: " if view_id else ""
    if n < min_corners:
        raise TargetNotFoundError(
            f"{where}found {n} ChArUco corners ({n_markers} markers), need >= {min_corners}: "
            f"check the board definition ({target.squares_x} x {target.squares_y} squares, "
            f"{target.dictionary}), focus and lighting, and keep the whole board in view"
        )
    if board.checkCharucoCornersCollinear(ids):
        raise TargetNotFoundError(
            f"{where}the {n} corners found lie on one line; show more of the board"
        )
    id_arr = np.asarray(ids, dtype=np.int32).reshape(-1)
    h, w = grey.shape[:2]
    return BoardDetection(
        view_id=view_id,
        ids=id_arr,
        image_points=np.asarray(corners, dtype=np.float64).reshape(-1, 2),
        object_points=target.corner_points(id_arr),
        image_size=(int(w), int(h)),
    )


def detect_markers(
    image: NDArray[np.uint8], dictionary: str = "DICT_4X4_100"
) -> dict[int, FloatArray]:
    """All ArUco markers of ``dictionary`` in ``image``: id → corners (4 x 2 px, TL TR BR BL).

    Corners are refined to sub-pixel accuracy. Returns an empty dict when none are found.
    """
    grey = _grey(image)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), params)
    corners, ids, _rejected = detector.detectMarkers(grey)
    out: dict[int, FloatArray] = {}
    if ids is None:
        return out
    for c, i in zip(corners, np.asarray(ids).reshape(-1), strict=True):
        out[int(i)] = np.asarray(c, dtype=np.float64).reshape(4, 2)
    return out
