"""Emission-line catalogue from xraylib: which lines of an element are worth modelling, grouped
by shell (K, L, M), and which group an element is quantified from.

A line is kept when its energy is ≥ ``min_kev`` and its production cross-section just below the
tube voltage is ≥ ``REL_CUT`` of the strongest line of the same shell group.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import xraylib

REL_CUT = 0.005
_GROUP_LINES: dict[str, tuple[str, ...]] = {
    "K": ("KL3", "KL2", "KM3", "KM2", "KN3", "KN2"),
    "L": (
        "L3M5", "L3M4", "L3N5", "L3N4", "L3M1", "L3N1", "L3O4",
        "L2M4", "L2N4", "L2M1", "L2N1", "L2O4",
        "L1M3", "L1M2", "L1N3", "L1N2", "L1O3",
    ),
    "M": ("M5N7", "M5N6", "M4N6", "M3N5", "M3O5"),
}
_GROUP_SHELL = {"K": "K", "L": "L3", "M": "M5"}

#: elements the analysis looks for by default (the issue's list and the usual interferers)
DEFAULT_ANALYTES: tuple[str, ...] = (
    "S", "Cl", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
    "Ba", "La", "Ce", "Pr", "Nd", "Sm", "Gd", "Dy", "Hf", "Ta", "W", "Ir", "Pt", "Au", "Hg",
    "Pb", "Bi",
)


@dataclass(frozen=True)
class Line:
    """One emission line: element symbol and Z, group ("K"/"L"/"M"), xraylib macro name (IUPAC,
    e.g. "KL3" = Kα1), energy (keV) and the xraylib macro value."""

    symbol: str
    z: int
    group: str
    name: str
    energy_kev: float
    macro: int

    @property
    def group_id(self) -> str:
        """``"Fe K"``-style group identifier."""
        return f"{self.symbol} {self.group}"


def atomic_number(symbol: str) -> int:
    """Z of an element symbol; raises ``ValueError`` for an unknown symbol."""
    z = int(xraylib.SymbolToAtomicNumber(symbol))
    if z <= 0:
        raise ValueError(f"{symbol!r} is not an element symbol")
    return z


def edge_kev(z: int, group: str) -> float:
    """Absorption edge (keV) of the group's main shell (K, L3 or M5)."""
    shell = getattr(xraylib, f"{_GROUP_SHELL[group]}_SHELL")
    return float(xraylib.EdgeEnergy(z, shell))


@lru_cache(maxsize=512)
def element_lines(symbol: str, voltage_kv: float, min_kev: float = 1.0) -> tuple[Line, ...]:
    """The lines of ``symbol`` excited by a tube at ``voltage_kv`` with energy ≥ ``min_kev``."""
    z = atomic_number(symbol)
    out: list[Line] = []
    probe = 0.98 * voltage_kv
    for group, names in _GROUP_LINES.items():
        cands: list[tuple[Line, float]] = []
        for name in names:
            macro = getattr(xraylib, f"{name}_LINE")
            try:
                energy = float(xraylib.LineEnergy(z, macro))
                strength = float(xraylib.CS_FluorLine_Kissel_Cascade(z, macro, probe))
            except ValueError:
                continue
            if energy < min_kev or strength <= 0.0:
                continue
            cands.append((Line(symbol, z, group, name, energy, macro), strength))
        if not cands:
            continue
        top = max(s for _, s in cands)
        out.extend(line for line, s in cands if s >= REL_CUT * top)
    return tuple(out)


def primary_group(symbol: str, voltage_kv: float, max_kev: float) -> str:
    """The group an element is quantified from: K if its K edge is below 0.9 × the tube voltage
    and Kα is below ``max_kev``, else L (else M)."""
    z = atomic_number(symbol)
    lines = element_lines(symbol, voltage_kv)
    groups = {ln.group for ln in lines}
    if "K" in groups and edge_kev(z, "K") < 0.9 * voltage_kv:
        ka = max((ln.energy_kev for ln in lines if ln.name == "KL3"), default=1e9)
        if ka < max_kev:
            return "K"
    return "L" if "L" in groups else "M"
