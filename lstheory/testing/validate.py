r"""Stage "validate": the fitted model must predict the loss where it was not fitted.

* :func:`validate_labels`: fresh random logits for each given label (a call
  of two samples): the value, and with autograd every gradient entry, must
  match the model within ``Z`` standard deviations of the measured rounding
  noise and the fit's own error predicted from it.
* :func:`sweep_every_label`: at large ``K``, every label once by its value,
  in batches of ``n`` samples that share one random logit vector ``w`` and
  differ at their own label's logit, so that the model's prediction costs
  ``O(1)`` per sample (``lse`` of ``w`` is computed once) and the batch
  buffer is written once.  A batch whose value leaves the prediction is
  bisected until the deviating labels are found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lstheory.testing.adapters import LossAdapter, LossCallError
from lstheory.testing.report import labels_text
from lstheory.testing.batching import Reduction
from lstheory.testing.model import Z, TargetModel
from lstheory.testing.probes import LOGIT_RANGE, nonzero_logits, random_logits, softmax

if TYPE_CHECKING:
    from lstheory.testing.summary import Errors

__all__ = ["Approximation", "LabelDeviation", "approximate_cross_entropy", "validate_labels", "validation_findings", "sweep_every_label", "SweepResult", "MAX_FLAGGED"]

MAX_FLAGGED = 32
"""The sweep bisects at most this many deviating labels (then says how many batches deviated)."""


@dataclass
class LabelDeviation:
    """The largest deviation of one label's loss from its model, in units of the allowed error."""

    label: int
    value_ratio: float
    gradient_ratio: float
    detail: str = ""
    value_error: float = 0.0
    gradient_error: float = 0.0

    @property
    def ratio(self) -> float:
        """The larger of the two ratios (above 1: the label fails)."""
        return max(self.value_ratio, self.gradient_ratio)


def allowed_value_error(value_sigma: float, z: np.ndarray, autograd: bool, arithmetic: float, mass: float) -> float:
    """How far the loss's mean value over the rows of ``z`` may be from the model's.

    ``Z`` times twice the loss's noise ``value_sigma`` (its own rounding, and
    the fit's constant ``c``, which carries one value's noise per half); values
    only, each ``t_c`` is a difference of two values a step 1 apart, so the
    model's ``t . z`` errs by up to ``value_sigma |z| / 2`` more.  Plus the loss's
    own sums: ``m`` off by ``arithmetic`` moves the value by that times the
    spread of ``lse`` over the probes (``2 LOGIT_RANGE``).  Predicted from the
    measured noise, never from the fit's halves (a loss that is no
    cross-entropy makes them disagree: that must not widen the check).
    """
    spread = 1.0 if autograd else 1.0 + float(np.linalg.norm(np.mean(z, axis=0))) / 2
    return Z * 2 * value_sigma * spread + arithmetic * mass * 2 * LOGIT_RANGE


def validate_labels(
    adapter: LossAdapter,
    model: TargetModel,
    labels,
    rng: np.random.Generator,
    value_sigma: float,
    errors: Errors,
    gradient_sigma: float,
    weight: float,
) -> list[LabelDeviation]:
    """Every label of ``labels`` at two fresh random logits; the deviations (ratio > 1 fails).

    A value may deviate by :func:`allowed_value_error`; a gradient entry by
    ``2 Z`` standard deviations of its measured noise relative to its size
    (and to the size the fit's probes saw), plus the loss's arithmetic.
    """
    k = adapter.num_classes
    deviations = []
    for label in labels:
        label = int(label)
        z = random_logits(rng, (2, k))
        try:
            result = adapter.evaluate(z, np.array([label, label]), grad=True)
        except LossCallError as error:
            deviations.append(LabelDeviation(label, np.inf, np.inf, str(error)))
            continue
        predicted = float(np.mean(model.values(z, [label, label])))
        observed = result.value / (2 * weight)
        mass = max(1.0, abs(float(model.m[label])))
        allowed_value = allowed_value_error(value_sigma, z, adapter.autograd, errors.arithmetic, mass)
        value_ratio = abs(observed - predicted) / allowed_value
        gradient_ratio = gradient_error = 0.0
        if result.gradient is not None:
            g = result.gradient / weight
            expected = model.gradients(z, [label, label])
            # The fitted t_i carries the rounding of the fit's probes too, where softmax(z)_i was about 1/K
            # (up to e^8 / K): its error scales with max(|g_i|, q_i) there, not at this probe.
            size = np.abs(g) + (softmax(z) + 4.0 / k) * mass + np.abs(model.row(label))[None, :]
            # + the loss's own sums: its m, so every m q_i, is off by up to ``arithmetic``
            allowed = (2 * Z * gradient_sigma + errors.arithmetic) * size + 1e-300
            gradient_ratio = float(np.max(np.abs(g - expected) / allowed))
            gradient_error = float(np.max(np.abs(g - expected)))
        deviations.append(LabelDeviation(label, value_ratio, gradient_ratio, "", abs(observed - predicted), gradient_error))
    return deviations


@dataclass
class SweepResult:
    """Outcome of :func:`sweep_every_label`."""

    labels_checked: int
    batch_size: int
    threshold: float
    dtype: str
    flagged: list[int] = field(default_factory=list)
    nonfinite: list[int] = field(default_factory=list)
    unresolved_batches: int = 0
    failures: list[str] = field(default_factory=list)


class _Sweep:
    """The shared logits ``w``, the batch buffer and the model's O(1)-per-sample prediction."""

    def __init__(self, adapter: LossAdapter, model: TargetModel, reduction: Reduction, rng, batch: int):
        k = adapter.num_classes
        self.adapter, self.model, self.reduction = adapter, model, reduction
        self.w = nonzero_logits(rng, (k,))
        top = float(np.max(self.w))
        self.top = top
        self.sum_exp = float(np.sum(np.exp(self.w - top)))
        self.profile_dot_w = float(model.profile @ self.w)
        self.buffer = np.empty((batch, k), dtype=adapter.input_dtype)
        self.buffer[:] = self.w
        self.rng = rng

    def predict(self, labels: np.ndarray, u: np.ndarray) -> np.ndarray:
        m = self.model
        w_y = self.w[labels]
        lse_z = self.top + np.log(self.sum_exp - np.exp(w_y - self.top) + np.exp(u - self.top))
        dot = m.on[labels] * u + m.off[labels] * (self.profile_dot_w - m.profile[labels] * w_y)
        values = m.m[labels] * lse_z - dot + m.c[labels]
        for i, y in enumerate(labels):  # exceptional rows: O(K) each, few
            if int(y) in m.exceptions or m.dense is not None:
                z = self.w.copy()
                z[y] = u[i]
                values[i] = m.values(z[None, :], [int(y)])[0]
        return values

    def value(self, labels: np.ndarray, u: np.ndarray, start: int) -> float:
        rows = np.arange(start, start + len(labels))
        self.buffer[rows, labels] = u
        try:
            return self.adapter.evaluate(self.buffer[start : start + len(labels)], labels, finite=False).value
        finally:
            self.buffer[rows, labels] = self.w[labels]


def sweep_every_label(
    adapter: LossAdapter,
    model: TargetModel,
    reduction: Reduction,
    labels: np.ndarray,
    rng: np.random.Generator,
    sigma: float,
    batch: int,
    errors: Errors,
    progress=None,
    deviation: float = 0.0,
) -> SweepResult:
    """Check every label of ``labels`` once by its value, in batches (see the module docstring).

    A batch's mean may leave the model's by :func:`allowed_value_error` at
    the sweep's logits (``sigma``: the loss's noise) plus ``deviation`` (an
    approximate cross-entropy's, per sample).
    """
    sweep = _Sweep(adapter, model, reduction, rng, batch)
    mass = max(1.0, float(np.median(np.abs(model.m))))
    per_sample = allowed_value_error(sigma, sweep.w[None, :], adapter.autograd, errors.arithmetic, mass) + deviation
    allowed = per_sample * (batch if reduction.kind == "sum" else 1)
    result = SweepResult(len(labels), batch, per_sample * (1 if reduction.kind == "sum" else batch), adapter.input_dtype)
    order = rng.permutation(labels)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        u = random_logits(rng, (len(chunk),))
        _check_chunk(sweep, chunk, u, 0, allowed, result)
        if progress is not None:
            progress(len(chunk))
        if len(result.flagged) + len(result.nonfinite) >= MAX_FLAGGED:
            result.unresolved_batches += (len(order) - start - len(chunk) + batch - 1) // batch
            result.failures.append(
                f"stopped after {MAX_FLAGGED} deviating labels; {result.unresolved_batches} batches not swept"
            )
            break
    return result


def _check_chunk(sweep: _Sweep, labels: np.ndarray, u: np.ndarray, start: int, allowed: float, result: SweepResult) -> None:
    try:
        value = sweep.value(labels, u, start)
    except LossCallError as error:
        if len(labels) == 1:
            result.nonfinite.append(int(labels[0]))
            result.failures.append(str(error))
            return
        value = float("nan")
    predicted = sweep.reduction.combine(sweep.predict(labels, u), labels)
    if np.isfinite(value) and abs(value - predicted) <= allowed:
        return
    if len(labels) == 1:
        (result.flagged if np.isfinite(value) else result.nonfinite).append(int(labels[0]))
        return
    if len(result.flagged) + len(result.nonfinite) >= MAX_FLAGGED:
        result.unresolved_batches += 1
        return
    half = len(labels) // 2
    _check_chunk(sweep, labels[:half], u[:half], start, allowed, result)
    _check_chunk(sweep, labels[half:], u[half:], start + half, allowed, result)


def validation_findings(
    deviations: list[LabelDeviation], total: int, tolerance: float, size: str = ""
) -> tuple[list[str], set[int], float]:
    """The failing labels in words: a few labels (the loss treats them differently) or most (no cross-entropy).

    ``size``: how large the deviation is against the targets, added to the latter.
    """
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
        f"not a cross-entropy against a fixed target: {text}{size}; e.g. a focal loss, a margin, a clipped or "
        f"temperature-scaled softmax"
    ], set(labels), worst


@dataclass(frozen=True)
class Approximation:
    """A loss off the cross-entropy by more than rounding, but by less than half its smallest target entry.

    ``gradient``: the largest deviation of a gradient entry from the model's
    (values only: of a value), the error it adds to every target entry;
    ``value``: the largest deviation of one sample's value, ``relative`` to
    the loss's size; ``smallest_target``: the smallest nonzero normalised
    target entry of the validated labels.
    """

    gradient: float
    value: float
    relative: float
    smallest_target: float

    def describe(self, autograd: bool) -> str:
        """The finding in words."""
        what = "gradient entries" if autograd else "values"
        return (
            f"an approximate cross-entropy: its {what} differ from the cross-entropy against its target by up to "
            f"{self.gradient:.2g} (values by {self.relative:.2g} relative), more than its rounding but less than half "
            f"its smallest target entry ({self.smallest_target:.3g}), e.g. log(softmax(z) + delta) or a clamped "
            f"probability; its targets, eps and mass carry that much more error"
        )


def smallest_target(model: TargetModel, labels, floor: float) -> float:
    """The median over ``labels`` of each normalised row's smallest entry (in size) above ``floor``."""
    smallest = []
    for y in labels:
        m = float(model.m[int(y)])
        row = np.abs(model.row(int(y)) / m) if m > 0 else np.zeros(1)
        above = row[row > floor]
        if above.size:
            smallest.append(float(np.min(above)))
    return float(np.median(smallest)) if smallest else 0.0


def approximate_cross_entropy(
    deviations: list[LabelDeviation], model: TargetModel, autograd: bool, scale: float, floor: float
) -> Approximation | None:
    """An :class:`Approximation` when most labels deviate, none raised, and the deviation is small enough.

    Small enough: a gradient (values only: value) deviation below half the
    smallest target entry, so that which classes get mass, eps and the
    convention (eps apart by about that entry, eps/K) are still resolved.
    A few labels deviating is a bug in those labels, never an approximation;
    with autograd the gradient must deviate too (values alone off, the
    gradient exact: a detached term).
    """
    failing = [d for d in deviations if d.ratio > 1]
    if not failing or any(d.detail for d in deviations) or len(failing) < max(2, len(deviations) // 2):
        return None
    if autograd and not any(d.gradient_ratio > 1 for d in failing):
        return None
    value = max(d.value_error for d in deviations)
    gradient = max(d.gradient_error for d in deviations) if autograd else value
    smallest = smallest_target(model, [d.label for d in deviations], floor)
    if not gradient < smallest / 2:
        return None
    return Approximation(gradient, value, value / scale, smallest)
