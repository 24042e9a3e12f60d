"""Derivation 6: neural collapse under label smoothing (the unconstrained features model).

The model reduced to one variable, its optimal confidence a - (K-1) sqrt(n lambda_W lambda_H),
the threshold past which W = H = 0, and the full model's stationarity at the collapsed point (K = 3).
Run: ``python derivations/06_neural_collapse.py``.
"""

import sys

from lstheory.symbolic import neural_collapse_reduction, print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(neural_collapse_reduction()))
