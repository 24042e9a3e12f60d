r"""SciPy minimisation of the full unconstrained features model: neural collapse checked numerically.

The model (``N = n K`` samples, ``n`` per class; features ``H``, ``d x N``;
classifier ``W``, ``K x d``; bias ``b``, free and unregularised)::

    F(W, H, b) = (1/N) sum_i CE(p_{y_i}, W h_i + b) + (lambda_W/2) ||W||_F^2 + (lambda_H/2) ||H||_F^2

is minimised over all ``K d + d N + K`` numbers at once with L-BFGS from a
random start, using the analytic gradient::

    G = (softmax(Z) - P) / N          (Z = (W H)^T + b, N x K; P the targets)
    dF/dW = G^T H^T + lambda_W W,  dF/dH = W^T G^T + lambda_H H,  dF/db = sum_i G_i

Nothing here uses the closed form (:func:`lstheory.neural_collapse_optimum`):
the claims registry and the tests compare the two.  The model is not convex;
that its global minimisers are collapsed is what the comparison, from several
random starts, tests.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

from lstheory._validation import (
    as_num_classes,
    as_positive_finite,
    as_positive_integer,
    as_real,
    check_convention,
    check_seed,
    check_size,
)
from lstheory.numeric.minimize import smoothed_target_vector

GRADIENT_TOLERANCE = 1e-7
"""A result counts as converged when the largest gradient entry is at most this.  L-BFGS stops when float64
function values no longer fall, which leaves gradients of about sqrt(machine epsilon) ~ 1e-8; the confidence is
then within about 1e-8 of the minimiser's."""


@dataclass(frozen=True)
class UnconstrainedFeaturesResult:
    """A minimiser of the unconstrained features model found by L-BFGS.

    Attributes
    ----------
    classifier : ndarray (K, d)
    features : ndarray (d, N), samples ordered by class (``n`` of class 0, then class 1, ...)
    bias : ndarray (K,)
    labels : ndarray (N,)
    objective : float
    gradient_max : float
        Largest absolute gradient entry at the result.
    iterations : int
    converged : bool
        ``gradient_max <= GRADIENT_TOLERANCE``.
    """

    classifier: np.ndarray
    features: np.ndarray
    bias: np.ndarray
    labels: np.ndarray
    objective: float
    gradient_max: float
    iterations: int
    converged: bool

    @property
    def logits(self) -> np.ndarray:
        """``(N, K)`` logits of every training sample."""
        return (self.classifier @ self.features).T + self.bias

    @property
    def confidences(self) -> np.ndarray:
        """``softmax(z_i)_{y_i}`` for every sample."""
        q = scipy.special.softmax(self.logits, axis=1)
        return q[np.arange(self.labels.size), self.labels]

    @property
    def confidence(self) -> float:
        return float(self.confidences.mean())


def _targets(num_classes: int, eps: float, convention: str, labels: np.ndarray) -> np.ndarray:
    rows = np.array([smoothed_target_vector(num_classes, eps, label=y, convention=convention) for y in range(num_classes)])
    return rows[labels]


def minimize_unconstrained_features(
    num_classes: int,
    eps: float,
    *,
    samples_per_class: int,
    classifier_decay: float,
    feature_decay: float,
    convention: str = "off_target",
    feature_dim: int | None = None,
    seed: int = 0,
    start_scale: float = 1.0,
    max_iter: int = 20000,
) -> UnconstrainedFeaturesResult:
    """Minimise the full unconstrained features model with SciPy's L-BFGS-B from a random start.

    Parameters
    ----------
    num_classes, eps, convention
        ``K`` and the smoothing of every sample's target (see :func:`lstheory.smoothed_target`).
    samples_per_class : int
        ``n``; ``N = n K``.
    classifier_decay, feature_decay : float
        ``lambda_W > 0`` and ``lambda_H > 0``.
    feature_dim : int, optional
        ``d`` (default ``K``; a simplex frame needs ``d >= K - 1``).
    seed, start_scale
        Every entry of the start is ``N(0, start_scale^2)`` from ``numpy.random.default_rng(seed)``.
    max_iter : int
        L-BFGS iteration cap.

    Returns
    -------
    UnconstrainedFeaturesResult

    Examples
    --------
    >>> result = minimize_unconstrained_features(3, 0.1, samples_per_class=2, classifier_decay=1e-3, feature_decay=1e-3)
    >>> print(f"{result.confidence:.6f} {result.converged}")
    0.897172 True
    """
    check_convention(convention)
    k_array = as_num_classes(num_classes)
    if k_array.ndim:
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got an array of shape {k_array.shape}")
    k = int(k_array)
    seed = check_seed(seed)
    start_scale = as_real(start_scale, "start_scale", "a finite real number >= 0")
    if not 0 <= start_scale < math.inf:
        raise ValueError(f"start_scale must be a finite real number >= 0; got {start_scale!r}")
    max_iter = as_positive_integer(max_iter, "max_iter")
    n = as_positive_integer(samples_per_class, "samples_per_class")
    d = k if feature_dim is None else as_positive_integer(feature_dim, "feature_dim")
    decay_w = as_positive_finite(classifier_decay, "classifier_decay")
    decay_h = as_positive_finite(feature_decay, "feature_decay")
    check_size(k * d + d * n * k + k, f"samples_per_class={n} and feature_dim={d} with num_classes={k} are too large")
    labels = np.repeat(np.arange(k), n)
    count = labels.size
    targets = _targets(k, eps, convention, labels)
    split = (k * d, k * d + d * count)

    def unpack(x: np.ndarray):
        return x[: split[0]].reshape(k, d), x[split[0]: split[1]].reshape(d, count), x[split[1]:]

    # The products are tiny (K x d times d x N): einsum's own loops, not a multi-threaded BLAS call, which on a
    # busy machine costs more in thread hand-offs than the arithmetic.
    def objective_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        classifier, features, bias = unpack(x)
        log_q = scipy.special.log_softmax(np.einsum("kd,dn->nk", classifier, features) + bias, axis=1)
        value = -float(np.sum(targets * log_q)) / count
        value += decay_w / 2 * float(np.sum(classifier**2)) + decay_h / 2 * float(np.sum(features**2))
        residual = (np.exp(log_q) - targets) / count
        gradient_w = np.einsum("nk,dn->kd", residual, features) + decay_w * classifier
        gradient_h = np.einsum("kd,nk->dn", classifier, residual) + decay_h * features
        return value, np.concatenate([gradient_w.ravel(), gradient_h.ravel(), residual.sum(axis=0)])

    start = np.random.default_rng(seed).normal(scale=start_scale, size=split[1] + k)
    solution = scipy.optimize.minimize(objective_and_gradient, start, jac=True, method="L-BFGS-B",
                                       options={"maxiter": max_iter, "maxcor": 30, "ftol": 0.0, "gtol": 1e-13})
    value, gradient = objective_and_gradient(solution.x)
    classifier, features, bias = unpack(solution.x)
    gradient_max = float(np.max(np.abs(gradient)))
    return UnconstrainedFeaturesResult(classifier.copy(), features.copy(), bias.copy(), labels, value, gradient_max,
                                       int(solution.nit), gradient_max <= GRADIENT_TOLERANCE)
