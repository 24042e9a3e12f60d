r"""The gradient of label smoothing split into its cross-entropy and smoothing parts, derived exactly.

For the uniform convention the target is ``(1 - eps) e_y + eps u`` and the
gradient of the smoothed loss in the logits is::

    q - p = (1 - eps)(q - e_y) + eps (q - u)

The smoothing part ``eps (q - u)`` acts on the largest logit with
``eps (q_max - 1/K)``: non-negative, and growing with the confidence, so it
pushes the top logit down hardest on the samples the model is surest of, which
is what degrades the ranking used by selective classification.

Reference: Xia et al. 2024, "Towards Understanding Why Label Smoothing Degrades
Selective Classification and How to Fix It", arXiv 2403.14715, sec. 4.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols, normalised_target, softmax
from lstheory.symbolic.smoothing import EPS, target


@lru_cache(maxsize=None)
def smoothing_gradient_decomposition(num_classes: int = 3) -> Derivation:
    """``grad = (1-eps)(q - e_y) + eps (q - u)``; the smoothing part on the max logit, ``eps (q_max - 1/K)``."""
    k = num_classes
    z = logit_symbols(k)
    q = sympy.Matrix(softmax(z))
    p_true, p_other = target("uniform", EPS, k)
    smoothed = [p_true] + [p_other] * (k - 1)
    gradient = sympy.Matrix([sympy.diff(cross_entropy(smoothed, z), zi) for zi in z])
    e_y = sympy.Matrix([1] + [0] * (k - 1))
    u = sympy.ones(k, 1) / k
    smoothing_part = EPS * (q - u)
    # Abstract probabilities r (a distribution) with r_2 the largest: r_2 - 1/K as a mean of differences.
    r = normalised_target(k, "q")
    steps = (
        Step(f"The gradient of the smoothed loss (uniform convention, label 1, K = {k}) is (1 - eps)(q - e_y) + eps (q - u)",
             gradient, (1 - EPS) * (q - e_y) + smoothing_part, name="dL/dz"),
        Step("With z_2 the largest logit, the smoothing part's derivative along it is eps q_2 (1 - q_2)",
             sympy.diff(smoothing_part[1], z[1]), EPS * q[1] * (1 - q[1]), name="d/dz_2 [eps (q_2 - 1/K)]"),
        Step("which is positive: its push on the top logit, eps (q_max - 1/K), grows with the confidence",
             EPS * q[1] * (1 - q[1]), relation=">0"),
        Step("and q_max - 1/K is the mean of the differences q_max - q_j (the probabilities sum to one), each "
             "non-negative: the push is never negative",
             r[1] - sympy.Rational(1, k), sum(r[1] - rj for rj in r) / k),
    )
    return Derivation(f"The smoothing part of the gradient (Xia et al., K = {k})", steps,
                      "grad_z = (1-eps)(q - e_y) + eps (q - u); on the max logit the smoothing part is eps (q_max - 1/K), "
                      "increasing in q_max.")


__all__ = ["smoothing_gradient_decomposition"]
