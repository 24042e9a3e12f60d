"""Masked classes under label smoothing: no finite minimiser, infinite losses, and smoothing over the allowed support."""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import logit_gap
from lstheory.symbolic.masking import masked_smoothing

OPTAX = "optax issue #896 (softmax_cross_entropy with label smoothing and a -inf logit)"
PRIOR = ("Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (smoothing toward a distribution u(k), here uniform on the "
         "allowed classes)")



def _masked_target(k: int, masked: int, eps: float) -> np.ndarray:
    """Uniform smoothing over the first ``k - masked`` classes (label 0); zero on the last ``masked`` classes."""
    allowed = k - masked
    target = np.zeros(k)
    target[:allowed] = eps / allowed
    target[0] += 1 - eps
    return target


def _no_minimiser_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    rows = []
    for k, masked in ((3, 1), (10, 3)):
        target = _masked_target(k, masked, 0.1)
        floor = float(-np.sum(scipy.special.xlogy(target, target)))  # the entropy over the allowed classes
        runs = [minimize_cross_entropy(target, seed=context.seed, max_iter=n, polish=False, tol=1e-300) for n in (5, 20, 80)]
        masked_logits = [float(r.logits[-masked:].max() - r.logits[: k - masked].max()) for r in runs]
        excess = [r.loss - floor for r in runs]
        rows.append((masked_logits, excess))
    falling = all(np.all(np.diff(m) < 0) for m, _ in rows)
    above = all(min(e) >= -1e-15 for _, e in rows)  # never below the infimum (up to rounding)
    return CheckResult(falling and above, None,
                       "SciPy on targets with zero mass on masked classes, stopped after 5, 20, 80 iterations: the masked "
                       "logits (relative to the allowed ones) keep falling "
                       + "; ".join(f"{m[0]:.1f} -> {m[-1]:.1f}" for m, _ in rows)
                       + ", and the loss approaches the allowed classes' entropy (its infimum) from above, to "
                       + ", ".join(f"{e[-1]:.1e}" for _, e in rows))


def _no_minimiser_torch(context: CheckContext) -> CheckResult:
    import torch

    target = torch.as_tensor(_masked_target(10, 3, 0.1)[None, :], device=context.device)
    z = torch.zeros(1, 10, dtype=torch.float64, device=context.device, requires_grad=True)
    optimizer = torch.optim.SGD([z], lr=1.0)
    masked_logits, slopes = [], []
    for step in range(1, 501):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(z, target).backward()
        slopes.append(float(z.grad[0, 7:].min()))
        optimizer.step()
        if step in (10, 50, 200, 500):
            masked_logits.append(float((z[0, 7:].max() - z[0, :7].max()).detach()))
    falling = bool(np.all(np.diff(masked_logits) < 0))
    return CheckResult(falling and min(slopes) > 0, None,
                       f"torch gradient descent on PyTorch's cross_entropy with zero target mass on 3 of 10 classes, on "
                       f"{context.device}: the slope in every masked logit stays positive (smallest {min(slopes):.1e}) "
                       f"and the masked logits keep falling: " + ", ".join(f"{m:.2f}" for m in masked_logits))


def _infinite_scipy(context: CheckContext) -> CheckResult:
    values = []
    for k in (3, 10):
        z = np.random.default_rng(context.seed).normal(size=k)
        z[-1] = -np.inf
        target = np.full(k, 0.1 / k)
        target[0] += 0.9
        with np.errstate(invalid="ignore"):
            values.append(float(-np.sum(target * scipy.special.log_softmax(z))))
    return CheckResult(all(v == math.inf for v in values), None,
                       f"-sum p log softmax(z) with a -inf logit and smoothing mass eps/K there (SciPy's log_softmax): {values}")


def _infinite_torch(context: CheckContext) -> CheckResult:
    import torch
    import torch.nn.functional as F

    from lstheory.torch import label_smoothed_cross_entropy

    z = torch.tensor([[2.0, 0.5, 0.0, -math.inf]], dtype=torch.float64, device=context.device)
    label = torch.tensor([0], device=context.device)
    smoothed = [F.cross_entropy(z, label, label_smoothing=0.1).item(),
                label_smoothed_cross_entropy(z, label, 0.1, convention="uniform").item(),
                label_smoothed_cross_entropy(z, label, 0.1, convention="off_target").item()]
    unsmoothed = [F.cross_entropy(z, label).item(), label_smoothed_cross_entropy(z, label, 0.0).item()]
    passed = all(v == math.inf for v in smoothed) and all(math.isfinite(v) for v in unsmoothed)
    return CheckResult(passed, None, f"on {context.device}, a -inf logit with positive smoothing mass: PyTorch's "
                       f"cross_entropy(label_smoothing=0.1) and lstheory.torch's loss (both conventions) give {smoothed}; "
                       f"without smoothing (zero mass there) they are finite: {[round(v, 6) for v in unsmoothed]}")


def _allowed_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    errors = []
    for k, masked in ((5, 2), (10, 3), (1000, 500)):
        for eps in (0.05, 0.1, 0.3):
            allowed = k - masked
            result = minimize_cross_entropy(_masked_target(k, masked, eps)[:allowed], seed=context.seed)
            gap = result.logits[0] - result.logits[1:].mean()
            errors.append(abs(gap - float(logit_gap(allowed, eps, convention="uniform"))))
    return within(errors, 1e-9, "SciPy optimum on the allowed logits vs the uniform gap for K - |M| classes")


def _allowed_torch(context: CheckContext) -> CheckResult:
    import torch
    import torch.nn.functional as F

    from lstheory.torch import label_smoothed_cross_entropy

    generator = torch.Generator().manual_seed(context.seed)
    errors, builtin_probability_target = [], []
    for k, masked in ((5, 2), (10, 3)):
        allowed = k - masked
        for eps in (0.05, 0.1, 0.3):
            z = torch.randn(8, k, generator=generator, dtype=torch.float64).to(context.device)
            z[:, allowed:] = -math.inf
            labels = torch.zeros(8, dtype=torch.long, device=context.device)
            target = torch.as_tensor(_masked_target(k, masked, eps), device=context.device).expand(8, k)
            logits = z.clone().requires_grad_(True)
            ours = label_smoothed_cross_entropy(logits, target, 0.0)  # the smoothing is already in the target
            ours.backward()
            restricted = z[:, :allowed].clone().requires_grad_(True)
            reference = F.cross_entropy(restricted, labels, label_smoothing=eps)
            reference.backward()
            errors += [abs(ours.item() - reference.item()),
                       float((logits.grad[:, :allowed] - restricted.grad).abs().max()),
                       float(logits.grad[:, allowed:].abs().max())]
            builtin_probability_target.append(F.cross_entropy(z, target).item())
    result = within(errors, 1e-14, f"lstheory.torch's loss against the prior-smoothed target (zero mass and -inf logits "
                    f"on the masked classes) vs PyTorch's label_smoothing on the allowed logits only: value and gradient, "
                    f"on {context.device}")
    note = ("; PyTorch's own cross_entropy with that probability target gives "
            + ("NaN (0 * -inf)" if all(math.isnan(v) for v in builtin_probability_target) else "finite values"))
    return CheckResult(result.passed, result.max_error, result.detail + note)


CLAIMS = (
    Claim(
        id="masking.no_finite_minimiser",
        statement="A target with zero mass on a set M of classes has no finite minimiser: the loss strictly increases in "
        "every z_m (slope softmax(z)_m > 0), and its infimum, the cross-entropy over the other classes, needs z_M -> -inf.",
        source="Cover and Thomas 2006, 'Elements of Information Theory', Thm. 2.6.3 (Gibbs' inequality), applied to a "
        "target without full support",
        status="verified",
        checks={"symbolic": symbolic_check(masked_smoothing, 1, 2, 3),
                "scipy": _no_minimiser_scipy, "torch": _no_minimiser_torch},
    ),
    Claim(
        id="masking.infinite_loss",
        statement="A -inf logit on a class with positive target mass, as label smoothing puts eps/K on masked classes, "
        "makes the loss +inf; with zero mass there the loss is finite.",
        source=OPTAX,
        status="verified",
        checks={"symbolic": symbolic_check(masked_smoothing, 4), "scipy": _infinite_scipy, "torch": _infinite_torch},
    ),
    Claim(
        id="masking.allowed_support",
        statement="Smoothing over the allowed classes only, (1-eps) e_y + eps pi with pi uniform off M, is prior "
        "smoothing; on the allowed logits it is the uniform convention with K - |M| classes, optimal gap "
        "log(1 + (K - |M|)(1-eps)/eps).",
        source=PRIOR,
        status="verified",
        checks={"symbolic": symbolic_check(masked_smoothing, 5, 6), "scipy": _allowed_scipy, "torch": _allowed_torch},
    ),
)
