"""Terminal output shared by the sub-commands."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    """A rich console; wide enough for the tables when output goes to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=120)


def short_type(typename: str) -> str:
    """``sensor_msgs/msg/Image`` → ``sensor_msgs/Image`` (as ROS 2 tools print it)."""
    return typename.replace("/msg/", "/")
