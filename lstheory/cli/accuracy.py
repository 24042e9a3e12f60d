"""``lstheory accuracy [--record]``: measure the closed forms' ulp errors on the hard points.

Prints the worst error of ``logit_gap`` and ``min_loss`` (and of the naive
formulas) per region, measured on this machine against mpmath at 60 digits.
``--record`` also writes the measurement to ``docs/data/accuracy.json``, from
which ``lstheory docs`` generates the accuracy page and figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "accuracy",
        help="measure the closed forms' errors in ulps against mpmath (--record: for the docs)",
        description=(
            "Measure the worst ulp error of lstheory.logit_gap and lstheory.min_loss, and of the naive "
            "formulas, on lstheory.accuracy.hard_points(), against mpmath at 60 digits (about 5 s). "
            "With --record, also write the measurement to docs/data/accuracy.json, from which "
            "`lstheory docs` generates docs/accuracy.md and its figure."
        ),
    )
    parser.add_argument("--record", action="store_true", help="also write the measurement into the data file")
    parser.add_argument("--data", type=Path, default=None, help="data file for --record (default docs/data/accuracy.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory._progress import progress_bar
    from lstheory.accuracy import accuracy_record
    from lstheory.docgen.accuracy import COLUMNS, DATA_PATH, write_record

    record = accuracy_record(lambda pairs: progress_bar(pairs, show=False if args.quiet else None,
                                                         desc="accuracy", unit="region"))
    machine = record["machine"]
    print(f"worst errors in ulps on {machine['cpu']}, NumPy {machine['numpy']} "
          f"(SIMD dispatch: {' '.join(machine['dispatch']) or 'baseline only'})")
    width = max(len(row["region"]) for row in record["regions"])
    print(f"{'region':<{width}}  {'convention':<10}  {'points':>6}  " + "  ".join(f"{t:>14}" for _, t in COLUMNS))
    for row in record["regions"]:
        cells = "  ".join(f"{row[key]:>14.3g}" for key, _ in COLUMNS)
        print(f"{row['region']:<{width}}  {row['convention']:<10}  {row['points']:>6}  {cells}")
    if args.record:
        path = args.data or DATA_PATH
        write_record(path, record)
        print(f"recorded in {path}; run `lstheory docs` to regenerate the accuracy page")
    return 0
