r"""The curvature of the smoothed loss at its optimum: the Hessian's spectrum, derived exactly.

At the optimum the prediction equals the target ``p`` (``p_true`` on the label
``y``, ``p_other`` elsewhere) and the Hessian is ``H = diag(p) - p p^T``.  For a
symbolic number of classes, ``H`` is applied to vectors described by four
values: on ``y``, on two other classes ``j`` and ``k``, and on the remaining
``K - 3`` classes; that is enough to exhibit every eigenvector.  The full
characteristic polynomial is then computed for ``K = 5``.

Reference: the Hessian of log-sum-exp, Boyd and Vandenberghe 2004, "Convex
Optimization", sec. 3.1.5, evaluated at the smoothed optimum.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.smoothing import EPS, K, target

_M = sympy.Symbol("m", integer=True, nonnegative=True)
_T = sympy.Symbol("t", positive=True)
P_TRUE = sympy.Symbol("p_true", positive=True)
P_OTHER = (1 - P_TRUE) / (K - 1)


def _hessian_times(v_y, v_j, v_k, v_rest) -> sympy.Matrix:
    """``H v`` for ``v`` with value ``v_y`` on the label, ``v_j``, ``v_k`` on two other classes, ``v_rest`` on the K - 3 others.

    Returned as its four distinct components ``(y, j, k, rest)``.
    """
    weighted_mean = P_TRUE * v_y + P_OTHER * (v_j + v_k + (K - 3) * v_rest)  # p^T v
    return sympy.Matrix([P_TRUE * v_y, P_OTHER * v_j, P_OTHER * v_k, P_OTHER * v_rest]) - weighted_mean * sympy.Matrix(
        [P_TRUE, P_OTHER, P_OTHER, P_OTHER])


@lru_cache(maxsize=None)
def hessian_spectrum() -> Derivation:
    """Eigenvalues 0 (on 1), p_other (multiplicity K-2) and K p_true p_other (on e_y - 1/K); the condition number K p_true."""
    lam = sympy.Symbol("lambda")
    top = K * P_TRUE * P_OTHER
    k5 = 5
    p5 = [P_TRUE] + [(1 - P_TRUE) / (k5 - 1)] * (k5 - 1)
    hessian5 = sympy.diag(*p5) - sympy.Matrix(p5) * sympy.Matrix(p5).T
    other5 = (1 - P_TRUE) / (k5 - 1)
    characteristic = lam * (lam - other5) ** (k5 - 2) * (lam - k5 * P_TRUE * other5)
    in_range = {EPS: (K - 1) / K / (1 + _T)}  # 0 < eps < (K-1)/K, the range where p_true > p_other
    steps = (
        Step("At the optimum the Hessian is H = diag(p) - p p^T with p the target; it maps the all-ones vector to 0 "
             "(the target sums to one)", _hessian_times(1, 1, 1, 1), sympy.zeros(4, 1), name="H 1"),
        Step("The difference of two off-label basis vectors, e_j - e_k, has p^T v = 0, so H (e_j - e_k) = "
             "p_other (e_j - e_k); these K - 2 independent differences span {v : v_y = 0, sum v = 0}: eigenvalue p_other "
             "with multiplicity K - 2",
             _hessian_times(0, 1, -1, 0), P_OTHER * sympy.Matrix([0, 1, -1, 0]), name="H (e_j - e_k)"),
        Step("The centred label vector e_y - 1/K is an eigenvector with eigenvalue K p_true p_other",
             _hessian_times(1 - 1 / K, -1 / K, -1 / K, -1 / K), top * sympy.Matrix([1 - 1 / K, -1 / K, -1 / K, -1 / K]),
             name="H (e_y - 1/K)"),
        Step("For K = 5 the characteristic polynomial det(lambda I - H) is lambda (lambda - p_other)^3 "
             "(lambda - 5 p_true p_other): these are all the eigenvalues, with their multiplicities",
             (lam * sympy.eye(k5) - hessian5).det(), characteristic, name="det(lambda I - H)"),
        Step("On the complement of the all-ones vector the eigenvalues are p_other and K p_true p_other, so the "
             "condition number there is K p_true; the second exceeds the first by p_other (K p_true - 1), positive "
             "while p_true > 1/K", top - P_OTHER, P_OTHER * (K * P_TRUE - 1)),
        Step("With the off_target target, p_true - 1/K = (K-1)/K - eps is positive for every eps below (K-1)/K "
             "(written eps = ((K-1)/K)/(1 + t), K = m + 2)",
             (target("off_target")[0] - 1 / K).subs(in_range).subs(K, _M + 2), relation=">0"),
        Step("The smallest curvature across the shift, p_other = eps/(K-1) (off_target), vanishes as eps -> 0: without "
             "smoothing the optimum is not strongly convex",
             sympy.limit(target("off_target")[1], EPS, 0), sympy.S.Zero),
        Step("and the condition number K p_true is K (1 - eps) (off_target) and K - (K-1) eps (uniform), at most K",
             sympy.Matrix([K * target("off_target")[0], K * target("uniform")[0]]),
             sympy.Matrix([K * (1 - EPS), K - (K - 1) * EPS])),
    )
    return Derivation("The Hessian's spectrum at the smoothed optimum", steps,
                      "H = diag(p) - p p^T: eigenvalue 0 on 1, p_other (multiplicity K-2), K p_true p_other on e_y - 1/K; "
                      "on 1-perp the curvature is at least p_other and the condition number is K p_true.")


__all__ = ["hessian_spectrum"]
