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

from pydantic import ValidationError

from sorting.config.line import (
    DEFAULT_LINE,
    DeployConfig,
    LineConfig,
    NetworkConfig,
    load_line,
)
from sorting.deploy.errors import DeployConfigError


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
    line = load_line(file)  # the line model carries the deploy section itself
    return line, line.deploy


__all__ = ["DeployConfig", "NetworkConfig", "load_deployment", "parse_deploy"]
