"""The XRF acquisition node on the wire: it takes each object's stake from ``SortObjectArray``
(mass, elements, their u; the line's prices), aims the traverse and acquires over the DP5
link (``dp5sim://`` emulator); a malformed object is warned about, not fatal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perception.sensors.xrf.url_handler import register_source, unregister_source
from sorting.config.line import load_line
from sorting.msgs import new
from sorting.nodes.xrf_node import XrfAcquisitionNode
from sorting.runtime import InProcessExecutor, SimClock


def _obj(oid: int, x: float, y: float, mass: float, elements: list[str],
         u: list[float]) -> Any:
    return new("crmsort_msgs/msg/SortObject", id=oid, belt_x_m=x, y_m=y, mass_kg=mass,
               elements=elements, mass_fraction=np.zeros(len(elements), dtype=np.float32),
               mass_fraction_u=np.asarray(u, dtype=np.float32))


def test_the_node_measures_the_rival_with_more_at_stake(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    line = load_line(None)
    name = line.sensors.xrf.port.removeprefix("dp5sim://").split("?")[0]
    register_source(name, lambda t, ch: np.full(ch, 5, dtype=np.int64))
    try:
        ex = InProcessExecutor(SimClock())
        node = ex.add_node(lambda ctx: XrfAcquisitionNode(ctx, line), "xrf",
                           namespace="/line1")
        spectra: list[Any] = []
        ex.add_tap(lambda topic, _t, _n, msg: spectra.append(msg)
                   if topic.endswith("xrf/spectrum") else None)
        x_head = line.sensors.xrf.x_m

        def objects(p: float, objs: list[Any]) -> None:
            ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
                      new("crmsort_msgs/msg/SortObjectArray", belt_position_m=p, objects=objs))
            ex.drain()

        objects(0.0, [])
        phone = _obj(1, x_head - 0.08, 0.20, 0.3, ["Au", "Co"], [2e-5, 0.01])
        plate = _obj(2, x_head - 0.09, -0.10, 4.7, ["Ni", "Cr"], [0.046, 0.08])
        broken = _obj(3, x_head - 0.5, 0.0, 1.0, ["Ni", "Co"], [0.01])
        objects(0.05, [phone, plate, broken])
        for k in range(40):
            ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
                      new("sensor_msgs/msg/JointState", position=[0.05 + 0.005 * k]))
            ex.drain()
        node.shutdown()
        ex.drain()
    finally:
        unregister_source(name)
    assert [float(s.spot_y_m) for s in spectra] == [pytest.approx(-0.10)]
    assert node.trigger.passed_over == 1
    assert "object 3: 2 elements but 1 mass_fraction_u" in caplog.text
