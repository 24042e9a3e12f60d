"""``lstheory conformance [--json] [--record]``: the checker on each installed framework's label-smoothing loss.

Prints the conformance table (:mod:`lstheory.conformance`): framework,
version, convention, eps, padding behaviour, reduction, precision, form and
verdict against what the framework documents; frameworks not installed are
listed with the reason.  ``--record`` writes the data to
``docs/data/conformance.json``, from which ``lstheory docs`` generates the
docs page "Conformance".  Exit 0 whatever the verdicts (it reports; it does
not assert), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "run the checker on each installed framework's label-smoothing loss"
DEFAULT_DATA_PATH = Path("docs") / "data" / "conformance.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``conformance`` sub-command to the ``lstheory`` parser."""
    parser = subparsers.add_parser(
        "conformance",
        help=HELP,
        description=(
            "Run the checker on the label-smoothing losses of PyTorch, transformers, timm, Keras 3 (torch "
            "backend) and optax, where installed (pip install -e '.[conformance]'), and print what each does."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the data as one JSON object instead of the table")
    parser.add_argument("--record", action="store_true", help="also write the data file (--data)")
    parser.add_argument("--data", type=Path, default=None, help=f"data file for --record (default {DEFAULT_DATA_PATH})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the checker's random probes (>= 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress display (it shows only on a terminal anyway)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``lstheory conformance``."""
    from lstheory._progress import progress_bar
    from lstheory.cli import UsageError
    from lstheory import conformance
    from lstheory.docgen.conformance import conformance_markdown

    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer; got {args.seed}")
    with progress_bar(total=len(conformance.CASES), show=False if args.quiet else None, desc="conformance") as bar:

        def progress(message: str) -> None:
            bar.set_description_str(message)
            bar.update()

        data = conformance.run_conformance(seed=args.seed, progress=progress)
    print(json.dumps(data, indent=2) if args.json else conformance_markdown(data), end="" if not args.json else "\n")
    if args.record:
        path = args.data or DEFAULT_DATA_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"# recorded {len(data['rows'])} losses in {path}", file=sys.stderr)
    return 0
