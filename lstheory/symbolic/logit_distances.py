r"""Label smoothing as a penalty on logit distances (Liu et al. 2022, MbLS), derived exactly.

The smoothing term ``H(u, q) = -(1/K) sum_j log softmax(z)_j`` equals
``lse(z) - mean(z)``; splitting at ``m = max_j z_j``::

    H(u, q) = (1/K) sum_j (m - z_j) + (lse(z) - m),    0 <= lse(z) - m <= log K

so smoothing penalises every distance from the largest logit, plus a bounded
remainder.  Near the uniform prediction, ``z = zbar 1 + delta`` with
``sum delta = 0``::

    H(u, q) = log K + ||delta||^2/(2K) + O(||delta||^3).

Reference: Liu et al. 2022, "The Devil is in the Margin: Margin-based Label
Smoothing for Network Calibration", CVPR, arXiv 2111.15430, sec. 3.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols


@lru_cache(maxsize=None)
def logit_distance_decomposition(num_classes: int = 3) -> Derivation:
    """The identity, its remainder's bounds, and the quadratic expansion near uniform."""
    k = num_classes
    z = logit_symbols(k)
    m = sympy.Symbol("m", real=True)
    lse = sympy.log(sum(sympy.exp(zi) for zi in z))
    uniform = [sympy.Rational(1, k)] * k
    # With z_1 the largest logit: every other exp(z_j - z_1) is some w_j in (0, 1], written 1/(1 + t_j), t_j >= 0.
    t = sympy.symbols(f"t_2:{k + 1}", positive=True)
    weights = [1 / (1 + tj) for tj in t]
    remainder_sum = 1 + sum(weights)  # exp(lse - max)
    s = sympy.Symbol("s", real=True)
    delta = list(sympy.symbols(f"delta_1:{k}", real=True))
    delta.append(-sum(delta))  # centred: sum delta = 0
    smoothing_term = lse.subs({zi: s * di for zi, di in zip(z, delta)}) - s * sum(delta) / k
    expansion = sympy.series(smoothing_term, s, 0, 3).removeO()
    steps = (
        Step(f"The smoothing term H(u, q) = -(1/K) sum_j log q_j equals lse(z) - mean(z) (K = {k})",
             cross_entropy(uniform, z), lse - sum(z) / k, prepare=lambda e: sympy.expand_log(e, force=True),
             name="H(u, q)"),
        Step("Splitting at any m, in particular m = max_j z_j: H(u, q) = (1/K) sum_j (m - z_j) + (lse(z) - m), the mean "
             "distance to the largest logit plus a remainder",
             sum(m - zi for zi in z) / k + (lse - m), lse - sum(z) / k),
        Step("With z_1 the largest logit, exp(lse - max) = 1 + sum_{j>1} exp(z_j - z_1), each term w_j = 1/(1 + t_j) in "
             "(0, 1]; K minus that sum is sum_j t_j/(1 + t_j) >= 0, so lse - max <= log K, with equality only when every "
             "logit equals the largest", k - remainder_sum, sum(tj / (1 + tj) for tj in t)),
        Step("and the sum exceeds 1 by sum_j w_j > 0, so lse - max > 0 (>= 0 in the limit of one dominant logit)",
             remainder_sum - 1, relation=">0"),
        Step("Near uniform, z = zbar + s delta with sum delta = 0: the second-order expansion in s of H(u, q) is "
             "log K + s^2 ||delta||^2/(2K)",
             expansion, sympy.log(k) + s**2 * sum(di**2 for di in delta) / (2 * k),
             name="H(u, q) to second order in s"),
    )
    return Derivation(f"Label smoothing as logit distances (Liu et al., K = {k})", steps,
                      "H(u, q) = (1/K) sum_j (max z - z_j) + (lse(z) - max z), 0 <= lse - max <= log K; "
                      "near uniform H(u, q) = log K + ||z - zbar||^2/(2K) + O(||.||^3).")


__all__ = ["logit_distance_decomposition"]
