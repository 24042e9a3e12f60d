"""Derivation 6: neural collapse under label smoothing (Zhou et al. 2022, arXiv 2210.02192; Guo et al. 2024, arXiv 2402.03979).

The unconstrained features model reduced to one variable, its optimal confidence
a - (K-1) sqrt(n lambda_W lambda_H), the threshold past which W = H = 0, and the full model's
stationarity at the collapsed point (K = 3).
Run (``--latex`` adds each step's LaTeX): ``python derivations/06_neural_collapse.py``.
"""

import sys

from lstheory.symbolic import neural_collapse_reduction, print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(neural_collapse_reduction(), with_latex="--latex" in sys.argv[1:]))
