"""Balance for what XRF cannot see: light elements (H…Mg, and whatever is not an analyte).

* ``Balance()``: the analytes are normalised to sum 1 (metals and alloys);
* ``Balance.parse("CH2O")`` / ``"SiO2"`` / ``"C=0.6,O=0.4"``: a dark matrix of that composition
  fills 1 − Σ analytes (analytes from absolute FP sensitivities);
* ``oxides=True``: each analyte carries its usual oxide's oxygen (``OXIDES``), as in slags/ores.
"""

from __future__ import annotations

from dataclasses import dataclass

import xraylib

from perception.xrf.errors import QuantificationError

#: atoms of element and of oxygen in the oxide used for the oxide balance
OXIDES: dict[str, tuple[int, int]] = {
    "Na": (2, 1), "Mg": (1, 1), "Al": (2, 3), "Si": (1, 2), "P": (2, 5), "S": (1, 3),
    "K": (2, 1), "Ca": (1, 1), "Ti": (1, 2), "V": (2, 5), "Cr": (2, 3), "Mn": (1, 1),
    "Fe": (1, 1), "Co": (1, 1), "Ni": (1, 1), "Cu": (1, 1), "Zn": (1, 1), "Ga": (2, 3),
    "Ge": (1, 2), "As": (2, 3), "Se": (1, 2), "Rb": (2, 1), "Sr": (1, 1), "Y": (2, 3),
    "Zr": (1, 2), "Nb": (2, 5), "Mo": (1, 3), "Pd": (1, 1), "Ag": (2, 1), "Cd": (1, 1),
    "In": (2, 3), "Sn": (1, 2), "Sb": (2, 3), "Ba": (1, 1), "La": (2, 3), "Ce": (1, 2),
    "Pr": (2, 3), "Nd": (2, 3), "Sm": (2, 3), "Gd": (2, 3), "Dy": (2, 3), "Hf": (1, 2),
    "Ta": (2, 5), "W": (1, 3), "Ir": (1, 2), "Pt": (1, 2), "Hg": (1, 1), "Pb": (1, 1),
    "Bi": (2, 3),
}
O_MASS = 15.999


def oxygen_per_mass(symbol: str) -> float:
    """g of O per g of element in its ``OXIDES`` oxide (0 if none listed, e.g. Au, Br)."""
    if symbol not in OXIDES:
        return 0.0
    n_el, n_o = OXIDES[symbol]
    return float(n_o * O_MASS / (n_el * xraylib.AtomicWeight(xraylib.SymbolToAtomicNumber(symbol))))


@dataclass(frozen=True)
class Balance:
    """Dark-matrix composition (symbol, mass fraction summing to 1; empty = normalise analytes)
    and whether analytes are bound as oxides."""

    matrix: tuple[tuple[str, float], ...] = ()
    oxides: bool = False
    label: str = "normalised"

    @classmethod
    def parse(cls, text: str | None, oxides: bool = False) -> Balance:
        """``None``/``"none"`` → normalise; a formula (``"CH2O"``); or ``"C=0.6,O=0.4"``.
        Raises ``QuantificationError`` for text that is neither."""
        if text is None or text.strip().lower() in ("", "none", "normalise", "normalize"):
            return cls((), oxides, "normalised" + (" oxides" if oxides else ""))
        t = text.strip()
        items: dict[str, float] = {}
        if "=" in t:
            for part in t.split(","):
                try:
                    sym, val = part.split("=")
                    items[sym.strip()] = float(val)
                    if xraylib.SymbolToAtomicNumber(sym.strip()) <= 0:
                        raise ValueError(sym)
                except ValueError as exc:
                    raise QuantificationError(
                        f"balance {text!r}: {part!r} is not SYMBOL=FRACTION") from exc
        else:
            try:
                cp = xraylib.CompoundParser(t)
            except ValueError as exc:
                raise QuantificationError(f"balance {text!r}: not a formula or list") from exc
            for z, f in zip(cp["Elements"], cp["massFractions"], strict=True):
                items[xraylib.AtomicNumberToSymbol(z)] = float(f)
        total = sum(items.values())
        if total <= 0 or any(v < 0 for v in items.values()):
            raise QuantificationError(
                f"balance {text!r}: fractions must be ≥ 0 with a positive sum")
        matrix = tuple((s, v / total) for s, v in items.items())
        return cls(matrix, oxides, t + (" + oxides" if oxides else ""))

    @property
    def symbols(self) -> tuple[str, ...]:
        """Elements the balance may add (matrix elements, and O for oxides)."""
        syms = [s for s, _ in self.matrix]
        if self.oxides and "O" not in syms:
            syms.append("O")
        return tuple(syms)
