"""The two smoothing conventions: closed forms, conversion, confidence and minimum value."""

from __future__ import annotations

from fractions import Fraction

import scipy.special

from lstheory.claims._levels import GAP_TOLERANCE, all_of, proven, smoothed_sweep, within
from lstheory.claims import _torch_levels as torch_levels
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import convert_eps, logit_gap, min_loss
from lstheory.symbolic import convention_closed_form, conversion, general_optimum_symbolic_k

HE = "He et al. 2019, 'Bag of Tricks for Image Classification', arXiv 1812.01187, sec. 5.2"
SZEGEDY = "Szegedy et al. 2016, 'Rethinking the Inception Architecture', arXiv 1512.00567, sec. 7"


def _gap_symbolic(convention: str):
    def check(context: CheckContext) -> CheckResult:
        # The two-level optimum (stationary at log(p_true/p_other), strictly convex) and this target's ratio.
        return all_of(proven(general_optimum_symbolic_k(), steps=[3, 4, 5, 6]),
                      proven(convention_closed_form(convention), steps=[1, 2]))

    return check


def _gap_scipy(convention: str):
    def check(context: CheckContext) -> CheckResult:
        errors = [abs(r.gap - float(logit_gap(k, e, convention=convention))) for k, e, r in smoothed_sweep(convention)]
        return within(errors, GAP_TOLERANCE, f"SciPy gap vs lstheory.logit_gap ({convention}), absolute")

    return check


def _conversion_symbolic(context: CheckContext) -> CheckResult:
    return proven(conversion())


def _conversion_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for k, e, r in smoothed_sweep("uniform"):
        converted = float(convert_eps(k, e, src="uniform", dst="off_target"))
        errors.append(abs(r.gap - float(logit_gap(k, converted, convention="off_target"))))
    return within(errors, GAP_TOLERANCE, "SciPy uniform gap vs off_target closed form at the converted eps")


def _confidence_symbolic(context: CheckContext) -> CheckResult:
    return all_of(*(proven(convention_closed_form(c), steps=[4]) for c in ("off_target", "uniform")))


def _exact_p_true(k: int, eps: float, convention: str) -> float:
    """1 - eps or 1 - eps + eps/K, from exact rationals (independent of lstheory.smoothed_target)."""
    e = Fraction(eps)
    return float(1 - e if convention == "off_target" else 1 - e + e / k)


def _confidence_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for convention in ("off_target", "uniform"):
        for k, e, r in smoothed_sweep(convention):
            confidence = scipy.special.softmax(r.logits)[r.label]
            errors.append(abs(confidence - _exact_p_true(k, e, convention)))
    return within(errors, 1e-12, "softmax of the SciPy optimum at the label vs exact 1-eps / 1-eps+eps/K")


def _min_loss_symbolic(context: CheckContext) -> CheckResult:
    return all_of(*(proven(convention_closed_form(c), steps=[5]) for c in ("off_target", "uniform")))


def _min_loss_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for convention in ("off_target", "uniform"):
        for k, e, r in smoothed_sweep(convention):
            exact = float(min_loss(k, e, convention=convention))
            errors.append(abs(r.loss - exact) / exact)
    result = within(errors, 1e-12, "SciPy minimum loss vs lstheory.min_loss, relative")
    torch_value = float(min_loss(1000, 0.1, convention="uniform"))
    issue_value = float(min_loss(1000, 0.1, convention="off_target"))
    issue_ok = round(torch_value, 4) == 1.0148 and round(issue_value, 4) == 1.0158
    return CheckResult(
        result.passed and issue_ok,
        result.max_error,
        result.detail + f"; K=1000, eps=0.1: PyTorch's (uniform) minimum {torch_value:.4f}, the eps/(K-1) value "
        f"{issue_value:.4f} that PyTorch #130342 used",
    )


CLAIMS = (
    Claim(
        id="off_target.gap",
        statement="With the eps/(K-1) target (1-eps on the label, eps/(K-1) elsewhere) the optimal gap is "
        "z_y - z_i = log((K-1)(1-eps)/eps).",
        source=HE,
        status="verified",
        checks={"symbolic": _gap_symbolic("off_target"), "scipy": _gap_scipy("off_target"),
                "torch": torch_levels.gap("off_target")},
    ),
    Claim(
        id="uniform.gap",
        statement="With the eps/K target (1-eps+eps/K on the label, eps/K elsewhere; PyTorch, Keras, optax) the "
        "optimal gap is z_y - z_i = log(1 + K(1-eps)/eps).",
        source=f"{SZEGEDY} (target); PyTorch cross_entropy(label_smoothing=eps)",
        status="verified",
        checks={"symbolic": _gap_symbolic("uniform"), "scipy": _gap_scipy("uniform"), "torch": torch_levels.gap("uniform")},
    ),
    Claim(
        id="conventions.conversion",
        statement="The conventions describe the same targets under eps_off_target = eps_uniform (K-1)/K; at equal "
        "eps the off_target gap is smaller.",
        source="docs/conventions.md; PyTorch issues #148884 and #130342",
        status="verified",
        checks={"symbolic": _conversion_symbolic, "scipy": _conversion_scipy, "torch": torch_levels.conversion},
    ),
    Claim(
        id="optimum.confidence",
        statement="At the optimum the predicted probability of the label equals the target's true-class mass: "
        "1-eps (off_target) or 1-eps+eps/K (uniform).",
        source=f"{HE} (off_target); {SZEGEDY} (uniform): the confidence at the optimum is the target's true-class mass",
        status="verified",
        checks={"symbolic": _confidence_symbolic, "scipy": _confidence_scipy, "torch": torch_levels.confidence},
    ),
    Claim(
        id="conventions.min_loss",
        statement="The minimum smoothed loss is the target's entropy -(1-c) log(1-c) + c log((K-1)/c), c = eps "
        "(off_target) or eps (K-1)/K (uniform); PyTorch's minimum at K=1000, eps=0.1 is 1.0148, not 1.0158.",
        source="PyTorch issue #130342; Cover and Thomas 2006, Thm. 2.6.3",
        status="verified",
        checks={"symbolic": _min_loss_symbolic, "scipy": _min_loss_scipy, "torch": torch_levels.minimum_loss},
    ),
)
