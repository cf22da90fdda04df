"""Pick scheduler node: tracked objects in, one ``PickTask`` per arm at a time out.

Subscribes to ``sorting/objects`` (crmsort_msgs/SortObjectArray: ``belt_x_m`` at the
header stamp, ``y_m``, ``value_eur``, ``target_bin``, ``class_name``), ``belt/joint_states``
(belt position and speed) and ``robot/<arm>/pick_result`` (crmsort_msgs/PickResult) for
every arm; publishes ``robot/<arm>/pick_task`` (crmsort_msgs/PickTask). The planning
logic is :class:`sorting.scheduling.online.OnlineScheduler`; this handler converts
messages and keeps track of which arm has a task out.

Arms come from the constructor (``arm_models``: any :class:`ArmModel`, e.g. the
``robot`` package's delta picker) or from the parameter ``arms_file`` (the ``arms``
list of a stream file, see ``datasets/streams/README.md``). Parameters: ``rate_hz``
(planning cycles per s), ``belt_speed_mps`` (planning speed; the encoder's measured
speed only gates picking), ``min_belt_speed_mps``
(no new picks below it: the belt is stopped; nor unless the line controller's
``control/state`` says RUNNING, once one is heard), ``task_lead_s`` (a task is sent this long
before its approach must start), ``result_timeout_s`` (a task with no result by its
expected end + this is taken as failed), ``max_payload_kg`` (objects estimated heavier are
not planned: the cup would lose them; counted as ``too_heavy``; 0 = no limit).

An object the arms cannot serve (unknown bin, out of reach, NaN) is logged and skipped:
a bad tracker message must not stop the line. A failed pick (MISSED, DROPPED,
UNREACHABLE, ABORTED or a timeout) puts the object back; the next planning cycle gives
it to whichever arm can still catch it, typically one downstream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sorting.errors import ConfigError
from sorting.msgs import new
from sorting.msgs.convert import header, stamp, stamp_ns
from sorting.nodes.line_control import STATE_SUB_QOS, picks_allowed
from sorting.runtime.context import Node, NodeContext
from sorting.scheduling.arm_model import ArmModel
from sorting.scheduling.errors import SchedulingError
from sorting.scheduling.online import OnlineScheduler
from sorting.scheduling.problem import Timing
from sorting.scheduling.stream import ArmSpec, StreamObject

OUTCOME_PICKED = 0
_GONE_STATES = (2, 3, 4)  # SortObject STATE_PICKED, STATE_MISSED, STATE_EXITED


@dataclass
class _Task:
    task_id: int
    object_id: int
    timing: Timing


def load_arms_file(path: str) -> list[ArmModel]:
    """Arm models from a JSON file holding ``{"arms": [...]}`` (stream-file arm entries)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        arms = data["arms"] if isinstance(data, dict) else data
        return [ArmSpec.model_validate(a).to_model() for a in arms]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"scheduler arms_file {path}: {exc}") from None


class SchedulerNode(Node):
    """See the module docstring."""

    def __init__(self, ctx: NodeContext, arm_models: Sequence[ArmModel] | None = None) -> None:
        super().__init__(ctx)
        rate = float(ctx.declare_parameter("rate_hz", 50.0).value)
        v = float(ctx.declare_parameter("belt_speed_mps", 0.4).value)
        self.min_speed = float(ctx.declare_parameter("min_belt_speed_mps", 0.02).value)
        self.lead_s = float(ctx.declare_parameter("task_lead_s", 0.0).value)
        self.timeout_s = float(ctx.declare_parameter("result_timeout_s", 1.0).value)
        self.max_attempts = int(ctx.declare_parameter("max_attempts", 2).value)
        # heavier than the grippers hold (estimated mass): a pick would tear off, so none is
        # planned and the arm's cycle goes to an object it can carry (0 = no limit)
        self.max_payload_kg = float(ctx.declare_parameter("max_payload_kg", 0.0).value)
        arms_file = str(ctx.declare_parameter("arms_file", "").value or "")
        if arm_models is None:
            if not arms_file:
                raise ConfigError(f"{ctx.get_name()}: give arm_models or the arms_file parameter")
            arm_models = load_arms_file(arms_file)
        self.scheduler = OnlineScheduler(arm_models, v)
        self.arm_names = [a.name for a in arm_models]
        self.pubs = {
            n: ctx.create_publisher("crmsort_msgs/msg/PickTask", f"robot/{n}/pick_task", 10)
            for n in self.arm_names
        }
        for n in self.arm_names:
            ctx.create_subscription("crmsort_msgs/msg/PickResult", f"robot/{n}/pick_result",
                                    self._make_result_cb(n), 10)
        ctx.create_subscription("crmsort_msgs/msg/SortObjectArray", "sorting/objects",
                                self._on_objects, 10)
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states",
                                self._on_belt, 50)
        ctx.create_subscription("crmsort_msgs/msg/LineControlState", "control/state",
                                self._on_control, STATE_SUB_QOS)
        ctx.create_timer(1.0 / rate, self._cycle)
        self.tasks: dict[str, _Task | None] = {n: None for n in self.arm_names}
        self.belt: tuple[float, float] | None = None  # (t s, position m)
        self.belt_speed = 0.0  # no picks before the encoder has spoken
        self.picks_allowed = True  # until the line controller says otherwise
        self.next_task_id = 1
        self.counts = {"tasks": 0, "picked": 0, "failed": 0, "skipped": 0, "too_heavy": 0}
        self._too_heavy: set[int] = set()
        self._warned: set[int] = set()
        self.attempts: dict[int, int] = {}
        self.given_up: set[int] = set()

    def _now(self) -> float:
        return self.ctx.get_clock().now().nanoseconds * 1e-9

    def _on_belt(self, msg: Any) -> None:
        t = stamp_ns(msg.header.stamp) * 1e-9
        pos = float(msg.position[0])
        if len(msg.velocity):
            self.belt_speed = float(msg.velocity[0])
        elif self.belt is not None and t > self.belt[0]:
            self.belt_speed = (pos - self.belt[1]) / (t - self.belt[0])
        self.belt = (t, pos)

    def _on_control(self, msg: Any) -> None:
        self.picks_allowed = picks_allowed(msg)

    def _on_objects(self, msg: Any) -> None:
        t = stamp_ns(msg.header.stamp) * 1e-9
        seen: set[int] = set()
        for o in msg.objects:
            oid = int(o.id)
            if int(o.state) in _GONE_STATES:
                if oid not in self._in_task():
                    self.scheduler.remove(oid)
                continue
            if not str(o.target_bin) or oid in self.given_up:
                continue  # the sort policy lets it pass, or the arms failed it too often
            if 0 < self.max_payload_kg < float(o.mass_kg):
                if oid not in self._too_heavy:
                    self._too_heavy.add(oid)
                    self.counts["too_heavy"] += 1
                continue
            seen.add(oid)
            obj = StreamObject(id=oid, x_m=float(o.belt_x_m), y_m=float(o.y_m),
                               z_m=float(getattr(o, "height_m", 0.0)),
                               value_eur=float(o.value_eur), target_bin=str(o.target_bin),
                               class_name=str(o.class_name))
            try:
                self.scheduler.upsert(obj, t)
            except SchedulingError as exc:
                self.counts["skipped"] += 1
                if oid not in self._warned:  # once per object, not every planning cycle
                    self._warned.add(oid)
                    self.ctx.get_logger().warning(f"object {oid} not scheduled: {exc}")
        for oid in list(self.scheduler.rows):
            if oid not in seen and oid not in self._in_task():
                self.scheduler.remove(oid)

    def _in_task(self) -> set[int]:
        return {t.object_id for t in self.tasks.values() if t is not None}

    def _make_result_cb(self, arm: str) -> Any:
        def cb(msg: Any) -> None:
            task = self.tasks.get(arm)
            if task is None or int(msg.task_id) != task.task_id:
                return
            self._finish(arm, task, int(msg.outcome) == OUTCOME_PICKED, self._now())

        return cb

    def _finish(self, arm: str, task: _Task, ok: bool, now: float) -> None:
        self.tasks[arm] = None
        if ok:
            self.counts["picked"] += 1
            self.scheduler.remove(task.object_id)
            self.scheduler.arm_free_s[self.scheduler.arm_index(arm)] = now
            return
        self.counts["failed"] += 1
        # a failed grasp is known at the grip, but the arm still runs its cycle to the bin
        free = max(now, task.timing.t_free_s)
        self.attempts[task.object_id] = self.attempts.get(task.object_id, 0) + 1
        if self.attempts[task.object_id] >= self.max_attempts:
            # the same object failing again and again costs every arm its cycles: let it go
            self.given_up.add(task.object_id)
            self.scheduler.remove(task.object_id)
        else:
            self.scheduler.pick_failed(task.object_id, arm, free_s=free)
        self.scheduler.arm_free_s[self.scheduler.arm_index(arm)] = free

    def _cycle(self) -> None:
        now = self._now()
        for arm, task in self.tasks.items():
            if task is not None and now > task.timing.t_free_s + self.timeout_s:
                self._finish(arm, task, False, now)
        if abs(self.belt_speed) < self.min_speed:
            return  # belt stopped: no new picks
        if not self.picks_allowed:
            return  # the line is not RUNNING (starting, stopping, E-stop): no new picks
        idle = [a for a, t in self.tasks.items() if t is None]
        if not idle:
            return
        plans = self.scheduler.plan(now)
        for a, name in enumerate(self.arm_names):
            if name not in idle or not plans[a]:
                continue
            oid, t_pick = plans[a][0]
            appr = float(self.scheduler.win[oid][2][a])
            if t_pick - appr > now + self.lead_s:
                continue
            try:
                tm = self.scheduler.commit(name, oid, now)
            except SchedulingError as exc:
                # the exact pick at the window's edge fell outside the arm's workspace: this
                # arm lets it go; the planner offers it to the next arm in the next cycle
                self.counts["skipped"] += 1
                if oid not in self._warned:
                    self._warned.add(oid)
                    self.ctx.get_logger().warning(f"object {oid} not picked by {name}: {exc}")
                continue
            if tm is not None:
                self._send(name, oid, tm, now)

    def _send(self, arm: str, oid: int, tm: Timing, now: float) -> None:
        row = self.scheduler.rows[oid]
        prio = int(max(row.obj.priority,
                       int(row.obj.class_name in self.scheduler.priority_classes)))
        belt_pos = math.nan
        if self.belt is not None:
            belt_pos = self.belt[1] + self.belt_speed * (tm.t_pick_s - self.belt[0])
        task = new(
            "crmsort_msgs/msg/PickTask",
            header=header(round(now * 1e9), "belt"),
            task_id=self.next_task_id, object_id=oid, arm=arm, target_bin=row.obj.target_bin,
            pick_point=new("geometry_msgs/msg/Point", x=tm.pick_xyz[0], y=tm.pick_xyz[1],
                           z=tm.pick_xyz[2]),
            pick_time=stamp(round(tm.t_pick_s * 1e9)), pick_belt_position_m=belt_pos,
            value_eur=row.obj.value_eur, priority=prio,
        )
        self.tasks[arm] = _Task(self.next_task_id, oid, tm)
        self.next_task_id += 1
        self.counts["tasks"] += 1
        self.pubs[arm].publish(task)
