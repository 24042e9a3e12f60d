"""Derivation 5: the published results around label smoothing (papers by arXiv id: see lstheory.symbolic.literature).

Szegedy's decomposition, Pereyra's confidence penalty (and the sign of
sec. 3.2), Meister's skew-Jensen limits, Lukasik's smearing inverse, Yuan's
distillation identity, Müller's equivalent smoothing, temperature scaling,
binary smoothing and smoothing toward a prior (PyTorch's class weights).
Run (``--latex`` adds each step's LaTeX): ``python derivations/05_literature.py``.
"""

import sys

from lstheory.symbolic import literature, print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(*(getattr(literature, name)() for name in literature.__all__),
                               with_latex="--latex" in sys.argv[1:]))
