"""Derivation 4: the seed blog post's claims and its two errata.

One-hot targets have no finite optimum; the loose loss rewrite stated exactly
(and why its literal reading is not a cross-entropy); the misplaced alpha in
the printed optimal logits, with a counterexample and the corrected form
proven for every K, eps and alpha.  Run (``--latex`` adds each step's LaTeX): ``python derivations/04_seed_errata.py``.
"""

import sys

from lstheory.symbolic import print_derivations, seed_loss_rewrite, seed_one_hot, seed_optimal_logits

if __name__ == "__main__":
    sys.exit(print_derivations(seed_one_hot(), seed_loss_rewrite(), seed_optimal_logits(),
                               with_latex="--latex" in sys.argv[1:]))
