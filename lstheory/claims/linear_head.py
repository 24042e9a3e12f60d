"""The smoothing term of a linear head: class sums and a rank-one gradient (the fused loss's basis).

Checked at every level: SymPy proves the identity (symbolic ``K`` and ``H``) and
the loss's gradients (explicit entries) exactly; SciPy confirms the gradient
formula against finite differences of a NumPy composite; torch compares
:func:`lstheory.torch.linear_label_smoothed_cross_entropy` with autograd of the
eager composites in float64.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special

from lstheory.claims._levels import all_of, proven, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import smoothed_target
from lstheory.symbolic.linear_head import linear_head_smoothing

SOURCE = ("Linearity of the head z = W h + b (issue 12); Liger-Kernel's fused linear cross-entropy (smoothing in "
          "PR #198, wrong gradients with reduction='none' in #488/#968); Wijmans et al. 2024, arXiv 2411.09009")
TORCH_TOLERANCE = 1e-10
"""Relative agreement in float64 of the fused loss's value and gradients with the eager composites'."""


def _symbolic(context: CheckContext) -> CheckResult:
    return all_of(proven(linear_head_smoothing()), proven(linear_head_smoothing(2, 3, 3), steps=list(range(2, 12))))


# --------------------------------------------------------------------------- SciPy


def _coefficients(num_classes: int, eps: float, convention: str) -> tuple[float, float]:
    p_true, p_other = smoothed_target(num_classes, eps, convention=convention)
    return float(p_true - p_other), float(p_other)


class _NumpyHead:
    """A random linear head, targets, class weights and upstream gradients, and its loss in NumPy/SciPy."""

    def __init__(self, seed: int, num_rows: int = 5, hidden_size: int = 4, num_classes: int = 7):
        rng = np.random.default_rng(seed)
        self.shapes = ((num_classes, hidden_size), (num_rows, hidden_size), (num_classes,))
        self.parameters = np.concatenate([rng.normal(size=s).ravel() for s in self.shapes])
        self.omega = rng.uniform(0.5, 2.0, num_classes)
        self.labels = rng.integers(0, num_classes, num_rows)
        self.upstream = rng.normal(size=num_rows)

    def unpack(self, parameters: np.ndarray):
        sizes = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        return [part.reshape(shape) for part, shape in zip(np.split(parameters, sizes), self.shapes)]

    def weighted_loss(self, parameters: np.ndarray, a: float, b: float) -> float:
        """``sum_n g_n loss_n`` from explicit logits and ``scipy.special.logsumexp``."""
        classifier, hidden, bias = self.unpack(parameters)
        logits = hidden @ classifier.T + bias
        lse = scipy.special.logsumexp(logits, axis=1)
        rows = np.arange(len(self.labels))
        true_term = a * self.omega[self.labels] * (lse - logits[rows, self.labels])
        smooth_term = b * ((lse[:, None] - logits) * self.omega).sum(axis=1)
        return float(self.upstream @ (true_term + smooth_term))

    def stated_gradient(self, parameters: np.ndarray, a: float, b: float) -> np.ndarray:
        """The claim's gradient: a dense part ``g (T q - a w_y e_y)`` plus the rank-one smoothing part."""
        classifier, hidden, bias = self.unpack(parameters)
        logits = hidden @ classifier.T + bias
        q = scipy.special.softmax(logits, axis=1)
        true_mass = a * self.omega[self.labels]
        dense = (true_mass + b * self.omega.sum())[:, None] * q
        dense[np.arange(len(self.labels)), self.labels] -= true_mass
        dense *= self.upstream[:, None]
        class_sum = self.omega @ classifier  # sum_c w_c W_c
        grad_classifier = dense.T @ hidden - b * np.outer(self.omega, self.upstream @ hidden)
        grad_hidden = dense @ classifier - b * np.outer(self.upstream, class_sum)
        grad_bias = dense.sum(axis=0) - b * self.omega * self.upstream.sum()
        return np.concatenate([grad_classifier.ravel(), grad_hidden.ravel(), grad_bias])


def _scipy(context: CheckContext) -> CheckResult:
    errors = []
    for seed in range(3):
        head = _NumpyHead(context.seed + seed)
        for convention in ("off_target", "uniform"):
            a, b = _coefficients(head.shapes[0][0], 0.3, convention)
            gradient = head.stated_gradient(head.parameters, a, b)
            numeric = scipy.optimize.approx_fprime(head.parameters, head.weighted_loss, 1e-7, a, b)
            errors.append(float(np.max(np.abs(numeric - gradient)) / np.max(np.abs(gradient))))
    return within(errors, 1e-6, "stated gradient (dense part + rank-one smoothing part) vs SciPy finite "
                                "differences of the NumPy composite, relative to the largest entry")


# --------------------------------------------------------------------------- torch


def _torch_case(seed: int, convention: str, reduction: str, with_bias: bool, weighted: bool, device: str):
    import torch

    generator = torch.Generator().manual_seed(seed)
    num_rows, hidden_size, num_classes = 11, 5, 9

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device).requires_grad_()

    hidden, classifier = randn(num_rows, hidden_size), randn(num_classes, hidden_size)
    bias = randn(num_classes) if with_bias else None
    target = torch.randint(0, num_classes, (num_rows,), generator=generator)
    target[::4] = -100
    weight = (torch.rand(num_classes, generator=generator, dtype=torch.float64) + 0.5) if weighted else None
    return hidden, classifier, bias, target.to(device), None if weight is None else weight.to(device)


def _torch_errors(context: CheckContext, convention: str, reduction: str, with_bias: bool, weighted: bool):
    import torch
    import torch.nn.functional as F

    from lstheory.torch import label_smoothed_cross_entropy, linear_label_smoothed_cross_entropy

    hidden, classifier, bias, target, weight = _torch_case(context.seed, convention, reduction, with_bias, weighted,
                                                           context.device)
    inputs = [t for t in (hidden, classifier, bias) if t is not None]
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.2, bias=bias, convention=convention,
                                                class_weight=weight, reduction=reduction, chunk_size=3)
    logits = F.linear(hidden, classifier, bias)
    if convention == "uniform":
        eager = F.cross_entropy(logits, target, weight=weight, label_smoothing=0.2, reduction=reduction)
    else:
        eager = label_smoothed_cross_entropy(logits, target, 0.2, weight=weight, reduction=reduction)
    upstream = torch.randn(fused.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    upstream = upstream.to(context.device)
    pairs = zip((fused, *torch.autograd.grad(fused, inputs, upstream)),
                (eager, *torch.autograd.grad(eager, inputs, upstream)))
    return [float((x - y).abs().max() / y.abs().max()) for x, y in ((x.detach(), y.detach()) for x, y in pairs)]


def _torch(context: CheckContext) -> CheckResult:
    errors = []
    for convention in ("off_target", "uniform"):
        for reduction in ("mean", "sum", "none"):
            for with_bias, weighted in ((False, False), (True, True)):
                errors += _torch_errors(context, convention, reduction, with_bias, weighted)
    result = within(errors, TORCH_TOLERANCE, "fused loss vs autograd of the eager composite (F.cross_entropy, "
                                             "lstheory's off_target loss), float64, value and every gradient")
    return CheckResult(result.passed, result.max_error, f"on {context.device}: {result.detail}")


CLAIMS = (
    Claim(
        id="fused_linear.smoothing_sum",
        statement="For a linear head z = W h + b and class weights w, sum_c w_c z_c = h . sum_c w_c W_c + "
        "sum_c w_c b_c, so the smoothing term of label-smoothed cross-entropy needs no (N, K) logits, and its "
        "gradient is rank one: -eps_b w (sum_n g_n h_n)^T for the classifier, -eps_b g_n sum_c w_c W_c for the "
        "features (eps_b = eps/K uniform, eps/(K-1) off_target); lstheory's fused loss built on it equals the "
        "eager composite in value and gradients.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": _symbolic, "scipy": _scipy, "torch": _torch},
    ),
)
