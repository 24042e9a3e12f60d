r"""Both smoothing conventions' closed forms, derived by substitution, for symbolic ``K``.

The two-level optimum of :func:`lstheory.symbolic.general.general_optimum_symbolic_k`
(gap ``log(p_true / p_other)``, confidence ``p_true``, minimum = entropy) is
specialised to each convention's target, and the two conventions are shown to
describe the same targets under ``eps_off_target = eps_uniform (K-1)/K``.

Symbols: ``K`` (a positive integer; where a sign needs ``K >= 2`` it is
written ``K = n + 2`` with ``n >= 0``), ``eps`` (positive; where ``1 - eps``
must be positive, ``eps = 1/(1 + t)`` with ``t > 0`` parametrises
``0 < eps < 1``).

References: He et al. 2019, arXiv 1812.01187, sec. 5.2 (off_target);
Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory._validation import check_convention
from lstheory.symbolic.derivation import Derivation, Notation, Step, plain
from lstheory.symbolic.general import AT_LEAST_TWO_CLASSES, INTERIOR_EPS

K = sympy.Symbol("K", integer=True, positive=True)
EPS = sympy.Symbol("epsilon", positive=True)
_N = sympy.Symbol("n", integer=True, nonnegative=True)
_T = sympy.Symbol("t", positive=True)
_INTERIOR = {EPS: 1 / (1 + _T)}  # 0 < eps < 1
_AT_LEAST_TWO = {K: _N + 2}  # K >= 2
INTERIOR_NOTATION = (Notation(_T, (1 - EPS) / EPS, INTERIOR_EPS), Notation(_N, K - 2, AT_LEAST_TWO_CLASSES))
"""How the helper symbols ``t`` and ``n`` of :data:`_INTERIOR` and :data:`_AT_LEAST_TWO` are printed."""


def target(convention: str, eps: sympy.Expr = EPS, num_classes: sympy.Expr = K) -> tuple[sympy.Expr, sympy.Expr]:
    """``(p_true, p_other)`` of a convention as SymPy expressions."""
    check_convention(convention)
    if convention == "off_target":
        return 1 - eps, eps / (num_classes - 1)
    return 1 - eps + eps / num_classes, eps / num_classes


def gap_closed_form(convention: str, eps: sympy.Expr = EPS, num_classes: sympy.Expr = K) -> sympy.Expr:
    """The published closed form of the optimal gap (He et al.; Szegedy et al.'s target)."""
    check_convention(convention)
    if convention == "off_target":
        return sympy.log((num_classes - 1) * (1 - eps) / eps)
    return sympy.log(1 + num_classes * (1 - eps) / eps)


def off_target_mass(convention: str, eps: sympy.Expr = EPS, num_classes: sympy.Expr = K) -> sympy.Expr:
    """``c = (K-1) p_other``: ``eps`` (off_target) or ``eps (K-1)/K`` (uniform)."""
    check_convention(convention)
    return eps if convention == "off_target" else eps * (num_classes - 1) / num_classes


def min_loss_closed_form(convention: str, eps: sympy.Expr = EPS, num_classes: sympy.Expr = K) -> sympy.Expr:
    """``-(1-c) log(1-c) + c log((K-1)/c)``: the form :func:`lstheory.min_loss` evaluates."""
    c = off_target_mass(convention, eps, num_classes)
    return -(1 - c) * sympy.log(1 - c) + c * sympy.log((num_classes - 1) / c)


def _positive_logs(expression: sympy.Basic) -> sympy.Basic:
    # Valid on the interior 0 < eps < 1, K >= 2, where every log argument is positive;
    # the substitutions make that positivity visible to SymPy.
    return sympy.expand_log(sympy.factor(expression.subs(_INTERIOR).subs(_AT_LEAST_TWO)), force=True)


@lru_cache(maxsize=None)
def convention_closed_form(convention: str) -> Derivation:
    """Target, gap, confidence and minimum of one convention, for symbolic ``K`` and ``eps``."""
    check_convention(convention)
    p_true, p_other = target(convention)
    gap = sympy.log(p_true / p_other)
    closed = gap_closed_form(convention)
    confidence = sympy.exp(gap) / (sympy.exp(gap) + K - 1)
    entropy = -p_true * sympy.log(p_true) - (K - 1) * p_other * sympy.log(p_other)
    name = "eps/(K-1)" if convention == "off_target" else "eps/K"
    steps = (
        Step(f"The {convention} target ({name}) is a distribution: p_true + (K-1) p_other = 1",
             p_true + (K - 1) * p_other, sympy.S.One),
        Step("Its optimal gap log(p_true / p_other) is the closed form (equal log arguments)",
             p_true / p_other, sympy.exp(closed)),
        Step("The closed-form gap decreases as eps grows (0 < eps < 1, K >= 2): smoothing bounds the gap",
             sympy.diff(closed, EPS).subs(_INTERIOR).subs(_AT_LEAST_TWO), relation="<0"),
        Step("At the optimum the predicted confidence softmax(z*)_y equals p_true", confidence, p_true),
        Step("The minimum value, the target's entropy, equals the closed form lstheory.min_loss evaluates",
             entropy, min_loss_closed_form(convention), prepare=_positive_logs),
    )
    return Derivation(
        title=f"Closed form, {convention} convention",
        steps=steps,
        summary=f"gap = {plain(closed)}; p_true = {plain(p_true)}, p_other = {plain(p_other)}.",
        notation=INTERIOR_NOTATION,
    )


@lru_cache(maxsize=None)
def conversion() -> Derivation:
    """``eps_off_target = eps_uniform (K-1)/K`` maps one convention's targets onto the other's."""
    eps_uniform = sympy.Symbol("epsilon_u", positive=True)
    eps_off = eps_uniform * (K - 1) / K
    off_true, off_other = target("off_target", eps_off)
    uni_true, uni_other = target("uniform", eps_uniform)
    steps = (
        Step("Under eps_off = eps_u (K-1)/K the true-class masses coincide", off_true, uni_true),
        Step("and so do the other-class masses", off_other, uni_other),
        Step("so the closed-form gaps coincide (equal log arguments)",
             sympy.exp(gap_closed_form("off_target", eps_off)), sympy.exp(gap_closed_form("uniform", eps_uniform))),
        Step("and the inverse map eps_u = eps_off K/(K-1) returns the starting eps", eps_off * K / (K - 1), eps_uniform),
        Step("The conventions differ at equal eps: the off_target gap is smaller for K >= 2, 0 < eps < 1",
             (sympy.exp(gap_closed_form("off_target")) - sympy.exp(gap_closed_form("uniform")))
             .subs(_INTERIOR).subs(_AT_LEAST_TWO), relation="<0"),
    )
    return Derivation(
        title="Converting eps between the conventions",
        steps=steps,
        summary="eps_off_target = eps_uniform (K-1)/K; both conventions then describe the same target.",
        notation=INTERIOR_NOTATION,
    )
