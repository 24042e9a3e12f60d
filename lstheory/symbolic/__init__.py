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
- :func:`neural_collapse_reduction`, :func:`hessian_spectrum`,
  :func:`population_minimiser`, :func:`logit_distance_decomposition`,
  :func:`label_relaxation_minimisers`, :func:`mixup_commutes`, :func:`masked_smoothing`,
  :func:`smoothing_gradient_decomposition`, :func:`online_smoothing_fixed_point`:
  the second wave of claims (neural collapse, curvature, targets, gradients).
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
from lstheory.symbolic.curvature import hessian_spectrum
from lstheory.symbolic.label_relaxation import label_relaxation_minimisers
from lstheory.symbolic.logit_distances import logit_distance_decomposition
from lstheory.symbolic.masking import masked_smoothing
from lstheory.symbolic.mixup import mixup_commutes
from lstheory.symbolic.neural_collapse import neural_collapse_reduction
from lstheory.symbolic.online_smoothing import online_smoothing_fixed_point
from lstheory.symbolic.population import population_minimiser
from lstheory.symbolic.selective import smoothing_gradient_decomposition

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
__all__ += [
    "hessian_spectrum",
    "label_relaxation_minimisers",
    "logit_distance_decomposition",
    "masked_smoothing",
    "mixup_commutes",
    "neural_collapse_reduction",
    "online_smoothing_fixed_point",
    "population_minimiser",
    "smoothing_gradient_decomposition",
]

SECOND_WAVE_DERIVATIONS = (
    neural_collapse_reduction,
    hessian_spectrum,
    population_minimiser,
    logit_distance_decomposition,
    label_relaxation_minimisers,
    mixup_commutes,
    masked_smoothing,
    smoothing_gradient_decomposition,
    online_smoothing_fixed_point,
)
"""The derivations behind the second wave of claims, in the docs' order (functions returning a Derivation)."""
