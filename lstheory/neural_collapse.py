r"""The global optimum of the unconstrained features model under label smoothing.

This is the theory layer's closed form for neural collapse, written once; the
symbolic derivation (:func:`lstheory.symbolic.neural_collapse_reduction`), the
SciPy minimisation of the full model (:mod:`lstheory.numeric.ufm`) and the
torch gradient descent are checked against it.

The model
---------
``N = n K`` samples, ``n`` per class; features ``H = [h_1 .. h_N]`` (``d x N``,
``d >= K - 1``), a linear classifier ``W`` (``K x d``) and a free,
unregularised bias ``b`` (``K``)::

    F(W, H, b) = (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2) ||W||_F^2 + (lambda_H/2) ||H||_F^2

where ``p_y`` is the smoothed target of class ``y`` (``a = p_true`` on ``y``,
``(1 - a)/(K - 1)`` on each other class).

At a global minimiser the features collapse to their class means, the means
form a simplex equiangular tight frame, the rows of ``W`` are aligned with
them, and with ``t = ||w_k|| ||h_i||`` the problem reduces to one variable::

    min_{t >= 0}  L(t K/(K-1)) + K sqrt(n lambda_W lambda_H) t

(``L(g)``: the smoothed cross-entropy at logits with gap ``g``).  Its
stationarity gives the confidence in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstheory._validation import (
    as_eps,
    as_num_classes,
    as_positive_finite,
    as_positive_integer,
    check_convention,
)

__all__ = ["NeuralCollapseOptimum", "neural_collapse_optimum"]


@dataclass(frozen=True)
class NeuralCollapseOptimum:
    """The global minimiser of the unconstrained features model (see :func:`neural_collapse_optimum`).

    Attributes
    ----------
    confidence : float
        ``softmax(W h_i + b)_{y_i}``, the same for every training sample:
        ``a - (K-1) sqrt(n lambda_W lambda_H)`` when ``collapsed``, ``1/K`` otherwise.
    logit_gap : float
        ``z_y - z_k`` for every ``k != y``: ``log((K-1) q / (1 - q))`` (0 when not collapsed).
    collapsed : bool
        ``True`` when the minimiser is the non-trivial neural-collapse configuration;
        ``False`` when the decays are past the threshold and the minimiser is ``W = H = 0``.
    norm_ratio : float
        ``||w_k|| / ||h_i|| = sqrt(n lambda_H / lambda_W)``: the ratio at the
        minimiser, and the one along which both norms vanish at the threshold.
    classifier_norm : float
        ``||w_k||``, the norm of each row of ``W`` (0 when not collapsed).
    feature_norm : float
        ``||h_i||``, the norm of each sample's feature (0 when not collapsed).
    objective : float
        The minimum value of ``F`` (``log K`` when not collapsed).
    """

    num_classes: int
    eps: float
    convention: str
    samples_per_class: int
    classifier_decay: float
    feature_decay: float
    confidence: float
    logit_gap: float
    collapsed: bool
    norm_ratio: float
    classifier_norm: float
    feature_norm: float
    objective: float


def _scalar(value: Any, name: str) -> None:
    try:
        shape = () if isinstance(value, (str, bytes)) else np.shape(value)
    except (ValueError, TypeError, RuntimeError):  # a ragged list has no shape
        raise TypeError(f"{name} must be a single number for neural_collapse_optimum; got {value!r}") from None
    if shape != ():
        raise TypeError(f"{name} must be a single number for neural_collapse_optimum; got an array of shape {shape}")


def _gap_from_margin(k: int, margin: float, one_minus_confidence: float) -> float:
    """``log((K-1) q / (1 - q))`` written as ``log1p(K (q - 1/K) / (1 - q))``: accurate near the threshold."""
    with np.errstate(over="ignore"):
        ratio = k * margin / one_minus_confidence
    if math.isfinite(ratio):
        return math.log1p(ratio)
    return math.log(k) + math.log(margin) - math.log(one_minus_confidence)


def neural_collapse_optimum(
    num_classes: int,
    eps: float,
    *,
    samples_per_class: int,
    classifier_decay: float,
    feature_decay: float,
    convention: str = "off_target",
) -> NeuralCollapseOptimum:
    r"""The global minimiser of the unconstrained features model with label smoothing.

    Formula, with ``a = p_true`` of the smoothed target (``1 - eps`` off_target,
    ``1 - eps + eps/K`` uniform) and ``s = sqrt(n lambda_W lambda_H)``::

        collapsed  iff  a - 1/K > (K-1) s
        confidence q   = a - (K-1) s                  (1/K otherwise)
        logit_gap      = log((K-1) q / (1 - q))       (0 otherwise)
        norm_ratio     = ||w_k|| / ||h_i|| = sqrt(n lambda_H / lambda_W)
        ||w_k|| ||h_i|| = logit_gap (K-1)/K

    The model (``N = n K`` samples, bias free and unregularised, ``d >= K-1``)::

        F(W, H, b) = (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2) ||W||_F^2 + (lambda_H/2) ||H||_F^2

    At its global minimiser every feature equals its class mean, the means form a
    simplex equiangular tight frame, ``W``'s rows are aligned with them, and the
    bias is a multiple of the all-ones vector (irrelevant to the softmax).  Past
    the threshold the minimiser is ``W = H = 0``, predicting ``1/K`` everywhere.

    Normalisation: the data term is a per-sample mean and the decays carry a
    factor 1/2, as written above (PyTorch's ``SGD(weight_decay=lambda)`` adds
    ``lambda w`` to the gradient: the same convention).  With a summed data term
    use ``lambda / N``; with decays written without the 1/2, use ``2 lambda``.

    Parameters
    ----------
    num_classes : int
        ``K``, ``2 <= K <= 2**53``.
    eps : float
        Smoothing strength in ``[0, 1]`` (``0``: plain cross-entropy, which the
        decays alone keep bounded).
    samples_per_class : int
        ``n >= 1``, training samples per class (balanced classes).
    classifier_decay : float
        ``lambda_W > 0``, the decay on the classifier ``W``.
    feature_decay : float
        ``lambda_H > 0``, the decay on the features ``H`` (summed over samples).
    convention : {"off_target", "uniform"}
        See :func:`lstheory.smoothed_target`.

    Returns
    -------
    NeuralCollapseOptimum
        A frozen dataclass: ``confidence``, ``logit_gap``, ``collapsed``,
        ``norm_ratio``, ``classifier_norm``, ``feature_norm``, ``objective``, and
        the inputs.

    Accuracy (against mpmath at 50 digits from the exact inputs, on points from
    ``1e-300`` of the threshold's decay to ``1 - 1e-12`` of it, K up to ``2**40``):
    ``confidence`` within 1e-15 absolute; ``logit_gap`` within 1e-14 relative
    where ``q - 1/K > 0.01`` and within ``K * 1e-15`` absolute nearer the
    threshold, where the gap, about ``K (q - 1/K)``, inherits the confidence's
    absolute error times K (it is formed as ``log1p(K (q - 1/K)/(1 - q))``, with
    no further loss).  At the threshold itself a rounding of the inputs decides
    ``collapsed``.  Against a SciPy L-BFGS minimisation of the full model: to
    1e-6 in confidence for K = 3..10 (``tests/test_neural_collapse.py``).

    References: Zhou et al. 2022, "Are All Losses Created Equal: A Neural
    Collapse Perspective", arXiv 2210.02192 (label smoothing's global minimisers
    in the unconstrained features model); Guo et al. 2024, "Cross Entropy versus
    Label Smoothing: A Neural Collapse Perspective", arXiv 2402.03979 (closed
    forms); the reduction to one variable is derived in
    :func:`lstheory.symbolic.neural_collapse_reduction`.

    Examples
    --------
    >>> result = neural_collapse_optimum(10, 0.1, samples_per_class=100, classifier_decay=1e-3, feature_decay=1e-3)
    >>> print(f"{result.confidence:.4f} {result.logit_gap:.4f} {result.collapsed} {result.norm_ratio:.1f}")
    0.8100 3.6472 True 10.0
    >>> neural_collapse_optimum(10, 0.1, samples_per_class=100, classifier_decay=1e-2, feature_decay=1e-2).collapsed
    False
    """
    convention = check_convention(convention)
    for value, name in ((num_classes, "num_classes"), (eps, "eps")):
        _scalar(value, name)
    k = int(as_num_classes(num_classes))
    e = float(as_eps(eps))
    n = as_positive_integer(samples_per_class, "samples_per_class")
    decay_w = as_positive_finite(classifier_decay, "classifier_decay")
    decay_h = as_positive_finite(feature_decay, "feature_decay")

    off_target_mass = e if convention == "off_target" else e * (k - 1) / k  # c = 1 - a
    p_true = 1.0 - off_target_mass
    s = math.sqrt(n) * math.sqrt(decay_w) * math.sqrt(decay_h)
    norm_ratio = math.sqrt(n) * math.sqrt(decay_h) / math.sqrt(decay_w)
    margin = ((k - 1) / k - off_target_mass) - (k - 1) * s  # q - 1/K
    inputs = dict(num_classes=k, eps=e, convention=convention, samples_per_class=n,
                  classifier_decay=decay_w, feature_decay=decay_h, norm_ratio=norm_ratio)
    if not margin > 0:
        return NeuralCollapseOptimum(**inputs, confidence=1.0 / k, logit_gap=0.0, collapsed=False,
                                     classifier_norm=0.0, feature_norm=0.0, objective=math.log(k))
    confidence = p_true - (k - 1) * s
    one_minus_confidence = off_target_mass + (k - 1) * s
    gap = _gap_from_margin(k, margin, one_minus_confidence)
    norm_product = gap * (k - 1) / k  # t = ||w|| ||h||
    data_term = -p_true * math.log(confidence)
    if off_target_mass > 0:
        data_term -= off_target_mass * math.log(one_minus_confidence / (k - 1))
    return NeuralCollapseOptimum(
        **inputs, confidence=confidence, logit_gap=gap, collapsed=True,
        classifier_norm=math.sqrt(norm_product * norm_ratio), feature_norm=math.sqrt(norm_product / norm_ratio),
        objective=data_term + k * s * norm_product,
    )
