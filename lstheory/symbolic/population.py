r"""The population minimiser of label smoothing for K classes, derived exactly.

With labels ``y ~ eta`` (a distribution over the K classes), the expected
smoothed loss ``E_y CE(smooth(e_y), softmax(z))`` is a cross-entropy against
the expected target (cross-entropy is linear in its target), so its minimiser
predicts that target:

* uniform: ``(1 - eps) eta + eps/K``;
* off_target: ``(1 - eps) eta_k + eps (1 - eta_k)/(K-1) = c eta_k + eps/(K-1)`` with
  ``c = 1 - eps K/(K-1)``.

Both are affine in ``eta`` with slope ``c`` (``1 - eps`` for uniform), so the
argmax of ``eta`` is kept while ``c > 0`` (classification calibration) and the
map is inverted by ``eta = (q - b)/c``.  Extends the binary case of Yamasaki and
Tanaka 2023, arXiv 2305.08501.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols, normalised_target
from lstheory.symbolic.smoothing import EPS, K

_T = sympy.Symbol("t", positive=True)
_M = sympy.Symbol("m", integer=True, nonnegative=True)


def _smoothed_one_hot(label: int, num_classes: int) -> list[sympy.Expr]:
    """The uniform-convention target of ``label``: ``(1 - eps) e_y + eps/K``."""
    return [(1 - EPS) * (1 if i == label else 0) + EPS / num_classes for i in range(num_classes)]


def slope_and_offset(convention: str) -> tuple[sympy.Expr, sympy.Expr]:
    """``(c, b)`` with expected target ``c eta + b``, for symbolic K."""
    if convention == "off_target":
        return 1 - EPS * K / (K - 1), EPS / (K - 1)
    return 1 - EPS, EPS / K


@lru_cache(maxsize=None)
def population_minimiser(num_classes: int = 3) -> Derivation:
    """Expected target, argmax preservation and the inverse map, both conventions."""
    k = num_classes
    z = logit_symbols(k)
    eta = normalised_target(k, "eta")
    expected_loss = sum(eta_y * cross_entropy(_smoothed_one_hot(y, k), z) for y, eta_y in enumerate(eta))
    expected_target = [(1 - EPS) * e + EPS / k for e in eta]
    at_log_target = {zi: sympy.log(ti) for zi, ti in zip(z, expected_target)}
    eta_k, eta_i, eta_j, q = sympy.symbols("eta_k eta_i eta_j q", positive=True)
    c_off, b_off = slope_and_offset("off_target")
    c_uni, b_uni = slope_and_offset("uniform")
    steps = (
        Step(f"With y ~ eta (K = {k} shown, uniform convention), the expected smoothed loss is the cross-entropy "
             "against the expected target (1 - eps) eta + eps/K, cross-entropy being linear in its target",
             expected_loss, cross_entropy(expected_target, z), name="E_y CE(smooth(e_y), z)"),
        Step("so its gradient vanishes at z = log((1 - eps) eta + eps/K): the population minimiser predicts the expected "
             "target (the general optimum)",
             sympy.Matrix([sympy.diff(expected_loss, zi) for zi in z]).subs(at_log_target), sympy.zeros(k, 1),
             name="gradient at z = log((1 - eps) eta + eps/K)"),
        Step("Off_target: class k is the label with probability eta_k (mass 1 - eps) and another class's label otherwise "
             "(mass eps/(K-1)), so its expected target is c eta_k + eps/(K-1) with c = 1 - eps K/(K-1)",
             (1 - EPS) * eta_k + EPS / (K - 1) * (1 - eta_k), c_off * eta_k + b_off),
        Step("The expected target differs between two classes by c (eta_i - eta_j) (c = 1 - eps for uniform): the "
             "argmax of eta is kept exactly when c > 0",
             (c_off * eta_i + b_off) - (c_off * eta_j + b_off), c_off * (eta_i - eta_j)),
        Step("Off_target c is positive for every eps below (K-1)/K (written eps = ((K-1)/K)/(1 + t), K = m + 2) ...",
             c_off.subs(EPS, (K - 1) / K / (1 + _T)).subs(K, _M + 2), relation=">0"),
        Step("... and negative above it (eps = ((K-1)/K)(1 + t)): there the order of eta is reversed",
             c_off.subs(EPS, (K - 1) / K * (1 + _T)).subs(K, _M + 2), relation="<0"),
        Step("Uniform c = 1 - eps is positive for every eps < 1 (written eps = 1/(1 + t))",
             c_uni.subs(EPS, 1 / (1 + _T)), relation=">0"),
        Step("The inverse maps q = c eta + b back to eta = (q - b)/c: off_target eta = (q - eps/(K-1))/(1 - eps K/(K-1))",
             ((c_off * eta_k + b_off) - b_off) / c_off, eta_k),
        Step("and uniform eta = (q - eps/K)/(1 - eps)", ((c_uni * eta_k + b_uni) - b_uni) / c_uni, eta_k),
        Step("Where c = 0 (off_target eps = (K-1)/K) every eta maps to the uniform prediction 1/K: no inverse",
             (c_off * q + b_off).subs(EPS, (K - 1) / K), 1 / K),
    )
    return Derivation("The population minimiser of label smoothing, K classes", steps,
                      "argmin_q E_{y~eta} CE(smooth(e_y), q) = (1-eps) eta + eps/K (uniform), "
                      "(1 - eps K/(K-1)) eta + eps/(K-1) (off_target); argmax kept while the slope is positive; "
                      "inverted by eta = (q - b)/c.")


__all__ = ["population_minimiser", "slope_and_offset"]
