r"""Label relaxation (Lienen and Hüllermeier 2021), derived exactly.

Label relaxation replaces the smoothed target by the credal set
``Q = {p : p_y >= 1 - alpha}``.  The loss is 0 when the prediction ``q`` lies
in ``Q``; otherwise it is ``KL(p_r || q)`` with ``p_r`` the projection of ``q``
on ``Q``: ``1 - alpha`` on the label and ``alpha q_i / (1 - q_y)`` elsewhere.
That KL is the Bernoulli one between the label masses::

    (1 - alpha) log((1 - alpha)/q_y) + alpha log(alpha/(1 - q_y)),

and on two-level logits every gap ``>= log((K-1)(1-alpha)/alpha)`` has zero
loss: the minimisers form an unbounded set, where off_target smoothing with
``eps = alpha`` has exactly one optimal gap, that boundary.

Reference: Lienen and Hüllermeier 2021, "From Label Smoothing to Label
Relaxation", AAAI (the label relaxation loss).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import normalised_target
from lstheory.symbolic.smoothing import EPS, K, gap_closed_form

ALPHA = sympy.Symbol("alpha", positive=True)
_T = sympy.Symbol("t", positive=True)


def bernoulli_kl(q_label: sympy.Expr, alpha: sympy.Expr = ALPHA) -> sympy.Expr:
    """``(1 - alpha) log((1 - alpha)/q_y) + alpha log(alpha/(1 - q_y))``."""
    return (1 - alpha) * sympy.log((1 - alpha) / q_label) + alpha * sympy.log(alpha / (1 - q_label))


@lru_cache(maxsize=None)
def label_relaxation_minimisers(num_classes: int = 3) -> Derivation:
    """The projected KL is a Bernoulli KL; zero exactly on the credal set; an unbounded set of optimal gaps."""
    k = num_classes
    q = normalised_target(k, "q")  # the prediction, label = first class
    projected = [1 - ALPHA] + [ALPHA * qi / (1 - q[0]) for qi in q[1:]]
    kl = sum(p * sympy.log(p / qi) for p, qi in zip(projected, q))
    q_label, g = sympy.symbols("q_y g", positive=True)
    slope = sympy.diff(bernoulli_kl(q_label), q_label)
    confidence = sympy.exp(g) / (sympy.exp(g) + K - 1)
    boundary_gap = sympy.log((K - 1) * (1 - ALPHA) / ALPHA)
    interior = {ALPHA: 1 / (1 + _T)}  # 0 < alpha < 1
    steps = (
        Step(f"The projection of q on Q (1 - alpha on the label, alpha q_i/(1 - q_y) elsewhere) is at KL distance "
             f"(1 - alpha) log((1 - alpha)/q_y) + alpha log(alpha/(1 - q_y)) from q: a Bernoulli KL (K = {k}; the "
             "probabilities are positive, so the logarithms expand)",
             kl, bernoulli_kl(q[0]), prepare=lambda e: sympy.expand_log(e, force=True), name="KL(p_r || q)"),
        Step("At the edge of the set, q_y = 1 - alpha, it is zero: the loss is continuous", bernoulli_kl(1 - ALPHA),
             sympy.S.Zero, prepare=lambda e: sympy.expand_log(e, force=True)),
        Step("Its derivative in q_y is (q_y - (1 - alpha))/(q_y (1 - q_y))", slope,
             (q_label - (1 - ALPHA)) / (q_label * (1 - q_label)), name="d/dq_y of the Bernoulli KL"),
        Step("which is negative below the edge (q_y = (1 - alpha)/(1 + t), 0 < alpha < 1): the KL falls to zero as q_y "
             "rises to 1 - alpha, so it is positive on the whole of q_y < 1 - alpha and the loss vanishes exactly on Q",
             slope.subs(q_label, (1 - ALPHA) / (1 + _T)).subs(interior), relation="<0"),
        Step("On two-level logits with gap g the confidence is e^g/(e^g + K - 1); at g_alpha = log((K-1)(1-alpha)/alpha) "
             "it equals 1 - alpha", confidence.subs(g, boundary_gap), 1 - ALPHA),
        Step("and it rises with g (slope (K-1) e^g/(e^g + K - 1)^2 > 0, K = 2 + m): every gap g >= g_alpha is optimal, "
             "an unbounded set",
             sympy.diff(confidence, g).subs(K, 2 + sympy.Symbol("m", integer=True, nonnegative=True)), relation=">0"),
        Step("The boundary gap g_alpha is off_target smoothing's unique optimal gap at eps = alpha", boundary_gap,
             gap_closed_form("off_target").subs(EPS, ALPHA)),
    )
    return Derivation(f"Label relaxation (Lienen and Hüllermeier, K = {k})", steps,
                      "Loss 0 iff q_y >= 1 - alpha, else (1-alpha) log((1-alpha)/q_y) + alpha log(alpha/(1-q_y)); "
                      "every gap >= log((K-1)(1-alpha)/alpha) is optimal.")


__all__ = ["ALPHA", "bernoulli_kl", "label_relaxation_minimisers"]
