"""``crmsort`` — entry point and sub-command table.

Each group of sub-commands lives in its own module ``sorting/cli/<name>_cmd.py``
exposing ``register(subparsers)``, which adds its parsers and sets
``func(args) -> int`` on each; modules are found by name, in sorted order, so
a new command is a new file. Errors of the project's packages are printed as
one clear line and exit with status 2.
"""

from __future__ import annotations

import os

# Small matrices everywhere (XRF fits, HSI projections, FP iterations): OpenBLAS worker
# threads cost more than they give on 2 cores (up to 10x slower under load). Before numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

import sorting.cli as cli_pkg
from calibration.errors import CalibrationError
from perception.errors import PerceptionError
from sorting.errors import SortingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmsort",
        description="crmsort: sensor-driven characterization and robotic sorting of "
        "critical-raw-material streams (e-waste, metal scrap, slag).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return parser


def command_modules() -> list[ModuleType]:
    """The ``sorting.cli.*_cmd`` modules, demo first, then by name."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(cli_pkg.__path__) if m.name.endswith("_cmd")
    )
    names.sort(key=lambda n: (n != "demo_cmd", n))
    return [importlib.import_module(f"sorting.cli.{n}") for n in names]


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
