"""A float64 reference of label-smoothed cross-entropy, written class by class from the documented rules.

It shares nothing with :mod:`lstheory.torch.loss` but the target masses ``(p_true, p_other)`` of
:func:`lstheory.closed_form.smoothed_target` (the closed forms, checked to ulps against mpmath
elsewhere): no blocks, no scatter, no coefficients ``a`` and ``b``.  The rules, from the docstring
of :func:`lstheory.torch.label_smoothed_cross_entropy`:

* the loss at a position is ``sum_c t_c (-log q_c)``, ``q = softmax(logits)``, with target masses
  ``t_c = w_c p_true`` (true class) and ``w_c p_other`` (other classes) for class indices, and
  ``t_c = w_c (p_c p_true + (1 - p_c) p_other)`` for class probabilities ``p``;
* a class whose mass is exactly zero adds 0 (even where ``log q_c = -inf``); one whose mass is
  positive (however small: ``eps = 5e-324`` counts) adds ``+inf`` where ``q_c = 0``;
* a row whose softmax is undefined (a NaN or ``+inf`` logit, or every logit ``-inf``) gives NaN;
* ignored positions give 0; ``mean`` divides by ``sum_n w_{y_n}`` over kept positions (class
  indices) or by the number of positions (probabilities), NaN where that is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lstheory.closed_form import smoothed_target


@dataclass(frozen=True)
class Reference:
    """The reference per-position losses and totals, with the error bound of a correct implementation."""

    per_position: torch.Tensor  # (N, D) float64
    bound: torch.Tensor  # (N, D): |computed - exact| allowed in the accumulation dtype, before the output rounding
    denominator: float  # the mean's denominator (NaN where it is 0)

    def reduced(self, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The value and its error bound for ``reduction`` (shapes: (N, D) for ``none``, () otherwise)."""
        if reduction == "none":
            return self.per_position, self.bound
        total, bound = self.per_position.sum(), self.bound.sum()
        if reduction == "sum":
            return total, bound
        return total / self.denominator, bound / abs(self.denominator)


def _masses(num_classes, target, weight, eps, convention, ignore_index, probability_target):
    """``(t, positive)``: float64 masses ``(N, K, D)`` and whether each is exactly positive."""
    p_true, p_other = (float(x) for x in smoothed_target(num_classes, eps, convention=convention))
    w = weight.double().view(1, -1, 1)
    if probability_target:
        p = target.double()
        t = w * (p * p_true + (1 - p) * p_other)
        positive = (w > 0) & (((p > 0) & (p_true > 0)) | ((p < 1) & (eps > 0)))
        return t, positive
    is_true = torch.arange(num_classes).view(1, -1, 1) == target.unsqueeze(1)
    t = w * torch.where(is_true, torch.tensor(p_true, dtype=torch.float64), torch.tensor(p_other, dtype=torch.float64))
    positive = (w > 0) & torch.where(is_true, torch.tensor(p_true > 0), torch.tensor(eps > 0))
    kept = (target != ignore_index).unsqueeze(1)
    return t * kept, positive & kept


def reference_loss(logits, target, eps, *, convention, weight, ignore_index, probability_target, accumulation):
    """The reference for ``(N, K, D)`` logits and an ``(N, D)`` index or ``(N, K, D)`` probability target.

    ``accumulation`` is the dtype a correct implementation computes in (float32 for half inputs),
    with unit roundoff ``u`` and smallest positive number ``s``.  The bound per position is
    ``4 (K + 1) u (loss + T (log K + 1)) + s sum_c w_c |log q_c|``, ``T = sum_c t_c``: every term
    of the sum is ``t_c |log q_c|`` with ``log q_c`` good to a few ``u (|log q_c| + log K + 1)``
    and each mass good to ``u t_c`` or, below the normal range, to one step ``s`` (rounded to
    the nearest, or up to ``s`` from below it, as documented).
    """
    finfo = torch.finfo(accumulation)
    unit_roundoff, smallest = finfo.eps / 2, finfo.tiny * finfo.eps
    z = logits.double()
    num_classes = z.shape[1]
    if not probability_target:
        target = target.long()  # labels are numbers: compared as such, whatever their dtype
    if weight is None:
        weight = torch.ones(num_classes, dtype=torch.float64)
    t, positive = _masses(num_classes, target, weight, eps, convention, ignore_index, probability_target)
    log_q = torch.log_softmax(z, dim=1)
    terms = torch.where(positive & (log_q == -math.inf), math.inf, -t * log_q)
    terms = torch.where(positive | torch.isnan(log_q), terms, torch.zeros_like(terms))  # zero mass adds 0
    per_position = terms.sum(1)
    undefined = torch.isnan(z).any(1) | (z == math.inf).any(1) | (z == -math.inf).all(1)
    per_position = torch.where(undefined, math.nan, per_position)
    if probability_target:
        denominator = per_position.numel() or math.nan
    else:
        kept = target != ignore_index
        per_position = torch.where(kept, per_position, torch.zeros_like(per_position))
        safe = torch.where(kept, target, 0)
        denominator = float(torch.where(kept, weight.double()[safe], 0.0).sum()) or math.nan
    total_mass = t.abs().sum(1)
    finite = torch.where(torch.isfinite(per_position), per_position.abs(), torch.zeros_like(per_position))
    bound = 4 * (num_classes + 1) * unit_roundoff * (finite + total_mass * (math.log(num_classes) + 1))
    weighted_log_q = (weight.double().abs().view(1, -1, 1) * -log_q).nan_to_num(nan=0.0, posinf=0.0).sum(1)
    return Reference(per_position, bound + smallest * weighted_log_q, denominator)
