r"""SciPy minimisation of cross-entropy over all K logits: the numeric confirmation.

The problem ``min_z L(z) = logsumexp(z) - p . z`` is invariant under
``z -> z + alpha 1``; it is gauge-fixed by pinning one class's logit at 0 and
minimising over the other ``K - 1`` logits, where it is strictly convex.  The
solver is SciPy's trust-region Newton-CG method (``trust-ncg``) with
the analytic gradient ``softmax(z) - p`` and the analytic Hessian-vector
product ``(diag(q) - q q^T) v = q * v - q (q . v)``, so each iteration costs
O(K) and no K x K matrix is formed.  Nothing here uses the closed forms: the
results are compared with them by the claims registry and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse.linalg
import scipy.special

from lstheory._validation import (
    allocate,
    as_array,
    as_eps,
    as_real,
    as_integer,
    as_num_classes,
    check_convention,
    check_label,
    check_seed,
)


CONVERGED_RELATIVE_RESIDUAL = 1e-11
"""A polished result counts as converged when softmax(z) matches the target to this relative error
(float64 log-sum-exp over K = 10**4 classes is itself only good to about K ulps)."""


DENSE_JACOBIAN_MAX_CLASSES = 200
"""Up to this K the polishing stage uses a dense Jacobian; above it, an O(K) linear operator."""


@dataclass(frozen=True)
class MinimizationResult:
    """Outcome of one SciPy minimisation.

    Attributes
    ----------
    logits : ndarray (K,)
        The minimiser, gauge-fixed: the pinned class's logit is exactly 0.
    loss : float
        ``L(logits)``.
    iterations : int
        Newton (trust-region) iterations taken.
    converged : bool
        SciPy's success flag.
    message : str
        SciPy's termination message.
    label : int or None
        The true class when the target is a smoothed one; used by :attr:`gap`.
    """

    logits: np.ndarray
    loss: float
    iterations: int
    converged: bool
    message: str
    label: int | None = None

    @property
    def gap(self) -> float:
        """``z_label - mean(z_i, i != label)``: the optimal gap for a two-level target."""
        if self.label is None:
            raise ValueError("gap needs a label: this result was computed for an arbitrary target")
        others = np.delete(self.logits, self.label)
        return float(self.logits[self.label] - others.mean())

    @property
    def gap_spread(self) -> float:
        """``max - min`` of the logits off the label (0 at an exact two-level optimum)."""
        if self.label is None:
            raise ValueError("gap_spread needs a label")
        others = np.delete(self.logits, self.label)
        return float(others.max() - others.min())


def _validate_target(target: np.ndarray) -> np.ndarray:
    p = as_array(target, "target", "a 1-D array of at least 2 finite, non-negative class masses")
    if p.dtype.kind not in "iuf":
        raise TypeError(f"target must be a 1-D array of real class masses; got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"target must be a 1-D array of at least 2 class masses; got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        bad = p[~(np.isfinite(p) & (p >= 0))][0]
        raise ValueError(f"target must be finite and non-negative; got {bad!r}")
    return p


def _validate_options(seed, start_scale, tol, max_iter) -> tuple[int, float, float, int]:
    seed = check_seed(seed)
    start_scale = as_real(start_scale, "start_scale", "a finite real number >= 0")
    if not 0 <= start_scale < math.inf:
        raise ValueError(f"start_scale must be a finite real number >= 0; got {start_scale!r}")
    tol = as_real(tol, "tol", "a finite real number > 0")
    if not 0 < tol < math.inf:
        raise ValueError(f"tol must be a finite real number > 0; got {tol!r}")
    max_iter = as_integer(max_iter, "max_iter", "an integer >= 1")
    if max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    return seed, start_scale, tol, max_iter


def minimize_cross_entropy(
    target: Sequence[float] | np.ndarray,
    *,
    label: int | None = None,
    seed: int = 0,
    start_scale: float = 1.0,
    tol: float = 1e-15,
    max_iter: int = 500,
    polish: bool = True,
) -> MinimizationResult:
    """Minimise ``-sum_i p_i log softmax(z)_i`` over all K logits with SciPy.

    Two stages, both SciPy:

    1. ``scipy.optimize.minimize(method="trust-ncg")`` on the loss itself,
       with its analytic gradient and Hessian-vector product, from a random
       start.  The class of largest target mass is pinned at 0 (the gauge),
       and the loss is evaluated as ``log1p(sum_{i != pinned} e^{z_i}) -
       sum_i p_i z_i``, which does not cancel near the optimum.
    2. Function values in float64 cannot locate a minimiser closer than about
       the square root of their rounding error (the loss is flat to second
       order), so when ``polish`` is set, ``scipy.optimize.least_squares``
       drives the first-order condition to zero in relative form,
       ``softmax(z)_i / p_i - 1 = 0`` for every class, with its analytic
       Jacobian as a linear operator (O(K) per product).  For this convex
       loss a stationary point is the minimiser (see
       :func:`lstheory.symbolic.general_optimum`).

    Parameters
    ----------
    target : array (K,)
        Target masses ``p``, finite and ``> 0`` (full support).  A zero mass
        has no finite minimiser; it is accepted only with ``polish=False``,
        where stage 1 runs until the gradient is below ``tol``.
    label : int, optional
        True class of a smoothed target (enables :attr:`MinimizationResult.gap`).
    seed, start_scale : int, float
        The random start is ``N(0, start_scale^2)`` in every free logit.
    tol : float
        Tolerance of both stages (gradient norm; relative residual).
    max_iter : int
        Iteration cap of each stage.
    polish : bool
        Run stage 2.

    Returns
    -------
    MinimizationResult
        ``iterations`` counts both stages; ``converged`` is true when the
        final relative first-order residual ``max_i |softmax(z)_i / p_i - 1|``
        is at most :data:`CONVERGED_RELATIVE_RESIDUAL` (or, without
        polishing, when SciPy reports success).
    """
    p = _validate_target(target)
    seed, start_scale, tol, max_iter = _validate_options(seed, start_scale, tol, max_iter)
    if polish and np.any(p <= 0):
        raise ValueError(
            "target must be > 0 everywhere to polish: a zero mass has no finite optimal logit "
            "(pass polish=False to watch the loss run off towards -inf logits)"
        )
    k = p.size
    if label is not None:
        label = check_label(label, k)
    pinned = int(np.argmax(p))
    free = np.delete(np.arange(k), pinned)
    p_free = p[free]
    total = p.sum()
    with np.errstate(divide="ignore"):
        log_p = np.log(p)

    def full_logits(x: np.ndarray) -> np.ndarray:
        z = np.zeros(k)
        z[free] = x
        return z

    def loss_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        shift = float(x.max())
        # log-sum-exp with the pinned logit 0 written out: log1p keeps full relative
        # accuracy when the pinned class dominates (all free logits below it).
        if shift <= 0.0:
            lse = float(np.log1p(np.exp(x).sum()))
        else:
            lse = shift + float(np.log(np.exp(-shift) + np.exp(x - shift).sum()))
        q_free = np.exp(x - lse)
        return float(total * lse - p_free @ x), total * q_free - p_free

    def hessian_vector(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = scipy.special.softmax(full_logits(x))[free]
        return total * (q * v - q * (q @ v))

    rng = np.random.default_rng(seed)
    start = rng.normal(scale=start_scale, size=k - 1)
    with np.errstate(over="ignore", invalid="ignore"):
        stage1 = scipy.optimize.minimize(
            loss_and_gradient,
            start,
            jac=True,
            hessp=hessian_vector,
            method="trust-ncg",
            options={"gtol": tol, "maxiter": max_iter},
        )
    x = stage1.x
    iterations = int(stage1.nit)
    converged = bool(stage1.success)
    message = f"minimize: {stage1.message}"

    def relative_residual(x: np.ndarray) -> np.ndarray:
        z = full_logits(x)
        log_q = z - scipy.special.logsumexp(z)
        return np.expm1(log_q - log_p + np.log(total))

    if polish:

        def jacobian(x: np.ndarray) -> np.ndarray | scipy.sparse.linalg.LinearOperator:
            # d r_i / d z_j = (q_i / p_i) (delta_ij - q_j), j over the free classes.
            q = scipy.special.softmax(full_logits(x))
            ratio = q * total / p
            if k <= DENSE_JACOBIAN_MAX_CLASSES:
                return ratio[:, None] * (np.eye(k)[:, free] - q[free][None, :])

            def matvec(v: np.ndarray) -> np.ndarray:
                t = np.zeros(k)
                t[free] = np.ravel(v)
                return ratio * (t - q @ t)

            def rmatvec(w: np.ndarray) -> np.ndarray:
                u = ratio * np.ravel(w)
                return (u - q * u.sum())[free]

            return scipy.sparse.linalg.LinearOperator((k, k - 1), matvec=matvec, rmatvec=rmatvec)

        stage2 = scipy.optimize.least_squares(
            relative_residual,
            x,
            jac=jacobian,
            method="trf",
            tr_solver="exact" if k <= DENSE_JACOBIAN_MAX_CLASSES else "lsmr",
            ftol=tol,
            xtol=tol,
            gtol=tol,
            max_nfev=max_iter,
        )
        x = stage2.x
        iterations += int(stage2.nfev)
        converged = bool(np.max(np.abs(relative_residual(x))) <= CONVERGED_RELATIVE_RESIDUAL)
        message += f"; least_squares: {stage2.message}"
    z = full_logits(x)
    loss = float(total * scipy.special.logsumexp(z) - p @ z)
    return MinimizationResult(
        logits=z, loss=loss, iterations=iterations, converged=converged, message=message, label=label
    )


def smoothed_target_vector(num_classes: int, eps: float, *, label: int = 0, convention: str = "off_target") -> np.ndarray:
    """The full length-K smoothed target for one label (from :func:`lstheory.smoothed_target`)."""
    from lstheory.closed_form import smoothed_target

    check_convention(convention)
    k = as_num_classes(num_classes)
    if k.ndim:
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got an array of shape {k.shape}")
    num_classes = int(k)
    label = check_label(label, num_classes)
    p_true, p_other = smoothed_target(num_classes, eps, convention=convention)
    if np.ndim(p_true):
        raise TypeError(f"eps must be a single number with 0 <= eps <= 1; got an array of shape {np.shape(p_true)}")
    target = allocate((num_classes,), f"num_classes={num_classes} is too large for smoothed_target_vector on this machine")
    target[:] = float(p_other)
    target[label] = float(p_true)
    return target


def minimize_smoothed(
    num_classes: int, eps: float, *, convention: str = "off_target", label: int = 0, seed: int = 0, **options
) -> MinimizationResult:
    """Minimise label-smoothed cross-entropy for one ``(K, eps)`` numerically."""
    target = smoothed_target_vector(num_classes, eps, label=label, convention=convention)
    return minimize_cross_entropy(target, label=label, seed=seed, **options)


def _configuration_pairs(configurations) -> list[tuple[int, float]]:
    """``(K, eps)`` pairs, each checked like the closed forms' arguments."""
    valid = "an iterable of (num_classes, eps) pairs"
    if isinstance(configurations, (str, bytes)):
        raise TypeError(f"configurations must be {valid}; got {configurations!r}")
    try:
        pairs = [tuple(pair) for pair in configurations]
    except TypeError:
        raise TypeError(f"configurations must be {valid}; got {configurations!r}") from None
    checked = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"configurations[{index}] must be a (num_classes, eps) pair; got {pair!r}")
        k = as_integer(pair[0], f"configurations[{index}][0] (num_classes)", "an integer with 2 <= num_classes <= 2**53")
        e = as_eps(pair[1], f"configurations[{index}][1] (eps)")
        if e.ndim:
            raise TypeError(f"configurations[{index}][1] (eps) must be a single number; got an array of shape {e.shape}")
        checked.append((k, float(e)))
    return checked


def sweep(
    configurations: Iterable[tuple[int, float]],
    *,
    convention: str = "off_target",
    seed: int = 0,
    progress: bool | None = True,
    description: str | None = None,
) -> list[MinimizationResult]:
    """:func:`minimize_smoothed` over many ``(K, eps)`` pairs, with a progress bar.

    The progress bar (tqdm) writes to stderr; ``progress=False`` hides it and
    ``progress=None`` shows it only when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    seed = check_seed(seed)
    pairs = _configuration_pairs(configurations)
    results = []
    bar = tqdm(pairs, desc=description or f"scipy sweep ({convention})", disable=None if progress is None else not progress, leave=False)
    for index, (k, e) in enumerate(bar):
        results.append(minimize_smoothed(int(k), float(e), convention=convention, seed=seed + index))
    return results
