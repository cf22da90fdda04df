"""Score a whole simulated run — tracks, per-object CRM estimates, stream grades and the mass
balance — against the simulator's truth, which the line itself never sees.

Inputs: the run folder of ``crmsort demo`` (``bag/`` with ``/sim/ground_truth`` and
``sorting/objects``, and ``ledger.json``, the line's own books).

- per object (:func:`~sorting.evaluation.tracking_eval.evaluate_tracking`): identity,
  class, volume and mass error, and whether the 95 % interval of every CRM element's
  grams covers the truth — per object (all its CRM elements at once) and per
  (object, element);
- stream: the objects that left the line during the run (picked or off the belt end)
  and that had not yet passed the sensors that start tracks (the camera and the 3D sensor)
  when the run began: the simulator pre-fills the belt, and an object already past both
  was never seen by the line, while one in their view at the start was, and is in its
  books (:func:`sensing_end_x`).
  Their true mass and CRM grams against the ledger's feed (the same objects as the line
  booked them): the stream grade ``Σ m_e / Σ m`` per CRM element, estimated vs true;
- destinations: each bin and the residue as the line booked them vs what truly went
  there (what load cells under the bins and a residue scale would weigh), and each bin's
  purity — the share of its mass whose true class is one the sort policy sends there —
  against the purity the line expected (:meth:`RunReport.purity`);
- closure: ``(feed booked − Σ outputs weighed) / Σ outputs weighed``, overall and per
  element — the line's feed estimate against independent weighing of what came out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera import ray_plane_z
from perception.catalog import is_critical
from sorting.accounting import FEED, RESIDUE
from sorting.bags import read_decoded
from sorting.config import load_line
from sorting.config.cameras import depth_camera, rgb_camera
from sorting.config.line import LineConfig
from sorting.errors import SortingError
from sorting.evaluation.tracking_eval import TrackingReport, evaluate_tracking

PICKED, EXITED = 1, 2


@dataclass
class Flow:
    """Mass (kg) and element masses (kg) of one stream or destination."""

    objects: int = 0
    mass_kg: float = 0.0
    element_kg: dict[str, float] = field(default_factory=dict)
    element_u_kg: dict[str, float] = field(default_factory=dict)   # booked flows: the ledger's u
    object_ids: dict[int, float] = field(default_factory=dict)     # true flows: id -> kg
    #: mass that belongs in this bin: true flows, objects of its classes; booked flows, the
    #: ledger's expectation (purity x mass); None where unknown (feed, residue, old ledgers)
    belong_kg: float | None = None

    def grade(self, element: str) -> float:
        return self.element_kg.get(element, 0.0) / self.mass_kg if self.mass_kg > 0 else 0.0


@dataclass
class RunReport:
    tracking: TrackingReport
    true_flows: dict[str, Flow]        # destination (FEED = everything that left) -> truth
    booked_flows: dict[str, Flow]      # the line's ledger

    @property
    def object_coverage(self) -> float:
        """Share of objects whose 95 % intervals cover every CRM element's true grams."""
        return self.tracking.object_coverage

    @property
    def feed_identity_rate(self) -> float:
        """Share of the stream's objects (every object that left the line, see
        :func:`evaluate_run`) that kept one identity camera → belt end; an object never
        offered as a track of its own (hidden under another, merged into a neighbour's
        track, or reported too seldom to be matched) counts as lost."""
        ids = self.true_flows.get(FEED, Flow()).object_ids
        return len(ids.keys() & self.tracking.kept_ids) / len(ids) if ids else 0.0

    def purity(self, destination: str | None = None) -> tuple[float | None, float | None]:
        """(true, booked) purity of one bin, or of every bin together (mass-weighted) when
        ``destination`` is None; None where a side has no mass or no purity."""
        def one(flows: dict[str, Flow]) -> float | None:
            fs = ([flows[destination]] if destination in flows else [] if destination
                  else [f for d, f in flows.items() if d not in (FEED, RESIDUE)])
            fs = [f for f in fs if f.belong_kg is not None]
            mass = sum(f.mass_kg for f in fs)
            return sum(f.belong_kg or 0.0 for f in fs) / mass if mass > 0 else None
        return one(self.true_flows), one(self.booked_flows)

    def untracked(self) -> tuple[int, float]:
        """How many of the stream's objects, and how many kg, were never matched to a track
        (fewer than the matches :func:`evaluate_tracking` needs)."""
        ids = self.true_flows.get(FEED, Flow()).object_ids
        lost = ids.keys() - self.tracking.seen_ids
        return len(lost), sum(ids[i] for i in lost)

    def crm_elements(self, min_kg: float = 0.0) -> list[str]:
        feed = self.true_flows.get(FEED, Flow())
        return sorted(e for e, kg in feed.element_kg.items() if is_critical(e) and kg > min_kg)

    def grade_error(self, element: str) -> float:
        """Relative error of the stream grade of ``element`` (booked vs true)."""
        true = self.true_flows[FEED].grade(element)
        est = self.booked_flows.get(FEED, Flow()).grade(element)
        return (est - true) / true if true > 0 else math.nan

    def grade_u(self, element: str) -> float:
        """Relative standard uncertainty (k=1) the line itself states for its stream total of
        ``element``: the ledger's u (its objects' u summed in quadrature) over its kg. An
        element no sensor sees (B, Mg, ...) is booked from class priors and carries their
        per-object spread: over a run its grade can be off by that much with nothing wrong."""
        booked = self.booked_flows.get(FEED, Flow())
        kg = booked.element_kg.get(element, 0.0)
        return booked.element_u_kg.get(element, 0.0) / kg if kg > 0 else math.nan

    def closure(self, element: str | None = None) -> float:
        """(feed booked − Σ true outputs) / Σ true outputs, in mass or one element."""
        booked = self.booked_flows.get(FEED, Flow())
        outs = [f for d, f in self.true_flows.items() if d != FEED]
        if element is None:
            true = sum(f.mass_kg for f in outs)
            return (booked.mass_kg - true) / true if true > 0 else math.nan
        true = sum(f.element_kg.get(element, 0.0) for f in outs)
        est = booked.element_kg.get(element, 0.0)
        return (est - true) / true if true > 0 else math.nan


def sensing_end_x(line: LineConfig) -> float:
    """Belt-frame x where the views of the sensors that start tracks (camera, 3D sensor) end
    (their downstream edge on the belt): an object upstream of it at the start of a run
    was seen by the line."""
    return max(float(np.max(cam.ground_footprint(0.0)[:, 0]))
               for cam in (rgb_camera(line), depth_camera(line)))


def sensing_start_x(line: LineConfig) -> float:
    """Belt-frame x where the camera's view begins (its upstream edge on the belt)."""
    cam = rgb_camera(line)
    w, h = cam.width, cam.height
    uv = np.array([[u, v] for u in (0.0, w / 2, w) for v in (0.0, h)], dtype=np.float64)
    pts = ray_plane_z(cam.pixel_rays(uv), 0.0)
    return float(np.min(pts[:, 0]))


def _true_flows(bag: Path, end_x: float,
                bins: dict[str, list[str]] | None = None) -> dict[str, Flow]:
    final: dict[int, Any] = {}
    first_x: dict[int, float] = {}
    for _topic, _type, _t, msg in read_decoded(bag, topics=["/sim/ground_truth"]):
        for o in msg.objects:
            first_x.setdefault(o.id, float(o.pose.position.x))
            if (o.state in (PICKED, EXITED) and o.id not in final
                    and first_x[o.id] < end_x):
                final[o.id] = o
    flows: dict[str, Flow] = {FEED: Flow()}
    for o in final.values():
        dest = str(o.bin) if o.state == PICKED and o.bin else RESIDUE
        for name in (FEED, dest):
            f = flows.setdefault(name, Flow())
            f.objects += 1
            f.mass_kg += float(o.mass_kg)
            f.object_ids[int(o.id)] = float(o.mass_kg)
            if bins is not None and name in bins:
                f.belong_kg = (f.belong_kg or 0.0) + (
                    float(o.mass_kg) if str(o.class_name) in bins[name] else 0.0)
            for e, frac in zip(o.elements, o.mass_fraction, strict=True):
                f.element_kg[e] = f.element_kg.get(e, 0.0) + float(frac) * float(o.mass_kg)
    return flows


def _booked_flows(ledger_json: Path) -> dict[str, Flow]:
    try:
        doc = json.loads(ledger_json.read_text())
        flows = {d: Flow(int(v["objects"]), float(v["mass_kg"]),
                         belong_kg=None if v.get("purity") is None
                         else float(v["purity"]) * float(v["mass_kg"]))
                 for d, v in doc["destinations"].items()}
        for row in doc["elements"]:
            flows[row["destination"]].element_kg[row["element"]] = float(row["kg"])
            flows[row["destination"]].element_u_kg[row["element"]] = float(row.get("u_kg", 0.0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SortingError(f"{ledger_json}: not a readable ledger ({exc})") from exc
    return flows


def evaluate_run(run_dir: Path, line: LineConfig | None = None, namespace: str = "/line1",
                 gate_m: float = 0.06) -> RunReport:
    """Score ``run_dir`` of a run of ``line`` (default: the default line; see the module
    docstring). Raises :class:`SortingError` when the folder lacks the bag or the ledger."""
    run_dir = Path(run_dir)
    bag, ledger = run_dir / "bag", run_dir / "ledger.json"
    for p in (bag, ledger):
        if not p.exists():
            raise SortingError(f"{p}: missing (a run folder of `crmsort demo` has bag/ and "
                               "ledger.json)")
    tracking = evaluate_tracking(bag, namespace=namespace, gate_m=gate_m)
    line = line or load_line()
    true_flows = _true_flows(bag, sensing_end_x(line), line.sorting.bins)
    return RunReport(tracking=tracking, true_flows=true_flows, booked_flows=_booked_flows(ledger))
