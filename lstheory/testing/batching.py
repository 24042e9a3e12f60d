r"""Stage "batch and padding": determinism, how a batch is reduced, how padding is treated.

* **determinism**: the same large batch, three times, must give the same
  value (within rounding; dropout does not);
* **reduction**: a batch holding one sample twice is the sample's loss
  (mean) or twice it (sum); for sequence layouts along each axis separately;
  a pair of different labels reveals a class-weighted mean (PyTorch's
  ``weight=``); random batches must then be that reduction of the samples'
  own losses;
* **padding**: samples labelled ``ignore_index`` (inside or outside
  ``[0, K)``) must enter neither the sum nor the mean's denominator, and
  their logits must not matter; a batch of only padding is reported (a mean
  then gives ``0/0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstheory.testing.adapters import LossAdapter, LossCallError
from lstheory.testing.model import Z
from lstheory.testing.probes import random_logits

__all__ = ["Reduction", "check_determinism", "detect_reduction", "probe_padding", "IGNORE_BEHAVIOURS"]

IGNORE_BEHAVIOURS = (
    "ignored",
    "counted in the mean",
    "padded logits change the loss",
    "not ignored",
    "not accepted",
    "not probed",
)
"""Outcomes of the padding probe, see :attr:`SmoothingReport.ignore_behaviour`."""

_DETERMINISM_LOGITS = 2**15  # logits per call of the determinism probe


@dataclass
class Reduction:
    """How the loss reduces a batch of samples.

    ``kind``: ``"mean"``, ``"sum"``, ``"weighted mean"`` or ``None`` (none of
    these); ``axes``: for sequence layouts, the reduction along ``B`` and
    along ``T``; ``per_sample``: the loss returned one value per sample and the
    checker took their mean; ``sample_weights``: for a weighted mean, each
    label's weight (``[0] == 1``).
    """

    kind: str | None
    axes: tuple[str, str] | None = None
    per_sample: bool = False
    sample_weights: np.ndarray | None = None
    findings: list[str] = field(default_factory=list)
    residual: float = 0.0

    def weight(self, n: int) -> float:
        """Weight of one sample in a batch of ``n`` samples of one label."""
        return 1.0 if self.kind == "sum" else 1.0 / n

    def combine(self, values: np.ndarray, labels: np.ndarray) -> float:
        """The loss of a batch from its samples' own losses."""
        if self.kind == "sum":
            return float(np.sum(values))
        if self.kind == "weighted mean" and self.sample_weights is not None:
            w = self.sample_weights[labels]
            return float(np.sum(w * values) / np.sum(w))
        return float(np.mean(values))

    def describe(self) -> str:
        """In words, e.g. ``"mean"`` or ``"mean over B, sum over T"``."""
        if self.kind is None:
            return "inconsistent"
        text = self.kind
        if self.axes is not None:
            text = f"{self.axes[0]} over B, {self.axes[1]} over T"
        if self.per_sample:
            text += " (the loss returns one value per sample; lstheory takes their mean over non-padding samples)"
        return text


def check_determinism(adapter: LossAdapter, labels: list[int], rng: np.random.Generator, unit: float) -> str | None:
    """A finding if the same batch, called three times, gives values further apart than rounding.

    The same inputs give the same bits on a CPU; what is allowed is the
    reordering of a mean over ``n`` samples at the loss's own dtype (machine
    epsilon ``unit``): ``Z unit |L| sqrt(n)``.  Not the measured noise: a
    random operation inflates that too (dropout looks like noisy values).
    """
    k = adapter.num_classes
    n = max(2, math.ceil(_DETERMINISM_LOGITS / k))
    while True:  # a half-precision loss may overflow summing a large batch: then a smaller one
        z = random_logits(rng, (n, k))
        batch_labels = np.array([labels[i % len(labels)] for i in range(n)])
        values = np.array([adapter.evaluate(z, batch_labels, finite=False).value for _ in range(3)])
        if np.all(np.isfinite(values)) or n <= 2:
            break
        n = max(2, n // 16)
    if not np.all(np.isfinite(values)):
        return None
    spread = float(np.ptp(values))
    sigma = unit * max(float(np.max(np.abs(values))), 1.0) * math.sqrt(n)
    if spread <= Z * sigma:
        return None
    return (
        f"the loss is nondeterministic: the same logits ({n} x {k}) and labels gave {values[0]:.10g}, "
        f"{values[1]:.10g} and {values[2]:.10g} (spread {spread:.2e}, rounding {sigma:.1e}): e.g. dropout "
        f"or another random operation is active (call model.eval(), or check without it)"
    )


def _kind(single: float, double: float, slack: float) -> str | None:
    if abs(double - single) <= slack:
        return "mean"
    if abs(double - 2 * single) <= 2 * slack:
        return "sum"
    return None


def detect_reduction(
    adapter: LossAdapter, label: int, rng: np.random.Generator, sigma: float, weighted: bool
) -> Reduction:
    """Mean, sum or weighted mean; per axis for sequence layouts (see the module docstring)."""
    k = adapter.num_classes
    z = random_logits(rng, (1, k))
    y = np.array([label])
    single = adapter.evaluate(z, y).value
    twice = np.vstack([z, z])
    double = adapter.evaluate(twice, np.array([label, label]), arrangement=(2, 1)).value
    slack = Z * sigma
    kind = _kind(single, double, slack)
    reduction = Reduction(kind, per_sample=adapter.per_sample_output)
    if kind is None:
        ratio = double / single if single != 0 else math.nan
        reduction.findings.append(
            f"the loss of a batch holding one sample twice is {ratio:.6g} times that sample's loss (1 for a "
            f"mean, 2 for a sum): the loss depends on the batch size or on other samples of the batch"
        )
        return reduction
    if adapter.options.layout != "NK":  # (B, T) = (2, 1), then (1, 2)
        along_t = adapter.evaluate(twice, np.array([label, label]), arrangement=(1, 2)).value
        reduction.axes = (kind, _kind(single, along_t, slack) or "inconsistent")
    if weighted and kind == "mean" and not adapter.per_sample_output:
        _detect_label_weights(adapter, reduction, sigma, label)
    return reduction


def _detect_label_weights(adapter: LossAdapter, reduction: Reduction, sigma: float, reference: int) -> None:
    """Pair ``(z = 0, label 0)`` with ``(z = -3 e_y, label y)``: a weighted mean gives ``a_y / a_0 = (l_a - L) / (L - l_b)``."""
    k = adapter.num_classes
    zero = np.zeros((1, k))
    l_a = adapter.evaluate(zero, np.array([reference])).value
    weights = np.ones(k)
    allowed = np.full(k, np.inf)
    for label in range(k):
        if label == reference:
            continue
        z_b = np.zeros((1, k))
        z_b[0, label] = -3.0
        try:  # a padding label (zero or non-finite alone) is the padding stage's business
            l_b = adapter.evaluate(z_b, np.array([label])).value
            pair = adapter.evaluate(np.vstack([zero, z_b]), np.array([reference, label])).value
        except LossCallError:
            continue
        if abs(l_b) <= Z * sigma:
            continue
        if max(abs(l_a - pair), abs(pair - l_b)) <= Z * sigma:
            continue  # both samples' losses equal (a constant loss): the weight is not determined
        with np.errstate(divide="ignore", invalid="ignore"):
            weights[label] = np.float64(l_a - pair) / np.float64(pair - l_b)
            allowed[label] = Z * sigma * (1 + abs(weights[label])) / np.float64(abs(pair - l_b))
    if not np.all(np.isfinite(weights) & (weights > 0)):
        reduction.kind = None
        reduction.findings.append(
            "the loss of a two-sample batch does not lie between the two samples' own losses: it is not a "
            "(weighted) mean over samples, so it depends on other samples of the batch"
        )
    elif np.any(np.abs(weights - 1) > allowed):
        reduction.kind = "weighted mean"
        reduction.sample_weights = weights / weights[0]


def check_batches(adapter: LossAdapter, reduction: Reduction, labels: list[int], rng: np.random.Generator, sigma: float) -> None:
    """Random batches must be the reduction of their samples' own losses (else a finding)."""
    k = adapter.num_classes
    for n in (6, 3):
        z = random_logits(rng, (n, k))
        batch_labels = np.array([labels[int(i)] for i in rng.integers(len(labels), size=n)])
        value = adapter.evaluate(z, batch_labels).value
        singles = np.array([adapter.evaluate(z[i : i + 1], batch_labels[i : i + 1]).value for i in range(n)])
        expected = reduction.combine(singles, batch_labels)
        allowed = Z * sigma * (n if reduction.kind == "sum" else 1) * 2
        reduction.residual = max(reduction.residual, abs(value - expected) / max(abs(expected), 1.0))
        if abs(value - expected) > allowed:
            how = "sum" if reduction.kind == "sum" else "mean"
            reduction.findings.append(
                f"the loss depends on other samples of the batch: for a batch of {n} samples it is {value:.10g}, "
                f"but the {how} of the same samples' individual losses is {reduction.combine(singles, batch_labels):.10g}"
            )
            reduction.kind = None
            return


@dataclass
class PaddingOutcome:
    """What the padding probe found."""

    behaviour: str
    detail: str
    note: str = ""


def _all_padding_note(adapter: LossAdapter, pad: int, rng) -> str:
    k = adapter.num_classes
    try:
        value = adapter.evaluate(random_logits(rng, (2, k)), np.array([pad, pad]), finite=False).value
    except LossCallError as error:
        return f"a batch of only padding (labels {pad}) makes the loss raise: {error}"
    if not math.isfinite(value):
        return f"a batch of only padding (labels {pad}) gives {value} (a mean over no samples: 0/0)"
    return ""


def probe_padding(
    adapter: LossAdapter, reduction: Reduction, pad: int, labels: list[int], rng: np.random.Generator, sigma: float
) -> PaddingOutcome:
    """Probe a batch with padded labels; the behaviour is an entry of :data:`IGNORE_BEHAVIOURS`."""
    k = adapter.num_classes
    real = [labels[int(i)] for i in rng.integers(len(labels), size=3)]
    batch_labels = np.array([real[0], pad, real[1], pad, real[2]])
    kept = batch_labels != pad
    z = random_logits(rng, (5, k))
    note = _all_padding_note(adapter, pad, rng)
    try:
        padded = adapter.evaluate(z, batch_labels).value
    except LossCallError as error:
        return PaddingOutcome("not accepted", f"labels {pad} are not accepted ({error})", note)
    other = z.copy()
    other[~kept] = random_logits(rng, (int((~kept).sum()), k))
    try:
        padded_other = adapter.evaluate(other, batch_labels).value
    except LossCallError:
        padded_other = math.nan
    singles = np.array([adapter.evaluate(z[i : i + 1], batch_labels[i : i + 1]).value for i in np.flatnonzero(kept)])
    expected = reduction.combine(singles, batch_labels[kept])
    counted = expected * kept.sum() / len(batch_labels)
    slack = Z * sigma * (5 if reduction.kind == "sum" else 2)
    n, n_kept = len(batch_labels), int(kept.sum())
    if not abs(padded_other - padded) <= slack:
        return PaddingOutcome("padded logits change the loss", (
            f"changing the logits of the samples labelled {pad} changes the loss from {padded:.10g} to "
            f"{padded_other:.10g}: padded samples still enter the loss (e.g. its smoothing term, cf. PyTorch #73205)"
        ), note)
    if abs(padded - expected) <= slack:
        return PaddingOutcome("ignored", f"samples labelled {pad} are ignored", note)
    if reduction.kind != "sum" and abs(padded - counted) <= slack:
        return PaddingOutcome("counted in the mean", (
            f"padding counted in the mean: with {n - n_kept} of {n} labels = {pad}, the loss is {padded:.10g} = "
            f"(sum over the {n_kept} real samples) / {n}, but the mean over the non-ignored samples is "
            f"{expected:.10g}; divide by the number of non-ignored samples, not by N"
        ), note)
    return PaddingOutcome("not ignored", (
        f"samples labelled {pad} are not ignored: the loss of a batch with {n - n_kept} of {n} labels = {pad} is "
        f"{padded:.10g}, but the {reduction.kind} over the non-ignored samples is {expected:.10g} (pass "
        f"ignore_index=None if the loss does not take padded labels)"
    ), note)
