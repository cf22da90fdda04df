"""Scheduler node in the in-process runtime: tasks out, failure re-planned downstream."""

from __future__ import annotations

from typing import Any

from sorting.msgs import new
from sorting.msgs.convert import belt_joint_state, header
from sorting.nodes.scheduler_node import SchedulerNode
from sorting.runtime.clock import SimClock
from sorting.runtime.inprocess import InProcessExecutor
from sorting.scheduling.arm_model import TableArmModel

BINS = {"cu": (0.0, 0.45, 0.0)}
V = 0.4


def _arms() -> list[TableArmModel]:
    return [TableArmModel("arm1", 1.0, 1.5, -0.3, 0.3, bins=BINS),
            TableArmModel("arm2", 1.8, 2.3, -0.3, 0.3, bins=BINS)]


def _objects(t_ns: int, objs: list[tuple[int, float, float, str]]) -> Any:
    return new("crmsort_msgs/msg/SortObjectArray", header=header(t_ns, "belt"), objects=[
        new("crmsort_msgs/msg/SortObject", id=i, belt_x_m=x, y_m=0.0, value_eur=val,
            target_bin=b, class_name="copper_scrap") for i, x, val, b in objs])


def test_task_then_failure_goes_to_downstream_arm() -> None:
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: SchedulerNode(ctx, _arms()), "scheduler")
    tasks: list[Any] = []
    ex.add_tap(lambda topic, _ty, _t, msg: tasks.append((topic, msg))
               if topic.endswith("pick_task") else None)
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(0, 0.0, V))
    # object 5 at x = 0 at t = 0 (reaches arm1 at 2.5 s), object 6 with a bin nobody has
    ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
              _objects(0, [(5, 0.0, 3.0, "cu"), (6, 0.0, 1.0, "gold")]))
    ex.spin_until(int(0.1e9))
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(int(0.1e9), 0.04, V))
    ex.spin_until(int(3.0e9))
    assert node.counts["skipped"] == 1  # the unknown bin is logged, not fatal
    assert [t for t, _ in tasks] == ["/line1/robot/arm1/pick_task"]
    t1 = tasks[0][1]
    assert t1.object_id == 5 and t1.arm == "arm1" and t1.target_bin == "cu"
    assert 1.0 - 1e-9 <= t1.pick_point.x <= 1.5 + 1e-9  # inside arm1's reach
    # arm1 reports a missed grasp at 3.6 s: too late to catch it again (window ends 3.75 s)
    ex.spin_until(int(3.6e9))
    ex.inject("/line1/robot/arm1/pick_result", "crmsort_msgs/msg/PickResult",
              new("crmsort_msgs/msg/PickResult", task_id=t1.task_id, object_id=5, arm="arm1",
                  outcome=1))
    ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
              _objects(int(3.6e9), [(5, 3.6 * V, 3.0, "cu")]))
    ex.spin_until(int(6.0e9))
    assert [t for t, _ in tasks][1:] == ["/line1/robot/arm2/pick_task"]
    t2 = tasks[1][1]
    assert t2.object_id == 5 and 1.8 - 1e-9 <= t2.pick_point.x <= 2.3 + 1e-9
    assert node.counts["failed"] == 1


def test_no_tasks_while_belt_stopped() -> None:
    ex = InProcessExecutor(SimClock())
    ex.add_node(lambda ctx: SchedulerNode(ctx, _arms()), "scheduler")
    tasks: list[str] = []
    ex.add_tap(lambda topic, *_: tasks.append(topic) if topic.endswith("pick_task") else None)
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(0, 1.0, 0.0))
    ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray",
              _objects(0, [(5, 1.2, 3.0, "cu")]))  # in arm1's window, belt at rest
    ex.spin_until(int(0.05e9))
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(int(0.05e9), 1.0, 0.0))
    ex.spin_until(int(1.0e9))
    assert tasks == []


def test_objects_heavier_than_the_grippers_hold_are_not_planned() -> None:
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(lambda ctx: SchedulerNode(ctx, _arms()), "scheduler",
                       parameters={"max_payload_kg": 0.8})
    tasks: list[Any] = []
    ex.add_tap(lambda topic, _ty, _t, msg: tasks.append(msg)
               if topic.endswith("pick_task") else None)
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(0, 0.0, V))
    msg = _objects(0, [(7, 0.0, 9.0, "cu"), (8, -0.3, 1.0, "cu")])
    msg.objects[0].mass_kg = 1.2   # the valuable one would tear off the cup
    msg.objects[1].mass_kg = 0.3
    ex.inject("/line1/sorting/objects", "crmsort_msgs/msg/SortObjectArray", msg)
    ex.spin_until(int(0.1e9))
    ex.inject("/line1/belt/joint_states", "sensor_msgs/msg/JointState",
              belt_joint_state(int(0.1e9), 0.04, V))
    ex.spin_until(int(4.0e9))
    assert [t.object_id for t in tasks] == [8]
    assert node.counts["too_heavy"] == 1
