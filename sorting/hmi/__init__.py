"""The operator's web HMI: the line's state, alarms, KPIs, mass balance and node health.

:class:`~sorting.hmi.state.HmiState` keeps the last ``LineStatus``, the run's and the
shift's ``MassBalance`` and the nodes' ``/diagnostics``, fed either from an
in-process executor (a tap: ``crmsort run --hmi PORT``) or from DDS
(:class:`~sorting.hmi.dds_source.DdsSource`: ``crmsort hmi``, any line on the
domain). :class:`~sorting.hmi.server.HmiServer` serves one self-contained page
(no fonts, scripts or styles from elsewhere) and its data as JSON
(``/api/state``), and takes the operator's Start, Stop, E-stop and Reset
(``POST /api/command``), which it sends to the line as ``crmsort_msgs/LineCommand``
(:mod:`sorting.hmi.commands`) unless it serves read-only.
"""

from sorting.hmi.server import HmiServer
from sorting.hmi.state import HmiState

__all__ = ["HmiServer", "HmiState"]
