"""ROS 2 launch files from a line YAML: which nodes, names, namespaces, parameters, remappings.

:func:`launch_nodes` turns a line description into :class:`LaunchNode` records
(plain data, tested without ROS); :func:`render_launch` writes a ROS 2 Python
launch file that, when ``ros2 launch`` runs it, reads the *same* YAML through
:func:`launch_nodes` and starts one ``launch_ros.actions.Node`` per record, so
the launch file never drifts from the line description. Each node runs the
``crmsort`` package's entry point of the same name (:mod:`sorting.deploy.rclpy_host`),
which gets the YAML path as the ``line_file`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sorting.deploy.config import load_deployment
from sorting.deploy.errors import DeployConfigError
from sorting.deploy.plan import plan_processes

PACKAGE = "crmsort"


@dataclass(frozen=True)
class LaunchNode:
    """One ``launch_ros.actions.Node``: package, executable, name, namespace, parameters
    (one dict), remappings (from, to) and the process group it belongs to."""

    package: str
    executable: str
    name: str
    namespace: str
    parameters: dict[str, Any]
    remappings: list[tuple[str, str]] = field(default_factory=list)
    group: str = ""


def _ros_value(node: str, key: str, value: Any) -> Any:
    """ROS 2 parameters are scalars or uniform arrays; anything else is a DeployConfigError."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        kinds = {type(v) for v in value}
        if len(kinds) <= 1 and all(isinstance(v, bool | int | float | str) for v in value):
            return list(value)
        if kinds <= {int, float}:
            return [float(v) for v in value]
    raise DeployConfigError(
        f"nodes.{node}.{key}: {value!r} is not a ROS 2 parameter value "
        f"(a scalar or a list of one scalar type)")


def launch_nodes(line_path: str | Path) -> list[LaunchNode]:
    """The nodes ``ros2 launch`` starts for the line in ``line_path`` (in line order).

    Raises ConfigError / DeployConfigError for a bad YAML, an unknown node, a
    remapping for an unknown node or a parameter ROS 2 cannot carry.
    """
    path = Path(line_path)
    line, deploy = load_deployment(path)
    plan = plan_processes(line, deploy, str(path))
    known = {s.name for s in plan.nodes}
    for node in deploy.remappings:
        if node not in known:
            raise DeployConfigError(
                f"{path}: deploy.remappings.{node}: unknown node {node!r}; "
                f"nodes are {sorted(known)}")
    out = []
    for spec in plan.nodes:
        params = {k: _ros_value(spec.name, k, v) for k, v in spec.parameters.items()}
        params["line_file"] = str(path.resolve())
        remaps = sorted(deploy.remappings.get(spec.name, {}).items())
        out.append(LaunchNode(PACKAGE, spec.name, spec.name, spec.namespace, params, remaps,
                              plan.group_of(spec.name)))
    return out


_TEMPLATE = '''\
"""ROS 2 launch file of {name} (made by sorting.deploy.launch_gen); reads {yaml} when launched."""

from pathlib import Path

from launch import LaunchDescription
from launch_ros.actions import Node

from sorting.deploy.launch_gen import launch_nodes

LINE_FILE = Path(__file__).resolve().parent / {yaml!r}


def generate_launch_description():
    return LaunchDescription([
        Node(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace,
             parameters=[n.parameters], remappings=n.remappings, output="screen")
        for n in launch_nodes(LINE_FILE)
    ])
'''


def render_launch(line_path: str | Path, launch_dir: str | Path) -> str:
    """Text of the launch file for ``line_path``, to be saved in ``launch_dir`` (the YAML is
    referenced relative to it). Checks the YAML first (raises like :func:`launch_nodes`)."""
    launch_nodes(line_path)
    rel = Path(line_path).resolve().relative_to(Path(launch_dir).resolve())
    return _TEMPLATE.format(name=Path(line_path).stem, yaml=str(rel))


def write_launch(line_path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``<line>.launch.py`` beside the YAML (or to ``out``); return its path."""
    src = Path(line_path)
    dst = Path(out) if out is not None else src.with_name(src.stem + ".launch.py")
    dst.write_text(render_launch(src, dst.parent))
    return dst
