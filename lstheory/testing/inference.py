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
   measured noise: every label (densely), or, at large ``K``, every label's
   value once in batches and the gradients of a fresh sample of labels;
7. **padding** (:mod:`~lstheory.testing.batching`): padded labels, inside or
   outside ``[0, K)``, and labels whose loss is zero;
8. **report** (:mod:`~lstheory.testing.report`): eps over the smoothed
   classes, the convention, the form, the findings in words.

A label whose ``m`` is 0 (a linear loss), negative (a negated one) or not
the target's sum (not shift-invariant) is no cross-entropy, whatever the fit.

Reference: the decomposition ``CE = H(p) + KL(p || q)`` and its minimiser,
Cover and Thomas, "Elements of Information Theory", 2nd ed., Thm. 2.6.3.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lstheory._validation import as_eps, as_num_classes
from lstheory.testing.adapters import PRECISION_LEVELS, CallOptions, LossAdapter, LossCallError, callable_name
from lstheory.testing.batching import Reduction, check_batches, check_determinism, detect_reduction, probe_padding
from lstheory.testing.fit import COARSE_PROBES_PER_HALF, PROBES_PER_HALF, LabelFits, fit_labels
from lstheory.testing.model import Z, TargetModel, label_kind, structure_from_rows, structured_masses, structured_offsets
from lstheory.testing.noise import Noise, safe_measure_noise
from lstheory.testing.report import SmoothingReport, WeightedSmoothing, labels_text
from lstheory.testing.summary import (
    Errors,
    constants_dtype,
    constants_rounding,
    convention_of,
    loss_arithmetic,
    form_of,
    summarise_smoothing,
    weighted_smoothing,
)
from lstheory.testing.validate import sweep_every_label, validate_labels

__all__ = ["SmoothingReport", "WeightedSmoothing", "infer_smoothing", "run_checker", "CheckerRun", "MAX_CHECKER_CLASSES"]

MAX_CHECKER_CLASSES = 2**20
"""Largest ``K`` the checker accepts: checking every label costs ``K**2`` logit evaluations."""
DENSE_LIMIT = {True: 128, False: 64}
"""Largest ``K`` at which every label is fitted (with autograd / values only)."""
SAMPLED_LABELS = {True: 16, False: 3}
"""Labels fitted at larger ``K`` (with autograd / values only)."""
GRADIENT_SAMPLE = 32
"""Fresh labels whose gradients validate the structured model at larger ``K``."""
_SWEEP_LOGITS = 2**24  # logits per sweep batch, at most


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
    intended = None if eps is None else float(as_eps(eps))
    if np.ndim(intended) != 0:
        raise TypeError(f"eps must be a single real number with 0 <= eps <= 1; got {eps!r}")
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


def _errors(fits: LabelFits, noise: Noise, sigma_value: float, autograd: bool = True) -> Errors:
    """Standard errors from the halves' differences (their half), floored by the measured noise."""
    k = fits.num_classes
    rows = np.arange(len(fits.labels))
    diagonal = fits.dt[rows, fits.labels] if len(rows) else np.zeros(1)
    off = fits.dt.copy()
    off[rows, fits.labels] = 0.0
    floor = noise.level / (2 * math.sqrt(2 * fits.probes))  # half a unit, averaged over the fit's probes
    on = max(float(np.sqrt(np.mean(diagonal**2))) / 2, floor)
    off_error = max(float(np.sqrt(np.mean(off**2) * k / max(k - 1, 1))) / 2 if len(rows) else 0.0, floor / k)
    m = max(float(np.sqrt(np.mean(fits.dm**2))) / 2 if len(rows) else 0.0, floor)
    c = max(float(np.sqrt(np.mean(fits.dc**2))) / 2 if len(rows) else 0.0, sigma_value)
    # eps is read off the normalised diagonal on / m: its own error, to first order d(on) / m - on d(m) / m**2
    massive = np.abs(fits.m) > Z * m if len(rows) else np.zeros(0, dtype=bool)
    normalised = (diagonal / fits.m - fits.t[rows, fits.labels] * fits.dm / fits.m**2)[massive] if massive.any() else np.zeros(1)
    diagonal_error = max(float(np.sqrt(np.mean(normalised**2))) / 2, floor)
    if not autograd:  # t = tau + m kappa with |kappa_c| <= 1: the error of m moves every entry
        on, off_error = max(on, m), max(off_error, m)
    return Errors(on, off_error, m, c, max(len(rows), 1), diagonal=diagonal_error)


def _padding_rows(fits: LabelFits, errors: Errors) -> set[int]:
    """Fitted labels whose loss is identically zero (``m = t = c = 0``), and those non-finite alone."""
    zero = set(fits.nonfinite)
    for i, y in enumerate(fits.labels):
        if abs(fits.m[i]) <= Z * errors.m and np.max(np.abs(fits.t[i])) <= Z * errors.on and abs(fits.c[i]) <= Z * errors.c:
            zero.add(int(y))
    return zero


def _build_model(fits: LabelFits, k: int, dense: bool, errors: Errors, padding: set[int]) -> TargetModel:
    """Every label's row: densely when all were fitted, else the structured form (shared by unfitted labels)."""
    keep = [i for i, y in enumerate(fits.labels) if int(y) not in padding]
    labels, rows = fits.labels[keep], fits.t[keep]
    entry_error = np.full(len(keep), errors.off)
    if len(keep):
        on, off, profile, misfits = structure_from_rows(k, labels, rows, entry_error)
    else:
        on, off, profile, misfits = np.zeros(0), np.zeros(0), np.ones(k), []
    on_all = np.full(k, float(np.median(on)) if len(on) else 0.0)
    off_all = np.full(k, float(np.median(off)) if len(off) else 0.0)
    on_all[labels], off_all[labels] = on, off
    every = np.arange(k)
    # Unfitted labels: m = sum(t) (shift invariance) and c in the fitted labels' form (0, KL, ...).
    m_all = structured_masses(on_all, off_all, profile, every) if len(keep) else np.zeros(k)
    c_allowed = Z * (errors.c + k * errors.off * (1 + abs(math.log(max(float(np.median(np.abs(off_all))), 1e-300)))))
    c_all = structured_offsets(on_all, off_all, profile, every, labels, fits.c[keep], c_allowed) if len(keep) else np.zeros(k)
    m_all[fits.labels], c_all[fits.labels] = fits.m, fits.c
    for y in padding:
        m_all[y] = c_all[y] = on_all[y] = off_all[y] = 0.0
    model = TargetModel(k, m_all, c_all, on_all, off_all, profile, padding=set(padding))
    if dense:
        matrix = np.zeros((k, k))
        matrix[fits.labels] = fits.t
        model.dense = matrix
    else:
        model.exceptions = {int(labels[i]): rows[i] for i in misfits}
    return model


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


def _validation_findings(deviations, total: int, tolerance: float) -> tuple[list[str], set[int], float]:
    failing = [d for d in deviations if max(d.value_ratio, d.gradient_ratio) > 1]
    worst = max((max(d.value_ratio, d.gradient_ratio) for d in deviations), default=0.0)
    if not failing:
        return [], set(), worst
    labels = sorted(d.label for d in failing)
    errors = [d.detail for d in failing if d.detail]
    if errors:
        return [f"the loss failed at fresh logits for labels {labels_text(labels)}: {errors[0]}"], set(labels), worst
    what = "value" if any(d.value_ratio > 1 for d in failing) else "gradient"
    ratio = max(max(d.value_ratio, d.gradient_ratio) for d in failing)
    text = (
        f"at fresh random logits its {what} differs from the cross-entropy against its fitted target by up to "
        f"{ratio:.3g} times the allowed error (relative {ratio * tolerance:.2e}; allowed: {Z:g} standard "
        f"deviations of its measured rounding noise)"
    )
    if len(labels) < max(2, len(deviations) // 2):
        return [
            f"labels {labels_text(labels)} ({len(labels)} of {total}) are no cross-entropy: {text}; the other labels "
            f"fit one: the loss treats these labels differently"
        ], set(labels), worst
    return [
        f"not a cross-entropy against a fixed target: {text}; e.g. a focal loss, a margin, a clipped or "
        f"temperature-scaled softmax"
    ], set(labels), worst


def _detached_finding(adapter: LossAdapter, labels: list[int], rng: np.random.Generator, sigma: float) -> str | None:
    """When the gradient fits but the values do not: are the values alone a cross-entropy (a detached term)?"""
    if not adapter.autograd or adapter.num_classes > DENSE_LIMIT[False]:
        return None
    values_only = LossAdapter(adapter.loss_fn, adapter.num_classes, adapter.options, adapter.backend,
                              adapter.input_dtype, adapter.output_dtype, False, adapter.per_sample_output,
                              adapter.ignore_index)
    try:
        fits = fit_labels(values_only, labels[:2], rng, 1.0)
        errors = _errors(fits, Noise(sigma, 1.0, 0.0, 0.0, "float64", False, 0.0), sigma, False)
        model = _build_model(fits, adapter.num_classes, True, errors, set())
        deviations = validate_labels(values_only, model, fits.labels, rng, sigma, 2.0, 1.0, 0.5)
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
    rng = np.random.default_rng(seed)
    excluded = {ignore_index} if ignore_index is not None and 0 <= ignore_index < k else set()
    progress.stage("noise")
    noise, normal = safe_measure_noise(adapter, excluded, rng)
    if noise is None:
        raise LossCallError(f"loss_fn raised or returned a non-finite value for every label tried: {normal}")
    sigma_v = max(noise.value_sigma, noise.level / 2 * noise.value_scale)
    sigma_g = max(noise.gradient_sigma, noise.level / 2)
    findings: list[str] = []
    determinism = check_determinism(adapter, normal, rng, PRECISION_LEVELS[noise.dtype])
    if determinism:
        findings.append(determinism)
    dense, labels = _regime_labels(k, adapter.autograd, excluded, rng)
    progress.stage("batch reduction")
    reduction = detect_reduction(adapter, normal[0], rng, sigma_v, weighted=dense and k <= 256)
    findings.extend(reduction.findings)
    coarse = noise.level > PRECISION_LEVELS["float32"]
    probes = COARSE_PROBES_PER_HALF if coarse else PROBES_PER_HALF
    weight = reduction.weight(probes) if reduction.kind is not None else 1.0 / probes
    progress.stage("fit", len(labels))
    fits = fit_labels(adapter, labels, rng, weight, progress.advance, probes, coarse)
    errors = _errors(fits, noise, sigma_v, adapter.autograd)
    candidates = _padding_rows(fits, errors)
    if candidates >= {int(y) for y in fits.labels} | set(fits.failed):
        candidates = set()  # every label zero: a constant loss, not padding (the kind stage names it)
    model = _build_model(fits, k, dense, errors, candidates)
    kind_findings, non_ce = _kind_findings(fits, errors, candidates, sigma_g * math.sqrt(k) * (1 if adapter.autograd else 0) + errors.on)
    findings.extend(kind_findings)
    findings.extend(f"label {y}: {reason}" for y, reason in fits.failed.items() if y not in fits.nonfinite)
    progress.stage("validate")
    validated = [y for y in fits.labels if int(y) not in candidates]
    if not dense:
        validated += [int(y) for y in rng.choice(k, size=min(k, GRADIENT_SAMPLE), replace=False)
                      if int(y) not in excluded and int(y) not in candidates and int(y) not in fits.labels]
    factor = 2.0
    deviations = validate_labels(adapter, model, validated, rng, sigma_v, factor, sigma_g, reduction.weight(2) if reduction.kind else 0.5)
    tolerance = Z * sigma_v * factor / noise.value_scale
    validation, failing, worst = _validation_findings(deviations, len(validated), tolerance)
    detached = None
    if validation and all(d.gradient_ratio <= 1 for d in deviations):
        detached = _detached_finding(adapter, [int(y) for y in fits.labels[:2]], rng, sigma_v)
    findings.extend([detached] if detached else validation)
    coverage = _coverage(adapter, dense, fits, validated)
    if not dense and reduction.kind is not None:
        sweep_labels = np.array([y for y in range(k) if y not in excluded and y not in candidates])
        batch = int(max(8, min(256, _SWEEP_LOGITS // k)))
        sweep_adapter = adapter.with_input_dtype("float32") if _accepts_float32(adapter) else adapter
        sweep_sigma = _sweep_sigma(sweep_adapter, noise, sigma_v, normal, rng)
        progress.stage("every label", len(sweep_labels))
        sweep = sweep_every_label(sweep_adapter, model, reduction, sweep_labels, rng, 2 * sweep_sigma, batch, progress.advance)
        candidates |= set(sweep.nonfinite)
        broken = [y for y in sweep.flagged if y not in candidates]
        if broken:
            findings.append(
                f"labels {labels_text(broken)} ({len(broken)} of {k}): their loss at the sweep's logits differs from "
                f"the model fitted on {len(fits.labels)} sampled labels by more than its rounding allows: the loss "
                f"treats these labels differently" + ("; " + sweep.failures[-1] if sweep.failures else "")
            )
            failing |= set(broken)
        coverage += (
            f"; every label's value checked once at fresh logits, in batches of {batch} ({sweep.dtype}): a single "
            f"label deviating by more than {sweep.threshold:.1e} would be found"
        )
    progress.stage("padding")
    behaviour, detail, pad_findings, notes, padding = _probe_all_padding(
        adapter, reduction, ignore_index, candidates, normal, rng, sigma_v
    )
    findings.extend(pad_findings)
    if reduction.kind is not None:
        check_batches(adapter, reduction, normal, rng, sigma_v)
        findings.extend(f for f in reduction.findings if f not in findings)
    model.padding = padding | (candidates & padding)
    for y in padding:
        model.m[y] = model.c[y] = model.on[y] = model.off[y] = 0.0
    report = _report(
        loss_fn, adapter, model, fits, errors, noise, reduction, intended, ignore_index, findings, notes,
        padding, failing | non_ce, worst * tolerance, tolerance, behaviour, detail, coverage, dense,
    )
    return CheckerRun(report, adapter, noise, reduction, errors, sigma_v)


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


def _report(loss_fn, adapter, model, fits, errors, noise, reduction, intended, ignore_index, findings, notes,
            padding, failing, residual, tolerance, behaviour, detail, coverage, dense) -> SmoothingReport:
    k = adapter.num_classes
    ordinary = [int(y) for y in fits.labels if int(y) not in padding and int(y) not in failing]
    per_sample_ok = not failing and not any(f.startswith("the loss is nondeterministic") for f in findings)
    smoothing = summarise_smoothing(model, ordinary, errors) if per_sample_ok else summarise_smoothing(model, [], errors)
    constants = constants_dtype(model, ordinary, errors, intended, smoothing.classes) if noise.dtype == "float64" else noise.dtype
    # The loss's constants (1 - eps + eps/K, eps/K) rounded to its precision move eps a little; noisy values by half a unit.
    eps_rounding, errors.mass_rounding = _constants_rounding(model, ordinary, constants, smoothing.classes)
    errors.arithmetic = loss_arithmetic(noise.dtype, k)
    errors.rounding = max(eps_rounding, noise.level / 2 if noise.noisy else 0.0)
    if smoothing.eps_off_target is not None:  # recompute with the rounding allowance
        smoothing = summarise_smoothing(model, ordinary, errors)
    masses = model.m[ordinary] if ordinary else np.ones(1)
    mass_ok = bool(np.all(np.abs(masses - 1.0) <= errors.mass))
    target_findings = [
        f"class {labels_text([c for c in smoothing.unsmoothed if c not in padding])} receives no target mass from any "
        f"other label, though it is no padding class (e.g. OpenNMT-py's default ignore_index=-100 zeroes class K-100 "
        f"of its smoothed target)"
    ] if any(c not in padding for c in smoothing.unsmoothed) else []
    weighted = None
    if per_sample_ok and smoothing.eps_off_target is None and dense and not padding:
        weighted = weighted_smoothing(model.dense / model.m[:, None], Z * errors.off + errors.rounding)
    form = form_of(model, ordinary, errors) if per_sample_ok else "not_cross_entropy"
    is_ce = per_sample_ok and reduction.kind is not None and not findings_block(findings, detail)
    return SmoothingReport(
        name=callable_name(loss_fn), num_classes=k, mass=model.m.copy(), offset=model.c.copy(),
        form=form if is_ce or per_sample_ok else "not_cross_entropy", is_cross_entropy=is_ce,
        per_sample_cross_entropy=per_sample_ok, residual=residual, tolerance=tolerance,
        eps_off_target=smoothing.eps_off_target, eps_uniform=smoothing.eps_uniform, eps=intended,
        convention=convention_of(smoothing, intended, mass_ok, errors), backend=adapter.backend, dtype=noise.dtype,
        precision=noise.level, autograd=adapter.autograd, target_error=max(errors.on, errors.off), eps_error=errors.eps,
        mass_error=errors.mass,
        reduction=reduction.kind, sample_weights=reduction.sample_weights, ignore_index=ignore_index,
        ignore_behaviour=behaviour, model=model, ignore_detail=detail, weighted_smoothing=weighted,
        findings=tuple(findings + target_findings), notes=tuple(notes), padding_classes=tuple(sorted(padding)),
        unsmoothed_classes=smoothing.unsmoothed, smoothing_classes=smoothing.classes, constants_dtype=constants,
        reduction_detail=reduction.describe(), coverage=coverage, options=adapter.options,
    )


def _constants_rounding(model: TargetModel, ordinary: list[int], constants: str, classes: int) -> tuple[float, float]:
    if not ordinary or constants == "float64":
        return 0.0, 0.0
    y = ordinary[0]
    return constants_rounding(constants, abs(float(model.on[y])), abs(float(model.off[y])), abs(float(model.m[y])), classes)


def findings_block(findings: list[str], padding_detail: str) -> bool:
    """Whether any finding (other than the padding probe's) makes the loss no cross-entropy."""
    return any(f != padding_detail for f in findings)


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
