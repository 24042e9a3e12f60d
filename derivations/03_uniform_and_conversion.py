"""Derivation 3: the eps/K ("uniform") convention (PyTorch, Keras, optax) and the conversion.

Substitutes the uniform target into the two-level optimum (gap
log(1 + K(1-eps)/eps)) and proves that eps_off_target = eps_uniform (K-1)/K
maps one convention's target onto the other's.  Prints the worked table of
conventions.md (eps = 0.1) from the accurate closed forms.  Run:
``python derivations/03_uniform_and_conversion.py``.
"""

import sys

import lstheory
from lstheory.symbolic import convention_closed_form, conversion, print_derivations

if __name__ == "__main__":
    status = print_derivations(convention_closed_form("uniform"), conversion(), with_latex="--latex" in sys.argv[1:])
    print("\nOptimal gaps at eps = 0.1:")
    print(f"  {'K':>5}  {'uniform':>8}  {'off_target':>10}  {'uniform eps as off_target':>26}")
    for k in (2, 5, 10, 1000):
        uniform = lstheory.logit_gap(k, 0.1, convention="uniform")
        off = lstheory.logit_gap(k, 0.1)
        converted = lstheory.convert_eps(k, 0.1, src="uniform", dst="off_target")
        print(f"  {k:>5}  {uniform:8.4f}  {off:10.4f}  {converted:26.6f}")
    sys.exit(status)
