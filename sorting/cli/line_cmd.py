"""``crmsort line check LINE.yaml`` — validate a line description;
``crmsort line start|stop|estop|reset [LINE.yaml] [--reason TEXT]`` — command a running line.

A command is a ``crmsort_msgs/LineCommand`` (source ``cli@<host>``) on the line's
``control/command``, sent over DDS with the YAML's network settings (as ``crmsort
status`` listens). The command then waits for the line controller's answer
(``control/state``: accepted or refused, and why) and for the next ``LineStatus``,
and prints both. Exit status: 0 accepted, 1 refused by the line, 3 no answer or no
status within ``--timeout`` (is the line running? same domain and network?).
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE, load_line

#: what each command does, for ``--help``
ACTIONS = {
    "start": "start the line: STOPPED -> STARTING -> RUNNING",
    "stop": "stop the line: no new picks, picks in flight finish, the belt ramps down",
    "estop": "E-stop: the line E-stop latches, arms brake, the belt stops (no confirmation)",
    "reset": "clear an E-stop: ESTOP -> STOPPED (then start)",
}
EXIT_REFUSED = 1
EXIT_NO_ANSWER = 3


def register(sub: Any) -> None:
    p = sub.add_parser("line", help="line descriptions (YAML under launch/)")
    lsub = p.add_subparsers(dest="line_command", metavar="ACTION", required=True)
    c = lsub.add_parser("check", help="validate a line YAML and print its layout")
    c.add_argument(
        "line", nargs="?", default=str(DEFAULT_LINE), help="line YAML (default: %(default)s)"
    )
    c.set_defaults(func=_check)
    for action, text in ACTIONS.items():
        a = lsub.add_parser(action, help=text, description=text)
        a.add_argument("line", nargs="?", default=str(DEFAULT_LINE),
                       help="line YAML (its name is the namespace; deploy gives domain and "
                            "network; default: %(default)s)")
        a.add_argument("--reason", default="", help="why: logged with the command")
        a.add_argument("--timeout", type=float, default=5.0,
                       help="wait this long for the answer and the next status, s (default 5)")
        a.add_argument("--domain", type=int, default=None, help="override deploy.domain_id")
        a.set_defaults(func=_command, action=action)


def _check(args: argparse.Namespace) -> int:
    line = load_line(args.line)
    con = console()
    con.print(
        f"[bold green]ok[/] {args.line}: line [bold]{line.name}[/] (namespace {line.namespace})"
    )
    b = line.belt
    con.print(
        f"  belt {b.length_m} m × {b.width_m} m at {b.speed_mps} m/s, "
        f"encoder {b.encoder_ticks_per_m:g} ticks/m at {b.encoder_rate_hz:g} Hz"
    )
    for name in ("camera", "depth"):
        s = getattr(line.sensors, name)
        state = "on" if s.enabled else "off"
        con.print(
            f"  {name:<7} x={s.x_m} m, {s.width_px}×{s.height_px} px at {s.rate_hz} Hz ({state})"
        )
    return 0


def _command(args: argparse.Namespace) -> int:
    from sorting.cli.status_cmd import status_line
    from sorting.control import parse_command
    from sorting.deploy.config import load_deployment
    from sorting.deploy.dds import wait_matched
    from sorting.hmi import HmiState
    from sorting.hmi.commands import DdsCommandSink, command_msg
    from sorting.hmi.dds_source import DdsSource
    from sorting.msgs.convert import stamp_ns

    cmd = parse_command(args.action)
    line, deploy = load_deployment(args.line)
    if args.domain is not None:
        deploy = deploy.model_copy(update={"domain_id": args.domain})
    con = console()
    who = f"cli@{socket.gethostname()}"
    state = HmiState(line.namespace, stale_after_s=max(deploy.stale_after_s, args.timeout))
    source = DdsSource(state, deploy).start()
    try:
        sink = DdsCommandSink(source.participant, line.namespace, state.line_time_ns)
        end = time.monotonic() + args.timeout
        # a command written before the line's reader is discovered would be lost; one sent
        # before the line's clock is heard could not be stamped on it (see DdsCommandSink)
        while state.line_time_ns() is None and time.monotonic() < end:
            time.sleep(0.02)
        if state.line_time_ns() is None or not wait_matched(
                [sink.writer], max(end - time.monotonic(), 0.0)):
            con.print(f"[red]no line listens on {sink.topic} (DDS domain {deploy.domain_id}) "
                      f"within {args.timeout:g} s[/]: is {line.name} running, on the same "
                      "domain and network?")
            return EXIT_NO_ANSWER
        msg = command_msg(cmd, who, args.reason)
        sink.send(msg)
        stamp = stamp_ns(msg.header.stamp)
        answer = None
        while answer is None and time.monotonic() < end:
            answer = state.answer(stamp, who)
            time.sleep(0.02)
        if answer is None:
            con.print(f"[red]{cmd.name} sent, but no answer from the line controller of "
                      f"{line.name} within {args.timeout:g} s[/] (control/state)")
            return EXIT_NO_ANSWER
        answered = time.monotonic()
        verdict = "[green]accepted[/]" if answer["accepted"] else "[red]REFUSED[/]"
        con.print(f"{cmd.name} {verdict}: {answer['message']}")
        status = None
        while status is None and time.monotonic() < max(end, answered + 2.0):
            snap = state.snapshot()
            age = snap["age_s"]["status"]
            if age is not None and time.monotonic() - age > answered:
                status = snap["status"]
            else:
                time.sleep(0.05)
        if status is None:
            con.print(f"[red]no LineStatus of {line.name} after the answer within "
                      f"{args.timeout:g} s[/] (is its line monitor running?)")
            return EXIT_NO_ANSWER
        con.print(f"[bold]{line.name}[/]: {status_line(status)}")
        return 0 if answer["accepted"] else EXIT_REFUSED
    finally:
        source.stop()
