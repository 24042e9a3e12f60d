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

import numpy as np

from lstheory.testing.adapters import LossAdapter, LossCallError
from lstheory.testing.batching import Reduction
from lstheory.testing.model import Z, TargetModel
from lstheory.testing.probes import lse, nonzero_logits, random_logits, softmax

__all__ = ["LabelDeviation", "validate_labels", "sweep_every_label", "SweepResult", "MAX_FLAGGED"]

MAX_FLAGGED = 32
"""The sweep bisects at most this many deviating labels (then says how many batches deviated)."""


@dataclass
class LabelDeviation:
    """The largest deviation of one label's loss from its model, in units of the allowed error."""

    label: int
    value_ratio: float
    gradient_ratio: float
    detail: str = ""


def validate_labels(
    adapter: LossAdapter,
    model: TargetModel,
    labels,
    rng: np.random.Generator,
    value_sigma: float,
    fit_sigma_factor: float,
    gradient_sigma: float,
    weight: float,
) -> list[LabelDeviation]:
    """Every label of ``labels`` at two fresh random logits; the deviations (ratio > 1 fails)."""
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
        allowed_value = Z * value_sigma * fit_sigma_factor * (1 + np.linalg.norm(z) / 2 if not adapter.autograd else 1)
        value_ratio = abs(observed - predicted) / allowed_value
        gradient_ratio = 0.0
        if result.gradient is not None:
            g = result.gradient / weight
            expected = model.gradients(z, [label, label])
            # The fitted t_i carries the rounding of the fit's probes too, where softmax(z)_i was about 1/K
            # (up to e^8 / K): its error scales with max(|g_i|, q_i) there, not at this probe.
            mass = max(1.0, abs(float(model.m[label])))
            size = np.abs(g) + (softmax(z) + 4.0 / k) * mass + np.abs(model.row(label))[None, :]
            gradient_ratio = float(np.max(np.abs(g - expected) / (2 * Z * gradient_sigma * size + 1e-300)))
        deviations.append(LabelDeviation(label, value_ratio, gradient_ratio))
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
    progress=None,
) -> SweepResult:
    """Check every label of ``labels`` once by its value, in batches (see the module docstring)."""
    sweep = _Sweep(adapter, model, reduction, rng, batch)
    per_sample_sigma = sigma
    allowed = Z * per_sample_sigma * (batch if reduction.kind == "sum" else 1)
    result = SweepResult(len(labels), batch, Z * per_sample_sigma * (1 if reduction.kind == "sum" else batch), adapter.input_dtype)
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
