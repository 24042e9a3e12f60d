"""Derivation 7: the second wave of claims about curvature, targets and gradients.

The Hessian's spectrum at the optimum, the K-class population minimiser, logit distances
(Liu et al. 2022, arXiv 2111.15430), label relaxation (Lienen and Hüllermeier 2021), mixup
(Zhang et al. 2018, arXiv 1710.09412), masked classes, the smoothing part of the gradient
(Xia et al. 2024, arXiv 2403.14715) and idealised online label smoothing (Zhang et al. 2021,
arXiv 2011.12562).
Run (``--latex`` adds each step's LaTeX): ``python derivations/07_targets_and_gradients.py``.
"""

import sys

from lstheory.symbolic import SECOND_WAVE_DERIVATIONS, neural_collapse_reduction, print_derivations

if __name__ == "__main__":
    derivations = [make() for make in SECOND_WAVE_DERIVATIONS if make is not neural_collapse_reduction]
    sys.exit(print_derivations(*derivations, with_latex="--latex" in sys.argv[1:]))
