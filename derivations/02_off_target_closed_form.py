"""Derivation 2: the eps/(K-1) ("off_target") convention, the seed's and He et al.'s.

Substitutes the off_target target into the two-level optimum: the gap
log((K-1)(1-eps)/eps), the confidence 1-eps at the optimum, the minimum value,
and that the gap falls as eps grows; then evaluates the accurate closed form
against the SymPy expression at a few points.  Run:
``python derivations/02_off_target_closed_form.py``.
"""

import sys

import sympy

import lstheory
from lstheory.symbolic import convention_closed_form, gap_closed_form, print_derivations
from lstheory.symbolic.smoothing import EPS, K

if __name__ == "__main__":
    status = print_derivations(convention_closed_form("off_target"), with_latex="--latex" in sys.argv[1:])
    print("\nlstheory.logit_gap against the SymPy closed form at 50 digits:")
    for k, eps in ((2, "0.1"), (10, "0.1"), (1000, "0.01"), (4, "0.75")):
        exact = gap_closed_form("off_target").subs({K: k, EPS: sympy.Rational(float(eps))}).evalf(50)
        print(f"  K={k:<5} eps={eps:<5} SymPy {float(exact): .17g}   lstheory {lstheory.logit_gap(k, float(eps)): .17g}")
    sys.exit(status)
