"""The curvature of the smoothed loss at its optimum: the Hessian's spectrum and condition number."""

from __future__ import annotations

import numpy as np
import scipy.special

from lstheory.claims._levels import all_of, smoothed_sweep, symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import smoothed_target
from lstheory.symbolic.curvature import hessian_spectrum

SOURCE = "Boyd and Vandenberghe 2004, 'Convex Optimization', sec. 3.1.5 (the Hessian of log-sum-exp), at the smoothed optimum"
SPECTRUM_NUM_CLASSES = (2, 3, 10, 100)
"""K whose full Hessian is diagonalised numerically (a dense K x K eigenproblem)."""



def predicted_spectrum(num_classes: int, eps: float, convention: str) -> np.ndarray:
    """``0``, ``p_other`` (K - 2 times) and ``K p_true p_other``, sorted."""
    p_true, p_other = (float(v) for v in smoothed_target(num_classes, eps, convention=convention))
    return np.sort(np.r_[0.0, np.full(num_classes - 2, p_other), num_classes * p_true * p_other])


def _scipy_spectra(context: CheckContext):
    """``(K, eps, convention, eigenvalues of diag(q) - q q^T at SciPy's minimiser)``."""
    for convention in ("off_target", "uniform"):
        for k, eps, result in smoothed_sweep(convention):
            if k in SPECTRUM_NUM_CLASSES:
                q = scipy.special.softmax(result.logits)
                yield k, eps, convention, np.linalg.eigvalsh(np.diag(q) - np.outer(q, q))


def _spectrum_scipy(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(values - predicted_spectrum(k, eps, convention))) / max(eps, 1e-300))
              for k, eps, convention, values in _scipy_spectra(context)]
    return within(errors, 1e-6, "eigenvalues of diag(q) - q q^T at SciPy's minimisers vs {0, p_other x (K-2), "
                  "K p_true p_other} (absolute error / eps)")


def _condition_scipy(context: CheckContext) -> CheckResult:
    errors, floors = [], []
    for k, eps, convention, values in _scipy_spectra(context):
        if k < 3 or eps >= 0.5:  # K p_true is the condition number while p_true > p_other
            continue
        p_true, p_other = (float(v) for v in smoothed_target(k, eps, convention=convention))
        positive = values[1:]
        errors.append(abs(positive.max() / positive.min() / (k * p_true) - 1))
        floors.append(abs(positive.min() / p_other - 1))
    return all_of(within(errors, 1e-6, "condition number on 1-perp at SciPy's minimisers vs K p_true (relative)"),
                  within(floors, 1e-6, "smallest positive curvature vs p_other (relative)"))


def _torch_spectra(device: str):
    import torch

    from lstheory.torch import label_smoothed_cross_entropy, optimal_logits

    label = torch.zeros(1, dtype=torch.long, device=device)
    for convention in ("off_target", "uniform"):
        for k in SPECTRUM_NUM_CLASSES[:3]:
            for eps in (1e-3, 0.1, 0.4):
                logits = optimal_logits(k, eps, convention=convention, dtype=torch.float64, device=device)

                def loss(z):
                    return label_smoothed_cross_entropy(z[None, :], label, eps, convention=convention)

                hessian = torch.autograd.functional.hessian(loss, logits)
                yield k, eps, convention, torch.linalg.eigvalsh(hessian).cpu().numpy()


def _spectrum_torch(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(values - predicted_spectrum(k, eps, convention))))
              for k, eps, convention, values in _torch_spectra(context.device)]
    return within(errors, 1e-14, f"torch.linalg.eigvalsh of the autograd Hessian of lstheory.torch's loss at the "
                  f"optimal logits vs the predicted spectrum, on {context.device}")


def _condition_torch(context: CheckContext) -> CheckResult:
    errors = []
    for k, eps, convention, values in _torch_spectra(context.device):
        if k >= 3:
            errors.append(abs(values[-1] / values[1] / (k * float(smoothed_target(k, eps, convention=convention)[0])) - 1))
    return within(errors, 1e-10, f"torch: largest over smallest positive Hessian eigenvalue vs K p_true (relative), "
                  f"on {context.device}")


CLAIMS = (
    Claim(
        id="hessian.spectrum",
        statement="At the smoothed optimum the Hessian diag(p) - p p^T has eigenvalue 0 on the all-ones vector, p_other "
        "with multiplicity K-2 (on {v : v_y = 0, sum v = 0}) and K p_true p_other on e_y - 1/K.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(hessian_spectrum, 1, 2, 3, 4),
                "scipy": _spectrum_scipy, "torch": _spectrum_torch},
    ),
    Claim(
        id="hessian.condition_number",
        statement="Across the shift (on the complement of the all-ones vector) the smallest curvature is p_other, which "
        "vanishes as eps -> 0 (smoothing is what makes the optimum strongly convex), and the condition number is "
        "K p_true (while p_true > 1/K): K(1 - eps) off_target, K - (K-1) eps uniform.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(hessian_spectrum, 5, 6, 7, 8),
                "scipy": _condition_scipy, "torch": _condition_torch},
    ),
)
