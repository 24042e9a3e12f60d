"""Derivation 1: the optimum of cross-entropy against any full-support target.

Gradient softmax(z) - p, stationary points z = log p + alpha, the Hessian
diag(q) - q q^T as a variance (positive semi-definite, null space span{1}),
the minimum value H(p) and the Gibbs decomposition; for concrete K = 2..4 with
symbolic entries, then for symbolic K.  Run: ``python derivations/01_general_optimum.py``.
"""

import sys

from lstheory.symbolic import general_optimum, general_optimum_symbolic_k, print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(*(general_optimum(k) for k in (2, 3, 4)), general_optimum_symbolic_k()))
