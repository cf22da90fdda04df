"""Which nodes a line has and which process (group) hosts each one.

The nodes are found by running :func:`sorting.line.build_sim_line` against a
:class:`SpecCollector` that records each ``add_node`` call instead of building
the node, so the plan follows whatever the line builder adds. A group is built
in a real executor through :class:`GroupExecutor`, which builds only the nodes
of that group and skips the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sorting.config.line import LineConfig
from sorting.deploy.config import DeployConfig
from sorting.deploy.errors import DeployConfigError
from sorting.runtime import InProcessExecutor, Node, NodeContext, names


@dataclass(frozen=True)
class NodeSpec:
    """One node of a line: name, namespace, parameter overrides, and how to build it."""

    name: str
    namespace: str
    parameters: dict[str, Any]
    factory: Callable[[NodeContext], Node] = field(compare=False, repr=False)

    @property
    def fqn(self) -> str:
        return names.join(self.namespace, self.name)


class Ghost:
    """What the proxies return for a node they do not build: any attribute or call gives
    another Ghost, so the line builder can wire objects of nodes hosted elsewhere."""

    def __getattr__(self, name: str) -> Ghost:
        if name.startswith("__"):
            raise AttributeError(name)
        return Ghost()

    def __call__(self, *args: Any, **kwargs: Any) -> Ghost:
        return Ghost()

    def __repr__(self) -> str:
        return "<node hosted in another process>"


class SpecCollector:
    """Stands in for an executor: records ``add_node`` calls as :class:`NodeSpec`, builds none."""

    def __init__(self) -> None:
        self.specs: list[NodeSpec] = []

    def add_node(self, node_cls: Callable[[NodeContext], Any], name: str,
                 namespace: str = "/line1", parameters: Mapping[str, Any] | None = None) -> Ghost:
        self.specs.append(NodeSpec(name, names.normalize_namespace(namespace),
                                   dict(parameters or {}), node_cls))
        return Ghost()


class GroupExecutor:
    """An executor proxy that builds only the nodes named in ``members`` (others: a Ghost)."""

    def __init__(self, executor: InProcessExecutor, members: set[str]) -> None:
        self._executor = executor
        self.members = members
        self.built: list[str] = []

    def add_node(self, node_cls: Callable[[NodeContext], Any], name: str,
                 namespace: str = "/line1", parameters: Mapping[str, Any] | None = None) -> Any:
        if name not in self.members:
            return Ghost()
        self.built.append(name)
        return self._executor.add_node(node_cls, name, namespace=namespace, parameters=parameters)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._executor, attr)


def build_line(line: LineConfig, executor: Any) -> Any:
    """Call the line builder (``sorting.line.build_sim_line``) on ``executor`` or a proxy."""
    from sorting.line import build_sim_line

    return build_sim_line(line, executor)


def line_nodes(line: LineConfig) -> list[NodeSpec]:
    """Every node the line builder adds for ``line``, in order."""
    collector = SpecCollector()
    build_line(line, collector)
    return collector.specs


@dataclass(frozen=True)
class ProcessPlan:
    """Groups (process name → node names, in line order) of one line."""

    groups: dict[str, list[str]]
    nodes: list[NodeSpec]

    def group_of(self, node: str) -> str:
        for g, members in self.groups.items():
            if node in members:
                return g
        raise DeployConfigError(f"node {node!r} is in no group")


#: The simulator node; the simulated hardware drivers below share its world and its process.
SIM_NODE = "sim_line"
WILDCARD = "*"


def sim_bound_nodes(line: LineConfig) -> set[str]:
    """Nodes that drive simulated hardware living in the simulator's world (the XRF emulator,
    the simulated arms): they must run in the process of ``sim_line``."""
    return {SIM_NODE, "xrf_driver", *(a.name for a in getattr(line, "arms", []))}


def plan_processes(line: LineConfig, deploy: DeployConfig,
                   source: str = "<line>") -> ProcessPlan:
    """Check ``deploy.groups`` and ``line.nodes`` against the line's nodes and make the plan.

    A group member ``"*"`` takes every node no other group names; nodes named in
    no group get a group of their own (named after the node), except the
    simulated-hardware nodes, which join the group of ``sim_line``. Raises
    DeployConfigError naming the YAML path of an unknown or twice-listed node, or a
    simulated-hardware node placed away from the simulator.
    """
    specs = line_nodes(line)
    known = [s.name for s in specs]
    for name in line.nodes:
        if name not in known:
            raise DeployConfigError(
                f"{source}: nodes.{name}: unknown node {name!r}; "
                f"the nodes of this line are {known}"
            )
    groups: dict[str, list[str]] = {}
    placed: dict[str, str] = {}
    for g, members in deploy.groups.items():
        if not g.isidentifier():
            raise DeployConfigError(
                f"{source}: deploy.groups.{g}: a group name must be an identifier")
        for i, m in enumerate(members):
            if m == WILDCARD:
                continue
            if m not in known:
                raise DeployConfigError(
                    f"{source}: deploy.groups.{g}[{i}]: unknown node {m!r}; "
                    f"the nodes of this line are {known}"
                )
            if m in placed:
                raise DeployConfigError(
                    f"{source}: deploy.groups.{g}[{i}]: node {m!r} is already in group "
                    f"{placed[m]!r}"
                )
            placed[m] = g
    wild = [g for g, members in deploy.groups.items() if WILDCARD in members]
    if len(wild) > 1:
        raise DeployConfigError(f"{source}: deploy.groups: '*' may appear in one group only, "
                                f"found in {wild}")
    bound = sim_bound_nodes(line) & set(known)
    sim_group = placed.get(SIM_NODE) or (wild[0] if wild else SIM_NODE)
    for n in sorted(bound):
        where = placed.get(n)
        if where is None:
            placed[n] = sim_group
        elif where != sim_group:
            raise DeployConfigError(
                f"{source}: deploy.groups.{where}: node {n!r} drives simulated hardware in the "
                f"world of {SIM_NODE!r} and must run in its group ({sim_group!r})")
    for n in known:
        if n not in placed and wild:
            placed[n] = wild[0]
    for g in [*deploy.groups, sim_group]:
        groups[g] = [n for n in known if placed.get(n) == g]
    for n in known:
        if n not in placed:
            if n in groups:
                raise DeployConfigError(
                    f"{source}: deploy.groups: group {n!r} clashes with node {n!r}")
            groups[n] = [n]
    return ProcessPlan({g: m for g, m in groups.items() if m}, specs)
