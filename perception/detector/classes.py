"""Detector classes: the one list of names and ids, taken from the catalog.

The detector's class ``i`` is ``load_catalog().classes[i]``; distractors (clutter) are not
classes. Datasets (``data.yaml``), model metadata and the line node all use this list.
"""

from __future__ import annotations

from collections.abc import Sequence

from perception.catalog import load_catalog
from perception.detector.errors import ClassMismatchError


def detector_class_names() -> list[str]:
    """Detector class names in id order (ids 0..N-1) from the catalog."""
    return list(load_catalog().class_names)


def check_class_names(names: Sequence[str], where: str) -> None:
    """Raise :class:`ClassMismatchError` unless ``names`` equals the catalog's class list.

    ``where`` names the source of ``names`` (a file) for the message, which gives the first
    id whose name differs, or the two lengths.
    """
    expected = detector_class_names()
    got = list(names)
    for i, (a, b) in enumerate(zip(got, expected, strict=False)):
        if a != b:
            raise ClassMismatchError(
                f"{where}: class {i} is {a!r}, the catalog says {b!r} "
                "(retrain or export the model against the current catalog)"
            )
    if len(got) != len(expected):
        raise ClassMismatchError(
            f"{where}: {len(got)} classes, the catalog has {len(expected)}"
        )
