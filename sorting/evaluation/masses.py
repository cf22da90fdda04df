"""Where a run's booked mass goes wrong: per true class, and the tracks furthest off.

Both read each track's last report against the true object that report matched
(:attr:`~sorting.evaluation.tracking_eval.TrackingReport.finals`), as the mass error of
``eval-run`` does. ``z`` is the error in the line's own stated u (k = 1): a large error with
a small ``z`` is one the line owned up to, a large ``z`` one it did not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sorting.evaluation.tracking_eval import TrackingReport


@dataclass(frozen=True)
class ClassMass:
    """The tracks of one true class: how many, their true and booked kg, the booked u
    (root sum of squares of the tracks' u) and how many the line booked as another class."""

    class_name: str
    tracks: int
    true_kg: float
    booked_kg: float
    booked_u_kg: float
    other_class: int

    @property
    def rel_error(self) -> float:
        return self.booked_kg / self.true_kg - 1.0 if self.true_kg > 0 else math.nan

    @property
    def z(self) -> float:
        d = self.booked_kg - self.true_kg
        return d / self.booked_u_kg if self.booked_u_kg > 0 else math.nan


@dataclass(frozen=True)
class MassError:
    """One track's last report against its object."""

    track_id: int
    object_id: int
    true_class: str
    booked_class: str
    true_kg: float
    booked_kg: float
    booked_u_kg: float
    y_m: float

    @property
    def error_kg(self) -> float:
        return self.booked_kg - self.true_kg

    @property
    def z(self) -> float:
        return self.error_kg / self.booked_u_kg if self.booked_u_kg > 0 else math.inf


def _errors(rep: TrackingReport) -> list[MassError]:
    return [MassError(track_id, int(truth.id), str(truth.class_name), str(report.class_name),
                      float(truth.mass_kg), float(report.mass_kg), float(report.mass_u_kg),
                      float(truth.pose.position.y))
            for track_id, (report, truth) in sorted(rep.finals.items())]


def mass_by_class(rep: TrackingReport) -> list[ClassMass]:
    """Per true class, heaviest true total first."""
    groups: dict[str, list[MassError]] = {}
    for e in _errors(rep):
        groups.setdefault(e.true_class, []).append(e)
    out = [ClassMass(name, len(es), sum(e.true_kg for e in es),
                     sum(e.booked_kg for e in es),
                     math.sqrt(sum(e.booked_u_kg ** 2 for e in es)),
                     sum(e.booked_class != name for e in es))
           for name, es in groups.items()]
    return sorted(out, key=lambda c: -c.true_kg)


def largest_mass_errors(rep: TrackingReport, n: int) -> list[MassError]:
    """The ``n`` tracks whose booked mass is furthest from their object's, in kg."""
    return sorted(_errors(rep), key=lambda e: -abs(e.error_kg))[:max(n, 0)]
