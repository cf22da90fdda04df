"""Pick scheduling across arms on a moving belt: the online scheduler, baselines, evaluation.

``arm_model`` (the :class:`ArmModel` contract, :class:`TableArmModel`), ``stream`` (stream
files and the generator), ``problem`` (time windows), ``online`` (rolling-horizon
slot assignment across all arms), ``baselines`` (FIFO, greedy, hindsight-optimum MILP), ``simulate``
(event-driven evaluation).
"""

from __future__ import annotations

from sorting.scheduling.arm_model import ArmModel, TableArmModel
from sorting.scheduling.stream import Stream, StreamObject, generate_stream, load_stream

__all__ = ["ArmModel", "Stream", "StreamObject", "TableArmModel", "generate_stream",
           "load_stream"]
