"""``crmsort line check LINE.yaml`` — validate a line description."""

from __future__ import annotations

import argparse
from typing import Any

from sorting.cli.output import console
from sorting.config.line import DEFAULT_LINE, load_line


def register(sub: Any) -> None:
    p = sub.add_parser("line", help="line descriptions (YAML under launch/)")
    lsub = p.add_subparsers(dest="line_command", metavar="ACTION", required=True)
    c = lsub.add_parser("check", help="validate a line YAML and print its layout")
    c.add_argument(
        "line", nargs="?", default=str(DEFAULT_LINE), help="line YAML (default: %(default)s)"
    )
    c.set_defaults(func=_check)


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
