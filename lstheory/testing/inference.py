r"""Infer the target any loss callable implies: a pipeline of small named stages.

Cross-entropy against a fixed (unnormalised) target ``t`` is linear in it::

    L(z, y) = m_y lse(z) - t_y . z + c_y,    dL/dz = m_y softmax(z) - t_y,

with ``m_y = sum_c t_yc`` (the mass) and ``c_y = 0`` (``c_y = sum t log t``:
the KL form ``KL(t || softmax(z))``).  The stages, each in its own module:

1. **adapter** (:mod:`~lstheory.testing.adapters`): how the loss is called;
2. **noise** (:mod:`~lstheory.testing.noise`): its rounding noise, measured;
3. **batch** (:mod:`~lstheory.testing.batching`): determinism and reduction;
4. **fit** (:mod:`~lstheory.testing.fit`): ``m, t, c`` of each probed label,
   twice from independent random probes (the error is their difference);
5. **model** (:mod:`~lstheory.testing.model`): every label's row, densely
   (``K`` up to 128 with autograd, 64 values only) or in the structured
   form ``t_y = on e_y + off v`` fitted on a sample of labels;
6. **validate** (:mod:`~lstheory.testing.validate`): the model must predict
   the loss at fresh logits within ``Z = 8`` standard deviations of the
   measured noise (and what the loss's own sums over ``K`` classes can
   move it by): every label (densely), or, at large ``K``, every label's
   value once in batches and the gradients of a fresh sample of labels; a
   deviation of most labels smaller than half the smallest target entry
   is an approximate cross-entropy (``log(q + delta)``), measured and named;
7. **padding** (:mod:`~lstheory.testing.batching`): padded labels, inside or
   outside ``[0, K)``, and labels whose loss is zero;
8. **report** (:mod:`~lstheory.testing.report`): eps over the smoothed
   classes, the convention, the form, the findings in words.

A label whose ``m`` is 0 (a linear loss, or a constant one), negative (a
negated one) or not the target's sum (not shift-invariant) is no
cross-entropy, whatever the fit; so is a loss that gives two values for the
same call (nondeterministic).  :func:`run_checker` runs the stages in order
on one :class:`_State`, each a function ``_stage_*`` of a few lines.

Reference: the decomposition ``CE = H(p) + KL(p || q)`` and its minimiser,
Cover and Thomas, "Elements of Information Theory", 2nd ed., Thm. 2.6.3.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lstheory._validation import as_eps, as_num_classes
from lstheory.testing.adapters import PRECISION_LEVELS, CallOptions, LossAdapter, LossCallError, callable_name
from lstheory.testing.batching import Reduction, check_batches, check_determinism, detect_reduction, probe_padding
from lstheory.testing.fit import (
    COARSE_PROBES_PER_HALF,
    PROBES_PER_HALF,
    LabelFits,
    fit_errors,
    fit_labels,
    zero_labels,
)
from lstheory.testing.model import Z, TargetModel, build_model, label_kind
from lstheory.testing.noise import Noise, safe_measure_noise
from lstheory.testing.report import SmoothingReport, WeightedSmoothing, labels_text
from lstheory.testing.summary import (
    Errors,
    constants_dtype,
    constants_rounding,
    convention_of,
    form_of,
    loss_arithmetic,
    summarise_smoothing,
    weighted_smoothing,
)
from lstheory.testing.validate import (
    Approximation,
    LabelDeviation,
    approximate_cross_entropy,
    smallest_target,
    sweep_every_label,
    validate_labels,
    validation_findings,
)

__all__ = ["SmoothingReport", "WeightedSmoothing", "infer_smoothing", "run_checker", "CheckerRun", "MAX_CHECKER_CLASSES"]

MAX_CHECKER_CLASSES = 2**20
"""Largest ``K`` the checker accepts: checking every label costs ``K**2`` logit evaluations."""
DENSE_LIMIT = {True: 128, False: 64}
"""Largest ``K`` at which every label is fitted (with autograd / values only)."""
SAMPLED_LABELS = {True: 16, False: 3}
"""Labels fitted at larger ``K`` (with autograd / values only)."""
GRADIENT_SAMPLE = 32
"""Fresh labels whose gradients validate the structured model at larger ``K``."""
SWEEP_LOGITS = 2**21
"""Logits per sweep batch, about: 8 MiB in float32, so that the loss's passes over the batch stay in the cache
(measured at K = 128,256: 16 rows per call sweep every label in half the time 130 rows take)."""


class _Progress:
    """No progress display (the CLI passes a tqdm-backed one)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage with ``total`` steps."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more done."""


@dataclass
class CheckerRun:
    """The report and what produced it (used by :func:`~lstheory.testing.assert_loss_matches_theory`)."""

    report: SmoothingReport
    adapter: LossAdapter
    noise: Noise
    reduction: Reduction
    errors: Errors
    value_sigma: float
    approximation: Approximation | None = None


def single_eps(eps: Any) -> float:
    """``eps`` as one Python float in ``[0, 1]`` (``TypeError`` for an array, whatever its values)."""
    value = as_eps(eps)
    if np.ndim(value) != 0:
        raise TypeError(f"eps must be a single real number with 0 <= eps <= 1; got {eps!r}")
    return float(value)


def check_arguments(num_classes: Any, eps: Any, ignore_index: Any, seed: Any) -> tuple[int, float | None, int | None, int]:
    """Validate the checker's arguments; return ``K``, eps, ignore_index and seed as Python numbers."""
    k_array = as_num_classes(num_classes)
    if np.ndim(k_array) != 0:
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got {num_classes!r}")
    k = int(k_array)
    if k > MAX_CHECKER_CLASSES:
        raise ValueError(
            f"num_classes={k} is too large for the checker: one row of logits takes {8 * k / 2**30:.3g} GiB in "
            f"float64 and checking every label costs K**2 = {float(k) ** 2:.2g} logit evaluations; the checker "
            f"accepts 2 <= num_classes <= 2**20 (the closed forms take any K <= 2**53)"
        )
    intended = None if eps is None else single_eps(eps)
    if ignore_index is not None:
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an integer label (any int64, also a class index) or None; got {ignore_index!r}")
        if not -(2**63) <= int(ignore_index) < 2**63:
            raise ValueError(f"ignore_index must fit in int64 (labels are int64); got {int(ignore_index)}")
        ignore_index = int(ignore_index)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer; got {seed!r}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer (it seeds numpy.random.default_rng); got {int(seed)}")
    return k, intended, ignore_index, int(seed)


def _kind_findings(fits: LabelFits, errors: Errors, padding: set[int], shift_error: float) -> tuple[list[str], set[int]]:
    """Labels whose ``m`` rules out a cross-entropy, each cause in words."""
    groups: dict[str, list[int]] = {}
    for i, y in enumerate(fits.labels):
        if int(y) in padding:
            continue
        constant = float(np.max(np.abs(fits.t[i]))) <= Z * max(errors.on, errors.off)
        kind = label_kind(float(fits.m[i]), float(np.sum(fits.t[i])), errors.m, shift_error, constant)
        if kind != "cross_entropy":
            groups.setdefault(kind, []).append(int(y))
    findings = []
    words = {
        "constant": "the loss does not depend on the logits (m = 0 and t = 0): it is a constant, no cross-entropy",
        "linear": (
            "the loss is linear in the logits: no log-sum-exp (m = 0), so it has no minimum; a loss that expects "
            "log-probabilities given raw logits? (pass inputs='log_probs' if it takes log-probabilities)"
        ),
        "negated": (
            "the loss is a negated cross-entropy (m < 0): it falls as the probability of the targets rises, "
            "e.g. -CE, or a log-likelihood returned as the loss"
        ),
        "not shift-invariant": (
            "the loss changes when every logit is shifted by the same amount (m_y differs from the sum of the "
            "target): it is not a function of softmax(logits)"
        ),
    }
    bad: set[int] = set()
    for kind, labels in groups.items():
        i = fits.index(labels[0])
        findings.append(
            f"{words[kind]} (labels {labels_text(labels)}: m = {fits.m[i]:.6g}, sum of target {np.sum(fits.t[i]):.6g})"
        )
        bad.update(labels)
    return findings, bad


def _detached_finding(adapter: LossAdapter, labels: list[int], rng: np.random.Generator, sigma: float) -> str | None:
    """When the gradient fits but the values do not: are the values alone a cross-entropy (a detached term)?"""
    if not adapter.autograd or adapter.num_classes > DENSE_LIMIT[False]:
        return None
    values_only = LossAdapter(adapter.loss_fn, adapter.num_classes, adapter.options, adapter.backend,
                              adapter.input_dtype, adapter.output_dtype, False, adapter.per_sample_output,
                              adapter.ignore_index)
    try:
        fits = fit_labels(values_only, labels[:2], rng, 1.0)
        errors = fit_errors(fits, Noise(sigma, 1.0, 0.0, 0.0, "float64", False, 0.0), sigma, False)
        model = build_model(fits, adapter.num_classes, True, errors, set())
        deviations = validate_labels(values_only, model, fits.labels, rng, sigma, errors, 1.0, 0.5)
    except LossCallError:
        return None
    if deviations and all(d.value_ratio <= 1 for d in deviations):
        return (
            "the loss's values are a cross-entropy against a fixed target (recovered from its values alone, they fit), "
            "but its autograd gradient is not that cross-entropy's: part of the loss is detached or has a custom backward"
        )
    return None


def _probe_all_padding(adapter, reduction, ignore_index, candidates, normal, rng, sigma):
    """The padding stage: the declared padding label and any label found to have zero (or non-finite) loss."""
    findings, notes, padding = [], [], set()
    behaviour, detail = "not probed", ""
    k = adapter.num_classes
    if ignore_index is not None and reduction.kind is not None:
        outcome = probe_padding(adapter, reduction, ignore_index, normal, rng, sigma)
        behaviour, detail = outcome.behaviour, outcome.detail
        if outcome.note:
            notes.append(outcome.note)
        if behaviour not in ("ignored", "not accepted"):
            findings.append(detail)
        elif behaviour == "ignored" and 0 <= ignore_index < k:
            padding.add(ignore_index)
    for label in sorted(candidates - {ignore_index})[:8]:
        if reduction.kind is None:
            break
        outcome = probe_padding(adapter, reduction, label, normal, rng, sigma)
        if outcome.behaviour == "ignored":
            padding.add(label)
            notes.append(f"label {label} behaves as padding: its loss is zero and it is left out of the {reduction.kind}")
            if outcome.note:
                notes.append(outcome.note)
        else:
            findings.append(f"label {label}: its loss alone is zero or non-finite, yet it is no padding: {outcome.detail}")
    return behaviour, detail, findings, notes, padding


def _regime_labels(k: int, autograd: bool, excluded: set[int], rng: np.random.Generator) -> tuple[bool, list[int]]:
    dense = k <= DENSE_LIMIT[autograd]
    if dense:
        return True, [y for y in range(k) if y not in excluded]
    pool = [int(y) for y in rng.choice(k, size=SAMPLED_LABELS[autograd] + len(excluded), replace=False)]
    return False, [y for y in pool if y not in excluded][: SAMPLED_LABELS[autograd]]


@dataclass
class _State:
    """What the stages have found so far; each stage reads it and adds to it."""

    adapter: LossAdapter
    rng: np.random.Generator
    excluded: set[int]
    progress: Any
    noise: Noise | None = None
    normal: list[int] = field(default_factory=list)
    sigma_v: float = 0.0
    sigma_g: float = 0.0
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reduction: Reduction | None = None
    dense: bool = True
    fits: LabelFits | None = None
    errors: Errors | None = None
    zero: set[int] = field(default_factory=set)
    model: TargetModel | None = None
    non_ce: set[int] = field(default_factory=set)
    failing: set[int] = field(default_factory=set)
    residual: float = 0.0
    tolerance: float = 0.0
    coverage: str = ""
    approximation: Approximation | None = None
    padding: set[int] = field(default_factory=set)
    behaviour: str = "not probed"
    detail: str = ""


def run_checker(
    loss_fn: Callable[..., Any],
    num_classes: Any,
    *,
    eps: Any = None,
    ignore_index: Any = -100,
    seed: Any = 0,
    options: CallOptions | None = None,
    progress: Any = None,
) -> CheckerRun:
    """The pipeline behind :func:`infer_smoothing` (see the module docstring); returns every stage's result."""
    k, intended, ignore_index, seed = check_arguments(num_classes, eps, ignore_index, seed)
    progress = progress or _Progress()
    progress.stage("adapter")
    adapter = LossAdapter.detect(loss_fn, k, options)
    adapter.ignore_index = ignore_index
    excluded = {ignore_index} if ignore_index is not None and 0 <= ignore_index < k else set()
    state = _State(adapter, np.random.default_rng(seed), excluded, progress)
    _stage_noise(state)
    labels = _stage_reduction(state)
    _stage_fit(state, labels)
    _stage_validate(state)
    _stage_sweep(state)
    _stage_padding(state, ignore_index)
    report = _report(loss_fn, state, intended, ignore_index)
    return CheckerRun(report, adapter, state.noise, state.reduction, state.errors, state.sigma_v, state.approximation)


def _stage_noise(state: _State) -> None:
    """Noise: the loss's rounding, measured; then whether it is deterministic at all."""
    state.progress.stage("noise")
    adapter = state.adapter
    noise, normal = safe_measure_noise(adapter, state.excluded, state.rng)
    if noise is None:
        raise LossCallError(f"loss_fn raised or returned a non-finite value for every label tried: {normal}")
    state.noise, state.normal = noise, normal
    state.sigma_v = max(noise.value_sigma, noise.level / 2 * noise.value_scale)
    state.sigma_g = max(noise.gradient_sigma, noise.level / 2)
    determinism = check_determinism(adapter, normal, state.rng, PRECISION_LEVELS[noise.dtype])
    if determinism:
        state.findings.append(determinism)


def _stage_reduction(state: _State) -> list[int]:
    """Batch reduction, and which labels the fit takes (all, or a sample at large K)."""
    k = state.adapter.num_classes
    state.dense, labels = _regime_labels(k, state.adapter.autograd, state.excluded, state.rng)
    state.progress.stage("batch reduction")
    state.reduction = detect_reduction(state.adapter, state.normal[0], state.rng, state.sigma_v, weighted=state.dense and k <= 256)
    state.findings.extend(state.reduction.findings)
    return labels


def _stage_fit(state: _State, labels: list[int]) -> None:
    """Fit: each label's m, t, c twice; their errors; zero-loss labels; the model; what each m says."""
    adapter, noise, reduction = state.adapter, state.noise, state.reduction
    k = adapter.num_classes
    coarse = noise.level > PRECISION_LEVELS["float32"]
    probes = COARSE_PROBES_PER_HALF if coarse else PROBES_PER_HALF
    weight = reduction.weight(probes) if reduction.kind is not None else 1.0 / probes
    state.progress.stage("fit", len(labels))
    fits = fit_labels(adapter, labels, state.rng, weight, state.progress.advance, probes, coarse)
    errors = fit_errors(fits, noise, state.sigma_v, adapter.autograd)
    errors.arithmetic = loss_arithmetic(noise.dtype, k)
    zero = zero_labels(fits, errors)
    if zero >= {int(y) for y in fits.labels} | set(fits.failed):
        zero = set()  # every label zero: a constant loss, not padding (the kind stage names it)
    state.fits, state.errors, state.zero = fits, errors, zero
    state.model = build_model(fits, k, state.dense, errors, zero)
    shift_error = state.sigma_g * math.sqrt(k) * (1 if adapter.autograd else 0) + errors.on
    kind_findings, state.non_ce = _kind_findings(fits, errors, zero, shift_error)
    state.findings.extend(kind_findings)
    state.findings.extend(f"label {y}: {reason}" for y, reason in fits.failed.items() if y not in fits.nonfinite)


def _stage_validate(state: _State) -> None:
    """Validate: the model must predict the loss at fresh logits (else: approximate, or no cross-entropy)."""
    state.progress.stage("validate")
    adapter, fits, model, reduction = state.adapter, state.fits, state.model, state.reduction
    k = adapter.num_classes
    validated = [int(y) for y in fits.labels if int(y) not in state.zero]
    if not state.dense:
        skip = state.excluded | state.zero | {int(y) for y in fits.labels}
        validated += [int(y) for y in state.rng.choice(k, size=min(k, GRADIENT_SAMPLE), replace=False) if int(y) not in skip]
    weight = reduction.weight(2) if reduction.kind else 0.5
    deviations = validate_labels(adapter, model, validated, state.rng, state.sigma_v, state.errors, state.sigma_g, weight)
    state.tolerance = Z * 2 * state.sigma_v / state.noise.value_scale
    floor = Z * (state.sigma_g if adapter.autograd else state.sigma_v)  # rounding: above it, an entry is no zero
    state.approximation = approximate_cross_entropy(deviations, model, adapter.autograd, state.noise.value_scale, floor)
    if state.approximation is not None:
        state.notes.append(state.approximation.describe(adapter.autograd))
        state.errors.approximation = state.approximation.gradient
        deviations = [d for d in deviations if d.ratio <= 1]
    size = _deviation_size(deviations, model, adapter.autograd, floor)
    validation, state.failing, worst = validation_findings(deviations, len(validated), state.tolerance, size)
    state.residual = worst * state.tolerance
    detached = None
    if validation and all(d.gradient_ratio <= 1 for d in deviations):
        detached = _detached_finding(adapter, [int(y) for y in fits.labels[:2]], state.rng, state.sigma_v)
    state.findings.extend([detached] if detached else validation)
    state.coverage = _coverage(adapter, state.dense, fits, validated)


def _deviation_size(deviations: list[LabelDeviation], model: TargetModel, autograd: bool, floor: float) -> str:
    """Why a deviation of most labels is no approximation: its size against the smallest target entry."""
    if not deviations or any(d.detail for d in deviations):
        return ""
    what = "gradient entries" if autograd else "values"
    largest = max(d.gradient_error if autograd else d.value_error for d in deviations)
    smallest = smallest_target(model, [d.label for d in deviations], floor)
    return (
        f"; its {what} deviate by up to {largest:.2g}, not less than half its smallest target entry ({smallest:.3g}), "
        f"so it is no approximate cross-entropy either"
    )


def _stage_sweep(state: _State) -> None:
    """At large K: every label's value once, in batches (see :func:`~lstheory.testing.validate.sweep_every_label`)."""
    adapter, reduction, fits = state.adapter, state.reduction, state.fits
    k = adapter.num_classes
    if state.dense or reduction.kind is None:
        return
    sweep_labels = np.array([y for y in range(k) if y not in state.excluded and y not in state.zero])
    batch = int(max(8, min(256, SWEEP_LOGITS // k)))
    sweep_adapter = adapter.with_input_dtype("float32") if _accepts_float32(adapter) else adapter
    sweep_sigma = _sweep_sigma(sweep_adapter, state.noise, state.sigma_v, state.normal, state.rng)
    deviation = state.approximation.value if state.approximation is not None else 0.0
    state.progress.stage("every label", len(sweep_labels))
    sweep = sweep_every_label(
        sweep_adapter, state.model, reduction, sweep_labels, state.rng, 2 * sweep_sigma, batch, state.errors,
        state.progress.advance, deviation,
    )
    state.zero |= set(sweep.nonfinite)
    broken = [y for y in sweep.flagged if y not in state.zero]
    if broken:
        state.findings.append(
            f"labels {labels_text(broken)} ({len(broken)} of {k}): their loss at the sweep's logits differs from "
            f"the model fitted on {len(fits.labels)} sampled labels by more than its rounding allows: the loss "
            f"treats these labels differently" + ("; " + sweep.failures[-1] if sweep.failures else "")
        )
        state.failing |= set(broken)
    state.coverage += (
        f"; every label's value checked once at fresh logits, in batches of {batch} ({sweep.dtype}): a single "
        f"label deviating by more than {sweep.threshold:.1e} would be found"
    )


def _stage_padding(state: _State, ignore_index: int | None) -> None:
    """Padding: the declared padding label, zero-loss labels; then random batches against the reduction."""
    state.progress.stage("padding")
    adapter, reduction = state.adapter, state.reduction
    behaviour, detail, findings, notes, padding = _probe_all_padding(
        adapter, reduction, ignore_index, state.zero, state.normal, state.rng, state.sigma_v
    )
    state.behaviour, state.detail, state.padding = behaviour, detail, padding
    state.findings.extend(findings)
    state.notes.extend(notes)
    if reduction.kind is not None:
        check_batches(adapter, reduction, state.normal, state.rng, state.sigma_v)
        state.findings.extend(f for f in reduction.findings if f not in state.findings)
    state.model.padding = set(padding)
    for y in padding:
        state.model.m[y] = state.model.c[y] = state.model.on[y] = state.model.off[y] = 0.0


def _accepts_float32(adapter: LossAdapter) -> bool:
    if adapter.input_dtype == "float32" or adapter.num_classes < 8192:
        return adapter.input_dtype == "float32"
    try:
        adapter.with_input_dtype("float32").evaluate(np.zeros((2, adapter.num_classes)), np.array([0, 1]))
    except LossCallError:
        return False
    return True


def _sweep_sigma(sweep_adapter: LossAdapter, noise: Noise, sigma_v: float, normal: list[int], rng) -> float:
    if sweep_adapter.input_dtype == "float64" or noise.dtype != "float64":
        return sigma_v
    measured, _ = safe_measure_noise(sweep_adapter, set(), rng, labels=normal)
    if measured is None:
        return sigma_v
    return max(measured.value_sigma, measured.level / 2 * measured.value_scale, sigma_v)


def _summarise(state: _State, intended: float | None) -> tuple[list[int], bool, Any, str, bool]:
    """Report stage, part 1: the ordinary labels, whether each sample is a cross-entropy, eps, constants, mass."""
    model, errors, noise, fits = state.model, state.errors, state.noise, state.fits
    k = model.num_classes
    ordinary = [int(y) for y in fits.labels if int(y) not in state.padding and int(y) not in state.failing | state.non_ce]
    per_sample_ok = not (state.failing | state.non_ce) and not any(
        f.startswith("the loss is nondeterministic") for f in state.findings
    )
    smoothing = summarise_smoothing(model, ordinary if per_sample_ok else [], errors)
    constants = constants_dtype(model, ordinary, errors, intended, smoothing.classes) if noise.dtype == "float64" else noise.dtype
    # The loss's constants (1 - eps + eps/K, eps/K) rounded to its precision move eps a little; noisy values by half a unit.
    eps_rounding, errors.mass_rounding = _constants_rounding(model, ordinary, constants, smoothing.classes)
    errors.rounding = max(eps_rounding, noise.level / 2 if noise.noisy else 0.0)
    if smoothing.eps_off_target is not None:  # recompute with the rounding allowance
        smoothing = summarise_smoothing(model, ordinary, errors)
    masses = model.m[ordinary] if ordinary else np.ones(1)
    mass_ok = bool(np.all(np.abs(masses - 1.0) <= errors.mass))
    return ordinary, per_sample_ok, smoothing, constants, mass_ok


def _report(loss_fn: Callable[..., Any], state: _State, intended: float | None, ignore_index: int | None) -> SmoothingReport:
    """Report stage: the findings and the fitted model as a :class:`SmoothingReport`."""
    adapter, model, errors, reduction, padding = state.adapter, state.model, state.errors, state.reduction, state.padding
    ordinary, per_sample_ok, smoothing, constants, mass_ok = _summarise(state, intended)
    unsmoothed = [c for c in smoothing.unsmoothed if c not in padding]
    target_findings = [
        f"class {labels_text(unsmoothed)} receives no target mass from any other label, though it is no padding "
        f"class (e.g. OpenNMT-py's default ignore_index=-100 zeroes class K-100 of its smoothed target)"
    ] if unsmoothed else []
    weighted = None
    if per_sample_ok and smoothing.eps_off_target is None and state.dense and not padding:
        weighted = weighted_smoothing(model.dense / model.m[:, None], Z * errors.off + errors.rounding)
    form = form_of(model, ordinary, errors) if per_sample_ok else "not_cross_entropy"
    is_ce = per_sample_ok and reduction.kind is not None and not findings_block(state.findings, state.detail)
    return SmoothingReport(
        name=callable_name(loss_fn), num_classes=adapter.num_classes, mass=model.m.copy(), offset=model.c.copy(),
        form=form, is_cross_entropy=is_ce, per_sample_cross_entropy=per_sample_ok, residual=state.residual,
        tolerance=state.tolerance, eps_off_target=smoothing.eps_off_target, eps_uniform=smoothing.eps_uniform,
        eps=intended, convention=convention_of(smoothing, intended, mass_ok, errors), backend=adapter.backend,
        dtype=state.noise.dtype, precision=state.noise.level, autograd=adapter.autograd,
        target_error=max(errors.on, errors.off), eps_error=errors.eps, mass_error=errors.mass,
        approximation=errors.approximation, reduction=reduction.kind, sample_weights=reduction.sample_weights,
        ignore_index=ignore_index, ignore_behaviour=state.behaviour, model=model, ignore_detail=state.detail,
        weighted_smoothing=weighted, findings=tuple(state.findings + target_findings), notes=tuple(state.notes),
        padding_classes=tuple(sorted(padding)), unsmoothed_classes=smoothing.unsmoothed,
        smoothing_classes=smoothing.classes, constants_dtype=constants, reduction_detail=reduction.describe(),
        coverage=state.coverage, options=adapter.options,
    )


def _constants_rounding(model: TargetModel, ordinary: list[int], constants: str, classes: int) -> tuple[float, float]:
    if not ordinary or constants == "float64":
        return 0.0, 0.0
    y = ordinary[0]
    return constants_rounding(constants, abs(float(model.on[y])), abs(float(model.off[y])), abs(float(model.m[y])), classes)


def findings_block(findings: list[str], padding_detail: str) -> bool:
    """Whether any finding (other than the padding probe's) makes the loss no cross-entropy."""
    return any(f != padding_detail for f in findings)


def _coverage(adapter: LossAdapter, dense: bool, fits: LabelFits, validated: list[int]) -> str:
    source = "gradients" if adapter.autograd else "values"
    checked = "values and gradients" if adapter.autograd else "values"
    if dense:
        return (
            f"all {len(fits.labels)} labels fitted (targets from {source}, twice independently) and validated at fresh "
            f"logits ({checked})"
        )
    return (
        f"{len(fits.labels)} sampled labels fitted (targets from {source}, twice independently); {len(validated)} "
        f"labels validated at fresh logits ({checked})"
    )


def infer_smoothing(
    loss_fn: Callable[..., Any],
    num_classes: int,
    *,
    eps: float | None = None,
    ignore_index: int | None = -100,
    seed: int = 0,
    inputs: str = "logits",
    targets: str = "index",
    argument_order: str = "logits_first",
    layout: str = "NK",
) -> SmoothingReport:
    r"""Infer the label-smoothing target a loss implies, from its values and gradients.

    For each label ``y`` the loss of one sample is modelled as

    .. math:: L(z, y) = m_y \operatorname{lse}(z) - t_y \cdot z + c_y,

    ``z`` the logits ``(K,)``, ``t_y`` ``(K,)`` the unnormalised target,
    ``m_y`` its mass and ``c_y`` a constant (0 for a cross-entropy,
    ``sum t log t`` for ``KL(t || softmax(z))``).  ``m, t, c`` are fitted by
    least squares on random probes (gradients with autograd, else values),
    twice independently, and validated on fresh probes for every label
    (see the module docstring for the pipeline).  Both conventions describe
    the same targets, so only an intended ``eps`` names the convention.

    Parameters
    ----------
    loss_fn : callable
        The loss: ``loss_fn(logits, labels)`` returning a scalar (or one value
        per sample, reduced by a mean); torch (float64 or float32, autograd
        optional), NumPy, JAX or Keras.  A ``torch.nn.Module`` works as is.
    num_classes : int
        ``K``, ``2 <= K <= 2**20`` (a Python, NumPy or 0-d torch integer).
        Up to 128 (autograd; 64 values only) every label is fitted; above,
        a sample of labels is fitted and every label validated by its value.
    eps : float in ``[0, 1]``, optional
        The smoothing the loss is meant to apply; sets ``report.convention``.
    ignore_index : int or None
        Padding label to probe (``-100`` by default); any integer, also a
        class index (fairseq's ``padding_idx=1``).  ``None`` probes no padding
        label, but a label whose loss is identically zero is still found.
    seed : int
        Seed of the random probes, ``>= 0`` (the report is deterministic).
    inputs, targets, argument_order, layout : str
        How the loss is called: ``inputs="logits" | "log_probs"``,
        ``targets="index" | "one_hot"``, ``argument_order="logits_first" |
        "target_first"`` (Keras' ``(y_true, y_pred)``), ``layout="NK" |
        "NTK" | "NKT"`` (sequences ``(B, T, K)`` / ``(B, K, T)``).

    Returns
    -------
    SmoothingReport
        ``mass``, ``offset``, ``form``, ``is_cross_entropy``, both eps,
        ``convention``, ``padding_classes``, ``unsmoothed_classes``, findings
        and notes; ``str(report)`` explains it in words.

    Accuracy: each target entry's standard error is ``report.target_error``
    (measured from the two fits); eps is known to ``report.eps_error`` (8
    standard errors of the mean over the labels plus the rounding of the
    loss's constants: about ``1e-15`` for float64, float32's ``6e-8`` for
    float32 targets, ``0.004`` for bfloat16).  A loss whose values or
    gradients leave the model by more than 8 standard deviations of its
    measured rounding noise is no cross-entropy (the report says why).

    References: PyTorch issues #148884 and #130342 (users who could not tell
    which convention a loss uses); Szegedy et al. 2016, arXiv 1512.00567, sec. 7.

    Examples
    --------
    >>> import torch
    >>> from lstheory.testing import infer_smoothing
    >>> def loss(logits, labels):
    ...     return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> report = infer_smoothing(loss, 10, eps=0.1)
    >>> report.is_cross_entropy, report.form, report.convention
    (True, 'cross_entropy', 'uniform')
    >>> print(f"{report.eps_uniform:.6f} {report.eps_off_target:.6f} {report.logit_gap:.4f}")
    0.100000 0.090000 4.5109
    >>> report.reduction, report.ignore_behaviour
    ('mean', 'ignored')
    """
    options = CallOptions(inputs, targets, argument_order, layout)
    return run_checker(loss_fn, num_classes, eps=eps, ignore_index=ignore_index, seed=seed, options=options).report
