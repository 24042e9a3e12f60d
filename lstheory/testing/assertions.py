r"""Assert that a loss implementation does what label-smoothing theory says.

:func:`assert_loss_matches_theory` runs three checks against the closed forms
of :mod:`lstheory.closed_form` (never a re-derivation of them) and one on the
loss's batch handling:

(a) the target the loss implies (:func:`~lstheory.testing.infer_smoothing`)
    equals ``smoothed_target(K, eps, convention)`` for every label;
(b) at ``optimal_logits(K, eps, label=y)`` the loss equals ``min_loss(K, eps)``
    and, where autograd reaches, its gradient vanishes;
(c) a numerical minimisation of the loss itself (damped Newton steps with the
    loss's own gradient) lands on ``optimal_logits`` up to the free shift;
(d) the loss is a mean (or sum) over the samples of a batch and ignores padded
    labels (``ignore_index``) in both its sum and its denominator.

A failure raises ``AssertionError`` naming each failed check, the expected and
actual values, and the likely cause in words.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lstheory._validation import check_convention
from lstheory.closed_form import convert_eps, logit_gap, min_loss, optimal_logits, smoothed_target
from lstheory.testing.adapters import PRECISION_LEVELS, CallOptions, LossAdapter, LossCallError
from lstheory.testing.inference import CheckerRun, run_checker, single_eps
from lstheory.testing.model import Z
from lstheory.testing.probes import softmax as _softmax
from lstheory.testing.report import SmoothingReport
from lstheory.testing.report import fmt as _fmt
from lstheory.testing.report import fmt_known
from lstheory.testing.report import labels_text
from lstheory.testing.report import short as _short

__all__ = ["assert_loss_matches_theory", "check_assert_arguments", "check_run"]

_OTHER = {"off_target": "uniform", "uniform": "off_target"}
_MAX_LABELS_CHECKED = 16
_NEWTON_ITERATIONS = 40  # plus two per unit of the expected gap
_VALUES_NEWTON_LIMIT = 64  # values only, above this K check (c) minimises along the gap direction


def assert_loss_matches_theory(
    loss_fn: Callable[..., Any],
    num_classes: int,
    eps: float,
    *,
    convention: str = "off_target",
    rtol: float | None = None,
    ignore_index: int | None = -100,
    smooth_padding_class: bool = True,
    seed: int = 0,
    inputs: str = "logits",
    targets: str = "index",
    argument_order: str = "logits_first",
    layout: str = "NK",
) -> SmoothingReport:
    r"""Assert that ``loss_fn`` is label-smoothed cross-entropy with ``eps`` in ``convention``.

    Checks (see the module docstring): (a) the implied targets equal
    ``smoothed_target(K_C, eps, convention=convention)`` on the classes ``C``
    that should receive mass; (b) the loss at ``optimal_logits`` equals
    ``min_loss + offset`` (the offset is the loss's constant: 0 for a
    cross-entropy, minus the target's entropy for the KL form) and its
    gradient vanishes there; (c) minimising the loss numerically lands on
    ``optimal_logits``; (d) batch reduction and padding.  (b) and (c) need a
    finite optimum, so they are skipped at ``eps = 0`` (and off_target
    ``eps = 1``).  Values only, (c) minimises along the gap direction
    ``z = g e_y`` when ``K > 64`` (a full Newton step costs ``2K`` calls).

    Parameters
    ----------
    loss_fn : callable
        The loss, called as :func:`~lstheory.testing.infer_smoothing` calls it.
    num_classes : int
        ``K``, ``2 <= K <= 2**20``.
    eps : float
        The smoothing the loss should apply, ``0 <= eps <= 1``.
    convention : {"off_target", "uniform"}
        The convention ``eps`` is meant in (``"uniform"`` for PyTorch's
        ``label_smoothing``, Keras, optax, timm, HuggingFace).
    rtol : float, optional
        Relative tolerance added to every comparison (targets, eps, the value
        and gradient at the optimum, the minimiser).  By default only measured
        errors count: ``Z = 8`` standard errors of the fit and of the loss's
        rounding noise, plus the rounding of its constants (float32 constants
        in a float64 loss are recognised: their eps is checked to float32
        rounding).
    ignore_index : int or None
        Padding label whose handling is checked (any integer, also a class
        index, e.g. fairseq's ``padding_idx=1``); ``None`` if the loss takes none.
    smooth_padding_class : bool
        With ``ignore_index`` a class index: whether the padding class should
        receive smoothing mass like any other class (``True``: PyTorch,
        fairseq; ``eps`` over ``K`` classes) or none (``False``: the Annotated
        Transformer, OpenNMT-py; ``eps`` over the other ``K - 1``).
    seed : int
        Seed of the random probes, ``>= 0``.
    inputs, targets, argument_order, layout : str
        How the loss is called (see :func:`~lstheory.testing.infer_smoothing`).

    Returns
    -------
    SmoothingReport
        The report of :func:`~lstheory.testing.infer_smoothing`, when every check passes.

    Raises
    ------
    AssertionError
        Naming each failed check, expected vs actual, and the likely cause.

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2 (off_target);
    Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform); PyTorch issues
    #148884, #130342, #104776, #73205.

    Examples
    --------
    >>> import torch
    >>> from lstheory.testing import assert_loss_matches_theory
    >>> def loss(logits, labels):
    ...     return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> report = assert_loss_matches_theory(loss, 10, 0.1, convention="uniform")
    >>> try:
    ...     assert_loss_matches_theory(loss, 10, 0.1)  # off_target by default
    ... except AssertionError as error:
    ...     print(str(error).splitlines()[2])
        likely cause: this loss smooths with eps=0.1 in the uniform convention, which is eps=0.09 in off_target terms (pass convention="uniform", or eps=0.09)
    """
    __tracebackhide__ = True  # pytest: show the message, not this frame
    convention, eps, rtol = check_assert_arguments(eps, convention, rtol, smooth_padding_class)
    options = CallOptions(inputs, targets, argument_order, layout)
    run = run_checker(loss_fn, num_classes, eps=eps, ignore_index=ignore_index, seed=seed, options=options)
    return check_run(run, eps, convention, rtol, bool(smooth_padding_class))


def check_assert_arguments(eps: Any, convention: Any, rtol: Any, smooth_padding_class: Any) -> tuple[str, float, float | None]:
    """Validate :func:`assert_loss_matches_theory`'s own arguments; return the convention, eps and rtol."""
    convention = check_convention(convention)
    eps = single_eps(eps)
    rtol = _check_rtol(rtol)
    if not isinstance(smooth_padding_class, (bool, np.bool_)):
        raise TypeError(f"smooth_padding_class must be True or False; got {smooth_padding_class!r}")
    return convention, eps, rtol


def check_run(run: CheckerRun, eps: float, convention: str, rtol: float | None, smooth_padding_class: bool) -> SmoothingReport:
    """Checks (a)-(d) on a finished :func:`~lstheory.testing.inference.run_checker`; ``AssertionError`` on a failure."""
    __tracebackhide__ = True
    report = run.report
    classes = _smoothed_classes(report, bool(smooth_padding_class))
    failures = _model_failures(report)
    if report.per_sample_cross_entropy:  # else the inferred targets mean nothing
        failures.extend(_check_targets(report, eps, convention, classes, rtol or 0.0))
    padding_class = _padding_class(report)
    failures.extend(_check_padding_class(report, padding_class, bool(smooth_padding_class)))
    if math.isfinite(float(logit_gap(len(classes), eps, convention=convention))):
        failures.extend(_check_optimum(run, eps, convention, classes, rtol))
        failures.extend(_check_minimisation(run, eps, convention, classes, rtol))
    if report.ignore_detail and report.ignore_detail in report.findings:
        failures.append(f"[d] padding (labels = {report.ignore_index}): {report.ignore_behaviour}\n"
                        f"    likely cause: {report.ignore_detail}")
    if failures:
        p_true, p_other = (float(v) for v in smoothed_target(len(classes), eps, convention=convention))
        header = (
            f"{report.name} does not match label smoothing with eps={_fmt(eps)} in the {convention} "
            f"convention (K={len(classes)}: {_fmt(p_true)} on the label, {_fmt(p_other)} on each other class)"
        )
        raise AssertionError(header + "\n" + "\n".join(failures) + "\n\n" + str(report))
    return report


def _check_rtol(rtol: Any) -> float | None:
    if rtol is None:
        return None
    array = np.asarray(rtol) if not isinstance(rtol, str) else np.asarray(0.0 + 0j)
    if isinstance(rtol, (bool, np.bool_)) or array.ndim or array.dtype.kind not in "if":
        raise TypeError(f"rtol must be a real number with 0 <= rtol < 1, or None; got {rtol!r}")
    if not 0 <= float(array) < 1:
        raise ValueError(f"rtol must be a real number with 0 <= rtol < 1, or None; got {rtol!r}")
    return float(array)


def _padding_class(report: SmoothingReport) -> int | None:
    p = report.ignore_index
    return p if p is not None and 0 <= p < report.num_classes else None


def _smoothed_classes(report: SmoothingReport, smooth_padding_class: bool) -> np.ndarray:
    """The classes ``C`` that should receive smoothing mass."""
    p = _padding_class(report)
    k = report.num_classes
    if p is None or smooth_padding_class:
        return np.arange(k)
    return np.delete(np.arange(k), p)


def _model_failures(report: SmoothingReport) -> list[str]:
    blocking = [f for f in report.findings if f != report.ignore_detail and "receives no target mass" not in f]
    if not blocking:
        return []
    return [
        "[cross-entropy] the loss is not a (mean of) cross-entropies against a fixed target:\n"
        + "\n".join(f"    likely cause: {f}" for f in blocking)
    ]


def _check_padding_class(report: SmoothingReport, p: int | None, smooth_padding_class: bool) -> list[str]:
    if p is None or report.ignore_behaviour in ("not accepted",):
        return []
    failures = []
    unsmoothed = set(report.unsmoothed_classes)
    if p in unsmoothed and smooth_padding_class:
        failures.append(
            f"[a] padding class {p}: receives no smoothing mass from the other labels (the Annotated Transformer's and "
            f"OpenNMT-py's semantics: eps over the other K-1 classes), but smooth_padding_class=True expects it to get "
            f"mass like any other class (PyTorch's and fairseq's)\n    likely cause: the smoothed target zeroes the "
            f"padding column; pass smooth_padding_class=False if that is intended"
        )
    if p not in unsmoothed and not smooth_padding_class and report.is_smoothing and report.eps_off_target:
        failures.append(
            f"[a] padding class {p}: receives smoothing mass like any other class (PyTorch's and fairseq's semantics), "
            f"but smooth_padding_class=False expects none (the Annotated Transformer's, OpenNMT-py's)\n    likely "
            f"cause: the padding column of the smoothed target is not zeroed"
        )
    others = sorted(unsmoothed - {p})
    if others:
        failures.append(
            f"[a] class {labels_text(others)} receives no target mass from any other label, though it is no padding "
            f"class\n    likely cause: a column of the smoothed target is zeroed by mistake (OpenNMT-py's default "
            f"ignore_index=-100 zeroes class K-100 = {report.num_classes - 100})"
        )
    return failures


def _expected_row(k: int, label: int, classes: np.ndarray, p_true: float, p_other: float) -> np.ndarray:
    row = np.zeros(k)
    row[classes] = p_other
    row[label] = p_true
    return row


def _checked_labels(report: SmoothingReport, classes: np.ndarray) -> list[int]:
    """Every label with a row of its own (all, up to 1024; else the fitted and exceptional ones)."""
    k = report.num_classes
    pad = set(report.padding_classes)
    if report.model.dense is not None:
        return [y for y in range(k) if y not in pad]
    rng = np.random.default_rng(0)
    sample = {int(y) for y in rng.choice(classes, size=min(len(classes), 16), replace=False)}
    return sorted((sample | set(report.model.exceptions)) - pad)


def _raw_summary(report: SmoothingReport) -> tuple[float, float, float, float]:
    """Mean on-label and off-label raw target, the lowest off-label entry and the mean mass, over the checked rows."""
    labels = _checked_labels(report, np.arange(report.num_classes)) or [0]
    on, off, lowest = [], [], math.inf
    for y in labels:
        row = report.model.row(y)
        others = np.delete(row, [y] + [c for c in report.unsmoothed_classes if c != y])
        on.append(row[y])
        off.append(float(np.mean(others)) if others.size else 0.0)
        lowest = min(lowest, float(np.min(others)) if others.size else 0.0)
    return float(np.mean(on)), float(np.mean(off)), lowest, float(np.mean(report.mass[labels]))


def _check_targets(
    report: SmoothingReport, eps: float, convention: str, classes: np.ndarray, tol: float
) -> list[str]:
    """Check (a): each label's implied target against the convention's, over the classes ``C``."""
    k = report.num_classes
    p_true, p_other = (float(v) for v in smoothed_target(len(classes), eps, convention=convention))
    rounding = report.eps_error if report.constants_dtype != "float64" or report.precision > 1e-6 else 0.0
    # + an approximate cross-entropy's deviation, + normalising t / m in float64
    atol = Z * report.target_error + rounding + report.approximation + 4 * float(np.finfo(np.float64).eps)
    labels = _checked_labels(report, classes)
    worst, worst_label = 0.0, None
    for y in labels:
        expected = _expected_row(k, y, classes, p_true, p_other)
        excess = np.max(np.abs(report.target_row(y) - expected) - (atol + tol * np.abs(expected)))
        if excess > worst:
            worst, worst_label = excess, y
    masses = report.mass[labels] if labels else np.ones(1)
    mass_ok = bool(np.all(np.abs(masses - 1.0) <= report.mass_error + tol))
    diagonal = float(np.mean([report.target_row(y)[y] for y in labels])) if labels else p_true
    diagonal_ok = abs(diagonal - p_true) <= report.eps_error + tol * p_true
    if worst_label is None and mass_ok and diagonal_ok:
        return []
    a, b, _, _ = _raw_summary(report)
    if report.is_smoothing and np.ptp(masses) <= atol + 1e-12:
        got = f"{_fmt(a)} on the label and {_fmt(b)} on each other class"
    else:
        y = worst_label if worst_label is not None else labels[0]
        got = f"for label {y}: {_short(report.model.row(y))}"
    mass = _fmt(masses[0]) if np.ptp(masses) <= atol + 1e-12 else f"{_short(masses)} by label"
    return [
        f"[a] implied targets: expected {_fmt(p_true)} on the label and {_fmt(p_other)} on each other "
        f"class (sum 1); the loss implies {got} (sum {mass})\n"
        f"    likely cause: {_target_cause(report, eps, convention, p_true, p_other, tol)}"
    ]


def _target_cause(
    report: SmoothingReport, eps: float, convention: str, p_true: float, p_other: float, tol: float
) -> str:
    """Name the likely bug behind a target mismatch (check (a)): the sign, the mass, or eps and the convention."""
    k = report.smoothing_classes if report.is_smoothing else report.num_classes
    atol = Z * report.target_error + report.eps_error + report.mass_error

    def near(actual: float, expected: float) -> bool:
        return _close(actual, expected, atol, max(tol, 1e-9))

    def near_eps(actual: float, expected: float) -> bool:  # an eps: a mean over K entries, as check (a) allows
        return _close(actual, expected, report.eps_error, max(tol, 1e-9))

    a, b, lowest, total = _raw_summary(report)
    if not report.is_smoothing:
        return _cause_without_single_eps(report, p_other, lowest, atol)
    if b < -atol:
        return (
            f"each other class gets a negative target ({_fmt(b)}, expected {_fmt(p_other)}): the smoothing "
            f"term enters with the wrong sign (added where it should be subtracted, or vice versa)"
        )
    if not near(total, 1.0):
        return _cause_of_the_mass(report, eps, convention, k, (a, b, total), p_other, near, near_eps)
    return _cause_of_eps(report, eps, convention, k, near_eps)


def _cause_without_single_eps(report: SmoothingReport, p_other: float, lowest: float, atol: float) -> str:
    """The targets are no single smoothing: class weights, a wrong sign, or something else."""
    if report.weighted_smoothing is not None:
        w = report.weighted_smoothing
        eps_text = (
            f"eps={_fmt(w.eps_uniform)} (uniform)" if w.eps_uniform is not None else
            f"eps={_fmt(w.eps_off_target)} (off_target)"
        )
        return (
            f"the off-target mass is not uniform: the targets are class weights w ∝ {_short(w.weights)} "
            f"times a label smoothing with {eps_text}, as torch.nn.functional.cross_entropy(weight=w, "
            f"label_smoothing=eps) does (PyTorch #104776): the optimal gap becomes logit_gap(K, eps) + "
            f"log(w_y / w_i); lstheory's conventions have no class weights"
        )
    if lowest < -atol:
        return (
            f"some off-target entries of the target are negative (down to {_fmt(lowest)}, "
            f"expected {_fmt(p_other)}): the smoothing term enters with the wrong sign (added where it "
            f"should be subtracted, or vice versa)"
        )
    return "the target is not one value on the label and one value elsewhere, and not a class-weighted smoothing"


def _cause_of_the_mass(report: SmoothingReport, eps: float, convention: str, k: int, summary: tuple,
                       p_other: float, near: Callable, near_eps: Callable) -> str:
    """The target does not sum to 1: not divided by K, conventions mixed, eps not taken off, a scale."""
    a, b, total = summary
    if near(b, eps) and not near(eps, p_other):
        return (
            f"the target sums to {_fmt(total)}: the smoothing mass was not divided by K (each other "
            f"class gets eps={_fmt(eps)} instead of {_fmt(p_other)})"
        )
    if near(a, 1 - eps) and near(b, eps / k):
        return (
            f"the target sums to {_fmt(total)} = 1 - eps/K: the two conventions are mixed (the label gets "
            f"1 - eps, the off_target convention's, but each other class eps/K, the uniform convention's)"
        )
    if near(a, 1 - eps + eps / k) and near(b, eps / (k - 1)):
        return (
            f"the target sums to {_fmt(total)} = 1 + eps/K: the two conventions are mixed (the label gets "
            f"1 - eps + eps/K, the uniform convention's, but each other class eps/(K-1), the off_target "
            f"convention's)"
        )
    if near(a, 1.0) and (near(b, eps / k) or near(b, eps / (k - 1))):
        return (
            f"the target sums to {_fmt(total)}: the label keeps mass 1, the smoothing mass was added "
            f"without taking eps off the true class"
        )
    if near(a, (1 - eps) + eps / k**2) and near(b, eps / k**2):
        return (
            f"the target sums to {_fmt(total)} = 1 - eps + eps/K: the smoothing term averages over "
            f"classes instead of summing (each other class gets eps/K^2 = {_fmt(eps / k**2)} instead "
            f"of {_fmt(p_other)}: .mean() over classes on top of eps/K)"
        )
    normalised = _matching_normalised(report, eps, convention, near_eps)
    if near(total, 1.0 / k):
        return (
            f"the target sums to {_fmt(total)} = 1/K: the loss is divided by K, it averages over "
            f"classes instead of summing (.mean() where the cross-entropy needs .sum() over classes)"
            + normalised
        )
    return (
        f"the target sums to {_fmt(total)}, not 1: the loss is {_fmt(total)} times a cross-entropy "
        f"(a scale factor, or its terms are weighted inconsistently)" + normalised
    )


def _cause_of_eps(report: SmoothingReport, eps: float, convention: str, k: int, near_eps: Callable) -> str:
    """The target sums to 1 but its eps is another: the other convention, none, applied twice, or just another."""
    found = {"off_target": report.eps_off_target, "uniform": report.eps_uniform}
    other = _OTHER[convention]
    if found[other] is not None and near_eps(found[other], eps):
        try:
            converted = _fmt(convert_eps(k, eps, src=other, dst=convention))
        except ValueError:
            converted = "none (outside [0, 1])"
        return (
            f"this loss smooths with eps={_fmt(eps)} in the {other} convention, which is eps={converted} "
            f"in {convention} terms (pass convention=\"{other}\", or eps={converted})"
        )
    if found["off_target"] is not None and near_eps(found["off_target"], 0.0) and eps > 0:
        return "the loss does not smooth at all: it is plain cross-entropy against the one-hot label"
    try:
        eps_uniform = float(convert_eps(k, eps, src=convention, dst="uniform"))
    except ValueError:
        eps_uniform = None
    if eps_uniform is not None and found["uniform"] is not None and near_eps(
        found["uniform"], 1 - (1 - eps_uniform) ** 2
    ):
        return (
            f"the smoothing was applied twice: the loss smooths with eps={_fmt(found['uniform'])} = "
            f"1 - (1 - {_fmt(eps_uniform)})^2 in the uniform convention (e.g. smoothed targets passed to a "
            f"loss that smooths again)"
        )
    described = " = ".join(
        f"eps={fmt_known(found[name], report.eps_error)} ({name})" for name in (convention, other) if found[name] is not None
    )
    return f"this loss smooths with {described}, not eps={_fmt(eps)} ({convention})"


def _matching_normalised(report: SmoothingReport, eps: float, convention: str, near_eps: Callable) -> str:
    """``"; its normalised target is ..."`` when the smoothing itself is right (only the scale is off)."""
    found = {"off_target": report.eps_off_target, "uniform": report.eps_uniform}
    if found[convention] is not None and near_eps(found[convention], eps):
        return f"; normalised, it smooths with eps={_fmt(eps)} in the {convention} convention, as intended"
    other = _OTHER[convention]
    if found[other] is not None and near_eps(found[other], eps):
        return f"; normalised, it smooths with eps={_fmt(eps)} in the {other} convention"
    return ""


def _optimal(k: int, eps: float, label: int, convention: str, classes: np.ndarray) -> np.ndarray:
    """``optimal_logits`` over the classes ``C``; a class outside ``C`` (unsmoothed padding) 40 below the rest."""
    if len(classes) == k:
        return np.asarray(optimal_logits(k, eps, label=label, convention=convention), dtype=np.float64)
    inner = np.asarray(optimal_logits(len(classes), eps, label=int(np.searchsorted(classes, label)), convention=convention))
    z = np.full(k, float(np.min(inner)) - 40.0)
    z[classes] = inner
    return z


def _representable(adapter: LossAdapter, z: np.ndarray) -> np.ndarray:
    return np.asarray(z, dtype=np.float64).astype(adapter.input_dtype).astype(np.float64)


def _labels_to_check(report: SmoothingReport, classes: np.ndarray) -> list[int]:
    labels = [int(y) for y in classes if int(y) not in report.padding_classes]
    if len(labels) <= _MAX_LABELS_CHECKED:
        return labels
    return [labels[0], labels[len(labels) // 2], labels[-1]]


def _check_optimum(run: CheckerRun, eps: float, convention: str, classes: np.ndarray, rtol: float | None) -> list[str]:
    """Check (b): value ``min_loss + offset`` and a vanishing gradient at ``optimal_logits``.

    By default the value may deviate by ``Z`` times the measured noise
    (relative to the size of the terms, which at the optimum are smaller than
    at the random probes it was measured at), ``Z`` standard errors of the
    fitted offset where the form has one, plus the rounding of its constants;
    the gradient
    by ``Z`` times its measured noise plus what rounding the logits to the
    loss's input dtype moves it.  With ``rtol``, by ``rtol`` times the size of
    the terms instead.
    """
    report, adapter = run.report, run.adapter
    k = report.num_classes
    base = float(min_loss(len(classes), eps, convention=convention))
    input_unit = PRECISION_LEVELS[adapter.input_dtype]
    worst_value = worst_grad = None
    for y in _labels_to_check(report, classes):
        z = _representable(adapter, _optimal(k, eps, y, convention, classes))
        with_offset = report.form in ("kl_divergence", "cross_entropy_plus_constant")
        expected = base + (float(report.offset[y]) if with_offset else 0.0)
        try:
            result = adapter.evaluate(z[None, :], np.array([y]), grad=True)
        except LossCallError as error:
            return [f"[b] value at optimal_logits (label {y}): the loss failed: {error}"]
        scale = abs(expected) + float(np.max(np.abs(z[classes]))) + 1.0
        m = max(1.0, abs(float(report.mass[y])))
        if rtol is None:
            relative_noise = run.value_sigma / max(run.noise.value_scale, 1.0)
            offset_error = Z * run.errors.c if with_offset else 0.0
            allowed_value = Z * relative_noise * scale + offset_error + (run.errors.rounding + run.errors.arithmetic) * scale
            allowed_grad = (
                Z * 2 * max(run.noise.gradient_sigma, run.noise.level / 2) * m + input_unit * scale + run.errors.rounding
                + run.errors.arithmetic * m  # the loss's own mass is off by that: g = (m + dm) q - t
            )
        else:
            allowed_value = allowed_grad = rtol * scale
        if run.approximation is not None:  # an approximate cross-entropy: its measured deviation
            allowed_value += run.approximation.value
            allowed_grad += run.approximation.gradient
        deviation = abs(result.value - expected)
        if deviation > allowed_value and (worst_value is None or deviation > abs(worst_value[1] - expected)):
            worst_value = (y, result.value, allowed_value, expected)
        if result.gradient is not None:
            g = float(np.max(np.abs(result.gradient[0][classes])))
            if g > allowed_grad and (worst_grad is None or g > worst_grad[1]):
                worst_grad = (y, g, allowed_grad)
    failures = []
    if worst_value is not None:
        y, value, allowed, expected = worst_value
        offset = f" + offset {report.offset[y]:.10g}" if report.form != "cross_entropy" else ""
        failures.append(
            f"[b] value at optimal_logits(K, eps, label={y}): expected min_loss{offset} = {expected:.10g} (the entropy "
            f"of the smoothed target), got {value:.10g} (allowed {allowed:.2g})"
        )
    if worst_grad is not None:
        y, g, allowed = worst_grad
        failures.append(
            f"[b] gradient at optimal_logits(K, eps, label={y}): expected 0 (it is the minimiser), got "
            f"max |dL/dz| = {g:.3g} (allowed {allowed:.2g})"
        )
    return failures


def _newton_direction(g: np.ndarray, q: np.ndarray, mass: float) -> np.ndarray:
    """Solve ``mass (diag(q) - q q^T) s = g`` for ``s`` with ``sum(s) = 0`` in O(K) (the CE Hessian's pseudo-inverse).

    Directions whose curvature ``q_i`` is below the float64 resolution of the
    Hessian (``K u max(q)``) get no step, as a least-squares solve would cut them.
    """
    r = (g - g.mean()) / mass
    resolved = q > len(q) * np.finfo(np.float64).eps * np.max(q)
    s = np.where(resolved, r / np.where(resolved, q, 1.0), 0.0)
    return s - s[resolved].mean() * resolved


def _minimise(adapter: LossAdapter, k: int, y: int, sigma: float, iterations: int, frozen: np.ndarray, level: float) -> tuple[np.ndarray, bool, float]:
    """Minimise the loss of one sample with label ``y``; the point, whether it settled, the last step's size.

    Damped Newton steps with the loss's own gradient (autograd, or central
    differences) preconditioned by the Hessian a cross-entropy of the loss's
    scale would have, ``m (diag(q) - q q^T)`` (solved in O(K)).  A step that
    raises the loss beyond its noise is halved.  Classes in ``frozen`` (an
    unsmoothed padding class) stay where they are.
    """
    labels = np.array([y])
    free = ~frozen

    def value(z: np.ndarray) -> float:
        return adapter.evaluate(z[None, :], labels).value

    def gradient(z: np.ndarray) -> np.ndarray:
        if adapter.autograd:
            g = adapter.evaluate(z[None, :], labels, grad=True).gradient[0]
        else:
            g = np.zeros(k)
            for c in np.flatnonzero(free):
                h = max(sigma ** (1 / 3), 1e-6)
                up, down = z.copy(), z.copy()
                up[c] += h
                down[c] -= h
                up, down = _representable(adapter, up), _representable(adapter, down)
                g[c] = (value(up) - value(down)) / (up[c] - down[c])
        g = np.where(free, g, 0.0)
        g[free] -= g[free].mean()
        return g

    z = np.where(frozen, -40.0, 0.0)
    mass = abs(value(np.zeros(k)) / math.log(k)) or 1.0
    size = math.inf
    precision = max(level, PRECISION_LEVELS[adapter.input_dtype])
    stop = 4 * precision if adapter.autograd else precision ** (2 / 3)
    try:
        current = value(z)
        for _ in range(iterations):
            g = gradient(z)
            step = np.zeros(k)
            step[free] = _newton_direction(g[free], _softmax(z[free]), mass)
            size = float(np.max(np.abs(step)))
            if size > 2.0:
                step *= 2.0 / size
            slack = Z * sigma
            for _ in range(8):
                trial = _representable(adapter, z - step)
                trial_value = value(trial)
                if trial_value <= current + slack:
                    break
                step = step / 2
            z, current = trial, trial_value
            if size <= stop * (1 + float(np.max(np.abs(z[free])))):
                break
        g = gradient(z)
    except LossCallError:
        return z, False, size
    return z, size < 0.5 and float(np.max(np.abs(g))) <= max(math.sqrt(precision), 1e-6) * mass, size


def _minimise_gap(adapter: LossAdapter, k: int, y: int, frozen: np.ndarray, gap: float) -> float:
    """Values only at large K: minimise the loss along ``z = g e_y`` (golden section); return ``g``."""
    labels = np.array([y])

    def value(g: float) -> float:
        z = np.where(frozen, -40.0, 0.0)
        z[y] = g
        return adapter.evaluate(_representable(adapter, z)[None, :], labels).value

    low, high = min(0.0, gap) - 2.0, max(0.0, gap) * 2 + 4.0
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = value(a), value(b)
    for _ in range(60):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = value(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = value(b)
    return (low + high) / 2


def _check_minimisation(run: CheckerRun, eps: float, convention: str, classes: np.ndarray, rtol: float | None) -> list[str]:
    """Check (c): a numerical minimisation of the loss lands on optimal_logits (up to the free shift)."""
    report, adapter = run.report, run.adapter
    k = report.num_classes
    frozen = np.ones(k, dtype=bool)
    frozen[classes] = False
    p_true, p_other = (float(v) for v in smoothed_target(len(classes), eps, convention=convention))
    q_min = max(min(p_true, p_other), 1e-300)
    gap = float(logit_gap(len(classes), eps, convention=convention))
    relative = max(run.value_sigma / max(run.noise.value_scale, 1.0), run.noise.level / 2)
    if adapter.autograd:
        # Gradient entries err by unit (|g_i| + q_i), about unit q_i at the optimum: z_i by unit; removing their
        # mean (the free shift) spreads the label's error unit q_y / K over every class: 1 / (K q_min); and the
        # logits are rounded relative to their size, (1 + |gap|).  The loss's own sums over K make m (so
        # every entry's m q_i) err by up to ``arithmetic``, differently at each point the iteration visits.
        unit = max(run.noise.gradient_sigma, run.noise.level, run.errors.arithmetic)
        allowed = Z * unit * (1 + abs(gap) + 1 / (len(classes) * q_min))
    else:
        allowed = 8 * (relative / q_min) ** (2 / 3) * (1 + abs(gap))
    allowed = max(allowed, 1e-12) + (rtol or 0.0) * (1 + abs(gap)) + (run.errors.rounding + run.errors.approximation) / q_min
    if not adapter.autograd and q_min < math.sqrt(relative):
        return []  # values alone cannot locate a minimiser this far out at this precision
    labels = _labels_to_check(report, classes)
    for y in sorted({labels[0], labels[-1]}):
        expected = _optimal(k, eps, y, convention, classes)
        if not adapter.autograd and k > _VALUES_NEWTON_LIMIT:
            found = _minimise_gap(adapter, k, y, frozen, gap)
            if abs(found - gap) > allowed * 4:
                return [f"[c] numerical minimisation along z = g e_{y} (label {y}): lands at gap {_fmt(found)}, "
                        f"optimal_logits has gap {_fmt(gap)} (allowed {allowed * 4:.1g})"]
            continue
        iterations = _NEWTON_ITERATIONS + 2 * math.ceil(abs(gap))
        z, finite, jitter = _minimise(adapter, k, y, run.value_sigma, iterations, frozen, run.noise.level)
        if not finite:
            return [
                f"[c] numerical minimisation (label {y}): does not settle: after {iterations} Newton steps the gradient "
                f"has not vanished and the logits spread over {np.ptp(z[classes]):.3g} (optimal_logits has gap "
                f"{_fmt(gap)}): {_unsettled_cause(report, y)}"
            ]
        free = z[classes] - z[classes].mean()
        target = expected[classes] - expected[classes].mean()
        deviation = float(np.max(np.abs(free - target)))
        label_allowed = allowed + 4 * jitter * (report.precision > 1e-6)
        if deviation > label_allowed:
            others = np.delete(z[classes], int(np.searchsorted(classes, y)))
            return [
                f"[c] numerical minimisation (label {y}): lands at logit gap z_y - mean(z_i) = {_fmt(z[y] - others.mean())}, "
                f"optimal_logits has gap {_fmt(gap)} (largest deviation {deviation:.3g} after removing the free shift; "
                f"allowed {label_allowed:.1g})"
            ]
    return []


def _unsettled_cause(report: SmoothingReport, y: int) -> str:
    """Why the minimisation of (c) may not settle, from what the report knows."""
    if not report.per_sample_cross_entropy:
        return (
            "the loss is not a cross-entropy against a fixed target (see above), and this Newton iteration, "
            "preconditioned for one, did not converge on it; whatever its minimiser is, it was not found "
            "near optimal_logits"
        )
    row = report.model.row(y)
    off = np.delete(row, y)
    if np.min(row) < -Z * report.target_error:
        return (
            f"the loss has no finite minimum: its target for label {y} has a negative entry "
            f"({_fmt(np.min(row))}), so the loss falls without bound as that logit falls"
        )
    if np.max(np.abs(off)) <= Z * report.target_error:
        return "the loss has no finite minimum: it does not smooth (its target is the one-hot label)"
    return "the loss may have no finite minimum (its gradient does not vanish anywhere the iteration went)"


def _close(actual: float, expected: float, atol: float, rtol: float) -> bool:
    return abs(actual - expected) <= atol + rtol * abs(expected)
