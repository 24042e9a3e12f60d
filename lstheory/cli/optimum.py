"""``lstheory optimum --classes K --eps E [--convention C] [--json]``: the optimum in one call.

Prints :func:`lstheory.optimum`: the optimal logit gap, the optimal
confidence ``p_true``, ``p_other``, the minimum loss (the target's entropy)
in nats and bits, and the same smoothing's eps in the other convention.
``--json`` prints one object with the keys ``num_classes``, ``eps``,
``convention``, ``logit_gap``, ``p_true``, ``p_other``, ``min_loss``,
``min_loss_bits``, ``eps_off_target``, ``eps_uniform`` (full precision;
infinities as the strings ``"inf"``/``"-inf"``, a missing conversion as ``null``).
"""

from __future__ import annotations

import argparse
import json
import math

from lstheory.cli import CONVENTION_METAVAR, UsageError, convention_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "optimum",
        help="the optimal gap, confidence and minimum loss for one K and eps",
        description=(
            "The optimum of label-smoothed cross-entropy for K classes and smoothing eps: the optimal logit gap "
            "z_y - z_i, the optimal confidence p_true = softmax(z*)_y, p_other, the minimum loss (the target's "
            "entropy, in nats and bits) and the same smoothing's eps in the other convention. PyTorch, Keras, "
            "optax, timm and HuggingFace use --convention uniform."
        ),
    )
    parser.add_argument("--classes", type=int, required=True, metavar="K", help="number of classes K >= 2")
    parser.add_argument("--eps", type=float, required=True, metavar="E", help="smoothing strength, 0 <= E <= 1")
    parser.add_argument("--convention", type=convention_argument, default="off_target", metavar=CONVENTION_METAVAR,
                        help="what eps means: off_target (eps/(K-1), the default) or uniform (eps/K, PyTorch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    parser.set_defaults(handler=run)


def _json_value(value):
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def run(args: argparse.Namespace) -> int:
    from lstheory.closed_form import optimum

    try:
        result = optimum(args.classes, args.eps, convention=args.convention)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error).replace("num_classes ", "--classes ", 1).replace("eps ", "--eps ", 1)) from None
    if args.json:
        print(json.dumps({key: _json_value(value) for key, value in result.as_dict().items()}, indent=2))
    else:
        print(result)
    return 0
