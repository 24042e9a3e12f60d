"""The general optimum of cross-entropy against any full-support target."""

from __future__ import annotations

import numpy as np
import scipy.special
import scipy.stats

from lstheory.claims._levels import all_of, general_sweep, proven, within
from lstheory.claims import _torch_levels as torch_levels
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.symbolic import general_optimum, general_optimum_symbolic_k

GENERAL = "Cover and Thomas 2006, 'Elements of Information Theory', Thm. 2.6.3 (Gibbs' inequality)"
HESSIAN = "Boyd and Vandenberghe 2004, 'Convex Optimization', sec. 3.1.5 (log-sum-exp)"
SYMBOLIC_K_RANGE = (2, 3, 4)
"""Concrete K proven in `lstheory verify` (the tests prove K = 2..6)."""


def _optimum_symbolic(context: CheckContext) -> CheckResult:
    return all_of(*(proven(general_optimum(k), steps=[1, 2, 3, 4]) for k in SYMBOLIC_K_RANGE))


def _optimum_scipy(context: CheckContext) -> CheckResult:
    # z - log p must be one constant (alpha) across classes.
    deviations = []
    for p, result in general_sweep(context.seed):
        shift = result.logits - np.log(p)
        deviations.append(float(np.max(shift) - np.min(shift)))
    return within(deviations, 1e-9, "SciPy minimiser minus log p: spread of the shift across classes")


def _unique_symbolic(context: CheckContext) -> CheckResult:
    return all_of(
        *(proven(general_optimum(k), steps=[5, 6, 7]) for k in SYMBOLIC_K_RANGE),
        proven(general_optimum_symbolic_k(), steps=[1, 2, 3, 4, 5, 6]),
    )


def _unique_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    rng = np.random.default_rng(context.seed)
    p = rng.dirichlet(np.full(20, 0.5))
    runs = [minimize_cross_entropy(p, seed=s, start_scale=5.0) for s in range(5)]
    spread = max(float(np.max(np.abs(r.logits - runs[0].logits))) for r in runs)
    q = scipy.special.softmax(runs[0].logits)
    eigenvalues = np.linalg.eigvalsh(np.diag(q) - np.outer(q, q))
    one_null = abs(eigenvalues[0]) < 1e-12 and eigenvalues[1] > 1e-6
    passed = spread < 1e-9 and one_null
    return CheckResult(
        passed,
        spread,
        f"5 random starts (scale 5) reach the same gauge-fixed logits to {spread:.2g}; Hessian at the optimum "
        f"has one zero eigenvalue ({eigenvalues[0]:.1e}) and smallest positive {eigenvalues[1]:.2e}",
    )


def _entropy_symbolic(context: CheckContext) -> CheckResult:
    return all_of(
        *(proven(general_optimum(k), steps=[8, 9]) for k in SYMBOLIC_K_RANGE),
        proven(general_optimum_symbolic_k(), steps=[8]),
    )


def _entropy_scipy(context: CheckContext) -> CheckResult:
    errors = [abs(result.loss - scipy.stats.entropy(p)) for p, result in general_sweep(context.seed)]
    return within(errors, 1e-12, "SciPy minimum value vs scipy.stats.entropy(p)")


CLAIMS = (
    Claim(
        id="optimum.general",
        statement="For any target p with full support, the gradient of H(p, softmax(z)) is softmax(z) - p and its "
        "minimisers are exactly z = log p + alpha 1 (alpha real).",
        source=GENERAL,
        status="verified",
        checks={"symbolic": _optimum_symbolic, "scipy": _optimum_scipy, "torch": torch_levels.general_optimum},
    ),
    Claim(
        id="optimum.unique_up_to_alpha",
        statement="The Hessian diag(q) - q q^T is positive semi-definite with null space span{1} (v^T H v is a "
        "q-weighted variance), so the minimiser is unique up to the shift alpha.",
        source=HESSIAN,
        status="verified",
        checks={"symbolic": _unique_symbolic, "scipy": _unique_scipy, "torch": torch_levels.unique_up_to_alpha},
    ),
    Claim(
        id="optimum.min_value_entropy",
        statement="The minimum value of H(p, softmax(z)) is the entropy H(p), and H(p, softmax(z)) - H(p) = "
        "KL(p || softmax(z)).",
        source=GENERAL,
        status="verified",
        checks={"symbolic": _entropy_symbolic, "scipy": _entropy_scipy, "torch": torch_levels.minimum_value_entropy},
    ),
)
