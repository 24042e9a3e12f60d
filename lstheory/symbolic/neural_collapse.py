r"""Neural collapse under label smoothing: the unconstrained features model, derived exactly.

The model (``N = n K`` samples, ``n`` per class, bias free and unregularised)::

    F(W, H, b) = (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2) ||W||_F^2 + (lambda_H/2) ||H||_F^2

At a collapsed configuration (every feature at its class mean, the means a
simplex equiangular tight frame of norm ``h``, the classifier's rows aligned
with them at norm ``w``) the decays cost ``(K/2)(lambda_W w^2 + n lambda_H h^2)``
and the logits of a class-``y`` sample are ``w h`` on ``y`` and ``-w h/(K-1)``
elsewhere.  With ``t = w h`` the problem becomes one strictly convex function
of ``t``, whose stationarity gives the confidence
``q = a - (K-1) sqrt(n lambda_W lambda_H)`` and whose slope at ``t = 0`` gives
the threshold.  The full model's gradient is then shown to vanish at that
configuration (``K = 3``, ``d = 2``, exactly).

That the global minimisers are collapsed is the papers' theorem (Zhou et al.
2022, arXiv 2210.02192; Guo et al. 2024, arXiv 2402.03979); lstheory checks it
numerically by minimising the full model from random starts
(:mod:`lstheory.numeric.ufm`).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Notation, Step
from lstheory.symbolic.smoothing import K

_M = sympy.Symbol("m", integer=True, nonnegative=True)  # K = m + 2 >= 2


def _etf(num_classes: int) -> sympy.Matrix:
    """``sqrt(K/(K-1)) (I - J/K)``: columns are a simplex equiangular tight frame in R^K."""
    k = num_classes
    return sympy.sqrt(sympy.Rational(k, k - 1)) * (sympy.eye(k) - sympy.ones(k, k) / k)


def _full_model_gradients() -> tuple[sympy.Matrix, sympy.Matrix, sympy.Matrix]:
    """Gradients of the full model (K = 3, d = 2) at the collapsed configuration.

    The decays are written through the solution (``lambda_W = s h / w``,
    ``n lambda_H = s w / h``, ``s = (a - q)/(K-1)``): equivalent to
    ``s = sqrt(n lambda_W lambda_H)`` and ``w/h = sqrt(n lambda_H / lambda_W)``.
    """
    k = 3
    a, w, h = sympy.symbols("a w h", positive=True)
    n = sympy.Symbol("n", integer=True, positive=True)
    frame = sympy.Matrix([[1, 0], [-sympy.Rational(1, 2), sympy.sqrt(3) / 2], [-sympy.Rational(1, 2), -sympy.sqrt(3) / 2]])
    classifier = w * frame          # K x d, rows of norm w
    means = h * frame.T             # d x K, column y = the feature of every class-y sample
    logits = classifier * means     # column y: the logits of a class-y sample
    probabilities = sympy.Matrix(k, k, lambda i, j: sympy.exp(logits[i, j]) / sum(sympy.exp(logits[r, j]) for r in range(k)))
    targets = sympy.Matrix(k, k, lambda i, j: a if i == j else (1 - a) / (k - 1))
    residual = probabilities - targets
    s = (a - probabilities[0, 0]) / (k - 1)
    decay_w, decay_h = s * h / w, s * w / (h * n)
    # (1/N) sum over the N = nK samples; the n copies of a class share one residual column.
    gradient_w = residual * means.T / k + decay_w * classifier
    gradient_h = classifier.T * residual / (n * k) + decay_h * means
    gradient_b = residual * sympy.ones(k, 1) / k
    return gradient_w, gradient_h, gradient_b


@lru_cache(maxsize=None)
def neural_collapse_reduction() -> Derivation:
    """The unconstrained features model reduced to one variable, its optimum and its threshold."""
    a, s, t = sympy.symbols("a s t", positive=True)
    w, h, n = sympy.symbols("w h n", positive=True)
    decay_w, decay_h = sympy.symbols("lambda_W lambda_H", positive=True)
    gap = t * K / (K - 1)
    confidence = sympy.exp(gap) / (sympy.exp(gap) + K - 1)
    data_term = -a * sympy.log(confidence) - (1 - a) * sympy.log((1 - confidence) / (K - 1))
    reduced = data_term + K * s * t
    slope = K / (K - 1) * (confidence - a) + K * s
    optimal_confidence = a - (K - 1) * s
    optimal_t = (K - 1) / K * sympy.log((K - 1) * optimal_confidence / (1 - optimal_confidence))
    curvature = (K / (K - 1)) ** 2 * confidence * (1 - confidence)
    frame = _etf(4)
    gradient_w, gradient_h, gradient_b = _full_model_gradients()
    steps = (
        Step("The frame M = sqrt(K/(K-1)) (I - J/K) (K = 4 shown) has unit columns with pairwise inner "
             "products -1/(K-1): a simplex equiangular tight frame, so aligned rows w_k = (w/h) h_k give a class-y "
             "sample the logits w h on y and -w h/(K-1) elsewhere, a gap of t K/(K-1) with t = w h",
             frame.T * frame, sympy.Rational(4, 3) * sympy.eye(4) - sympy.ones(4, 4) / 3),
        Step("The decays of a collapsed configuration, (K/2)(lambda_W w^2 + n lambda_H h^2) (K rows of norm w, "
             "N = nK features of norm h), exceed K sqrt(n lambda_W lambda_H) w h by the square "
             "(K/2)(sqrt(lambda_W) w - sqrt(n lambda_H) h)^2: at fixed t = w h they cost least when "
             "lambda_W w^2 = n lambda_H h^2, that is ||w||^2/||h||^2 = n lambda_H/lambda_W",
             K / 2 * (decay_w * w**2 + n * decay_h * h**2) - K * sympy.sqrt(n * decay_w * decay_h) * w * h,
             K / 2 * (sympy.sqrt(decay_w) * w - sympy.sqrt(n * decay_h) * h) ** 2),
        Step("So the model reduces to F(t) = L(t K/(K-1)) + K s t with s = sqrt(n lambda_W lambda_H) and L the smoothed "
             "cross-entropy at that gap (target a on the label); its slope is dF/dt = (K/(K-1))(q - a) + K s, "
             "q = e^g/(e^g + K - 1) the confidence at gap g = t K/(K-1)",
             sympy.diff(reduced, t), slope, name="dF/dt"),
        Step("The slope vanishes where q = a - (K-1) s, at t* = ((K-1)/K) log((K-1) q/(1 - q))",
             slope.subs(t, optimal_t), sympy.S.Zero, name="dF/dt at t*"),
        Step("Its second derivative is F''(t) = (K/(K-1))^2 q (1 - q)", sympy.diff(reduced, t, 2), curvature,
             name="d2F/dt2"),
        Step("which is positive (write K = m + 2 >= 2): F is strictly convex, so t* is its only minimiser whenever t* > 0",
             curvature.subs(K, _M + 2), relation=">0"),
        Step("At t = 0 (W = H = 0, q = 1/K) the slope is (K/(K-1))((K-1) s - (a - 1/K)): when a - 1/K <= (K-1) s it "
             "is non-negative and, F being convex, the minimiser is W = H = 0; otherwise t* > 0 (the threshold)",
             slope.subs(t, 0), K / (K - 1) * ((K - 1) * s - (a - 1 / K)), name="dF/dt at t = 0"),
        Step("The full model (K = 3, d = 2, n samples per class): at the collapsed configuration with "
             "s = sqrt(n lambda_W lambda_H) = (a - q)/(K-1) and w/h = sqrt(n lambda_H/lambda_W), the gradient in W vanishes",
             gradient_w, sympy.zeros(3, 2), name="dF/dW"),
        Step("and so does the gradient in every feature h_i", gradient_h, sympy.zeros(2, 3), name="dF/dH"),
        Step("and the gradient in the bias, at b = 0: each class's true-class mass and other-class mass cancel",
             gradient_b, sympy.zeros(3, 1), name="dF/db"),
    )
    notation = (
        Notation(confidence, sympy.Symbol("q"), "q = e^g/(e^g + K - 1), the confidence at the gap g = t K/(K-1)"),
        Notation(_M, K - 2, "the proof writes K = m + 2, m >= 0, so that K >= 2 is visible to SymPy"),
    )
    return Derivation(
        "Neural collapse under label smoothing: the unconstrained features model", steps,
        "F(W, H, b) = (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2)||W||^2 + (lambda_H/2)||H||^2 (per-sample mean, "
        "decays halved, bias free): at the collapsed optimum q = a - (K-1) sqrt(n lambda_W lambda_H), "
        "||w||/||h|| = sqrt(n lambda_H/lambda_W), and W = H = 0 once a - 1/K <= (K-1) sqrt(n lambda_W lambda_H).",
        notation,
    )


__all__ = ["neural_collapse_reduction"]
