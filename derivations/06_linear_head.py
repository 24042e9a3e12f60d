"""Derivation 6: the smoothing term of a linear head (the fused linear + label-smoothed loss).

The class sum of a linear head's logits, ``sum_c w_c z_c = h . sum_c w_c W_c +
sum_c w_c b_c`` (for symbolic K and H), the per-row loss written with it, and
the rank-one gradient of its smoothing term, which
``lstheory.torch.linear_label_smoothed_cross_entropy`` uses.
Run: ``python derivations/06_linear_head.py`` (add ``--latex`` for each formula's LaTeX).
"""

import sys

from lstheory.symbolic import linear_head_smoothing, print_derivations

if __name__ == "__main__":
    sys.exit(print_derivations(linear_head_smoothing(), with_latex="--latex" in sys.argv[1:]))
