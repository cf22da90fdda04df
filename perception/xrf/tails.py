"""Tail and shelf columns of the spectrum fit (:mod:`perception.xrf.fit`): incomplete charge
collection moves a small share of a line's counts into a low-energy exponential tail
exp((E − E_l)/β)/β (β = 2σ + 0.02 keV) and a flat shelf 1/E_l on (0, E_l). The fit does not know
their size; each of the ``TAIL_GROUPS`` strongest groups gets one free non-negative amplitude per
shape, its lines weighted by the group's line ratios.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from perception.xrf.detector import channel_edges, sigma_kev

_F = NDArray[np.float64]
#: groups that get tail and shelf columns (the strongest, each > 1 % of the total area)
TAIL_GROUPS = 3
Design = Callable[..., tuple[list[str], _F]]


def strong_groups(areas: _F) -> list[int]:
    """Indices of the ``TAIL_GROUPS`` largest ``areas`` [groups], each above 1 % of their sum."""
    tot = areas.sum()
    order = np.argsort(-areas)[:TAIL_GROUPS]
    return [int(i) for i in order if tot > 0 and areas[i] > 0.01 * tot]


def with_tails(design: Design, strong: list[int], channels: int, region: NDArray[np.intp],
               ratios: _F, line_e: _F, line_group: NDArray[np.intp],
               group_names: tuple[str, ...], fano: float) -> Design:
    """Wrap ``design(gain, offset, noise, groups)`` to append a tail and a shelf column per group
    in ``strong``; ``line_e`` (keV), ``ratios`` and ``line_group`` [lines] are the fit's lines,
    ``region`` its channels of a spectrum with ``channels`` channels."""

    def wrapped(g: float, o: float, nz: float, groups: NDArray[np.intp] | None = None
                ) -> tuple[list[str], _F]:
        names, a = design(g, o, nz, groups)
        edges = channel_edges(channels, g, o)[region[0]: region[-1] + 2]
        c = 0.5 * (edges[:-1] + edges[1:])[:, None]
        width = np.diff(edges)[:, None]
        cols, extra = [], []
        for j in strong:
            li = np.flatnonzero(line_group == j)
            e = line_e[li][None, :]
            beta = 2.0 * sigma_kev(line_e[li], nz, fano)[None, :] + 0.02
            below = c < e
            tail = np.where(below, np.exp(np.minimum((c - e) / beta, 0.0)) / beta, 0.0)
            shelf = np.where(below & (c > 0), 1.0 / e, 0.0)
            cols += [(tail * width) @ ratios[li], (shelf * width) @ ratios[li]]
            extra += [f"tail {group_names[j]}", f"shelf {group_names[j]}"]
        if not cols:
            return names, a
        return names + extra, np.hstack([a, np.array(cols).T])

    return wrapped
