"""Derivation 7: the second wave of claims about targets, curvature and gradients.

The Hessian's spectrum at the optimum, the K-class population minimiser, logit distances (MbLS),
label relaxation, mixup, masked classes, the smoothing part of the gradient (selective
classification) and idealised online label smoothing.
Run: ``python derivations/07_targets_and_gradients.py``.
"""

import sys

from lstheory import symbolic
from lstheory.symbolic import print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(
        symbolic.hessian_spectrum(),
        symbolic.population_minimiser(),
        symbolic.logit_distance_decomposition(),
        symbolic.label_relaxation_minimisers(),
        symbolic.mixup_commutes(),
        symbolic.masked_smoothing(),
        symbolic.smoothing_gradient_decomposition(),
        symbolic.online_smoothing_fixed_point(),
    ))
