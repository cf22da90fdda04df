"""Simulator truth as messages: ``crmsort_msgs/GroundTruthObjectArray`` for ``/sim/ground_truth``.

Lives with the simulator, not with the shared message conversions, so that nothing
outside ``sorting/sim`` builds truth messages; only evaluation code reads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from perception.sensors.scene import SceneObject
from sorting.msgs import new
from sorting.msgs.convert import header


def _quat_yaw(yaw: float) -> Any:
    return new(
        "geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)
    )


def ground_truth_msg(
    objects: Sequence[tuple[SceneObject, int, str]], t_ns: int, belt_position_m: float
) -> Any:
    """crmsort_msgs/GroundTruthObjectArray from ``(object, state, bin)`` triples."""
    items = []
    for obj, state, bin_name in objects:
        elements = sorted(obj.composition)
        pose = new(
            "geometry_msgs/msg/Pose",
            position=new("geometry_msgs/msg/Point", x=obj.x_m, y=obj.y_m, z=obj.z_m),
            orientation=_quat_yaw(obj.yaw_rad),
        )
        items.append(
            new(
                "crmsort_msgs/msg/GroundTruthObject",
                id=obj.object_id,
                class_name=obj.class_name,
                stream=obj.stream,
                material=obj.material,
                shape=int(obj.shape),
                state=state,
                pose=pose,
                dimensions_m=new(
                    "geometry_msgs/msg/Vector3", x=obj.size_m[0], y=obj.size_m[1], z=obj.size_m[2]
                ),
                volume_m3=obj.volume_m3(),
                density_kg_m3=obj.density_kg_m3,
                mass_kg=obj.mass_kg(),
                elements=elements,
                mass_fraction=np.array([obj.composition[e] for e in elements]),
                bin=bin_name,
            )
        )
    return new(
        "crmsort_msgs/msg/GroundTruthObjectArray",
        header=header(t_ns, "belt"),
        belt_position_m=belt_position_m,
        objects=items,
    )
