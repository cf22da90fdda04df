"""``crmsort`` — entry point and sub-command table.

Each sub-command lives in its own module and exposes ``add_parser(subparsers)``
which registers its arguments and a ``func(args) -> int``. Errors of the
project's packages are printed as one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from calibration.errors import CalibrationError
from perception.errors import PerceptionError
from sorting.cli import bag_cmd, demo_cmd, line_cmd
from sorting.errors import SortingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmsort",
        description="crmsort: sensor-driven characterization and robotic sorting of "
        "critical-raw-material streams (e-waste, metal scrap, slag).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_cmd.add_parser(sub)
    bag_cmd.add_record_parser(sub)
    bag_cmd.add_replay_parser(sub)
    bag_cmd.add_bag_parser(sub)
    line_cmd.add_parser(sub)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM ends a run like Ctrl-C does: unwinding closes bags and shuts nodes down
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args))
    except (SortingError, PerceptionError, CalibrationError) as exc:
        print(f"crmsort {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crmsort {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
