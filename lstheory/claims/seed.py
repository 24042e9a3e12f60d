"""The seed blog post's claims (described in ``docs/seed.md``), its two errors registered as corrected."""

from __future__ import annotations

import numpy as np
import scipy.special

from lstheory.claims._levels import GAP_TOLERANCE, all_of, proven, smoothed_sweep, within
from lstheory.claims import _torch_levels as torch_levels
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import logit_gap
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic import convention_closed_form, seed_loss_rewrite, seed_one_hot, seed_optimal_logits

SEED = "the seed blog post (docs/seed.md)"


def _one_hot_symbolic(context: CheckContext) -> CheckResult:
    return proven(seed_one_hot(), steps=[1, 2])


def _one_hot_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    k = 10
    one_hot = np.eye(k)[0]
    tolerances = (1e-3, 1e-5, 1e-7, 1e-9, 1e-11)
    runs = [
        minimize_cross_entropy(one_hot, label=0, seed=context.seed, polish=False, tol=tol) for tol in tolerances
    ]
    gaps = [r.gap for r in runs]
    losses = [r.loss for r in runs]
    runs_away = bool(np.all(np.diff(gaps) > 1) and np.all(np.diff(losses) < 0) and losses[-1] < 1e-10)
    return CheckResult(
        runs_away,
        float(losses[-1]),
        f"K={k}, eps=0: as SciPy's gradient tolerance goes {tolerances[0]:g} -> {tolerances[-1]:g} the gap it stops "
        f"at grows {gaps[0]:.1f} -> {gaps[-1]:.1f} and the loss falls {losses[0]:.1e} -> {losses[-1]:.1e}: "
        "no finite minimiser",
    )


def _rewrite_symbolic(context: CheckContext) -> CheckResult:
    return all_of(proven(seed_loss_rewrite(3)), proven(seed_loss_rewrite(5), steps=[1]))


def _rewrite_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors, literal_gaps = [], []
    for k in (2, 3, 10, 100):
        for eps in (0.05, 0.1, 0.3):
            z = rng.normal(size=k)
            log_q = scipy.special.log_softmax(z)
            cross_entropy = -(smoothed_target_vector(k, eps) @ log_q)
            exact = (1 - eps) * -log_q[0] + eps / (k - 1) * np.sum(-log_q[1:])
            literal = (1 - eps) * -log_q[0] + eps * np.sum(-log_q[1:])
            errors.append(abs(exact - cross_entropy) / cross_entropy)
            if k > 2:
                literal_gaps.append(abs(literal - cross_entropy) / cross_entropy)
    result = within(errors, 1e-14, "exact rewrite vs scipy cross-entropy (relative)")
    literal_off = min(literal_gaps) > 1e-3
    return CheckResult(
        result.passed and literal_off,
        result.max_error,
        result.detail + f"; the literal reading is off by at least {min(literal_gaps):.2g} (relative) for K > 2",
    )


def _optimal_logits_symbolic(context: CheckContext) -> CheckResult:
    return proven(seed_optimal_logits())


def _optimal_logits_scipy(context: CheckContext) -> CheckResult:
    sweep = smoothed_sweep("off_target")
    errors = [abs(r.gap - float(logit_gap(k, e))) for k, e, r in sweep]
    result = within(errors, GAP_TOLERANCE, "SciPy gap vs corrected log((K-1)(1-eps)/eps)")
    alpha = 1.0
    printed_errors = [
        abs(r.gap - (np.log((k - 1) * (1 - e) / (e + alpha)) - alpha)) for k, e, r in sweep if e < 0.9
    ]
    printed_off = min(printed_errors) > 0.1
    return CheckResult(
        result.passed and printed_off,
        result.max_error,
        result.detail + f"; the printed form (alpha = 1) is off by at least {min(printed_errors):.3g}",
    )


def _bounded_symbolic(context: CheckContext) -> CheckResult:
    return all_of(proven(seed_one_hot(), steps=[3]), proven(convention_closed_form("off_target"), steps=[3]))


def _bounded_scipy(context: CheckContext) -> CheckResult:
    sweep = smoothed_sweep("off_target")
    by_k: dict[int, list[tuple[float, float]]] = {}
    for k, e, r in sweep:
        by_k.setdefault(k, []).append((e, r.gap))
    decreasing = all(np.all(np.diff([g for _, g in sorted(rows)]) < 0) for rows in by_k.values())
    finite = all(np.isfinite(r.gap) for _, _, r in sweep)
    return CheckResult(
        bool(decreasing and finite),
        None,  # a monotonicity check: no error to report
        f"SciPy optimal gaps finite for every eps > 0 and strictly decreasing in eps for each K in {sorted(by_k)}",
    )


CLAIMS = (
    Claim(
        id="seed.one_hot_unbounded",
        statement="With a one-hot target (eps = 0) cross-entropy has no finite minimiser: the loss falls "
        "strictly as the gap z_y - z_i grows and reaches its infimum 0 only as the gap -> +inf.",
        source=f"{SEED}, step 2 ('Z_y = +inf, Z_i = 0')",
        status="verified",
        checks={"symbolic": _one_hot_symbolic, "scipy": _one_hot_scipy},
    ),
    Claim(
        id="seed.loss_rewrite",
        statement="The smoothed loss is exactly (1-eps)(-log q_y) + eps/(K-1) sum_{i != y}(-log q_i), the "
        "cross-entropy against the eps/(K-1) target.",
        source=f"{SEED}, step 4",
        status="corrected",
        correction="The seed writes '(1-eps)*Loss if i = y, eps*Loss if i != y'; read literally the weights "
        "sum to 1 + (K-2) eps, so for K > 2 it is not a cross-entropy. Each off-target term carries eps/(K-1).",
        checks={"symbolic": _rewrite_symbolic, "scipy": _rewrite_scipy},
    ),
    Claim(
        id="seed.optimal_logits",
        statement="Label-smoothed cross-entropy (eps/(K-1) convention) is minimised by z_y = log((K-1)(1-eps)/eps) "
        "+ alpha, z_i = alpha (any real alpha).",
        source=f"{SEED}, step 5; He et al. 2019, arXiv 1812.01187, sec. 5.2",
        status="corrected",
        correction="The seed prints z_y = log((k-1)(1-eps)/(eps+alpha)): the shift alpha belongs outside the "
        "logarithm (its printed gap depends on alpha, which softmax's shift-invariance forbids).",
        checks={"symbolic": _optimal_logits_symbolic, "scipy": _optimal_logits_scipy,
                "torch": torch_levels.seed_optimal_logits},
    ),
    Claim(
        id="seed.gap_bounded",
        statement="Smoothing bounds the gap: for 0 < eps < 1 the optimal gap is finite and strictly decreasing in "
        "eps. (The seed's further conclusion, better generalisation, is empirical and not a theorem.)",
        source=f"{SEED}, step 6",
        status="verified",
        checks={"symbolic": _bounded_symbolic, "scipy": _bounded_scipy},
    ),
)
