"""``lstheory docs``: regenerate the generated files under docs/, or check they are current."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstheory.cli import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="regenerate docs/ tables, figures and pages (or --check them)",
        description="Regenerate every generated file under docs/ (tables, figures, derivation, claims, "
        "accuracy and API pages). With --check, write nothing and exit 1 naming each stale file.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if any generated file is stale")
    parser.add_argument("--root", type=Path, default=Path("docs"), help="the docs folder (default: ./docs)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory.docgen.generate import stale_files, write_all

    root: Path = args.root
    if not root.is_dir():
        raise UsageError(f"--root {str(root)!r} is not a folder; run from the repository root or pass --root")
    if args.check:
        stale = stale_files(root)
        if stale:
            print(f"lstheory docs --check: {len(stale)} generated file(s) differ from what `lstheory docs` "
                  "would write (edited by hand, or out of date):")
            for relative in stale:
                print(f"  {root / relative}")
            return 1
        print("lstheory docs --check: every generated file is current")
        return 0
    written = write_all(root)
    print(f"lstheory docs: {len(written)} file(s) written" + "".join(f"\n  {root / w}" for w in written))
    return 0
