r"""Mixup and label smoothing commute, derived exactly.

Smoothing is an affine map of the target: uniform ``t -> (1 - eps) t + eps/K``;
off_target, on one-hot targets, ``e_y -> c e_y + eps/(K-1)`` with
``c = 1 - eps K/(K-1)``.  Affine maps commute with convex combinations, so
mixing two smoothed labels (timm's ``mixup_target`` smooths each label and then
mixes) gives the same target as smoothing the mixed label.  The optimum under
the mixed, smoothed target (weight ``lam`` on class ``a``, ``1 - lam`` on ``b``)
has two gaps::

    z_a - z_b = log[(lam (1-eps) + eps/K) / ((1-lam)(1-eps) + eps/K)]
    z_a - z_o = log(1 + K lam (1-eps)/eps)          (o neither a nor b)

References: Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization",
ICLR, arXiv 1710.09412, sec. 2; timm's ``mixup_target``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols
from lstheory.symbolic.smoothing import EPS, K, gap_closed_form

LAM = sympy.Symbol("lam", positive=True)


def _one_hot(label: int, num_classes: int) -> sympy.Matrix:
    return sympy.Matrix([1 if i == label else 0 for i in range(num_classes)])


def mixed_target_entries() -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """Uniform convention, symbolic K: the mixed, smoothed target on ``a``, on ``b`` and on every other class."""
    return LAM * (1 - EPS) + EPS / K, (1 - LAM) * (1 - EPS) + EPS / K, EPS / K


@lru_cache(maxsize=None)
def mixup_commutes(num_classes: int = 4) -> Derivation:
    """Smoothing then mixing equals mixing then smoothing (both conventions); the optimum's two gaps."""
    k = num_classes
    ones = sympy.ones(k, 1)
    e_a, e_b = _one_hot(0, k), _one_hot(1, k)
    mixed = LAM * e_a + (1 - LAM) * e_b

    def uniform(t):
        return (1 - EPS) * t + EPS / k * ones

    def off_target(label):  # the off_target target of a single label
        return (1 - EPS) * _one_hot(label, k) + EPS / (k - 1) * (ones - _one_hot(label, k))

    c = 1 - EPS * k / (k - 1)
    on_a, on_b, other = mixed_target_entries()
    z = logit_symbols(k)
    target = [v.subs(K, k) for v in (on_a, on_b)] + [other.subs(K, k)] * (k - 2)
    at_log_target = {zi: sympy.log(ti) for zi, ti in zip(z, target)}
    steps = (
        Step(f"Uniform convention (K = {k}): smoothing each label and then mixing, lam smooth(e_a) + (1 - lam) smooth(e_b), "
             "equals smoothing the mixed label lam e_a + (1 - lam) e_b (the map is affine and the weights sum to 1)",
             LAM * uniform(e_a) + (1 - LAM) * uniform(e_b), uniform(mixed), name="lam smooth(e_a) + (1 - lam) smooth(e_b)"),
        Step("Off_target: mixing the two smoothed labels gives c (lam e_a + (1 - lam) e_b) + eps/(K-1) with "
             "c = 1 - eps K/(K-1): the same affine map applied to the mixed label",
             LAM * off_target(0) + (1 - LAM) * off_target(1), c * mixed + EPS / (k - 1) * ones,
             name="lam smooth(e_a) + (1 - lam) smooth(e_b)"),
        Step("The optimum under the mixed, smoothed target is its logarithm (the general optimum): the gradient "
             "vanishes there", sympy.Matrix([sympy.diff(cross_entropy(target, z), zi) for zi in z]).subs(at_log_target),
             sympy.zeros(k, 1), name="gradient at z = log(mixed target)"),
        Step("so the gap to any unmixed class o is log(1 + K lam (1 - eps)/eps) (the ratio of target masses, for "
             "symbolic K)", sympy.exp(sympy.log(on_a / other)), 1 + K * LAM * (1 - EPS) / EPS),
        Step("and between the two mixed classes it is log[(lam (1-eps) + eps/K)/((1 - lam)(1 - eps) + eps/K)], zero at "
             "lam = 1/2", (on_a / on_b).subs(LAM, sympy.Rational(1, 2)), sympy.S.One),
        Step("At lam = 1 the gap to an unmixed class is the unmixed uniform gap log(1 + K (1-eps)/eps)",
             sympy.exp(sympy.log(on_a / other)).subs(LAM, 1), sympy.exp(gap_closed_form("uniform"))),
    )
    return Derivation(f"Mixup commutes with label smoothing (K = {k})", steps,
                      "smooth(mix) = mix(smooth) for both conventions; optimal gaps z_a - z_b = "
                      "log[(lam(1-eps)+eps/K)/((1-lam)(1-eps)+eps/K)] and z_a - z_o = log(1 + K lam (1-eps)/eps).")


__all__ = ["LAM", "mixed_target_entries", "mixup_commutes"]
