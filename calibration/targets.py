"""Calibration targets: ChArUco boards and single ArUco markers, with their geometry.

A target's own frame (OpenCV's board convention): origin at the top-left
corner of the printed area, x along the columns (right on the print), y along
the rows (down on the print), z = x × y pointing *into* the target, so the
printed face looks toward -z. A ChArUco board of ``squares_x`` × ``squares_y``
squares of ``square_m`` has ``(squares_x - 1) * (squares_y - 1)`` inner chessboard
corners with ids ``0 ..``, row-major, at ``((i + 1) * square_m, (j + 1) * square_m, 0)``.

Example::

    >>> board = CharucoTarget(squares_x=7, squares_y=5, square_m=0.04, marker_m=0.03)
    >>> board.corner_points().shape, board.size_m
    ((24, 3), (0.28, 0.2))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration.errors import CalibrationError

FloatArray = NDArray[np.float64]
U8 = NDArray[np.uint8]

DICTIONARIES: dict[str, int] = {
    "DICT_4X4_50": cv2.aruco.DICT_4X4_50,
    "DICT_4X4_100": cv2.aruco.DICT_4X4_100,
    "DICT_4X4_250": cv2.aruco.DICT_4X4_250,
    "DICT_5X5_100": cv2.aruco.DICT_5X5_100,
    "DICT_5X5_250": cv2.aruco.DICT_5X5_250,
    "DICT_6X6_250": cv2.aruco.DICT_6X6_250,
}


def aruco_dictionary(name: str) -> Any:
    """The OpenCV predefined ArUco dictionary called ``name`` (e.g. ``"DICT_4X4_100"``).

    Raises :class:`CalibrationError` for an unknown name, listing the known ones.
    """
    code = DICTIONARIES.get(name)
    if code is None:
        raise CalibrationError(
            f"dictionary: unknown ArUco dictionary {name!r}; expected one of {sorted(DICTIONARIES)}"
        )
    return cv2.aruco.getPredefinedDictionary(code)


@dataclass(frozen=True)
class CharucoTarget:
    """A ChArUco board: ``squares_x`` × ``squares_y`` chessboard squares of ``square_m`` (m)
    with ArUco markers of ``marker_m`` (m) in the white squares, from ``dictionary``.

    ``thickness_m`` is the board's thickness (the printed face lies that far above
    the surface the board rests on). Raises :class:`CalibrationError` for fewer
    than 3 squares a side, a marker not smaller than its square, or a board that
    needs more markers than the dictionary has.
    """

    squares_x: int = 7
    squares_y: int = 5
    square_m: float = 0.04
    marker_m: float = 0.03
    dictionary: str = "DICT_4X4_100"
    thickness_m: float = 0.0

    def __post_init__(self) -> None:
        if self.squares_x < 3 or self.squares_y < 3:
            raise CalibrationError(
                f"board: need at least 3 x 3 squares, got {self.squares_x} x {self.squares_y}"
            )
        if not 0 < self.marker_m < self.square_m:
            raise CalibrationError(
                f"board: marker_m must be in (0, square_m={self.square_m}), got {self.marker_m}"
            )
        n_markers = (self.squares_x * self.squares_y) // 2
        size = int(aruco_dictionary(self.dictionary).bytesList.shape[0])
        if n_markers > size:
            raise CalibrationError(
                f"board: {self.squares_x} x {self.squares_y} needs {n_markers} markers but "
                f"{self.dictionary} has {size}; pick a larger dictionary"
            )

    @property
    def size_m(self) -> tuple[float, float]:
        """Printed width (x) and height (y) in m."""
        return (
            round(self.squares_x * self.square_m, 12),
            round(self.squares_y * self.square_m, 12),
        )

    @property
    def n_corners(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    def cv_board(self) -> Any:
        """The ``cv2.aruco.CharucoBoard`` of this target."""
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y),
            self.square_m,
            self.marker_m,
            aruco_dictionary(self.dictionary),
        )

    def corner_points(self, ids: NDArray[np.int32] | None = None) -> FloatArray:
        """Target-frame positions (N x 3, m) of the inner corners ``ids`` (default: all)."""
        nx = self.squares_x - 1
        all_ids = np.arange(self.n_corners) if ids is None else np.asarray(ids).reshape(-1)
        if all_ids.size and (all_ids.min() < 0 or all_ids.max() >= self.n_corners):
            raise CalibrationError(
                f"ids: corner ids must be in [0, {self.n_corners}), "
                f"got {all_ids.min()}..{all_ids.max()}"
            )
        i = all_ids % nx
        j = all_ids // nx
        return np.column_stack(
            [(i + 1) * self.square_m, (j + 1) * self.square_m, np.zeros(len(all_ids))]
        ).astype(np.float64)

    def image(self, px_per_m: float) -> U8:
        """The printable board (H x W uint8, white 255 / black 0), ``px_per_m`` pixels per m.

        Pixel ``(row, col)`` covers target ``x`` in ``[col, col + 1) / px_per_m``.
        """
        w = round(self.size_m[0] * px_per_m)
        h = round(self.size_m[1] * px_per_m)
        img = self.cv_board().generateImage((w, h), marginSize=0, borderBits=1)
        return np.asarray(img, dtype=np.uint8)


@dataclass(frozen=True)
class MarkerTarget:
    """One square ArUco marker ``marker_id`` of ``size_m`` (m, the black outer edge) printed
    on a white square of ``size_m + 2 * margin_m``; the target frame's origin is the
    top-left of the white square. Raises :class:`CalibrationError` for an id outside
    the dictionary or a non-positive size.
    """

    marker_id: int = 0
    size_m: float = 0.08
    margin_m: float = 0.02
    dictionary: str = "DICT_4X4_100"
    thickness_m: float = 0.0

    def __post_init__(self) -> None:
        if self.size_m <= 0 or self.margin_m < 0:
            raise CalibrationError(
                f"marker: size_m must be > 0 and margin_m >= 0, got {self.size_m}, {self.margin_m}"
            )
        size = int(aruco_dictionary(self.dictionary).bytesList.shape[0])
        if not 0 <= self.marker_id < size:
            raise CalibrationError(
                f"marker_id: {self.marker_id} is not in {self.dictionary} (ids 0..{size - 1})"
            )

    @property
    def extent_m(self) -> tuple[float, float]:
        side = self.size_m + 2 * self.margin_m
        return side, side

    def corner_points(self) -> FloatArray:
        """Target-frame marker corners (4 x 3, m) in ArUco order: TL, TR, BR, BL."""
        a, b = self.margin_m, self.margin_m + self.size_m
        return np.array([[a, a, 0.0], [b, a, 0.0], [b, b, 0.0], [a, b, 0.0]])

    def centre(self) -> FloatArray:
        """Target-frame marker centre (3,), m."""
        c = self.margin_m + self.size_m / 2
        return np.array([c, c, 0.0])

    def image(self, px_per_m: float) -> U8:
        """The printable marker with its white margin (uint8), ``px_per_m`` pixels per m."""
        side_px = round(self.extent_m[0] * px_per_m)
        marker_px = round(self.size_m * px_per_m)
        marker = cv2.aruco.generateImageMarker(
            aruco_dictionary(self.dictionary), self.marker_id, marker_px, borderBits=1
        )
        out = np.full((side_px, side_px), 255, dtype=np.uint8)
        off = (side_px - marker_px) // 2
        out[off : off + marker_px, off : off + marker_px] = marker
        return out


Target = CharucoTarget | MarkerTarget


def target_extent_m(target: Target) -> tuple[float, float]:
    """Width and height (m) of a target's printed area."""
    if isinstance(target, CharucoTarget):
        return target.size_m
    return target.extent_m
