"""The line's command path: the operator's START / STOP / ESTOP / RESET and the line state
they drive (:class:`LineController`, plain Python: no messages, no bus). The node that hosts
it on the line is :class:`sorting.nodes.line_control.LineControlNode`."""

from sorting.control.machine import (
    Command,
    LineController,
    LineState,
    Outcome,
    parse_command,
)

__all__ = ["Command", "LineController", "LineState", "Outcome", "parse_command"]
