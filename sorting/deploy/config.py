"""The ``deploy`` section of a line YAML: DDS domain, network, process groups, lockstep clock.

Example (all keys optional)::

    deploy:
      domain_id: 42                 # DDS domain of the line (0..232)
      network:                      # default: loopback only, unicast discovery
        interfaces: [eth1]
        peers: [10.0.0.11, 10.0.0.12]
        multicast: false
      groups:                       # node groups = processes; unlisted nodes get their own
        sim: [sim_line, line_monitor]
        perception: [volume, tracker]
      step_s: 0.01                  # clock step of a multi-process simulated run (s)
      stale_after_s: 3.0            # watchdog: silent input / silent node → stale
      remappings:                   # ROS 2 launch remappings per node
        volume: {depth/points: /camera3d/points}

:func:`load_deployment` reads it whether or not the line model itself knows the
section (it is popped before the line is validated). Errors name the YAML path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sorting.config.line import DEFAULT_LINE, LineConfig, load_line, parse_line
from sorting.deploy.errors import DeployConfigError
from sorting.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Model):
    interfaces: list[str] = Field(default_factory=lambda: ["lo"], min_length=1)
    peers: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    multicast: bool = False


class DeployConfig(_Model):
    domain_id: int = Field(42, ge=0, le=232)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    step_s: float = Field(0.01, gt=0, le=1.0)
    stale_after_s: float = Field(3.0, gt=0)
    diagnostics_period_s: float = Field(1.0, gt=0)
    remappings: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="node name -> {from topic: to topic} (ROS 2 launch)")


def parse_deploy(data: Any, source: str) -> DeployConfig:
    """Validate a ``deploy`` mapping; DeployConfigError naming ``source`` and each bad path."""
    if data is None:
        return DeployConfig()
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            "deploy." + ".".join(str(p) for p in err["loc"]) + ": "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        ]
        raise DeployConfigError(
            f"{source}: invalid deploy section:\n  " + "\n  ".join(problems)
        ) from None


def load_deployment(path: str | Path | None = None) -> tuple[LineConfig, DeployConfig]:
    """Load a line YAML and its ``deploy`` section. Raises ConfigError / DeployConfigError."""
    file = Path(path) if path is not None else DEFAULT_LINE
    if "deploy" in LineConfig.model_fields:  # the line model carries the section itself
        line = load_line(file)
        return line, getattr(line, "deploy")  # noqa: B009
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read line description: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    data = data if data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    deploy = parse_deploy(data.pop("deploy", None), str(file))
    return parse_line(data, str(file)), deploy
