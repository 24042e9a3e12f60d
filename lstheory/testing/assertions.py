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

from lstheory._validation import as_eps, check_convention
from lstheory.closed_form import convert_eps, logit_gap, min_loss, optimal_logits, smoothed_target
from lstheory.testing._loss_caller import PRECISION_LEVELS, LossCallError, LossCaller
from lstheory.testing.inference import SmoothingReport, _fmt, _lse, _short, _softmax, infer_smoothing

__all__ = ["assert_loss_matches_theory"]

_OTHER = {"off_target": "uniform", "uniform": "off_target"}
_MAX_LABELS_CHECKED = 16
_NEWTON_ITERATIONS = 40  # plus two per unit of the expected gap
_FINE_PRECISION = PRECISION_LEVELS["float32"]
_NOISE_PROBES = 4  # points next to optimal_logits at which check (b) measures the loss's noise
_NOISE_STEP = 2.0**-6  # their distance, per logit, in units (exact in half precision near the optimum)


def assert_loss_matches_theory(
    loss_fn: Callable[..., Any],
    num_classes: int,
    eps: float,
    *,
    convention: str = "off_target",
    rtol: float | None = None,
    ignore_index: int | None = -100,
    seed: int = 0,
) -> SmoothingReport:
    r"""Assert that ``loss_fn`` is label-smoothed cross-entropy with ``eps`` in ``convention``.

    Checks (see the module docstring): (a) implied targets equal
    ``smoothed_target(K, eps, convention=convention)``; (b) the loss at
    ``optimal_logits`` equals ``min_loss`` and its gradient vanishes there;
    (c) minimising the loss numerically lands on ``optimal_logits``; (d) batch
    reduction and padding.  (b) and (c) need a finite optimum, so they are
    skipped at ``eps = 0`` (and at off_target ``eps = 1``); without autograd
    (c) is also skipped when the smallest target entry is below the square
    root of the loss's precision, where values alone cannot locate the minimiser.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(logits, labels) -> scalar``, logits ``(N, K)``, integer labels
        ``(N,)``; torch (float64 or float32, autograd optional) or NumPy.
    num_classes : int
        ``K >= 2``.
    eps : float
        The smoothing the loss should apply, ``0 <= eps <= 1``.
    convention : {"off_target", "uniform"}
        The convention ``eps`` is meant in (``"uniform"`` for PyTorch's
        ``label_smoothing``, Keras, optax, timm, HuggingFace).
    rtol : float, optional
        Relative tolerance of every comparison.  Default: from the precision
        the loss computes in (about ``1e-5`` for float32, ``1e-13`` for float64,
        growing slowly with ``K``); the estimated error of the inferred targets
        is always allowed on top.  Coarser than float32 (a float16 or bfloat16
        loss, or one with noisy values) the default allows only measured errors
        (``report.target_error``, ``report.eps_error``, the loss's noise next to
        ``optimal_logits``), at least about one unit of the loss's precision:
        eps values closer than that (``2**-7`` in bfloat16; e.g. the two
        conventions' eps for ``eps = 0.1`` at ``K = 50``) cannot be told apart.
    ignore_index : int or None
        Padding label whose handling is checked (``-100``); ``None`` if the loss
        does not take padded labels.
    seed : int
        Seed of the random probes.

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
    convention = check_convention(convention)
    eps = float(as_eps(eps))
    if rtol is not None:
        rtol_array = np.asarray(rtol)
        if isinstance(rtol, bool) or rtol_array.ndim or rtol_array.dtype.kind not in "if" or not (
            0 <= float(rtol_array) < 1
        ):
            raise ValueError(f"rtol must be a real number with 0 <= rtol < 1, or None; got {rtol!r}")
        rtol = float(rtol_array)
    report = infer_smoothing(loss_fn, num_classes, eps=eps, ignore_index=ignore_index, seed=seed)
    k = report.num_classes
    # The default relative tolerance follows the loss's precision.  Coarser than
    # float32 (half precision, or noise) the a-priori tolerance is far too loose
    # to tell eps apart, so the checks use only measured errors (report.target_error,
    # report.eps_error, the loss's noise at optimal_logits) and the loss's precision
    # times the size of what is compared.
    tol = rtol if rtol is not None else (0.0 if _coarse(report) else report.tolerance)
    p_true, p_other = (float(v) for v in smoothed_target(k, eps, convention=convention))

    failures: list[str] = []
    padding_findings = [f for f in report.findings if f == report.ignore_detail]
    model_findings = [f for f in report.findings if f != report.ignore_detail]
    if model_findings:
        failures.append(
            "[cross-entropy] the loss is not a (mean of) cross-entropies against a fixed target:\n"
            + "\n".join(f"    likely cause: {f}" for f in model_findings)
        )
    if report.per_sample_cross_entropy:  # else the inferred targets mean nothing
        failures.extend(_check_targets(report, eps, convention, p_true, p_other, tol))
    caller = LossCaller.detect(loss_fn, k)
    if math.isfinite(float(logit_gap(k, eps, convention=convention))):
        failures.extend(_check_optimum(caller, report, eps, convention, rtol, seed))
        failures.extend(_check_minimisation(caller, report, eps, convention, p_true, p_other))
    if padding_findings:
        failures.append(f"[d] padding (labels = {report.ignore_index}): {report.ignore_behaviour}\n"
                        f"    likely cause: {padding_findings[0]}")
    if failures:
        header = (
            f"{report.name} does not match label smoothing with eps={_fmt(eps)} in the {convention} "
            f"convention (K={k}: {_fmt(p_true)} on the label, {_fmt(p_other)} on each other class)"
        )
        raise AssertionError(header + "\n" + "\n".join(failures) + "\n\n" + str(report))
    return report


def _close(actual: float, expected: float, atol: float, rtol: float) -> bool:
    return abs(actual - expected) <= atol + rtol * abs(expected)


def _coarse(report: SmoothingReport) -> bool:
    """The loss computes coarser than float32: half precision, or noisy values."""
    return report.precision > _FINE_PRECISION


def _check_targets(
    report: SmoothingReport, eps: float, convention: str, p_true: float, p_other: float, tol: float
) -> list[str]:
    """Check (a): every row of the implied target against the convention's."""
    k = report.num_classes
    expected = np.full((k, k), p_other)
    np.fill_diagonal(expected, p_true)
    atol = 4 * report.target_error
    entries_ok = np.all(np.abs(report.targets - expected) <= atol + tol * np.abs(expected))
    mass_ok = np.all(np.abs(report.mass - 1.0) <= atol + tol)
    # The mean of the diagonal (1 - eps in off_target terms) is known better than one
    # entry: this is what tells eps apart in half precision.
    diagonal_ok = abs(float(np.mean(np.diag(report.targets))) - p_true) <= 4 * report.eps_error + tol * p_true
    mass_ok = mass_ok and abs(float(np.mean(report.mass)) - 1.0) <= 4 * report.eps_error + tol
    if entries_ok and mass_ok and diagonal_ok:
        return []
    raw = report.targets * report.mass[:, None]
    if report.is_smoothing and np.ptp(report.mass) <= atol:
        on_label = float(np.mean(np.diag(raw)))
        off_label = float(np.mean(raw[~np.eye(k, dtype=bool)]))
        got = f"{_fmt(on_label)} on the label and {_fmt(off_label)} on each other class"
    else:
        worst = int(np.argmax(np.max(np.abs(report.targets - expected), axis=1)))
        got = f"for label {worst}: {_short(raw[worst])}"
    mass = _fmt(report.mass[0]) if np.ptp(report.mass) <= atol else f"{_short(report.mass)} by label"
    return [
        f"[a] implied targets: expected {_fmt(p_true)} on the label and {_fmt(p_other)} on each other "
        f"class (sum 1); the loss implies {got} (sum {mass})\n"
        f"    likely cause: {_target_cause(report, eps, convention, p_true, p_other, tol)}"
    ]


def _target_cause(
    report: SmoothingReport, eps: float, convention: str, p_true: float, p_other: float, tol: float
) -> str:
    """Name the likely bug behind a target mismatch (check (a))."""
    k = report.num_classes
    atol = 8 * report.target_error

    def near(actual: float, expected: float) -> bool:
        return _close(actual, expected, atol, max(tol, 1e-9))

    def near_eps(actual: float, expected: float) -> bool:  # an eps: a mean over K entries, as check (a) allows
        return _close(actual, expected, 4 * report.eps_error, max(tol, 1e-9))

    raw = report.targets * report.mass[:, None]
    off = ~np.eye(k, dtype=bool)
    if not report.is_smoothing:
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
        if np.min(raw[off]) < -atol:
            return (
                f"some off-target entries of the target are negative (down to {_fmt(np.min(raw[off]))}, "
                f"expected {_fmt(p_other)}): the smoothing term enters with the wrong sign (added where it "
                f"should be subtracted, or vice versa)"
            )
        return "the target is not one value on the label and one value elsewhere, and not a class-weighted smoothing"

    a = float(np.mean(np.diag(raw)))
    b = float(np.mean(raw[off]))
    total = float(np.mean(report.mass))
    if b < -atol:
        return (
            f"each other class gets a negative target ({_fmt(b)}, expected {_fmt(p_other)}): the smoothing "
            f"term enters with the wrong sign (added where it should be subtracted, or vice versa)"
        )
    if not near(total, 1.0):
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
        f"eps={_fmt(found[name])} ({name})" for name in (convention, other) if found[name] is not None
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


def _check_optimum(
    caller: LossCaller, report: SmoothingReport, eps: float, convention: str, rtol: float | None, seed: int
) -> list[str]:
    """Check (b): value and gradient of the loss at optimal_logits.

    With ``rtol`` the value and the gradient may deviate by ``rtol`` times the
    size of the terms; by default by the loss's tolerance (float32 and float64),
    or, coarser than float32, by one unit of the loss's precision relative to
    the value plus four times its noise measured next to optimal_logits (the
    spread, over a few nearby points, of the loss around its inferred
    cross-entropy).
    """
    k = report.num_classes
    expected = float(min_loss(k, eps, convention=convention))
    coarse = rtol is None and _coarse(report)
    rng = np.random.default_rng(seed)
    worst_value = None
    worst_grad = None
    for y in _labels_to_check(k):
        z = caller.representable(optimal_logits(k, eps, label=y, convention=convention))
        try:
            value, gradient = caller.evaluate(z[None, :], np.array([y]), grad=True)
            spread_value, spread_grad = _local_noise(caller, report, z, y, rng) if coarse else (0.0, 0.0)
        except LossCallError as error:
            return [f"[b] value at optimal_logits (label {y}): the loss failed: {error}"]
        if coarse:
            allowed_value = report.precision * (abs(expected) + 1.0) + 4 * spread_value
            allowed_grad = report.precision * max(1.0, abs(float(report.mass[y]))) + 4 * spread_grad
        else:
            scale = abs(expected) + float(np.max(np.abs(z))) + 1.0
            allowed_value = allowed_grad = (report.tolerance if rtol is None else rtol) * scale
        if abs(value - expected) > allowed_value and (
            worst_value is None or abs(value - expected) > abs(worst_value[1] - expected)
        ):
            worst_value = (y, value, allowed_value)
        if gradient is not None:
            g = float(np.max(np.abs(gradient)))
            if g > allowed_grad and (worst_grad is None or g > worst_grad[1]):
                worst_grad = (y, g, allowed_grad)
    failures = []
    if worst_value is not None:
        y, value, allowed = worst_value
        failures.append(
            f"[b] value at optimal_logits(K, eps, label={y}): expected min_loss = {expected:.10g} (the entropy "
            f"of the smoothed target), got {value:.10g}" + (f" (allowed {allowed:.2g})" if coarse else "")
        )
    if worst_grad is not None:
        y, g, allowed = worst_grad
        failures.append(
            f"[b] gradient at optimal_logits(K, eps, label={y}): expected 0 (it is the minimiser), got "
            f"max |dL/dz| = {g:.3g}" + (f" (allowed {allowed:.2g})" if coarse else "")
        )
    return failures


def _local_noise(
    caller: LossCaller, report: SmoothingReport, z: np.ndarray, y: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Spread of the loss's value and gradient around its inferred cross-entropy, at and next to ``z``."""
    k = report.num_classes
    t = report.targets[y] * report.mass[y]
    m = float(report.mass[y])
    values, gradients = [], []
    for j in range(_NOISE_PROBES + 1):
        step = 0 if j == 0 else rng.integers(-2, 3, size=k) * _NOISE_STEP
        p = caller.representable(z + step)
        value, gradient = caller.evaluate(p[None, :], np.array([y]), grad=True)
        values.append(value - (m * float(_lse(p)) - float(t @ p)))
        if gradient is not None:
            gradients.append(gradient[0] - (m * _softmax(p) - t))
    spread_grad = float(np.max(np.ptp(np.array(gradients), axis=0))) if gradients else 0.0
    return float(np.ptp(values)), spread_grad


def _labels_to_check(k: int) -> list[int]:
    if k <= _MAX_LABELS_CHECKED:
        return list(range(k))
    return [0, k // 2, k - 1]


def _minimise(
    caller: LossCaller, k: int, y: int, precision: float, iterations: int
) -> tuple[np.ndarray, bool, float]:
    """Minimise the loss of one sample with label ``y``.

    Returns the point, whether it settled, and the size of the last Newton
    step (how much the point still jitters with the loss's noise).

    Damped Newton steps with the loss's own gradient (autograd, or central
    differences with steps sized for the loss's noise) and, as a
    preconditioner only, the Hessian a cross-entropy of the loss's scale would
    have, ``m (diag(q) - q q^T)``: the iteration stops where the loss's
    gradient vanishes, whatever the loss is.  A step that raises the loss
    beyond its noise (the preconditioner misjudged its curvature, e.g. under a
    temperature) is halved.  Steps move orthogonally to the free shift, and
    the gradient is judged there too (a cross-entropy's sums to 0; a loss with
    a penalty on the shift, like a z-loss, settles in that plane).  Far from
    the minimiser a cross-entropy is nearly linear and each step gains about
    one unit of gap, so the caller sizes ``iterations`` from the expected gap.
    """
    labels = np.array([y])

    def value(z: np.ndarray) -> float:
        return caller.evaluate(z[None, :], labels)[0]

    def gradient(z: np.ndarray) -> np.ndarray:
        if caller.autograd:
            g = caller.evaluate(z[None, :], labels, grad=True)[1][0]
        else:
            g = np.empty(k)
            level = abs(value(z)) + 1.0
            q = _softmax(z)
            for c in range(k):
                h = max((precision * level / max(q[c], 1e-12)) ** (1 / 3), 1e-8) * max(1.0, abs(z[c]))
                up = z.copy()
                up[c] += h
                down = z.copy()
                down[c] -= h
                up, down = caller.representable(up), caller.representable(down)
                g[c] = (value(up) - value(down)) / (up[c] - down[c])
        return g - g.mean()

    mass = value(np.zeros(k)) / math.log(k)
    mass = abs(mass) if mass != 0 else 1.0
    z = np.zeros(k)
    stop = 4 * precision if caller.autograd else precision ** (2 / 3)
    size = math.inf
    try:
        current = value(z)
        for _ in range(iterations):
            g = gradient(z)
            q = _softmax(z)
            hessian = mass * (np.diag(q) - np.outer(q, q)) + mass / k**2  # + shift direction, to invert
            step = np.linalg.lstsq(hessian, g, rcond=None)[0]
            step -= step.mean()
            size = float(np.max(np.abs(step)))
            if size > 2.0:
                step *= 2.0 / size
            slack = 16 * precision * (abs(current) + 1.0)  # a rise within the noise is no rise
            for _ in range(8):
                trial = caller.representable(z - step)
                trial_value = value(trial)
                if trial_value <= current + slack:
                    break
                step = step / 2
            z, current = trial, trial_value
            if size <= stop * (1 + float(np.max(np.abs(z)))):
                break
        # Settled if the last steps only jitter with the loss's noise and the
        # gradient has vanished: on a loss with no finite minimum the logits run
        # off, or softmax underflows and stalls the steps while the gradient stays.
        g = gradient(z)
    except LossCallError:
        return z, False, size
    return z, size < 0.5 and float(np.max(np.abs(g))) <= max(math.sqrt(precision), 1e-6) * mass, size


def _check_minimisation(
    caller: LossCaller, report: SmoothingReport, eps: float, convention: str, p_true: float, p_other: float
) -> list[str]:
    """Check (c): a numerical minimisation of the loss lands on optimal_logits."""
    k = report.num_classes
    q_min = max(min(p_true, p_other), 1e-300)
    level = 1.0 + float(min_loss(k, eps, convention=convention))
    gap = abs(float(logit_gap(k, eps, convention=convention)))
    coarse = _coarse(report)
    if caller.autograd and coarse:
        # Half precision: the logits themselves are rounded to about precision * |z|
        # inside the loss, and the iteration jitters by its last step (added below).
        allowed = 2 * report.precision * (1.0 + gap)
    elif caller.autograd:
        allowed = 16 * report.precision * level / q_min
    else:
        allowed = 8 * (report.precision * level / q_min) ** (2 / 3)
    allowed = max(allowed, 1e-12)
    if not caller.autograd and q_min < math.sqrt(report.precision) * level:
        # From values alone the loss is too flat, at its precision, around a
        # minimiser this far out (central differences of the loss cannot resolve
        # a gradient entry of size q_min): nothing to check.
        return []
    iterations = _NEWTON_ITERATIONS + 2 * math.ceil(gap)
    for y in sorted({0, k - 1}):
        z, finite, jitter = _minimise(caller, k, y, report.precision, iterations)
        expected = optimal_logits(k, eps, label=y, convention=convention)
        if not finite:
            return [
                f"[c] numerical minimisation (label {y}): does not settle: after {iterations} Newton "
                f"steps the gradient has not vanished and the logits spread over {np.ptp(z):.3g} (optimal_logits has gap "
                f"{_fmt(logit_gap(k, eps, convention=convention))}): {_unsettled_cause(report, y)}"
            ]
        deviation = float(np.max(np.abs((z - z.mean()) - (expected - expected.mean()))))
        label_allowed = allowed + (4 * jitter if coarse else 0.0)
        if deviation > label_allowed:
            others = np.delete(z, y)
            return [
                f"[c] numerical minimisation (label {y}): lands at logit gap z_y - mean(z_i) = "
                f"{_fmt(z[y] - others.mean())}, optimal_logits has gap "
                f"{_fmt(logit_gap(k, eps, convention=convention))} (largest deviation {deviation:.3g} after "
                f"removing the free shift; allowed {label_allowed:.1g})"
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
    row = report.targets[y] * report.mass[y]
    off = np.delete(row, y)
    if np.min(row) < -4 * report.target_error:
        return (
            f"the loss has no finite minimum: its target for label {y} has a negative entry "
            f"({_fmt(np.min(row))}), so the loss falls without bound as that logit falls"
        )
    if np.max(np.abs(off)) <= 4 * report.target_error:
        return "the loss has no finite minimum: it does not smooth (its target is the one-hot label)"
    return "the loss may have no finite minimum (its gradient does not vanish anywhere the iteration went)"
