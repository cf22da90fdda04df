"""What the X-ray transmission model assumes of catalog classes: the light compound that fills
each class's composition (by its catalog material's family), and a class's bulk attenuation."""

from __future__ import annotations

from collections.abc import Mapping

from perception.catalog import Catalog
from perception.xrt.physics import (
    FloatArray,
    XrtSetup,
    bulk_attenuation,
    layer_spectra,
    rest_formula,
)


def class_rest(catalog: Catalog) -> dict[str, str]:
    """Class (and distractor) name -> the light compound that fills its composition."""
    out: dict[str, str] = {}
    for spec in (*catalog.classes, *catalog.distractors):
        mat = catalog.materials.get(spec.material)
        out[spec.name] = rest_formula(mat.family if mat is not None else None)
    return out


def effective_attenuation(composition: Mapping[str, float], rest: str,
                          setup: XrtSetup | None = None) -> tuple[FloatArray, float]:
    """(μ(E), its high-layer weighted mean) of a bulk composition: the second number is the
    slope of ``A_high`` at zero thickness (cm²/g), which sets the mass a reading stands for."""
    s = setup or XrtSetup()
    mu = bulk_attenuation(composition, rest, s)
    return mu, float(layer_spectra(s).signal_weights[1] @ mu)
