"""Torch-level checks of the core claims: the torch closed form and the torch solver,
each against SymPy (the closed form evaluated exactly at 30 digits) and against SciPy.

torch is imported only inside these functions, so the registry loads without it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.stats
import sympy

from lstheory.claims._levels import GAP_TOLERANCE, all_of, SWEEP_EPS, SWEEP_NUM_CLASSES, general_sweep, smoothed_sweep, within
from lstheory.claims.registry import CheckContext, CheckResult
from lstheory.closed_form import convert_eps, min_loss
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.smoothing import EPS, K, gap_closed_form, target

SOLVER_TOLERANCE = 1e-11
"""Absolute agreement of the torch solver's float64 gaps with the exact gap."""


@lru_cache(maxsize=None)
def sympy_gap(num_classes: int, eps: float, convention: str) -> float:
    """The SymPy closed form at the exact input (``Rational(eps)``), evaluated at 30 digits."""
    return float(gap_closed_form(convention).subs({K: num_classes, EPS: sympy.Rational(eps)}).evalf(30))


@lru_cache(maxsize=None)
def sympy_p_true(num_classes: int, eps: float, convention: str) -> float:
    return float(target(convention, sympy.Rational(eps), num_classes)[0])


def _targets(num_classes: int, eps_values, convention: str) -> np.ndarray:
    return np.array([smoothed_target_vector(num_classes, eps, convention=convention) for eps in eps_values])


@lru_cache(maxsize=None)
def torch_sweep(convention: str, device: str) -> tuple:
    """Torch solver and torch closed form over the SciPy sweep's grid (label 0).

    Returns ``(num_classes, eps, solver_gap, closed_form_gap, converged)`` tuples.
    """
    import torch

    from lstheory.torch import optimal_logits, solve_optimal_logits

    rows = []
    for k in SWEEP_NUM_CLASSES:
        probs = torch.as_tensor(_targets(k, SWEEP_EPS, convention), dtype=torch.float64, device=device)
        solution = solve_optimal_logits(probs, tol=1e-12)
        solved = solution.logits.cpu().numpy()
        eps_tensor = torch.tensor(SWEEP_EPS, dtype=torch.float64, device=device)
        closed = optimal_logits(k, eps_tensor, convention=convention).cpu().numpy()
        for i, eps in enumerate(SWEEP_EPS):
            rows.append((k, eps, float(solved[i, 0] - solved[i, 1:].mean()), float(closed[i, 0] - closed[i, 1:].mean()),
                         bool(solution.converged[i])))
    return tuple(rows)


def gap(convention: str):
    def check(context: CheckContext) -> CheckResult:
        rows = torch_sweep(convention, context.device)
        scipy_gaps = {(k, e): r.gap for k, e, r in smoothed_sweep(convention)}
        solver_vs_sympy = [abs(s - sympy_gap(k, e, convention)) for k, e, s, _, _ in rows]
        closed_vs_sympy = [abs(c - sympy_gap(k, e, convention)) / max(1.0, abs(c)) for k, e, _, c, _ in rows]
        solver_vs_scipy = [abs(s - scipy_gaps[(k, e)]) for k, e, s, _, _ in rows]
        converged = all(ok for *_, ok in rows)
        results = (
            within(solver_vs_sympy, SOLVER_TOLERANCE, "torch solver gap vs SymPy"),
            within(closed_vs_sympy, 4e-16, "torch closed-form gap vs SymPy (relative)"),
            within(solver_vs_scipy, GAP_TOLERANCE, "torch solver vs SciPy"),
        )
        return CheckResult(all(r.passed for r in results) and converged, max(r.max_error for r in results),
                           f"on {context.device}: " + "; ".join(r.detail for r in results) + f"; all converged: {converged}")

    return check


def seed_optimal_logits(context: CheckContext) -> CheckResult:
    import torch

    from lstheory.torch import optimal_logits

    alpha = 1.5
    errors = []
    for k in SWEEP_NUM_CLASSES:
        z = optimal_logits(k, torch.tensor(SWEEP_EPS, dtype=torch.float64), alpha=alpha, device=context.device).cpu().numpy()
        for i, eps in enumerate(SWEEP_EPS):
            errors.append(abs(z[i, 0] - alpha - sympy_gap(k, eps, "off_target")))
            errors.append(float(np.max(np.abs(z[i, 1:] - alpha))))
    result = within(errors, 1e-13, f"on {context.device}: torch optimal_logits (alpha = 1.5) vs z_y = "
                    "log((K-1)(1-eps)/eps) + alpha, z_i = alpha")
    return all_of(result, gap("off_target")(context))


def conversion(context: CheckContext) -> CheckResult:
    errors = []
    for k, e, solver_gap, _, _ in torch_sweep("uniform", context.device):
        converted = float(convert_eps(k, e, src="uniform", dst="off_target"))
        errors.append(abs(solver_gap - sympy_gap(k, converted, "off_target")))
    return within(errors, SOLVER_TOLERANCE, f"torch solver on uniform targets vs SymPy off_target gap at the converted eps, on {context.device}")


def confidence(context: CheckContext) -> CheckResult:
    import torch

    from lstheory.torch import optimal_logits

    errors = []
    for convention in ("off_target", "uniform"):
        for k in SWEEP_NUM_CLASSES:
            z = optimal_logits(k, torch.tensor(SWEEP_EPS, dtype=torch.float64), convention=convention, device=context.device)
            q = torch.softmax(z, dim=-1)[:, 0].cpu().numpy()
            errors += [abs(q[i] - sympy_p_true(k, e, convention)) for i, e in enumerate(SWEEP_EPS)]
    # softmax sums K exponentials: about K ulps of rounding for K = 10**4.
    return within(errors, 1e-12, f"torch softmax(optimal_logits) at the label vs SymPy's exact p_true, on {context.device}")


def minimum_loss(context: CheckContext) -> CheckResult:
    import torch

    from lstheory.torch import label_smoothed_cross_entropy, optimal_logits

    value_errors, gradients = [], []
    for convention in ("off_target", "uniform"):
        for k in (2, 10, 1000):
            for eps in (1e-3, 0.1, 0.5, 0.9):
                z = optimal_logits(k, eps, convention=convention, dtype=torch.float64, device=context.device)
                z = z[None, :].requires_grad_(True)
                loss = label_smoothed_cross_entropy(z, torch.zeros(1, dtype=torch.long, device=context.device), eps,
                                                    convention=convention)
                loss.backward()
                exact = float(min_loss(k, eps, convention=convention))
                value_errors.append(abs(loss.item() - exact))
                gradients.append(float(z.grad.abs().max()))
    # A float64 loss evaluation (log-sum-exp of logits up to ~10) carries ~1e-15 of absolute rounding.
    values = within(value_errors, 1e-13, "lstheory.torch loss at the torch optimum vs min_loss (absolute)")
    slopes = within(gradients, 1e-13, "its autograd gradient there")
    return CheckResult(values.passed and slopes.passed, values.max_error,
                       f"on {context.device}: {values.detail}; {slopes.detail}")


def _solve_general(device: str, seed: int):
    import torch

    from lstheory.torch import solve_optimal_logits

    results = []
    for p, scipy_result in general_sweep(seed):
        solution = solve_optimal_logits(torch.as_tensor(p[None, :], dtype=torch.float64, device=device), tol=1e-12)
        results.append((p, solution.logits[0].cpu().numpy(), float(solution.loss[0]), scipy_result))
    return results


def general_optimum(context: CheckContext) -> CheckResult:
    spreads, differences = [], []
    for p, logits, _, scipy_result in _solve_general(context.device, context.seed):
        spreads.append(float(np.ptp(logits - np.log(p))))
        differences.append(float(np.ptp(logits - scipy_result.logits)))
    shift = within(spreads, 1e-11, "torch solver minus log p: spread")
    agreement = within(differences, 1e-9, "torch solver vs SciPy minimiser (up to the shift)")
    return CheckResult(shift.passed and agreement.passed, shift.max_error, f"on {context.device}: {shift.detail}; {agreement.detail}")


def minimum_value_entropy(context: CheckContext) -> CheckResult:
    errors = [abs(loss - scipy.stats.entropy(p)) for p, _, loss, _ in _solve_general(context.device, context.seed)]
    return within(errors, 1e-12, f"torch solver's minimum value vs scipy.stats.entropy, on {context.device}")


def unique_up_to_alpha(context: CheckContext) -> CheckResult:
    import torch

    from lstheory.torch import solve_optimal_logits

    p = torch.as_tensor(np.random.default_rng(context.seed).dirichlet(np.full(20, 0.5)), dtype=torch.float64,
                        device=context.device)
    generator = torch.Generator().manual_seed(context.seed)
    starts = (5 * torch.randn(4, 20, generator=generator, dtype=torch.float64)).to(context.device)
    solution = solve_optimal_logits(p.expand(4, 20), initial_logits=starts, tol=1e-12, max_iter=200)
    logits = solution.logits.cpu().numpy()  # gauge: logsumexp = 0
    spread = float(np.max(np.abs(logits - logits[0])))

    def loss(z):
        return -(p * torch.log_softmax(z, dim=0)).sum()

    hessian = torch.autograd.functional.hessian(loss, solution.logits[0])
    eigenvalues = torch.linalg.eigvalsh(hessian).cpu().numpy()
    one_null = abs(eigenvalues[0]) < 1e-12 and eigenvalues[1] > 1e-6
    return CheckResult(spread < 1e-11 and one_null and bool(solution.converged.all()), spread,
                       f"on {context.device}: 4 random starts (scale 5) solve to the same logits within {spread:.2g}; "
                       f"autograd Hessian at the optimum: smallest eigenvalue {eigenvalues[0]:.1e}, next {eigenvalues[1]:.2e}")
