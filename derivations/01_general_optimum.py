"""Derivation 1: the optimum of cross-entropy against any full-support target.

Gradient softmax(z) - p, stationary points z = log p + alpha, the Hessian
diag(q) - q q^T as a variance (positive semi-definite, null space span{1}),
the minimum value H(p) and the Gibbs decomposition: printed for K = 3 with
symbolic entries, then for symbolic K; the same steps are proven for K = 2
and K = 4 (the tests prove K = 2..6).
Run: ``python derivations/01_general_optimum.py [--latex]``.
"""

import sys

from lstheory.symbolic import general_optimum, general_optimum_symbolic_k, print_derivations

if __name__ == "__main__":
    status = print_derivations(general_optimum(3), general_optimum_symbolic_k(), with_latex="--latex" in sys.argv[1:])
    others = [general_optimum(k) for k in (2, 4)]
    proven = sum(ok for derivation in others for _, ok in derivation.check())
    total = sum(len(derivation.steps) for derivation in others)
    print(f"The same steps for K = 2 and K = 4: {proven} of {total} proven exactly")
    status |= proven != total
    sys.exit(status)
