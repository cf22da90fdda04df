"""HSI node: simulated HyperspectralLine messages in, MaterialMap tiles out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from perception.catalog import load_catalog
from perception.sensors.scene import Appearance, SceneObject, ShapeKind
from sorting.msgs import deserialize, serialize
from sorting.nodes.hsi_node import HsiClassifierNode
from sorting.runtime import InProcessExecutor, SimClock
from sorting.sim.hsi_sensor import HsiSensorSim


def test_node_maps_simulated_lines_to_material_tiles() -> None:
    sensor = HsiSensorSim(x_m=1.6, width_m=0.4, width_px=64, seed=3)
    pitch = sensor.geometry.pixel_pitch_m
    box = SceneObject(7, "x", "weee", ShapeKind.BOX, (0.06, 0.08, 0.02), 1.6 + 0.05, 0.05, 0.0,
                      "pa", 1100.0, {}, Appearance((0.5, 0.5, 0.5)))
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: HsiClassifierNode(ctx), "hsi", namespace="/line1",
                       parameters={"tile_rows": 16})
    maps: list[Any] = []
    ex.add_tap(lambda topic, _t, _n, msg: maps.append(msg) if topic.endswith("material_map")
               else None)
    for i in range(40):
        obj = replace(box, x_m=box.x_m - i * pitch)
        msg = sensor.line_msg([obj], belt_position_m=i * pitch, t_ns=i * 6_250_000)
        msg = deserialize(serialize(msg, "crmsort_msgs/msg/HyperspectralLine"),
                          "crmsort_msgs/msg/HyperspectralLine")  # the wire format
        ex.inject("/line1/hsi/line", "crmsort_msgs/msg/HyperspectralLine", msg)
    ex.drain()
    node.shutdown()
    ex.drain()
    assert node.lines_in == 40 and [m.rows for m in maps] == [16, 16, 16]
    grid = np.concatenate([np.asarray(m.material).reshape(16, 64) for m in maps])
    pa = load_catalog().materials["pa"].hsi_id
    assert maps[0].material_names[pa] == "pa"
    # the box (60 mm x 80 mm = ~19 x 26 px) is PA, the rest belt
    assert (grid == pa).sum() >= 0.8 * (0.06 / pitch) * (0.08 / pitch)
    assert (grid == 254).mean() > 0.7
    assert maps[1].belt_position_m == np.float64(16 * pitch) or abs(
        maps[1].belt_position_m - 16 * pitch) < 1e-9
