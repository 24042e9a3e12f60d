"""lstheory: derive, prove and check the mathematics of label smoothing."""
from lstheory.closed_form import (
    Optimum,
    binary_optimal_logit,
    binary_smoothed_probability,
    binary_unsmoothed_probability,
    convert_eps,
    logit_gap,
    min_loss,
    optimal_logits,
    optimal_logits_for_target,
    optimum,
    smoothed_target,
)
from lstheory._validation import CONVENTIONS
from lstheory.neural_collapse import NeuralCollapseOptimum, neural_collapse_optimum

__version__ = "0.1.0"
__all__ = [
    "CONVENTIONS",
    "Optimum",
    "binary_optimal_logit",
    "binary_smoothed_probability",
    "binary_unsmoothed_probability",
    "convert_eps",
    "logit_gap",
    "min_loss",
    "optimal_logits",
    "optimal_logits_for_target",
    "optimum",
    "smoothed_target",
]
__all__ += ["NeuralCollapseOptimum", "neural_collapse_optimum"]
