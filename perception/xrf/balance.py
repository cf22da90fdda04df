"""Balance for what XRF cannot see: light elements (H…Mg, and whatever is not an analyte).

* ``Balance()``: the analytes are normalised to sum 1 (metals and alloys);
* ``Balance.parse("CH2O")`` / ``"SiO2"`` / ``"C=0.6,O=0.4"``: a dark matrix of that composition
  fills 1 − Σ analytes (analytes from absolute FP sensitivities);
* ``Balance.parse("scatter")``: the dark matrix's composition is estimated from the scattered
  tube spectrum (:mod:`perception.xrf.scatter`): it is sought on a ladder of light matrices of
  rising effective Z, ``SCATTER_FAMILY`` (CH2 polymer → C → O → Al), mixing two neighbours, at
  the point where the predicted scatter matches the measured one;
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
#: light matrices, by rising effective Z, between which the scatter balance interpolates
SCATTER_FAMILY: tuple[str, ...] = ("CH2", "C", "O", "Al")
#: relative standard uncertainty of analytes from real dark matrices lying off the family: the
#: rms difference between the scatter balance and the true dark matrix over 24 light matrices ×
#: 4 heavy loads that no test uses (polymers, water, oxides, carbonates, fluorides, light metals,
#: mixtures; ``python -m bench.xrf_accuracy --family-study``: 3.5 %, worst LiF +11 %)
SCATTER_FAMILY_U = 0.035


def oxygen_per_mass(symbol: str) -> float:
    """g of O per g of element in its ``OXIDES`` oxide (0 if none listed, e.g. Au, Br)."""
    if symbol not in OXIDES:
        return 0.0
    n_el, n_o = OXIDES[symbol]
    return float(n_o * O_MASS / (n_el * xraylib.AtomicWeight(xraylib.SymbolToAtomicNumber(symbol))))


def _composition(text: str) -> tuple[tuple[str, float], ...]:
    """``"C=0.6,O=0.4"`` or a formula → (symbol, mass fraction) normalised to sum 1."""
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
    return tuple((s, v / total) for s, v in items.items())


@dataclass(frozen=True)
class Balance:
    """Dark-matrix composition (symbol, mass fraction summing to 1; empty = normalise analytes),
    whether analytes are bound as oxides, and whether the dark matrix is estimated from the
    scatter along ``family`` (compositions of rising effective Z) instead of given."""

    matrix: tuple[tuple[str, float], ...] = ()
    oxides: bool = False
    label: str = "normalised"
    family: tuple[tuple[tuple[str, float], ...], ...] = ()

    @classmethod
    def parse(cls, text: str | None, oxides: bool = False) -> Balance:
        """``None``/``"none"`` → normalise; ``"scatter"`` → estimated from the scatter along
        ``SCATTER_FAMILY``; a formula (``"CH2O"``); or ``"C=0.6,O=0.4"``. Raises
        ``QuantificationError`` for text that is none of these."""
        if text is None or text.strip().lower() in ("", "none", "normalise", "normalize"):
            return cls((), oxides, "normalised" + (" oxides" if oxides else ""))
        if text.strip().lower() == "scatter":
            return cls.scatter(oxides)
        t = text.strip()
        return cls(_composition(t), oxides, t + (" + oxides" if oxides else ""))

    @classmethod
    def scatter(cls, oxides: bool = False, family: tuple[str, ...] = SCATTER_FAMILY) -> Balance:
        """A dark matrix estimated from the scatter, interpolated along ``family`` (≥ 2
        formulas or ``SYMBOL=FRACTION`` lists, by rising effective Z)."""
        if len(family) < 2:
            raise QuantificationError(f"scatter balance: family needs ≥ 2 members, got {family}")
        comps = tuple(_composition(f) for f in family)
        label = "scatter (" + "→".join(family) + ")" + (" + oxides" if oxides else "")
        return cls((), oxides, label, comps)

    @property
    def from_scatter(self) -> bool:
        """Whether the dark matrix is estimated from the scatter."""
        return bool(self.family)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Elements the balance may add (matrix or family elements, and O for oxides)."""
        syms = [s for s, _ in self.matrix]
        for comp in self.family:
            syms += [s for s, _ in comp if s not in syms]
        if self.oxides and "O" not in syms:
            syms.append("O")
        return tuple(syms)
