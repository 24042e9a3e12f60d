"""Mixup and label smoothing commute; the optimum under a mixed, smoothed target has two gaps."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.mixup import mixup_commutes

SOURCE = ("Zhang et al. 2018, 'mixup: Beyond Empirical Risk Minimization', ICLR, arXiv 1710.09412, sec. 2; timm's "
          "mixup_target (smooths each label, then mixes)")
CASES = tuple((k, eps, lam) for k in (3, 10, 100) for eps in (0.05, 0.1, 0.3) for lam in (0.2, 0.5, 0.7))



def smooth_then_mix(k: int, eps: float, lam: float, convention: str) -> np.ndarray:
    """timm's order: each label's smoothed target, mixed with weights lam and 1 - lam (labels 0 and 1)."""
    return lam * smoothed_target_vector(k, eps, label=0, convention=convention) + (1 - lam) * smoothed_target_vector(
        k, eps, label=1, convention=convention)


def mix_then_smooth(k: int, eps: float, lam: float, convention: str) -> np.ndarray:
    """The other order: mix the one-hot labels, then apply the convention's affine smoothing map."""
    mixed = np.zeros(k)
    mixed[0], mixed[1] = lam, 1 - lam
    if convention == "uniform":
        return (1 - eps) * mixed + eps / k
    return (1 - eps * k / (k - 1)) * mixed + eps / (k - 1)


def predicted_gaps(k: int, eps: float, lam: float) -> tuple[float, float]:
    """``(z_a - z_b, z_a - z_o)`` of the derivation (uniform convention)."""
    on_a, on_b = lam * (1 - eps) + eps / k, (1 - lam) * (1 - eps) + eps / k
    return float(np.log(on_a / on_b)), float(np.log1p(k * lam * (1 - eps) / eps))


def _commutes_scipy(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(smooth_then_mix(k, e, lam, c) - mix_then_smooth(k, e, lam, c))))
              for k, e, lam in CASES for c in ("uniform", "off_target")]
    return within(errors, 1e-15, "smooth-then-mix (timm's order) vs mix-then-smooth, both conventions")


def _gaps_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    errors = []
    for k, eps, lam in CASES[::2]:
        result = minimize_cross_entropy(smooth_then_mix(k, eps, lam, "uniform"), seed=context.seed)
        z = result.logits
        between, to_other = predicted_gaps(k, eps, lam)
        errors += [abs(z[0] - z[1] - between), float(np.max(np.abs(z[0] - z[2:] - to_other)))]
    return within(errors, 1e-9, "SciPy minimiser of CE against the mixed, smoothed target: z_a - z_b and z_a - z_o vs "
                  "the two closed-form gaps")


@lru_cache(maxsize=None)
def _torch_results(device: str, seed: int) -> tuple[CheckResult, CheckResult]:
    """PyTorch: mixing the two smoothed losses equals CE against the mixed target; its gradient vanishes at the gaps."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    loss_errors, gradients = [], []
    for k, eps, lam in CASES:
        z = (2 * torch.randn(16, k, generator=generator, dtype=torch.float64)).to(device)
        a = torch.zeros(16, dtype=torch.long, device=device)
        mixed_losses = lam * F.cross_entropy(z, a, label_smoothing=eps) + (1 - lam) * F.cross_entropy(z, a + 1, label_smoothing=eps)
        target = torch.as_tensor(smooth_then_mix(k, eps, lam, "uniform"), device=device).expand(16, k)
        loss_errors.append(float(abs(mixed_losses - F.cross_entropy(z, target)) / mixed_losses))
        between, to_other = predicted_gaps(k, eps, lam)
        optimum = torch.zeros(1, k, dtype=torch.float64, device=device)
        optimum[0, 0], optimum[0, 1] = to_other, to_other - between
        optimum.requires_grad_(True)
        (lam * F.cross_entropy(optimum, a[:1], label_smoothing=eps)
         + (1 - lam) * F.cross_entropy(optimum, a[:1] + 1, label_smoothing=eps)).backward()
        gradients.append(float(optimum.grad.abs().max()))
    return (
        within(loss_errors, 1e-14, f"lam CE_ls(z, a) + (1-lam) CE_ls(z, b) (PyTorch's label_smoothing) vs CE against "
               f"the mixed, smoothed target (relative), on {device}"),
        within(gradients, 1e-14, f"gradient of that mixed PyTorch loss at logits with the two predicted gaps, on {device}"),
    )


def _commutes_torch(context: CheckContext) -> CheckResult:
    return _torch_results(context.device, context.seed)[0]


def _gaps_torch(context: CheckContext) -> CheckResult:
    return _torch_results(context.device, context.seed)[1]


CLAIMS = (
    Claim(
        id="mixup.commutes",
        statement="Smoothing is affine on targets, so mixup and label smoothing commute: smoothing each label and then "
        "mixing (timm's mixup_target) gives the same target as smoothing the mixed label, in both conventions.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(mixup_commutes, 1, 2), "scipy": _commutes_scipy, "torch": _commutes_torch},
    ),
    Claim(
        id="mixup.optimal_gaps",
        statement="Under a mixed, smoothed target (weight lam on class a, 1 - lam on b; uniform convention) the optimum "
        "has z_a - z_b = log[(lam(1-eps) + eps/K)/((1-lam)(1-eps) + eps/K)] and, to every other class, "
        "z_a - z_o = log(1 + K lam (1-eps)/eps).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(mixup_commutes, 3, 4, 5, 6), "scipy": _gaps_scipy, "torch": _gaps_torch},
    ),
)
