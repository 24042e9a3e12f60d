r"""The seed blog post's claims, checked exactly, including its two errors.

The seed post (described in ``docs/seed.md``, the docs page "The seed
post") makes five mathematical statements.  Three hold; two are printed wrongly and are
registered as corrected:

- one-hot targets have no finite optimum (the gap is pushed to ``+inf``);
- the smoothed loss, printed loosely as "``(1-eps)*Loss`` if ``i = y``,
  ``eps*Loss`` if ``i != y``" -- read literally, the weights sum to
  ``1 + (K-2) eps``, so it is not a cross-entropy for ``K > 2``; the exact
  statement is ``(1-eps)(-log q_y) + eps/(K-1) sum_{i != y} (-log q_i)``;
- the optimal logits, printed as ``z_y = log((k-1)(1-eps)/(eps + alpha))``,
  ``z_i = alpha`` -- the shift ``alpha`` belongs outside the logarithm:
  ``z_y = log((K-1)(1-eps)/eps) + alpha``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols, softmax
from lstheory.symbolic.smoothing import EPS, INTERIOR_NOTATION, K, gap_closed_form, target

_N = sympy.Symbol("n", integer=True, nonnegative=True)
ALPHA = sympy.Symbol("alpha", real=True)


def seed_printed_logits(num_classes: sympy.Expr = K, eps: sympy.Expr = EPS, alpha: sympy.Expr = ALPHA):
    """``(z_y, z_i)`` exactly as the seed prints them (alpha inside the log)."""
    return sympy.log((num_classes - 1) * (1 - eps) / (eps + alpha)), alpha


def corrected_logits(num_classes: sympy.Expr = K, eps: sympy.Expr = EPS, alpha: sympy.Expr = ALPHA):
    """``(z_y, z_i)`` of the corrected optimum (alpha outside the log)."""
    return gap_closed_form("off_target", eps, num_classes) + alpha, alpha


def _two_level_gradient_true_class(z_true, z_other, num_classes, eps):
    """d L / d z_y at two-level logits for the off_target target: softmax_y - p_true."""
    q_true = sympy.exp(z_true) / (sympy.exp(z_true) + (num_classes - 1) * sympy.exp(z_other))
    return q_true - target("off_target", eps, num_classes)[0]


@lru_cache(maxsize=None)
def seed_optimal_logits() -> Derivation:
    """The misplaced alpha: a counterexample, and the corrected optimum proven for all alpha."""
    example = {K: 2, EPS: sympy.Rational(1, 2), ALPHA: 1}
    printed_true, printed_other = seed_printed_logits()
    fixed_true, fixed_other = corrected_logits()
    steps = (
        Step(
            "Counterexample to the printed form at K = 2, eps = 1/2, alpha = 1: the gradient "
            "softmax(z)_y - p_y at the seed's logits is not zero",
            _two_level_gradient_true_class(printed_true.subs(example), printed_other.subs(example), 2,
                                           sympy.Rational(1, 2)),
            sympy.S.Zero,
            relation="!=",
        ),
        Step(
            "The printed gap z_y - z_i depends on alpha, but softmax is shift-invariant, so the true "
            "optimal gap cannot: d/d alpha of the printed gap is not identically zero",
            sympy.diff(printed_true - printed_other, ALPHA).subs(example),
            sympy.S.Zero,
            relation="!=",
        ),
        Step(
            "Corrected: z_y = log((K-1)(1-eps)/eps) + alpha, z_i = alpha makes the gradient vanish "
            "for every K, eps and alpha",
            _two_level_gradient_true_class(fixed_true, fixed_other, K, EPS),
            sympy.S.Zero,
            name="softmax(z)_y - p_y at the corrected logits",
        ),
    )
    return Derivation(
        title="Seed erratum: the optimal logits (alpha belongs outside the log)",
        steps=steps,
        summary="Printed: z_y = log((k-1)(1-eps)/(eps+alpha)). Correct: z_y = log((K-1)(1-eps)/eps) + alpha.",
    )


@lru_cache(maxsize=None)
def seed_loss_rewrite(num_classes: int = 3) -> Derivation:
    """The loose loss rewrite, stated exactly, and why the literal reading is wrong."""
    k = num_classes
    z = logit_symbols(k)
    q = softmax(z)
    p_true, p_other = target("off_target", EPS, k)
    smoothed = [p_true] + [p_other] * (k - 1)  # label y = first class
    exact = (1 - EPS) * (-sympy.log(q[0])) + EPS / (k - 1) * sum(-sympy.log(qi) for qi in q[1:])
    weights = [1 - EPS] + [EPS] * (k - 1)  # the literal reading: eps on every other class
    literal = sum(w * (-sympy.log(qi)) for w, qi in zip(weights, q))
    tenth = {EPS: sympy.Rational(1, 10)}
    steps = (
        Step(
            f"Exact statement (K = {k}, label = first class): (1-eps)(-log q_y) + eps/(K-1) sum_(i != y)(-log q_i) "
            "is the cross-entropy against the smoothed target",
            exact,
            cross_entropy(smoothed, z),
        ),
        Step(
            f"Read literally ('(1-eps) Loss if i = y, eps Loss if i != y') the weights sum to 1 + (K-2) eps (K = {k})",
            sum(weights),
            1 + (k - 2) * EPS,
        ),
        Step(
            "which is not 1 for K > 2 (eps = 1/10 gives 1 + (K-2)/10): the literal reading is not a "
            "cross-entropy against a distribution",
            sum(weights).subs(tenth),
            sympy.S.One,
            relation="!=",
        ),
        Step(
            f"and it differs from the exact loss (K = {k}, eps = 1/10, at logits (1, 0, ...))",
            (literal - exact).subs(tenth).subs({zi: (1 if index == 0 else 0) for index, zi in enumerate(z)}),
            sympy.S.Zero,
            relation="!=",
        ),
    )
    return Derivation(
        title="Seed erratum: the loss after smoothing, stated exactly",
        steps=steps,
        summary="L_LS = (1-eps)(-log q_y) + eps/(K-1) sum_{i != y} (-log q_i).",
    )


@lru_cache(maxsize=None)
def seed_one_hot() -> Derivation:
    """With a one-hot target (eps = 0) the loss has no finite minimiser."""
    g = sympy.Symbol("g", real=True)
    loss = sympy.log(1 + (K - 1) * sympy.exp(-g))  # two-level loss with p_y = 1
    steps = (
        Step(
            "With eps = 0 the loss on logits (g, 0, ..., 0) is log(1 + (K-1) e^(-g)); its slope is "
            "negative for every gap g (K = n + 2 >= 2)",
            sympy.diff(loss, g).subs(K, _N + 2),
            relation="<0",
        ),
        Step(
            "and it tends to 0, its infimum, only as g -> +oo: no finite logits are optimal "
            "(the seed's 'Z_y = +oo')",
            sympy.limit(loss.subs(K, _N + 2), g, sympy.oo),
            sympy.S.Zero,
        ),
        Step(
            "For 0 < eps < 1 the optimal gap is finite (eps = 1/(1+t), t > 0): "
            "exp(gap) = (K-1)(1-eps)/eps is a positive real number",
            sympy.exp(gap_closed_form("off_target")).subs({EPS: 1 / (1 + sympy.Symbol("t", positive=True))})
            .subs(K, _N + 2),
            relation=">0",
        ),
    )
    return Derivation(
        title="Seed: one-hot targets have no finite optimum; smoothing makes it finite",
        steps=steps,
        summary="eps = 0 pushes the gap to +oo; any 0 < eps < 1 gives the finite gap log((K-1)(1-eps)/eps).",
        notation=INTERIOR_NOTATION,
    )
