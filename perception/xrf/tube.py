"""X-ray tube spectrum: Kramers bremsstrahlung with anode self-absorption, anode K and L lines,
exit-window and filter transmission (attenuation coefficients from xraylib).

The continuum follows Kramers' law, N(E) dE = k·Z·(E0/E − 1) dE photons/(s·sr·µA), with
k = 1.35e6 (Kulenkampff's constant per µA), attenuated by the anode on the way out along the
take-off angle from a mean generation depth of 0.2 × the Kanaya–Okayama electron range.
Characteristic lines use a Green–Cosslett-type yield 5e-5·(U0 − 1)^1.67 photons per electron
per sr per shell (U0 = E0 / edge), split over the shell's lines by xraylib radiative rates.
This is a compact model (Ebel's is more accurate); both the simulator and the quantifier read the
same tube spectrum, as a real FP program reads its tube model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xraylib
from numpy.typing import NDArray

from perception.xrf.setup import Layer, Tube

KRAMERS_K = 1.35e6  # photons / (s · sr · keV · µA · Z)
ELECTRONS_PER_UA_S = 6.2415e12
_K_LINES = ("KL3", "KL2", "KM3", "KM2", "KN3")
_L_LINES = ("L3M5", "L3M4", "L3N5", "L3M1", "L2M4", "L2N4", "L1M3", "L1M2")


@dataclass(frozen=True)
class TubeSpectrum:
    """Photons leaving the tube per s, per sr and per µA, binned: ``energies_kev`` [n] are bin
    centres (continuum) or line energies, ``photons`` [n] the photons in each bin or line,
    ``is_line`` [n] marks characteristic lines."""

    energies_kev: NDArray[np.float64]
    photons: NDArray[np.float64]
    is_line: NDArray[np.bool_]

    @property
    def line_energies_kev(self) -> NDArray[np.float64]:
        """Energies (keV) of the anode lines, strongest first."""
        idx = np.flatnonzero(self.is_line)
        order = np.argsort(-self.photons[idx])
        return self.energies_kev[idx[order]]


def layer_transmission(layer: Layer, energies_kev: NDArray[np.float64]) -> NDArray[np.float64]:
    """Transmission exp(−μ ρ t) of a layer at ``energies_kev`` (shape kept)."""
    rho_t = layer.density() * layer.thickness_um * 1e-4
    mu = np.array([xraylib.CS_Total_CP(layer.material, float(e)) for e in energies_kev.ravel()])
    return np.asarray(np.exp(-mu * rho_t).reshape(energies_kev.shape), dtype=np.float64)


def _anode_depth_g_cm2(z: int, e0: float) -> float:
    a = xraylib.AtomicWeight(z)
    return float(0.2 * 0.0276e-4 * a * e0**1.67 / z**0.889)


def tube_spectrum(tube: Tube, e_min_kev: float = 1.0) -> TubeSpectrum:
    """Tube output for the set-up's ``tube`` on a grid of ``tube.energy_step_kev`` from
    ``e_min_kev`` to the high voltage, plus the anode lines above ``e_min_kev``."""
    z = xraylib.SymbolToAtomicNumber(tube.anode)
    e0 = tube.voltage_kv
    step = tube.energy_step_kev
    edges = np.arange(e_min_kev, e0 + 1e-9, step)
    centres = 0.5 * (edges[:-1] + edges[1:])
    cont = KRAMERS_K * z * (e0 / centres - 1.0) * step
    depth = _anode_depth_g_cm2(z, e0)
    sin_t = math.sin(math.radians(tube.takeoff_deg))

    def self_abs(e: NDArray[np.float64]) -> NDArray[np.float64]:
        mu = np.array([xraylib.CS_Total(z, float(x)) for x in e])
        return np.asarray(np.exp(-mu * depth / sin_t), dtype=np.float64)

    cont = cont * self_abs(centres)
    line_e: list[float] = []
    line_n: list[float] = []
    for shell, names in ((xraylib.K_SHELL, _K_LINES), (xraylib.L3_SHELL, _L_LINES)):
        edge = xraylib.EdgeEnergy(z, shell)
        if edge >= e0:
            continue
        u0 = e0 / edge
        per_sr = 5e-5 * (u0 - 1.0) ** 1.67 * ELECTRONS_PER_UA_S
        if shell != xraylib.K_SHELL:
            per_sr *= 0.5  # L-shell yields (ω_L ≪ ω_K in this Z range is in the rates below)
        for name in names:
            macro = getattr(xraylib, f"{name}_LINE")
            try:
                energy = xraylib.LineEnergy(z, macro)
                rate = xraylib.RadRate(z, macro)
            except ValueError:
                continue
            shell_of = xraylib.K_SHELL if name.startswith("K") else _l_shell(name)
            yield_ = xraylib.FluorYield(z, shell_of)
            if energy < e_min_kev or rate <= 0:
                continue
            line_e.append(energy)
            line_n.append(per_sr * yield_ * rate)
    le = np.array(line_e, dtype=np.float64)
    ln = np.array(line_n, dtype=np.float64) * self_abs(le) if le.size else le
    energies = np.concatenate([centres, le])
    photons = np.concatenate([cont, ln])
    is_line = np.concatenate([np.zeros(centres.size, bool), np.ones(le.size, bool)])
    trans = np.ones_like(energies)
    if tube.be_window_um > 0:
        trans *= layer_transmission(Layer(material="Be", thickness_um=tube.be_window_um), energies)
    for f in tube.filters:
        trans *= layer_transmission(f, energies)
    photons = photons * trans
    keep = photons > photons.max() * 1e-9
    return TubeSpectrum(energies[keep], photons[keep], is_line[keep])


def _l_shell(name: str) -> int:
    shells: dict[str, int] = {"L1": xraylib.L1_SHELL, "L2": xraylib.L2_SHELL,
                              "L3": xraylib.L3_SHELL}
    return shells[name[:2]]
