"""The conformance matrix: the checker run on each installed framework's label-smoothing loss.

Tooling behind ``lstheory conformance`` (the docs page "Conformance" is
generated from what ``lstheory conformance --record`` writes to
``docs/data/conformance.json``).  Each :class:`Case` names a framework's
loss as its documentation describes it, with the smoothing and convention
it documents (every framework here documents the uniform convention,
``eps / K`` on every class); :func:`run_case` runs
:func:`~lstheory.testing.inference.run_checker` and the checks of
:func:`~lstheory.testing.assert_loss_matches_theory` on it once and returns
one row.  A framework that is not installed (or cannot be imported) is
listed with the reason, never an error.

Frameworks (optional extra ``conformance``): PyTorch, HuggingFace
transformers, timm, Keras 3 (torch backend), optax (JAX).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Case", "CASES", "run_case", "run_conformance", "FrameworkMissing"]

EPS = 0.1
NUM_CLASSES = 10


class FrameworkMissing(Exception):
    """The framework of a case is not installed, or cannot be imported here (the message says why)."""


@dataclass(frozen=True)
class Case:
    """One framework loss, how to build it and what it documents.

    ``build()`` returns the loss callable (it imports the framework; raises
    :class:`FrameworkMissing`); ``keywords`` go to the checker (padding and
    call options); ``eps`` and ``convention`` are what the framework
    documents for the loss as built.
    """

    framework: str
    package: str
    loss: str
    build: Callable[[], Callable[..., Any]]
    eps: float = EPS
    convention: str = "uniform"
    keywords: dict = field(default_factory=dict)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as error:  # not installed, or an incompatible build (e.g. timm without torchvision)
        raise FrameworkMissing(f"import {name} failed: {type(error).__name__}: {error}") from None


def _torch_functional() -> Callable:
    functional = _import("torch.nn.functional")
    return lambda logits, labels: functional.cross_entropy(logits, labels, label_smoothing=EPS)


def _torch_module_padding_class() -> Callable:
    return _import("torch.nn").CrossEntropyLoss(label_smoothing=EPS, ignore_index=0)


def _transformers_label_smoother() -> Callable:
    smoother = _import("transformers.trainer_pt_utils").LabelSmoother(epsilon=EPS)
    return lambda logits, labels: smoother({"logits": logits}, labels)


def _timm_label_smoothing() -> Callable:
    return _import("timm.loss").LabelSmoothingCrossEntropy(smoothing=EPS)


def _timm_mixup_target() -> Callable:
    loss = _import("timm.loss").SoftTargetCrossEntropy()
    mixup_target = _import("timm.data.mixup").mixup_target
    return lambda logits, labels: loss(logits, mixup_target(labels, logits.shape[-1], lam=1.0, smoothing=EPS))


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = _import("keras")
    if keras.backend.backend() != "torch":
        raise FrameworkMissing(f"keras runs the {keras.backend.backend()} backend here, not torch")
    return keras


def _keras_categorical() -> Callable:
    return _keras().losses.CategoricalCrossentropy(from_logits=True, label_smoothing=EPS)


def _keras_sparse_ignore_class() -> Callable:
    return _keras().losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)


def _optax_smooth_labels() -> Callable:
    jax, optax = _import("jax"), _import("optax")

    def loss(logits, labels):
        targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), EPS)
        return optax.softmax_cross_entropy(logits, targets).mean()

    return loss


_TARGET_FIRST_ONE_HOT = {"targets": "one_hot", "argument_order": "target_first", "ignore_index": None}

CASES: tuple[Case, ...] = (
    Case("PyTorch", "torch", "F.cross_entropy(label_smoothing=0.1)", _torch_functional),
    Case("PyTorch", "torch", "nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=0)",
         _torch_module_padding_class, keywords={"ignore_index": 0}),
    Case("HuggingFace transformers", "transformers", "LabelSmoother(epsilon=0.1)", _transformers_label_smoother),
    Case("timm", "timm", "LabelSmoothingCrossEntropy(smoothing=0.1)", _timm_label_smoothing,
         keywords={"ignore_index": None}),
    Case("timm", "timm", "SoftTargetCrossEntropy() on mixup_target(smoothing=0.1)", _timm_mixup_target,
         keywords={"ignore_index": None}),
    Case("Keras 3 (torch backend)", "keras", "CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)",
         _keras_categorical, keywords=_TARGET_FIRST_ONE_HOT),
    Case("Keras 3 (torch backend)", "keras", "SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)",
         _keras_sparse_ignore_class, eps=0.0, keywords={"argument_order": "target_first", "ignore_index": 0}),
    Case("optax (JAX)", "optax", "softmax_cross_entropy on smooth_labels(one_hot, 0.1)", _optax_smooth_labels,
         keywords={"ignore_index": None}),
)
"""The losses of the matrix, in the order of the table."""


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _padding(report: Any) -> str:
    """The padding behaviour in a few words."""
    pad = report.ignore_index
    if pad is None:
        return "not probed (takes no padding label)"
    text = f"label {pad}: {report.ignore_behaviour}"
    if 0 <= pad < report.num_classes and report.ignore_behaviour == "ignored" and report.eps_off_target:
        smoothed = pad not in report.unsmoothed_classes
        text += "; the padding class gets smoothing mass" if smoothed else "; the padding class gets no mass"
    return text


def _precision(report: Any) -> str:
    """The dtype the loss shows; noisier values or float32 constants in words."""
    from lstheory.testing.report import level_name

    text = report.dtype
    if level_name(report.precision) != report.dtype:
        text += f" (values noisy, about {level_name(report.precision)})"
    if report.constants_dtype != report.dtype:
        text += f" (target constants {report.constants_dtype})"
    return text


def _verdict(run: Any, case: Case) -> tuple[str, str]:
    """``("passes", "")`` or ``("fails", the first failed check in one line)``."""
    from lstheory.testing.assertions import check_run

    smooth_padding_class = case.keywords.get("smooth_padding_class", True)
    try:
        check_run(run, case.eps, case.convention, None, smooth_padding_class)
    except AssertionError as error:
        checks = str(error).split("\n\n")[0].splitlines()[1:]
        return "fails", " ".join(line.strip() for line in checks[:2])
    return "passes", ""


def run_case(case: Case, seed: int = 0) -> dict:
    """The checker on one case: a row of the matrix (raises :class:`FrameworkMissing`)."""
    from lstheory.testing.adapters import CallOptions
    from lstheory.testing.inference import run_checker

    loss_fn = case.build()
    keywords = dict(case.keywords)
    ignore_index = keywords.pop("ignore_index", -100)
    keywords.pop("smooth_padding_class", None)
    run = run_checker(loss_fn, NUM_CLASSES, eps=case.eps, ignore_index=ignore_index, seed=seed,
                      options=CallOptions(**keywords))
    report = run.report
    verdict, cause = _verdict(run, case)
    return {
        "framework": case.framework,
        "package": case.package,
        "version": _version(case.package),
        "loss": case.loss,
        "num_classes": NUM_CLASSES,
        "documented": {"eps": case.eps, "convention": case.convention},
        "convention": report.convention,
        "eps_uniform": report.eps_uniform,
        "eps_off_target": report.eps_off_target,
        "eps_error": report.eps_error,
        "padding": _padding(report),
        "reduction": report.reduction_detail,
        "precision": _precision(report),
        "form": report.form,
        "is_cross_entropy": report.is_cross_entropy,
        "verdict": verdict,
        "cause": cause,
    }


def run_conformance(
    cases: tuple[Case, ...] | None = None, *, seed: int = 0, progress: Callable[[str], None] | None = None
) -> dict:
    """Every case (default :data:`CASES`): the rows of the installed frameworks and why the others are missing."""
    rows, skipped = [], []
    for case in CASES if cases is None else cases:
        if progress:
            progress(f"{case.framework}: {case.loss}")
        try:
            rows.append(run_case(case, seed))
        except FrameworkMissing as reason:
            skipped.append({"framework": case.framework, "package": case.package, "loss": case.loss,
                            "reason": str(reason)})
    from lstheory import __version__

    return {
        "lstheory": __version__,
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "seed": seed,
        "rows": rows,
        "skipped": skipped,
    }
