"""Node parameters: declare with a default, overridden from the line description.

Rules (as in ROS 2 with ``allow_undeclared_parameters=False``):

- ``declare_parameter(name, default)`` returns the override given to
  ``add_node(parameters=...)`` if there is one, else ``default``;
- declaring a name twice, or getting an undeclared name, raises
  :class:`~sorting.errors.ParameterError` naming the node and the parameter;
- an override whose type does not fit a scalar default (``bool``, ``int``,
  ``float``, ``str``) raises ParameterError; an ``int`` override of a ``float``
  default is converted;
- overrides that the node never declares are an error at the end of
  ``add_node`` (see :meth:`ParameterStore.check_overrides_used`): a typo in a
  line YAML must not pass silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sorting.errors import ParameterError


@dataclass
class Parameter:
    """A declared parameter: ``name`` and its ``value`` (override or default)."""

    name: str
    value: Any


def _coerce(node: str, name: str, default: Any, override: Any) -> Any:
    """Return ``override`` checked against the type of a scalar ``default``."""
    if default is None or not isinstance(default, bool | int | float | str):
        return override
    if isinstance(default, bool):
        ok = isinstance(override, bool)
    elif isinstance(default, float):
        ok = isinstance(override, int | float) and not isinstance(override, bool)
        if ok:
            return float(override)
    elif isinstance(default, int):
        ok = isinstance(override, int) and not isinstance(override, bool)
    else:
        ok = isinstance(override, str)
    if not ok:
        raise ParameterError(
            f"node {node!r}: parameter {name!r} is declared as {type(default).__name__} "
            f"(default {default!r}) but the override is {type(override).__name__} {override!r}"
        )
    return override


class ParameterStore:
    """The parameters of one node (``node`` is its fully qualified name, used in errors)."""

    __slots__ = ("_declared", "_overrides", "node")

    def __init__(self, node: str, overrides: Mapping[str, Any] | None = None) -> None:
        self.node = node
        self._overrides = dict(overrides or {})
        self._declared: dict[str, Parameter] = {}

    def declare(self, name: str, default: Any = None) -> Parameter:
        """Declare ``name``; return it with the override's value if any, else ``default``."""
        if not name:
            raise ParameterError(f"node {self.node!r}: parameter name is empty")
        if name in self._declared:
            raise ParameterError(f"node {self.node!r}: parameter {name!r} is already declared")
        value = (
            _coerce(self.node, name, default, self._overrides[name])
            if name in self._overrides
            else default
        )
        param = Parameter(name, value)
        self._declared[name] = param
        return param

    def get(self, name: str) -> Parameter:
        """Return the declared parameter ``name``; raise ParameterError if undeclared."""
        try:
            return self._declared[name]
        except KeyError:
            raise ParameterError(
                f"node {self.node!r}: parameter {name!r} is not declared "
                f"(declared: {sorted(self._declared)}); call declare_parameter first"
            ) from None

    def declared(self) -> dict[str, Any]:
        """Name → value of every declared parameter."""
        return {n: p.value for n, p in self._declared.items()}

    def undeclared_overrides(self) -> list[str]:
        """Sorted names of overrides that no ``declare_parameter`` call used."""
        return sorted(set(self._overrides) - set(self._declared))

    def check_overrides_used(self) -> None:
        """Raise ParameterError if an override names a parameter the node never declared."""
        unused = self.undeclared_overrides()
        if unused:
            raise ParameterError(
                f"node {self.node!r}: override(s) for undeclared parameter(s) {unused}; "
                f"the node declares {sorted(self._declared)}"
            )
