"""``crmsort retrack RUN --out DIR`` — a fresh tracker over a run's recorded sensor topics
(see :mod:`sorting.evaluation.retrack`); score the result with ``crmsort eval-run DIR``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from sorting.cli.output import console
from sorting.config import load_line
from sorting.evaluation.retrack import recording_topics, retrack


def register(sub: Any) -> None:
    p = sub.add_parser(
        "retrack", help="track a recorded run's sensor topics again with this tree's tracker "
        "(for tuning; score with eval-run)",
        description="Needs a run recorded with the tracker's inputs, its reports and the "
        "arms' picks: crmsort demo --topics " + " ".join(recording_topics(load_line())))
    p.add_argument("run", help="run folder of `crmsort demo` (bag/, line.yaml)")
    p.add_argument("--out", required=True, help="new run folder to write (bag/, ledger.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    con = console()
    t0 = time.perf_counter()
    res = retrack(Path(args.run), Path(args.out))
    con.print(f"retracked {res.messages} messages in {time.perf_counter() - t0:.1f} s: "
              f"{res.births}; {res.booked} objects booked ({res.picks_replayed} "
              f"recorded picks replayed, {res.picks_unmatched} found no track) → {res.out} "
              f"(score it: crmsort eval-run {res.out})")
    return 0
