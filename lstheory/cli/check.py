"""``lstheory check MODULE:CALLABLE --classes K [--eps E] [--convention C]``.

Prints what the loss ``MODULE:CALLABLE`` does (the
:class:`~lstheory.testing.SmoothingReport`) and exits

* 0 when it matches: with ``--eps``, it is label smoothing with that eps in
  ``--convention`` (or, without ``--convention``, in either convention);
  without ``--eps``, it is a proper cross-entropy (targets summing to 1,
  consistent batches, padding ignored or refused);
* 1 on a mismatch, after the failure message naming the likely cause;
* 2 on a usage error (one line, no traceback).

``MODULE`` is a dotted module name (the current directory is searched first)
or a path to a ``.py`` file; ``CALLABLE`` may be dotted (``losses:Model.loss``).
A class (``torch.nn.CrossEntropyLoss``) is instantiated with no arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from lstheory.cli import UsageError

HELP = "check a loss callable against label-smoothing theory"


def register(subparsers: Any) -> None:
    """Add the ``check`` sub-command to the ``lstheory`` parser."""
    parser = subparsers.add_parser(
        "check",
        help=HELP,
        description=(
            "Infer the target distribution a loss callable loss_fn(logits, labels) implies and check it "
            "against label-smoothing theory. Exit 0 on a match, 1 on a mismatch, 2 on a usage error."
        ),
    )
    parser.add_argument(
        "target",
        metavar="MODULE:CALLABLE",
        help="the loss: a dotted module or a path/to/file.py, a colon, and the callable's (dotted) name",
    )
    parser.add_argument("--classes", type=int, required=True, metavar="K", help="number of classes K >= 2")
    parser.add_argument("--eps", type=float, default=None, metavar="E", help="the smoothing the loss should apply")
    parser.add_argument(
        "--convention",
        choices=("off_target", "uniform"),
        default=None,
        help="the convention --eps is meant in (default: accept either, and say which)",
    )
    parser.add_argument(
        "--ignore-index",
        default="-100",
        metavar="I",
        help="padding label to probe (default -100); 'none' if the loss takes no padded labels",
    )
    parser.set_defaults(handler=run)


def load_callable(target: str) -> Any:
    """Import ``MODULE:CALLABLE`` and return the callable; ``UsageError`` with one line otherwise."""
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"expected MODULE:CALLABLE (e.g. mylosses:smoothed_ce or path/to/losses.py:loss); got {target!r}")
    module = _import_module(module_name)
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as error:
            raise UsageError(f"{target} is a class and could not be instantiated without arguments: {error}") from None
    if not callable(obj):
        raise UsageError(f"{target} is not callable (got {type(obj).__name__})")
    return obj


def _import_module(name: str) -> Any:
    if name.endswith(".py") or os.sep in name or (os.altsep and os.altsep in name):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no such file: {name}")
        spec = importlib.util.spec_from_file_location(f"_lstheory_check_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {name} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # let it import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise UsageError(f"importing {name} failed: {type(error).__name__}: {error}") from None
        finally:
            sys.path.pop(0)
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise UsageError(f"cannot import module {name!r}: {error}") from None
    except Exception as error:
        raise UsageError(f"importing {name!r} failed: {type(error).__name__}: {error}") from None


def _ignore_index(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--ignore-index must be an integer or 'none'; got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Handler of ``lstheory check``: print the report; 0 match, 1 mismatch."""
    from lstheory._validation import as_num_classes
    from lstheory.testing import assert_loss_matches_theory, infer_smoothing
    from lstheory.testing._loss_caller import LossCallError, LossCaller

    loss_fn = load_callable(args.target)
    ignore_index = _ignore_index(args.ignore_index)
    if args.convention is not None and args.eps is None:
        raise UsageError("--convention needs --eps (the convention says what eps means)")
    as_num_classes(args.classes)  # a ValueError: a usage error (exit 2)
    try:
        LossCaller.detect(loss_fn, args.classes)  # a loss that cannot be called is a usage error, not a mismatch
    except TypeError as error:
        raise UsageError(" ".join(str(error).split())) from None
    try:
        report = infer_smoothing(loss_fn, args.classes, eps=args.eps, ignore_index=ignore_index)
        print(report)
        if args.eps is None:
            return 0 if _is_proper(report) else 1
        convention = args.convention or report.convention or "off_target"
        assert_loss_matches_theory(loss_fn, args.classes, args.eps, convention=convention, ignore_index=ignore_index)
    except AssertionError as error:
        print()
        print(str(error).split("\n\n")[0])  # the report is printed above
        return 1
    except LossCallError as error:
        raise UsageError(str(error)) from None
    print()
    print(f"OK: {report.name} is label smoothing with eps={args.eps} in the {convention} convention")
    return 0


def _is_proper(report: Any) -> bool:
    import numpy as np

    # Coarser than float32 the a-priori tolerance is loose: only the measured errors count.
    tol = report.tolerance if report.precision <= np.finfo(np.float32).eps else 0.0
    proper_mass = bool(
        np.all(np.abs(report.mass - 1.0) <= 4 * report.target_error + tol)
        and abs(float(np.mean(report.mass)) - 1.0) <= 4 * report.eps_error + tol
    )
    padding_ok = report.ignore_behaviour in ("ignored", "not accepted", "not probed")
    return report.is_cross_entropy and proper_mass and padding_ok
