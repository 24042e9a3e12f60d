"""``lstheory verify``: run every registered claim's checks and print a table (or JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstheory.cli import UsageError, require_device

TRAINED_RECORD = Path("docs") / "data" / "trained_claims.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every registered claim (symbolic, scipy, torch levels; trained on request)",
        description="Run every check of every registered claim and print a table; exit status 1 if any fails. "
        "Without --level, every level but 'trained' runs; '--level trained' trains small networks on scikit-learn's "
        "digits (a few minutes on 2 cores) and prints each trained claim with its measured figures.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--device", default="cpu", help="torch device for the torch-level checks (cpu, cuda)")
    parser.add_argument(
        "--level", action="append", choices=("symbolic", "scipy", "torch", "trained"), help="only this level (repeatable)"
    )
    parser.add_argument("--claim", action="append", metavar="PREFIX", help="only claims whose id starts with PREFIX")
    parser.add_argument(
        "--record", action="store_true",
        help=f"with --level trained: write the measured figures to {TRAINED_RECORD} (run from the repository root), "
        "which `lstheory docs` turns into the trained claims' figures and tables",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal anyway)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory.claims import DEFAULT_LEVELS, all_claims
    from lstheory.verify import run_verification

    levels = tuple(args.level or DEFAULT_LEVELS)
    if args.device != "cpu":
        require_device(args.device)
    if args.record and "trained" not in levels:
        raise UsageError("--record stores the trained level's measurements: add --level trained")
    if args.record and not TRAINED_RECORD.parent.is_dir():
        raise UsageError(f"--record writes {TRAINED_RECORD}, but {TRAINED_RECORD.parent} is not a folder here: "
                         "run from the repository root")
    if "trained" in levels:
        from lstheory.trained.data import INSTALL_HINT, scikit_learn_available

        if not scikit_learn_available():
            raise UsageError(INSTALL_HINT)
    claims = all_claims()
    if args.claim:
        claims = tuple(c for c in claims if any(c.id.startswith(prefix) for prefix in args.claim))
        if not claims:
            raise UsageError(f"no claim id starts with {args.claim}; ids: {[c.id for c in all_claims()]}")
    report = run_verification(claims, levels=levels, device=args.device, progress=False if args.quiet else None)
    print(report.to_json() if args.json else report.table())
    if args.record:
        from lstheory.trained.records import write_records

        write_records(report, TRAINED_RECORD)
        print(f"lstheory verify: trained measurements written to {TRAINED_RECORD}")
    return 0 if report.passed else 1
