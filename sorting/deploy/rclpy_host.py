"""Host crmsort nodes in rclpy (ROS 2 Jazzy or newer), unchanged, one node per ``ros2 run``.

The layer is thin on purpose: :class:`RclpyContext` implements the runtime's
``NodeContext`` with rclpy calls and nothing else.

- Messages cross as CDR bytes: a publish serializes the rosbags message with
  :func:`sorting.msgs.serialize` and hands the bytes to ``Publisher.publish``
  (rclpy publishes ``bytes`` as a serialized message); subscriptions are
  created with ``raw=True`` and decoded with :func:`sorting.msgs.deserialize`.
  The generated rclpy class is only used to name the type to the middleware.
- Parameters are ROS parameters: ``declare_parameter(name, default)`` declares it
  on the rclpy node, with the line YAML's override as the default, so
  ``--ros-args -p`` and launch files override both. ``None`` and empty-list
  defaults are declared with dynamic typing.
- QoS: :func:`qos_settings` maps the runtime profile (keep-last depth,
  reliable/best effort, volatile/transient local) — ``SENSOR_QOS`` of the sim
  driver is ROS 2's sensor-data profile (best effort, keep last 5), latched
  topics are reliable + transient local as ``/tf_static`` and ``ros2 bag`` use.

Entry points: ``ros2 run crmsort <node>`` runs :func:`main` with the node name;
:func:`console_scripts` lists them (one per node of the line; ``main_<node>``
resolves through the module ``__getattr__``) as the colcon package
``ros2/crmsort`` (ament_python: ``package.xml``, ``setup.py``, ``setup.cfg``)
declares them. The
node's line YAML comes from the ``line_file`` parameter (``--ros-args -p
line_file:=launch/line1.yaml``), default ``launch/line1.yaml``.

Untested here (no ROS 2 on this machine): exercised wherever a ROS 2 install exists.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from sorting.deploy.errors import DeployError, RclpyUnavailableError
from sorting.msgs import deserialize, serialize
from sorting.runtime.context import QoS, QoSProfile, Time
from sorting.runtime.params import Parameter


def rclpy_available() -> bool:
    """True when ``import rclpy`` works (a sourced ROS 2 installation)."""
    try:
        importlib.import_module("rclpy")
    except ImportError:
        return False
    return True


def _rclpy() -> Any:
    try:
        return importlib.import_module("rclpy")
    except ImportError:
        raise RclpyUnavailableError(
            "rclpy is not importable: source a ROS 2 installation (Jazzy or newer), "
            "e.g. `source /opt/ros/jazzy/setup.bash`, and build crmsort_msgs with colcon"
        ) from None


def qos_settings(qos: QoS) -> dict[str, Any]:
    """The rclpy ``QoSProfile`` keyword values of a runtime profile (plain data, no rclpy)."""
    p = QoSProfile(depth=qos) if isinstance(qos, int) else qos
    return {
        "history": "keep_last", "depth": p.depth,
        "reliability": "reliable" if p.reliable else "best_effort",
        "durability": "transient_local" if p.transient_local else "volatile",
    }


def rclpy_qos(qos: QoS) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
    from rclpy.qos import QoSProfile as RQoS

    s = qos_settings(qos)
    return RQoS(
        history=HistoryPolicy.KEEP_LAST, depth=s["depth"],
        reliability=ReliabilityPolicy.RELIABLE if s["reliability"] == "reliable"
        else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if s["durability"] == "transient_local"
        else DurabilityPolicy.VOLATILE,
    )


def ros_message_class(msg_type: str) -> Any:
    """The rosidl-generated Python class of ``pkg/msg/Type`` (needs the package built)."""
    from rosidl_runtime_py.utilities import get_message

    try:
        return get_message(msg_type)
    except (AttributeError, ModuleNotFoundError, ValueError) as e:
        raise DeployError(f"type {msg_type!r} is not available to rclpy ({e}); "
                          f"build and source the package that defines it") from None


class _Publisher:
    def __init__(self, pub: Any, topic: str, msg_type: str) -> None:
        self._pub = pub
        self.topic = topic
        self.msg_type = msg_type

    def publish(self, msg: Any) -> None:
        self._pub.publish(serialize(msg, self.msg_type))  # bytes: a serialized message


class _Subscription:
    def __init__(self, sub: Any, topic: str, msg_type: str) -> None:
        self._sub = sub
        self.topic = topic
        self.msg_type = msg_type
        self.dropped = 0  # the middleware drops silently; not observable from rclpy


class _Clock:
    def __init__(self, clock: Any) -> None:
        self._clock = clock

    def now(self) -> Time:
        return Time(int(self._clock.now().nanoseconds))


class RclpyContext:
    """A :class:`~sorting.runtime.context.NodeContext` over an ``rclpy.node.Node``.

    ``overrides`` are the line YAML's parameter values (ROS parameters win over them).
    """

    def __init__(self, node: Any, overrides: dict[str, Any] | None = None) -> None:
        self.node = node
        self.overrides = dict(overrides or {})

    def get_name(self) -> str:
        return str(self.node.get_name())

    def get_namespace(self) -> str:
        return str(self.node.get_namespace())

    def create_publisher(self, msg_type: str, topic: str, qos: QoS) -> _Publisher:
        pub = self.node.create_publisher(ros_message_class(msg_type), topic, rclpy_qos(qos))
        return _Publisher(pub, pub.topic_name, msg_type)

    def create_subscription(self, msg_type: str, topic: str, callback: Callable[[Any], None],
                            qos: QoS) -> _Subscription:
        def on_raw(raw: bytes) -> None:
            callback(deserialize(raw, msg_type))

        sub = self.node.create_subscription(ros_message_class(msg_type), topic, on_raw,
                                            rclpy_qos(qos), raw=True)
        return _Subscription(sub, sub.topic_name, msg_type)

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Any:
        return self.node.create_timer(period_s, callback)

    def get_clock(self) -> _Clock:
        return _Clock(self.node.get_clock())

    def declare_parameter(self, name: str, default: Any = None) -> Parameter:
        from rcl_interfaces.msg import ParameterDescriptor

        value = self.overrides.get(name, default)
        dynamic = value is None or (isinstance(value, list) and not value)
        p = self.node.declare_parameter(
            name, value, ParameterDescriptor(dynamic_typing=dynamic))
        return Parameter(name, p.value)

    def get_parameter(self, name: str) -> Parameter:
        return Parameter(name, self.node.get_parameter(name).value)

    def get_logger(self) -> Any:
        return self.node.get_logger()


def console_scripts(line_path: str | None = None) -> list[str]:
    """``console_scripts`` entries, one per node of the line: ``sim_line = ...:main_sim_line``."""
    from sorting.config.line import DEFAULT_LINE
    from sorting.deploy.config import load_deployment
    from sorting.deploy.plan import line_nodes

    line, _ = load_deployment(line_path or DEFAULT_LINE)
    return [f"{s.name} = sorting.deploy.rclpy_host:main_{s.name}" for s in line_nodes(line)]


def main(node_name: str | None = None, argv: list[str] | None = None) -> int:
    """Run one crmsort node of the line in rclpy until Ctrl-C (``ros2 run crmsort <node>``)."""
    rclpy = _rclpy()
    from rclpy.node import Node as RosNode

    from sorting.config.line import DEFAULT_LINE
    from sorting.deploy.config import load_deployment
    from sorting.deploy.plan import line_nodes

    args = sys.argv if argv is None else argv
    rclpy.init(args=args)
    name = node_name or args[1]
    boot = RosNode(f"{name}_boot")
    line_file = boot.declare_parameter("line_file", str(DEFAULT_LINE)).value
    boot.destroy_node()
    line, _ = load_deployment(line_file)
    specs = {s.name: s for s in line_nodes(line)}
    if name not in specs:
        raise DeployError(f"{line_file}: no node {name!r}; nodes are {sorted(specs)}")
    spec = specs[name]
    ros_node = RosNode(spec.name, namespace=spec.namespace)
    ros_node.declare_parameter("line_file", line_file)
    node = spec.factory(RclpyContext(ros_node, spec.parameters))
    try:
        rclpy.spin(ros_node)
    except KeyboardInterrupt:
        pass
    finally:
        node.shutdown()
        ros_node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def __getattr__(attr: str) -> Callable[[], int]:
    if attr.startswith("main_"):
        name = attr[len("main_"):]
        return lambda: main(name)
    raise AttributeError(attr)
