r"""Online label smoothing in its idealised form, derived exactly.

Online label smoothing trains epoch ``t`` against ``alpha e_y + (1 - alpha) S^{t-1}``,
where ``S^{t-1}`` is the model's average prediction for class ``y`` in the
previous epoch.  If the model fits that target exactly, its prediction becomes
the next ``S``::

    S^t = alpha e_y + (1 - alpha) S^{t-1}   =>   S^t = e_y + (1 - alpha)^t (S^0 - e_y)

so the off-target mass decays as ``(1 - alpha)^t``: the idealised fixed point is
the one-hot target, and whatever smoothing remains in practice comes from the
model not fitting its targets.

Reference: Zhang et al. 2021, "Delving Deep into Label Smoothing", IEEE TIP,
arXiv 2011.12562 (the online label smoothing method).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import normalised_target

ALPHA = sympy.Symbol("alpha", positive=True)
EPOCH = sympy.Symbol("t", integer=True, nonnegative=True)


@lru_cache(maxsize=None)
def online_smoothing_fixed_point(num_classes: int = 3) -> Derivation:
    """``S^t = e_y + (1-alpha)^t (S^0 - e_y)`` solves the idealised recursion; the off-target mass decays geometrically."""
    k = num_classes
    start = sympy.Matrix(normalised_target(k, "s"))  # S^0, any distribution
    e_y = sympy.Matrix([1] + [0] * (k - 1))

    def solution(epoch):
        return e_y + (1 - ALPHA) ** epoch * (start - e_y)

    x = sympy.Symbol("x", positive=True)
    steps = (
        Step(f"The closed form S^t = e_y + (1 - alpha)^t (S^0 - e_y) starts at S^0 (K = {k}, S^0 any distribution)",
             solution(0), start),
        Step("and satisfies the idealised recursion S^t = alpha e_y + (1 - alpha) S^{t-1} for every epoch t >= 1",
             solution(EPOCH + 1), ALPHA * e_y + (1 - ALPHA) * solution(EPOCH), name="S^(t+1)"),
        Step("so the off-target mass 1 - S^t_y is (1 - alpha)^t times the initial one",
             1 - solution(EPOCH)[0], (1 - ALPHA) ** EPOCH * (1 - start[0])),
        Step("which tends to zero for 0 < alpha < 1 (written 1 - alpha = x/(1 + x)): the fixed point is the one-hot target",
             sympy.limit((x / (1 + x)) ** EPOCH, EPOCH, sympy.oo), sympy.S.Zero),
    )
    return Derivation(f"Online label smoothing, idealised (Zhang et al., K = {k})", steps,
                      "If the model fits alpha e_y + (1-alpha) S^{t-1} exactly, the off-target mass decays as (1-alpha)^t.")


__all__ = ["online_smoothing_fixed_point"]
