"""``lstheory experiment``: train a softmax classifier with and without smoothing.

Prints a short report of the train-set mean logit gap against
``lstheory.logit_gap(K, eps)``, the unsmoothed gap's growth and the
confidence against ``p_true``; ``--json`` prints one JSON object
(``theory_gap``, ``trained_gap``, ``relative_error``, ...; see
:meth:`lstheory.experiment.ExperimentResult.as_dict`).  ``--figure PATH``
also writes the training curves as SVG.  Exit status 0, or 2 on a usage
error (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lstheory.cli import CONVENTION_METAVAR, UsageError, convention_argument

DATA_PATH = Path("docs") / "data" / "experiment.json"

HELP = "train a small softmax classifier with and without smoothing; compare with theory"


def register(subparsers: Any) -> None:
    """Add the ``experiment`` sub-command to the ``lstheory`` parser."""
    from lstheory import experiment as ex

    parser = subparsers.add_parser(
        "experiment",
        help=HELP,
        description=(
            "Train a linear softmax classifier (full-batch Adam, float64, CPU) on seeded synthetic Gaussian "
            "clusters, once with label smoothing and once without, and compare the train-set mean logit gap "
            "z_y - mean_{i != y} z_i and the mean confidence with the closed forms logit_gap(K, eps) and p_true. "
            "Time: each of the 2 x N Adam steps multiplies n x d features (n = K*M samples, d = 2n) by d x K "
            "weights, so it grows like N * K^3 * M^2 once the matrices are large: about 4 s with the defaults "
            "(K=10, M=20, N=1000), 25 s with --classes 30, several minutes with --classes 100 (2 CPU cores). "
            "A progress bar shows on a terminal (not in a pipe, not with --quiet)."
        ),
    )
    parser.add_argument("--classes", type=int, default=ex.DEFAULT_NUM_CLASSES, metavar="K",
                        help=f"number of classes K >= 2 (default {ex.DEFAULT_NUM_CLASSES})")
    parser.add_argument("--eps", type=float, default=ex.DEFAULT_EPS, metavar="E",
                        help=f"smoothing strength, 0 < E < 1 (default {ex.DEFAULT_EPS})")
    parser.add_argument("--convention", type=convention_argument, metavar=CONVENTION_METAVAR, default="off_target",
                        help="off_target: probability targets from lstheory.smoothed_target; uniform: "
                        "torch's cross_entropy(label_smoothing=E) (default off_target)")
    parser.add_argument("--steps", type=int, default=ex.DEFAULT_STEPS, metavar="N",
                        help=f"full-batch Adam steps per run (default {ex.DEFAULT_STEPS})")
    parser.add_argument("--samples-per-class", type=int, default=ex.DEFAULT_SAMPLES_PER_CLASS, metavar="M",
                        help=f"training samples per class; K*M <= {ex.MAX_SAMPLES} "
                        f"(default {ex.DEFAULT_SAMPLES_PER_CLASS})")
    parser.add_argument("--learning-rate", type=float, default=ex.DEFAULT_LEARNING_RATE, metavar="LR",
                        help=f"Adam step size (default {ex.DEFAULT_LEARNING_RATE})")
    parser.add_argument("--seed", type=int, default=ex.DEFAULT_SEED, help="seed of the synthetic data (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--figure", type=Path, default=None, metavar="PATH",
                        help="also write the training curves (gap and confidence against step) as SVG")
    parser.add_argument("--record", action="store_true",
                        help="also write the plotted curves to the data file (--data) that `lstheory docs` draws "
                        "docs/figures/training_gap.svg from")
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="data file for --record (default docs/data/experiment.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstheory.experiment import figure_data, gap_figure, run_experiment

    if args.figure is not None and not args.figure.parent.is_dir():
        raise UsageError(f"--figure: no such directory: {str(args.figure.parent)!r}")
    try:
        result = run_experiment(
            args.classes,
            args.eps,
            convention=args.convention,
            steps=args.steps,
            samples_per_class=args.samples_per_class,
            learning_rate=args.learning_rate,
            seed=args.seed,
            progress=False if args.quiet else None,
        )
    except (ValueError, TypeError) as error:
        raise UsageError(_as_option_names(str(error))) from None
    if args.figure is not None:
        args.figure.write_bytes(gap_figure(result))
    if args.record:
        path = args.data or DATA_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        data = figure_data(result)
        path.write_text("{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items())
                        + "\n}\n")  # one key per line: short diffs
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(result.report(), end="")
        if args.figure is not None:
            print(f"\nfigure written to {args.figure}")
        if args.record:
            print(f"curves recorded in {args.data or DATA_PATH}; run `lstheory docs` to redraw the figure")
    return 0


_OPTION_NAMES = {
    "num_classes": "--classes",
    "eps": "--eps",
    "steps": "--steps",
    "samples_per_class": "--samples-per-class",
    "learning_rate": "--learning-rate",
    "seed": "--seed",
}


def _as_option_names(message: str) -> str:
    """Speak of ``--classes`` rather than ``num_classes`` in a library error message."""
    if message.startswith("num_classes * samples_per_class"):
        return message.replace("num_classes * samples_per_class", "--classes * --samples-per-class", 1)
    for name, option in _OPTION_NAMES.items():
        if message.startswith(f"{name} "):
            return option + message[len(name):]
    return message
