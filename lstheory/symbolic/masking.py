r"""Masked classes and label smoothing, derived exactly.

* A target with zero mass on a set ``M`` of classes has no finite minimiser:
  the loss strictly increases in each ``z_m`` (``m`` in ``M``), with slope
  ``softmax(z)_m > 0``, and its infimum is reached only as ``z_M -> -inf``.
* A ``-inf`` logit that carries positive target mass (smoothing spreads
  ``eps/K`` on every class, masked ones included) makes the loss ``+inf``.
* Smoothing over the allowed support only, ``(1 - eps) e_y + eps pi`` with
  ``pi`` uniform off ``M`` and 0 on it, is prior smoothing; on the allowed
  logits it is the uniform convention with ``K - |M|`` classes.

References: optax issue #896 (a ``-inf`` logit with label smoothing gives an
infinite loss); prior smoothing, :func:`lstheory.symbolic.literature.prior_smoothing`.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols, softmax
from lstheory.symbolic.smoothing import EPS, K, gap_closed_form, target

_MASKED = sympy.Symbol("M", integer=True, positive=True)  # |M|


def _force_logs(expression: sympy.Basic) -> sympy.Basic:
    # Valid: every logarithm's argument is a positive probability or exponential.
    return sympy.expand_log(expression, force=True)


@lru_cache(maxsize=None)
def masked_smoothing() -> Derivation:
    """No finite minimiser with zero mass; +inf with a -inf logit; allowed-support smoothing as prior smoothing."""
    z = logit_symbols(3)
    p = sympy.Symbol("p", positive=True)
    masked_target = [p, 1 - p, 0]  # class 3 masked: zero target mass
    loss = cross_entropy(masked_target, z)
    over_allowed = cross_entropy([p, 1 - p], z[:2])
    smoothed = [target("uniform", EPS, 3)[0]] + [target("uniform", EPS, 3)[1]] * 2
    allowed = K - _MASKED
    p_true_allowed, p_other_allowed = target("uniform", EPS, allowed)
    # K = 5 with classes 4 and 5 masked: pi uniform on the three allowed classes.
    prior = sympy.Matrix([sympy.Rational(1, 3)] * 3 + [0, 0])
    prior_smoothed = (1 - EPS) * sympy.Matrix([1, 0, 0, 0, 0]) + EPS * prior
    uniform_on_allowed = sympy.Matrix([target("uniform", EPS, 3)[0]] + [target("uniform", EPS, 3)[1]] * 2 + [0, 0])
    steps = (
        Step("With zero target mass on class 3 (K = 3; the target is p, 1 - p, 0), the loss's slope in z_3 is "
             "softmax(z)_3", sympy.diff(loss, z[2]),
             softmax(z)[2], name="dL/dz_3"),
        Step("which is positive for every finite logit vector: the loss strictly increases in z_3, so no finite "
             "logits minimise it", softmax(z)[2], relation=">0"),
        Step("As z_3 -> -inf the loss tends to the cross-entropy over the allowed classes, its infimum, reached only "
             "in that limit", sympy.limit(loss, z[2], -sympy.oo), over_allowed, prepare=_force_logs),
        Step("With smoothing mass eps/K on the masked class, exp(-loss) -> 0 as z_3 -> -inf: a -inf logit with positive "
             "target mass makes the loss +inf",
             sympy.limit(sympy.exp(-_force_logs(cross_entropy(smoothed, z))), z[2], -sympy.oo), sympy.S.Zero),
        Step("Smoothing over the allowed support, (1 - eps) e_y + eps pi with pi uniform on the allowed classes, is the "
             "uniform convention's target for K - |M| classes padded with zeros (K = 5, |M| = 2 shown)",
             prior_smoothed, uniform_on_allowed),
        Step("so on the allowed logits its optimal gap is the uniform gap for K - |M| classes, "
             "log(1 + (K - |M|)(1 - eps)/eps)",
             p_true_allowed / p_other_allowed, sympy.exp(gap_closed_form("uniform", EPS, allowed))),
    )
    return Derivation("Masked classes under label smoothing", steps,
                      "Zero target mass on M: no finite minimiser (z_M -> -inf); a -inf logit with positive smoothing "
                      "mass: loss +inf; smoothing over the allowed support = prior smoothing = uniform smoothing with "
                      "K - |M| classes.")


__all__ = ["masked_smoothing"]
