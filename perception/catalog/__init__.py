"""The object/material catalog and the EU CRMA lists, read from ``datasets/catalog``.

>>> from perception.catalog import load_catalog, crm_flags
>>> cat = load_catalog()
>>> cat.classes[0].name, sorted(crm_flags("Co"))
('mobile_phone', ['critical', 'strategic'])
"""

from __future__ import annotations

from perception.catalog.crma import crm_flags, default_crma, is_critical, is_strategic
from perception.catalog.load import default_root, load_catalog
from perception.catalog.models import (
    DETECTOR_STREAMS,
    ELEMENTS,
    PATTERNS,
    AppearanceVariant,
    Catalog,
    ClassSpec,
    CrmaEntry,
    CrmaLists,
    ElementDist,
    LumpSpec,
    MaterialSpec,
    SizeSpec,
    YawSpec,
)

__all__ = [
    "DETECTOR_STREAMS",
    "ELEMENTS",
    "PATTERNS",
    "AppearanceVariant",
    "Catalog",
    "ClassSpec",
    "CrmaEntry",
    "CrmaLists",
    "ElementDist",
    "LumpSpec",
    "MaterialSpec",
    "SizeSpec",
    "YawSpec",
    "crm_flags",
    "default_crma",
    "default_root",
    "is_critical",
    "is_strategic",
    "load_catalog",
]
