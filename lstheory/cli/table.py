"""``lstheory table``: tables of the closed forms in markdown, LaTeX, csv or json."""

from __future__ import annotations

import argparse

from lstheory._validation import as_eps, as_num_classes
from lstheory.cli import CONVENTION_METAVAR, UsageError, convention_argument, float_argument


def _int_list(text: str) -> list[int]:
    """``--classes``: comma-separated class counts, each ``2 <= K <= 2**53``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    for value in values:
        try:
            as_num_classes(value)
        except (ValueError, TypeError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return values


def _float_list(text: str) -> list[float]:
    """``--eps``: comma-separated smoothing strengths in ``[0, 1]``; one that would round to 0 is refused."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float_argument(part)
        except argparse.ArgumentTypeError as error:
            if "below the smallest float64" in str(error):
                raise
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
        try:
            values.append(float(as_eps(value)))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{error} (from {part!r})") from None
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    from lstheory.docgen.tables import FORMATS, QUANTITIES

    parser = subparsers.add_parser(
        "table",
        help="tabulate a closed form over class counts and eps",
        description="Tabulate a closed-form quantity over a grid of class counts and smoothing strengths. "
        "csv and json carry full precision (repr of each float); markdown and latex round to 4 decimals.",
    )
    parser.add_argument("--classes", type=_int_list, default=[2, 10, 100, 1000, 32000], metavar="K,K,...",
                        help="class counts (default: 2,10,100,1000,32000)")
    parser.add_argument("--eps", type=_float_list, default=[0.01, 0.05, 0.1, 0.2], metavar="E,E,...",
                        help="smoothing strengths in [0, 1] (default: 0.01,0.05,0.1,0.2)")
    parser.add_argument("--quantity", choices=tuple(QUANTITIES), default="gap")
    parser.add_argument("--convention", type=convention_argument, metavar=CONVENTION_METAVAR, default="off_target")
    parser.add_argument("--format", choices=FORMATS, default="markdown")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory.docgen.tables import compute_table, format_table

    try:
        table = compute_table(args.quantity, args.classes, args.eps, args.convention)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    print(format_table(table, args.format), end="")
    return 0
