"""The ``lstheory`` command line: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``handler`` (a function ``args -> exit status``).  Heavy imports
(torch, sympy, matplotlib) happen inside the handlers, so ``lstheory --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order of `lstheory --help`.
SUBCOMMAND_MODULES = ("verify", "check", "table", "docs", "bench", "experiment", "optimum", "accuracy")


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit status 2, no traceback."""


def require_device(device: str) -> None:
    """Raise :class:`UsageError` unless torch can allocate on ``device`` (e.g. ``cuda`` without a GPU)."""
    import torch

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise UsageError(f"--device {device!r} is not available here ({error})") from None


def convention_argument(text: str) -> str:
    """An argparse ``type`` for ``--convention``: a convention name; a framework's name gets a hint."""
    from lstheory._validation import check_convention

    try:
        return check_convention(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("convention must be", "must be", 1)) from None


CONVENTION_METAVAR = "{off_target,uniform}"


class _OneLineErrorParser(argparse.ArgumentParser):
    """Reports a usage error as one line (``prog: error: message``), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="lstheory",
        description="Derive, prove and check the mathematics of label smoothing.",
    )
    from lstheory import __version__

    parser.add_argument("--version", action="version", version=f"lstheory {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"lstheory.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lstheory`` console script and ``python -m lstheory``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (UsageError, ValueError) as error:
        print(f"lstheory {args.command}: error: {error}", file=sys.stderr)
        return 2
