"""Symbolic derivations (SymPy), each step proven exactly.

Public entry points return :class:`Derivation` objects (ordered, titled lists
of :class:`Step`); ``derivation.check()`` proves every step with
``simplify(lhs - rhs) == 0`` or an exact equivalent, never by sampling.

- :func:`general_optimum` / :func:`general_optimum_symbolic_k`: gradient,
  stationarity, Hessian, uniqueness up to alpha, minimum = entropy.
- :func:`convention_closed_form`, :func:`conversion`: both conventions.
- :func:`linear_head_smoothing`: the class sum of a linear head's logits and
  the rank-one gradient of the smoothing term (the fused loss's basis).
- :func:`seed_optimal_logits`, :func:`seed_loss_rewrite`, :func:`seed_one_hot`:
  the seed's claims and errata.
"""

from lstheory.symbolic.derivation import Derivation, Step, print_derivations
from lstheory.symbolic.general import general_optimum, general_optimum_symbolic_k
from lstheory.symbolic.linear_head import linear_head_smoothing
from lstheory.symbolic.seed import seed_loss_rewrite, seed_one_hot, seed_optimal_logits
from lstheory.symbolic.smoothing import (
    convention_closed_form,
    conversion,
    gap_closed_form,
    min_loss_closed_form,
    target,
)

__all__ = [
    "Derivation",
    "Step",
    "convention_closed_form",
    "conversion",
    "gap_closed_form",
    "general_optimum",
    "general_optimum_symbolic_k",
    "linear_head_smoothing",
    "min_loss_closed_form",
    "print_derivations",
    "seed_loss_rewrite",
    "seed_one_hot",
    "seed_optimal_logits",
    "target",
]
