"""``crmsort dataset synth | check`` — make and check detector datasets.

Examples::

    crmsort dataset synth --n 1200 --seed 1 --out runs/detector/data/synth
    crmsort dataset synth --n 300 --seed 1001 --shifted --out runs/detector/data/heldout
    crmsort dataset check runs/detector/data/synth
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.progress import Progress

from sorting.cli.output import console


def register(sub: Any) -> None:
    p = sub.add_parser("dataset", help="synthetic detector datasets and label checks")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="render a labelled YOLO dataset from the simulator")
    s.add_argument("--n", type=int, required=True, help="number of images")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="output folder (must be new or empty)")
    s.add_argument("--shifted", action="store_true",
                   help="held-out ranges: other belts, lighting, noise (all images to val)")
    s.add_argument("--val-fraction", type=float, default=None,
                   help="share of images in val (default 0.15, 1.0 with --shifted)")
    s.add_argument("--masks", action="store_true", help="also write instance masks")
    s.add_argument("--width", type=int, default=640, help="image width, px")
    s.add_argument("--height", type=int, default=480, help="image height, px")
    s.add_argument("--jobs", type=int, default=1,
                   help="worker processes (same files for any number; default 1)")
    s.set_defaults(func=_synth)
    c = dsub.add_parser("check", help="list every bad label as file:line: reason")
    c.add_argument("dir", help="dataset folder (with data.yaml) or the data.yaml itself")
    c.set_defaults(func=_check)


def _synth(args: argparse.Namespace) -> int:
    from sorting.dataset.synth import SynthConfig, synthesize

    cfg = SynthConfig(
        n_images=args.n, seed=args.seed, shifted=args.shifted, val_fraction=args.val_fraction,
        masks=args.masks, width_px=args.width, height_px=args.height,
    )
    con = console()
    with Progress(console=con, transient=True) as prog:
        task = prog.add_task("rendering", total=args.n)
        summary = synthesize(
            Path(args.out), cfg, progress=lambda done, _total: prog.update(task, completed=done),
            jobs=args.jobs,
        )
    con.print(
        f"[bold green]wrote[/] {summary.out_dir}: {summary.images['train']} train, "
        f"{summary.images['val']} val images, {sum(summary.boxes_per_class.values())} boxes"
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from sorting.dataset.check import check_dataset

    path = Path(args.dir)
    data = path if path.suffix in (".yaml", ".yml") else path / "data.yaml"
    issues = check_dataset(data)
    for issue in issues:
        print(issue)
    con = console()
    if issues:
        con.print(f"[bold red]{len(issues)} problem(s)[/] in {data.parent}")
        return 1
    con.print(f"[bold green]ok[/] {data.parent}: no label problems")
    return 0
