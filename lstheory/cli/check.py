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
A plain dotted path works too (``torch.nn.CrossEntropyLoss``: the longest
importable prefix is the module).  A class is instantiated with no arguments.
Progress shows on a terminal (tqdm), not otherwise or with ``--quiet``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from lstheory.cli import UsageError, float_argument

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
        help="the loss: a dotted module or a path/to/file.py, a colon, and the callable's (dotted) name; or a dotted "
        "path such as torch.nn.CrossEntropyLoss",
    )
    parser.add_argument("--classes", type=int, required=True, metavar="K", help="number of classes, 2 <= K <= 2**20")
    parser.add_argument("--eps", type=float_argument, default=None, metavar="E", help="the smoothing the loss should apply")
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
        help="padding label to probe (default -100; a class index works too); 'none' if the loss takes no padded labels",
    )
    parser.add_argument("--no-smooth-padding-class", dest="smooth_padding_class", action="store_false",
                        help="the padding class should get no smoothing mass (Annotated Transformer, OpenNMT-py)")
    parser.add_argument("--inputs", choices=("logits", "log_probs"), default="logits")
    parser.add_argument("--targets", choices=("index", "one_hot"), default="index")
    parser.add_argument("--argument-order", choices=("logits_first", "target_first"), default="logits_first")
    parser.add_argument("--layout", choices=("NK", "NTK", "NKT"), default="NK")
    parser.add_argument("--rtol", type=float, default=None, help="relative tolerance added to every check")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random probes (>= 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=run)


def load_callable(target: str) -> Any:
    """Import ``MODULE:CALLABLE`` (or a dotted path) and return the callable; ``UsageError`` with one line otherwise."""
    module_name, sep, attribute = target.rpartition(":")
    if not sep:
        module_name, attribute = _split_dotted(target)
    if not module_name or not attribute:
        raise UsageError(
            f"expected MODULE:CALLABLE (e.g. mylosses:smoothed_ce or path/to/losses.py:loss) or a dotted path; got {target!r}"
        )
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


def _split_dotted(target: str) -> tuple[str, str]:
    """``torch.nn.CrossEntropyLoss`` -> (``torch.nn``, ``CrossEntropyLoss``): the longest importable module prefix."""
    parts = target.split(".")
    if len(parts) < 2:
        return "", ""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        except Exception:
            break
        return name, ".".join(parts[cut:])
    return ".".join(parts[:-1]), parts[-1]


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


class _BarProgress:
    """The checker's stages as a progress bar (:func:`lstheory._progress.progress_bar`: a terminal only)."""

    def __init__(self, show: bool | None) -> None:
        self.show = show
        self.bar = None

    def stage(self, name: str, total: int | None = None) -> None:
        from lstheory._progress import progress_bar

        self.close()
        self.bar = progress_bar(total=total, desc=f"lstheory check: {name}", show=self.show)

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    """Handler of ``lstheory check``: print the report; 0 match, 1 mismatch (or a loss failing while probed)."""
    from lstheory.testing.adapters import LossCallError

    loss_fn, ignore_index, options = _checked_arguments(args)
    progress = _BarProgress(False if args.quiet else None)
    try:
        try:
            from lstheory.testing.inference import run_checker

            checker = run_checker(loss_fn, args.classes, eps=args.eps, ignore_index=ignore_index, seed=args.seed,
                                  options=options, progress=progress)
        finally:
            progress.close()
        report = checker.report
        print(report)
        if args.eps is None:
            return 0 if _is_proper(report) else 1
        from lstheory.testing.assertions import check_run

        convention = args.convention or report.convention or "off_target"
        check_run(checker, args.eps, convention, args.rtol, args.smooth_padding_class)
    except AssertionError as error:
        print()
        print(str(error).split("\n\n")[0])  # the report is printed above
        return 1
    except LossCallError as error:
        print(f"the loss failed while being probed: {error}")
        return 1
    print()
    print(f"OK: {report.name} is label smoothing with eps={args.eps} in the {convention} convention")
    return 0


def _checked_arguments(args: argparse.Namespace) -> tuple[Any, int | None, Any]:
    """The loss, ignore_index and call options; every bad value a usage error (exit 2) before any probing."""
    from lstheory.testing.adapters import CallOptions, LossAdapter
    from lstheory.testing.assertions import check_assert_arguments
    from lstheory.testing.inference import check_arguments

    loss_fn = load_callable(args.target)
    ignore_index = _ignore_index(args.ignore_index)
    if args.convention is not None and args.eps is None:
        raise UsageError("--convention needs --eps (the convention says what eps means)")
    check_arguments(args.classes, args.eps, ignore_index, args.seed)  # a ValueError/TypeError: a usage error (exit 2)
    if args.eps is not None:
        check_assert_arguments(args.eps, args.convention or "off_target", args.rtol, args.smooth_padding_class)
    options = CallOptions(args.inputs, args.targets, args.argument_order, args.layout)
    try:
        LossAdapter.detect(loss_fn, args.classes, options)  # a loss that cannot be called is a usage error
    except TypeError as error:
        raise UsageError(" ".join(str(error).split())) from None
    return loss_fn, ignore_index, options


def _is_proper(report: Any) -> bool:
    import numpy as np

    masses = np.delete(report.mass, list(report.padding_classes))
    proper_mass = bool(np.all(np.abs(masses - 1.0) <= report.mass_error))
    padding_ok = report.ignore_behaviour in ("ignored", "not accepted", "not probed")
    return report.is_cross_entropy and proper_mass and padding_ok
