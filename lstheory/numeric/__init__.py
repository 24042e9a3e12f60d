"""Numeric confirmation with SciPy: minimise the smoothed cross-entropy over all K logits."""

from lstheory.numeric.minimize import (
    MinimizationResult,
    minimize_cross_entropy,
    minimize_smoothed,
    smoothed_target_vector,
    sweep,
)

__all__ = [
    "MinimizationResult",
    "minimize_cross_entropy",
    "minimize_smoothed",
    "smoothed_target_vector",
    "sweep",
]
from lstheory.numeric.ufm import UnconstrainedFeaturesResult, minimize_unconstrained_features

__all__ += ["UnconstrainedFeaturesResult", "minimize_unconstrained_features"]
