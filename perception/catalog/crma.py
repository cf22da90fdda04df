"""Flag element symbols with the EU Critical Raw Materials Act lists (Regulation (EU) 2024/1252).

``crm_flags("Co") == {"critical", "strategic"}``; ``crm_flags("Fe") == set()``. The lists
come from ``datasets/catalog/crma.yaml`` through :func:`perception.catalog.load_catalog`;
pass ``crma=`` to use another set (e.g. ``load_catalog(root).crma``), otherwise the default
catalog is loaded once and cached for the process.
"""

from __future__ import annotations

from functools import lru_cache

from perception.catalog.load import load_catalog
from perception.catalog.models import ELEMENTS, CrmaLists
from perception.errors import CatalogError


@lru_cache(maxsize=1)
def default_crma() -> CrmaLists:
    """The CRMA lists of the default catalog (cached; raises ``CatalogError`` if invalid)."""
    return load_catalog().crma


def _lists(symbol: str, crma: CrmaLists | None) -> CrmaLists:
    if symbol not in ELEMENTS:
        raise CatalogError(f"{symbol!r} is not an element symbol (e.g. 'Co', 'Nd')")
    return crma if crma is not None else default_crma()


def crm_flags(symbol: str, crma: CrmaLists | None = None) -> set[str]:
    """``"critical"`` and/or ``"strategic"`` for an element symbol; raises ``CatalogError``
    for a string that is not an element symbol."""
    return _lists(symbol, crma).flags(symbol)


def is_critical(symbol: str, crma: CrmaLists | None = None) -> bool:
    """True if an Annex II entry (critical raw materials) covers the element."""
    return "critical" in crm_flags(symbol, crma)


def is_strategic(symbol: str, crma: CrmaLists | None = None) -> bool:
    """True if an Annex I entry (strategic raw materials) covers the element."""
    return "strategic" in crm_flags(symbol, crma)
