"""``lstheory verify``: run every registered claim's checks and print a table (or JSON)."""

from __future__ import annotations

import argparse

from lstheory.cli import UsageError, require_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every registered claim (symbolic, scipy, torch levels)",
        description="Run every check of every registered claim and print a table; exit status 1 if any fails.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--device", default="cpu", help="torch device for the torch-level checks (cpu, cuda)")
    parser.add_argument(
        "--level", action="append", choices=("symbolic", "scipy", "torch"), help="only this level (repeatable)"
    )
    parser.add_argument("--claim", action="append", metavar="PREFIX", help="only claims whose id starts with PREFIX")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal anyway)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory.claims import LEVELS, all_claims
    from lstheory.verify import run_verification

    if args.device != "cpu":
        require_device(args.device)
    claims = all_claims()
    if args.claim:
        claims = tuple(c for c in claims if any(c.id.startswith(prefix) for prefix in args.claim))
        if not claims:
            raise UsageError(f"no claim id starts with {args.claim}; ids: {[c.id for c in all_claims()]}")
    report = run_verification(claims, levels=tuple(args.level or LEVELS), device=args.device,
                              progress=False if args.quiet else None)
    print(report.to_json() if args.json else report.table())
    return 0 if report.passed else 1
