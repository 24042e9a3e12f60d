"""The smoothing part of label smoothing's gradient, and its push on the most confident samples' top logit."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.selective import smoothing_gradient_decomposition

SOURCE = ("Xia et al. 2024, 'Towards Understanding Why Label Smoothing Degrades Selective Classification and How to Fix It', "
          "arXiv 2403.14715, sec. 4")
EPS_VALUES = (0.05, 0.1, 0.3)



def decomposed_gradient(z: np.ndarray, label: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``((1-eps)(q - e_y), eps (q - u))``: the cross-entropy part and the smoothing part."""
    q = scipy.special.softmax(z)
    one_hot = np.eye(z.size)[label]
    return (1 - eps) * (q - one_hot), eps * (q - 1 / z.size)


def _decomposition_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors = []
    for k in (3, 10, 50):
        for eps in EPS_VALUES:
            z, label = rng.normal(scale=2, size=k), int(rng.integers(k))
            target = smoothed_target_vector(k, eps, label=label, convention="uniform")

            def loss(x):
                return float(-(target @ scipy.special.log_softmax(x)))

            numeric = scipy.optimize.approx_fprime(z, loss, 1e-7)
            errors.append(float(np.max(np.abs(numeric - sum(decomposed_gradient(z, label, eps))))))
    # forward differences: O(h) truncation (h = 1e-7) plus 1e-16/h rounding.
    return within(errors, 1e-6, "SciPy finite differences of the smoothed loss vs (1-eps)(q - e_y) + eps (q - u)")


def _push_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    k, eps = 10, 0.1
    logits = rng.normal(size=(200, k)) * rng.uniform(0.1, 6.0, size=(200, 1))  # confidences from near 1/K to near 1
    pushes, confidences, errors = [], [], []
    for z in logits:
        top = int(np.argmax(z))

        def smoothing_term(x):  # eps H(u, q): the part of the smoothed loss that smoothing adds
            return float(-eps * np.mean(scipy.special.log_softmax(x)))

        push = float(scipy.optimize.approx_fprime(z, smoothing_term, 1e-7)[top])
        q_max = float(scipy.special.softmax(z)[top])
        pushes.append(push)
        confidences.append(q_max)
        errors.append(abs(push - eps * (q_max - 1 / k)))
    rank = scipy.stats.spearmanr(confidences, pushes).statistic
    result = within(errors, 1e-7, "SciPy finite differences of eps H(u, q) along the top logit vs eps (q_max - 1/K)")
    return CheckResult(result.passed and rank > 0.999 and min(pushes) >= 0, result.max_error,
                       result.detail + f"; over 200 samples its Spearman rank correlation with the confidence is {rank:.3f} "
                       f"and its smallest value {min(pushes):.2e} (never negative)")


def _torch_gradients(device: str, seed: int):
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    for k in (3, 10, 50):
        for eps in EPS_VALUES:
            z = (torch.randn(64, k, generator=generator, dtype=torch.float64) * torch.rand(64, 1, generator=generator,
                 dtype=torch.float64) * 6).to(device).requires_grad_(True)
            y = torch.randint(0, k, (64,), generator=generator).to(device)
            (smoothed,) = torch.autograd.grad(F.cross_entropy(z, y, label_smoothing=eps, reduction="sum"), z)
            (plain,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), z)
            yield k, eps, z.detach(), smoothed, plain


def _decomposition_torch(context: CheckContext) -> CheckResult:
    import torch

    errors = []
    for k, eps, z, smoothed, plain in _torch_gradients(context.device, context.seed):
        q = torch.softmax(z, dim=1)
        errors.append(float((smoothed - (1 - eps) * plain - eps * (q - 1 / k)).abs().max()))
    return within(errors, 1e-14, f"PyTorch autograd: grad of cross_entropy(label_smoothing=eps) - (1-eps) grad of plain "
                  f"cross_entropy vs eps (q - u), on {context.device}")


def _push_torch(context: CheckContext) -> CheckResult:
    import torch

    errors, ranks = [], []
    for k, eps, z, smoothed, plain in _torch_gradients(context.device, context.seed):
        q = torch.softmax(z, dim=1)
        q_max, top = q.max(dim=1)
        push = (smoothed - (1 - eps) * plain).gather(1, top[:, None])[:, 0]
        errors.append(float((push - eps * (q_max - 1 / k)).abs().max()))
        ranks.append(scipy.stats.spearmanr(q_max.cpu().numpy(), push.cpu().numpy()).statistic)
    result = within(errors, 1e-14, f"PyTorch autograd: the smoothing part on the top logit vs eps (q_max - 1/K), on "
                    f"{context.device}")
    return CheckResult(result.passed and min(ranks) > 0.999, result.max_error,
                       result.detail + f"; smallest rank correlation with q_max over the batches: {min(ranks):.4f}")


CLAIMS = (
    Claim(
        id="selective.gradient_decomposition",
        statement="The gradient of uniform label smoothing splits into a cross-entropy part and a smoothing part: "
        "grad_z = (1-eps)(q - e_y) + eps (q - u).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(smoothing_gradient_decomposition, 1),
                "scipy": _decomposition_scipy, "torch": _decomposition_torch},
    ),
    Claim(
        id="selective.top_logit_push",
        statement="The smoothing part pushes the largest logit down by eps (q_max - 1/K): never negative, and "
        "increasing with the confidence, so label smoothing suppresses the top logit most on the most confident "
        "samples (what degrades the confidence ranking that selective classification relies on).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(smoothing_gradient_decomposition, 2, 3, 4),
                "scipy": _push_scipy, "torch": _push_torch},
    ),
)
