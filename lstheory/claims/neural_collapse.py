"""Neural collapse under label smoothing: the unconstrained features model's global optimum.

Checked against the closed form :func:`lstheory.neural_collapse_optimum` at
every level: the SymPy reduction and full-model stationarity, SciPy's L-BFGS on
the full model from random starts, and torch gradient descent batched over
configurations.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lstheory.claims import _torch_ufm
from lstheory.claims._levels import all_of, symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.neural_collapse import neural_collapse_optimum
from lstheory.symbolic.neural_collapse import neural_collapse_reduction

ZHOU = "Zhou et al. 2022, 'Are All Losses Created Equal: A Neural Collapse Perspective', NeurIPS, arXiv 2210.02192"
GUO = "Guo et al. 2024, 'Cross Entropy versus Label Smoothing: A Neural Collapse Perspective', arXiv 2402.03979"
SOURCE = f"{ZHOU} (global minimisers under label smoothing); {GUO} (closed-form minimisers)"
MODEL = ("the unconstrained features model (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2)||W||^2 + "
         "(lambda_H/2)||H||^2 with N = nK balanced samples, d >= K-1, a free unregularised bias and target mass a "
         "on the label")
CONFIDENCE_TOLERANCE = 1e-6
"""Agreement required between a numeric minimiser's mean confidence and the closed form (issue 14, acceptance 2)."""

SAMPLES_PER_CLASS = 3
COLLAPSED_CASES: tuple[tuple[float, float, float], ...] = ((0.1, 1e-3, 1e-3), (0.0, 5e-3, 1e-4), (0.3, 1e-3, 1e-2))
"""``(eps, lambda_W, lambda_H)`` below the threshold for every K checked."""
PAST_THRESHOLD_CASES: tuple[tuple[float, float, float], ...] = ((0.1, 0.2, 0.2), (0.6, 0.1, 0.1))
SCIPY_NUM_CLASSES = (3, 10)
TORCH_NUM_CLASSES = (4, 10)


def _optimum(k: int, eps: float, decay_w: float, decay_h: float, convention: str):
    return neural_collapse_optimum(k, eps, samples_per_class=SAMPLES_PER_CLASS, classifier_decay=decay_w,
                                   feature_decay=decay_h, convention=convention)


@lru_cache(maxsize=None)
def scipy_minimisers(seed: int = 0) -> tuple:
    """SciPy L-BFGS on the full model: ``(k, convention, case, start, result)`` for collapsed and past-threshold cases."""
    from lstheory.numeric import minimize_unconstrained_features

    rows = []
    for k in SCIPY_NUM_CLASSES:
        for convention in ("off_target", "uniform"):
            for case in COLLAPSED_CASES + PAST_THRESHOLD_CASES:
                for start in range(2):
                    eps, decay_w, decay_h = case
                    result = minimize_unconstrained_features(
                        k, eps, samples_per_class=SAMPLES_PER_CLASS, classifier_decay=decay_w, feature_decay=decay_h,
                        convention=convention, seed=seed + start, start_scale=1.0 + 2.0 * start)
                    rows.append((k, convention, case, start, result))
    return tuple(rows)



def _scipy_rows(context: CheckContext, cases) -> list:
    return [row for row in scipy_minimisers(context.seed) if row[2] in cases]


def _confidence_scipy(context: CheckContext) -> CheckResult:
    errors, objective_gaps, unconverged = [], [], 0
    for k, convention, case, _, result in _scipy_rows(context, COLLAPSED_CASES):
        theory = _optimum(k, *case, convention)
        errors.append(abs(result.confidence - theory.confidence))
        objective_gaps.append(theory.objective - result.objective)  # > 0 would be a better minimiser than the theory's
        unconverged += not result.converged
    agreement = within(errors, CONFIDENCE_TOLERANCE, f"SciPy L-BFGS on the full model (K in {SCIPY_NUM_CLASSES}, "
                       "both conventions, 2 random starts each) vs the closed-form confidence")
    lowest = within([max(gap, 0.0) for gap in objective_gaps], 1e-12,
                    "no start reaches a lower objective than the closed form's minimum")
    return CheckResult(agreement.passed and lowest.passed and not unconverged, agreement.max_error,
                       f"{agreement.detail}; {lowest.detail}; unconverged runs: {unconverged}")


def _threshold_scipy(context: CheckContext) -> CheckResult:
    confidence_errors, norms = [], []
    for k, convention, case, _, result in _scipy_rows(context, PAST_THRESHOLD_CASES):
        theory = _optimum(k, *case, convention)
        if theory.collapsed:
            return CheckResult(False, None, f"case {case} at K = {k} is not past the threshold")
        confidence_errors.append(abs(result.confidence - 1 / k))
        norms.append(max(float(np.abs(result.classifier).max()), float(np.abs(result.features).max())))
    trivial = within(confidence_errors, CONFIDENCE_TOLERANCE, "past the threshold, SciPy's confidence vs 1/K")
    vanishing = within(norms, 1e-6, "and its largest entry of W and H (W = H = 0)")
    return all_of(trivial, vanishing)


def _collapse_measures(k: int, result) -> tuple[float, float, float]:
    """Within-class spread over the mean norm; worst deviation of the means' cosines from -1/(K-1); worst misalignment of W."""
    features = result.features.reshape(result.features.shape[0], k, SAMPLES_PER_CLASS)
    means = features.mean(axis=2)                                        # d x K
    spread = float(np.abs(features - means[:, :, None]).max() / np.linalg.norm(means, axis=0).mean())
    unit = means / np.linalg.norm(means, axis=0)
    cosines = unit.T @ unit
    frame_error = float(np.abs(cosines[~np.eye(k, dtype=bool)] + 1 / (k - 1)).max())
    rows = result.classifier / np.linalg.norm(result.classifier, axis=1, keepdims=True)
    alignment_error = float(np.abs(np.sum(rows * unit.T, axis=1) - 1).max())
    return spread, frame_error, alignment_error


def _geometry_scipy(context: CheckContext) -> CheckResult:
    collapse, norm_errors = [], []
    for k, convention, case, _, result in _scipy_rows(context, COLLAPSED_CASES):
        theory = _optimum(k, *case, convention)
        collapse.append(max(_collapse_measures(k, result)))
        row_norms = np.linalg.norm(result.classifier, axis=1)
        feature_norms = np.linalg.norm(result.features, axis=0)
        norm_errors += [float(np.abs(row_norms / theory.classifier_norm - 1).max()),
                        float(np.abs(feature_norms / theory.feature_norm - 1).max())]
    return all_of(
        within(collapse, 1e-5, "SciPy minimisers: features at their class means, means a simplex frame "
               "(cosines -1/(K-1)), W's rows aligned with them (worst of the three deviations)"),
        within(norm_errors, 1e-5, "||w_k|| and ||h_i|| vs the closed form's classifier_norm and feature_norm (relative)"),
    )


@lru_cache(maxsize=None)
def _torch_descents(device: str, seed: int) -> tuple:
    configurations = [_torch_ufm.UfmConfiguration(eps, convention, decay_w, decay_h)
                      for convention in ("off_target", "uniform")
                      for eps, decay_w, decay_h in COLLAPSED_CASES[::2] + PAST_THRESHOLD_CASES[:1]]
    return tuple((k, configurations, _torch_ufm.descend_unconstrained_features(
        configurations, num_classes=k, samples_per_class=SAMPLES_PER_CLASS, device=device, seed=seed, steps=2000))
        for k in TORCH_NUM_CLASSES)


def _torch_compare(context: CheckContext, compare) -> list[float]:
    errors = []
    for k, configurations, result in _torch_descents(context.device, context.seed):
        for i, c in enumerate(configurations):
            theory = _optimum(k, c.eps, c.classifier_decay, c.feature_decay, c.convention)
            errors += compare(theory, result, i, k)
    return errors


def _confidence_torch(context: CheckContext) -> CheckResult:
    errors = _torch_compare(context, lambda t, r, i, k: [abs(r.confidences[i] - t.confidence)] if t.collapsed else [])
    return within(errors, 1e-8, f"torch gradient descent on the full model (2000 steps, K in {TORCH_NUM_CLASSES}, "
                  f"configurations batched) vs the closed-form confidence, on {context.device}")


def _threshold_torch(context: CheckContext) -> CheckResult:
    errors = _torch_compare(context, lambda t, r, i, k: [] if t.collapsed else
                            [abs(r.confidences[i] - 1 / k), r.classifier_norms[i], r.feature_norms[i]])
    return within(errors, 1e-8, f"torch gradient descent past the threshold: |confidence - 1/K|, ||w||, ||h||, "
                  f"on {context.device}")


def _geometry_torch(context: CheckContext) -> CheckResult:
    errors = _torch_compare(context, lambda t, r, i, k: [
        abs(r.classifier_norms[i] / t.classifier_norm - 1), abs(r.feature_norms[i] / t.feature_norm - 1)]
        if t.collapsed else [])
    return within(errors, 1e-6, f"torch gradient descent: ||w_k|| and ||h_i|| vs the closed form (relative), "
                  f"on {context.device}")


CLAIMS = (
    Claim(
        id="neural_collapse.confidence",
        statement=f"In {MODEL}, the global minimiser gives every training sample the confidence "
        "q = a - (K-1) sqrt(n lambda_W lambda_H) and the logit gap log((K-1) q/(1-q)) "
        "(lstheory.neural_collapse_optimum): weight decay caps the confidence below the smoothed target's a.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(neural_collapse_reduction, 3, 4, 5, 6, 8, 9, 10),
                "scipy": _confidence_scipy, "torch": _confidence_torch},
    ),
    Claim(
        id="neural_collapse.threshold",
        statement=f"In {MODEL}, a non-zero minimiser exists exactly when a - 1/K > (K-1) sqrt(n lambda_W lambda_H); "
        "past that threshold the global minimiser is W = H = 0, predicting 1/K for every class.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(neural_collapse_reduction, 5, 6, 7),
                "scipy": _threshold_scipy, "torch": _threshold_torch},
    ),
    Claim(
        id="neural_collapse.geometry",
        statement=f"In {MODEL}, at the global minimiser every feature equals its class mean, the means form a simplex "
        "equiangular tight frame (pairwise cosines -1/(K-1)), W's rows are aligned with them, and "
        "||w_k||^2/||h_i||^2 = n lambda_H/lambda_W.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(neural_collapse_reduction, 1, 2),
                "scipy": _geometry_scipy, "torch": _geometry_torch},
    ),
)
