"""``crmsort shift-report RUN`` — a run's CRM mass balance per shift, from its ``ledger.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sorting.accounting import GradeLedger, shift_label
from sorting.cli.demo_report import balance_table, destinations_table
from sorting.cli.output import console
from sorting.errors import SortingError


def register(sub: Any) -> None:
    p = sub.add_parser("shift-report", help="a run's CRM mass balance per shift (objects, "
                       "kg and purity per destination; grams fed, picked and lost, grade and "
                       "recovery per bin)")
    p.add_argument("run", help="run folder with ledger.json (crmsort demo / run / retrack)")
    p.add_argument("--shift", default=None, metavar="START",
                   help="only the shift starting at START, as printed (e.g. 2026-12-08T06:00Z)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.run) / "ledger.json"
    if not path.is_file():
        raise SortingError(f"{path}: missing (a run folder holds ledger.json once objects "
                           "were booked)")
    led = GradeLedger.load(path)
    shifts = sorted(led.by_shift.items())
    if args.shift is not None:
        shifts = [(t, s) for t, s in shifts if shift_label(t) == args.shift]
        if not shifts:
            known = ", ".join(shift_label(t) for t in sorted(led.by_shift)) or "none"
            raise SortingError(f"{path}: no shift starts at {args.shift} (shifts: {known})")
    if not shifts:
        raise SortingError(f"{path}: holds no shifts (written before the ledger kept them)")
    con = console()
    for start, s in shifts:
        con.print(destinations_table(s, f"Shift from {shift_label(start)}: objects and kg "
                                        "booked"))
        con.print(balance_table(s, f"Shift from {shift_label(start)}: CRM mass balance "
                                "(grams, the line's estimates)"))
    return 0
