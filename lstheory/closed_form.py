r"""Closed forms of the label-smoothing optimum, accurate to a few ulps.

This is the one module where the closed forms are written; the symbolic,
SciPy and torch layers call into it or are checked against it.

Notation (used in every docstring below)
-----------------------------------------
``K`` (``num_classes``) is the number of classes, ``eps`` the smoothing
strength, ``y`` the true label.  The two conventions are

============== ===================== =================
convention     true class ``p_true`` other ``p_other``
============== ===================== =================
``off_target`` ``1 - eps``           ``eps / (K-1)``
``uniform``    ``1 - eps + eps / K`` ``eps / K``
============== ===================== =================

Cross-entropy against a full-support target ``p`` is minimised exactly by the
logits ``z = log p + alpha`` (any real ``alpha``); for a smoothed target that
means ``z_y - z_i = log(p_true / p_other)`` for every ``i != y``.

Accuracy
--------
In float64 :func:`logit_gap` is within 2 ulp and :func:`min_loss` within
4 ulp of the exact value (checked against mpmath at 60 digits in
``tests/test_closed_form_accuracy.py``) for every integer
``2 <= K <= 2**53`` and every float64 ``eps`` in ``[5e-324, 1]``, including
the zero of the off_target gap at ``eps = (K-1)/K`` and subnormal ``eps``.
The argument of each logarithm is formed in double-double arithmetic
(:mod:`lstheory._exact_arithmetic`) and rounded once.

Arguments
---------
Python or NumPy numbers and arrays, or torch tensors on any device, read exactly
(a float32 ``torch.tensor(0.1)`` is ``0.10000000149011612``, and that is the eps
used; ``-0.0`` is read as ``0.0``).  A tensor that requires grad is refused with a
``TypeError``, here as in :mod:`lstheory.torch`: the closed forms are constants
of ``K`` and ``eps``, and a silently dropped graph would be a wrong gradient.
Every bad argument is a ``ValueError`` or ``TypeError`` naming it, the value
and the valid range; a result too large for the machine's memory is a
:class:`~lstheory._validation.ResultTooLargeError` (both a ``ValueError`` and a
``MemoryError``) that says how many bytes it would need.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lstheory import _exact_arithmetic as xa
from lstheory._validation import (
    allocate,
    as_array,
    as_eps,
    as_finite_real,
    as_num_classes,
    broadcast,
    check_convention,
    check_label,
    scalar_or_array,
)

__all__ = [
    "Optimum",
    "optimum",
    "smoothed_target",
    "logit_gap",
    "optimal_logits",
    "min_loss",
    "convert_eps",
    "optimal_logits_for_target",
    "binary_optimal_logit",
    "binary_smoothed_probability",
    "binary_unsmoothed_probability",
]

def _scalar_or_array(result: np.ndarray, *inputs: Any) -> np.ndarray | float:
    """A plain Python ``float`` when every input was a scalar (it prints as ``0.9``), else the array."""
    value = scalar_or_array(result, *inputs)
    return float(value) if np.ndim(value) == 0 else value


def _underflow_is_expected(function):
    """Subnormal intermediates are part of the design: keep a caller's ``np.seterr(under="raise")`` out."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(under="ignore"):
            return function(*args, **kwargs)

    return wrapper


# Below this eps the ratio (numerator / eps) would overflow or defeat the
# Veltkamp split, so eps is scaled by 2**_TINY_EPS_SCALE before dividing.
_TINY_EPS = 2.0**-900
_TINY_EPS_SCALE = 600


def _prepare(num_classes: Any, eps: Any, convention: Any) -> tuple[np.ndarray, np.ndarray, str]:
    convention = check_convention(convention)
    k = as_num_classes(num_classes)
    e = as_eps(eps)
    k_b, e_b = broadcast(num_classes=k, eps=e)
    return k_b, e_b, convention


def _off_target_mass(k: np.ndarray, eps: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Total target mass off the true class, ``c = (K-1) p_other``, as a double-double.

    ``c = eps`` (off_target) or ``c = eps (K-1)/K`` (uniform).
    """
    if convention == "off_target":
        return eps, np.zeros_like(eps)
    product_hi, product_lo = xa.two_prod(eps, k - 1.0)
    return xa.dd_div_by_double(product_hi, product_lo, k)


def _gap_numerator(k: np.ndarray, eps: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """``eps * p_true / p_other`` as a double-double, so that gap = log(numerator / eps).

    off_target: ``(K-1)(1-eps)``; uniform: ``K - (K-1) eps``.
    """
    km1 = k - 1.0
    if convention == "off_target":
        s, t = xa.two_sum(np.ones_like(eps), -eps)  # 1 - eps = s + t exactly
        p, p_err = xa.two_prod(km1, s)
        return xa.fast_two_sum(p, p_err + km1 * t)
    p, p_err = xa.two_prod(km1, eps)
    s, t = xa.two_sum(k, -p)
    return xa.fast_two_sum(s, t - p_err)


def _log_of_ratio(numer_hi: np.ndarray, numer_lo: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``log((numer_hi + numer_lo) / eps)`` for ``eps > 0`` and a positive numerator."""
    tiny = eps < _TINY_EPS
    scale = np.where(tiny, float(_TINY_EPS_SCALE), 0.0)
    scaled_eps = np.ldexp(eps, scale.astype(np.int64))
    q_hi, q_lo = xa.dd_div_by_double(numer_hi, numer_lo, scaled_eps)
    # scale * LN2_HI is exact; add the small parts first.
    return (np.log(q_hi) + (q_lo / q_hi + scale * xa.LN2_LO)) + scale * xa.LN2_HI


@_underflow_is_expected
def smoothed_target(num_classes: Any, eps: Any, *, convention: str = "off_target"):
    r"""The label-smoothed target: mass on the true class and on each other class.

    Formula::

        off_target: p_true = 1 - eps,           p_other = eps / (K - 1)
        uniform:    p_true = 1 - eps + eps / K, p_other = eps / K

    Parameters
    ----------
    num_classes : int or integer array
        ``K``, the number of classes, ``2 <= K <= 2**53``.
    eps : float or array
        Smoothing strength in ``[0, 1]``; broadcasts against ``num_classes``.
    convention : {"off_target", "uniform"}
        ``"off_target"`` (the default; the seed's and He et al.'s eps/(K-1)) or
        ``"uniform"`` (eps/K; PyTorch, Keras, optax, timm, HuggingFace).

    Returns
    -------
    (p_true, p_other) : tuple of floats or of float64 ndarrays
        Broadcast shape of the inputs; ``p_true + (K-1) p_other = 1``.

    Accuracy: each value within 1 ulp of the exact one.

    References: Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform);
    He et al. 2019, arXiv 1812.01187, sec. 5.2 (off_target).

    Examples
    --------
    >>> p_true, p_other = smoothed_target(10, 0.1)
    >>> print(f"{p_true:.4f} {p_other:.6f}")
    0.9000 0.011111
    >>> p_true, p_other = smoothed_target(10, 0.1, convention="uniform")
    >>> print(f"{p_true:.4f} {p_other:.4f}")
    0.9100 0.0100
    """
    k, e, convention = _prepare(num_classes, eps, convention)
    c_hi, c_lo = _off_target_mass(k, e, convention)
    s, t = xa.two_sum(np.ones_like(c_hi), -c_hi)
    p_true = s + (t - c_lo)
    p_other = e / (k - 1.0) if convention == "off_target" else e / k
    return _scalar_or_array(p_true, num_classes, eps), _scalar_or_array(p_other, num_classes, eps)


@_underflow_is_expected
def logit_gap(num_classes: Any, eps: Any, *, convention: str = "off_target"):
    r"""The optimal logit gap ``z_y - z_i`` (any ``i != y``) of label-smoothed cross-entropy.

    Formula::

        gap = log(p_true / p_other)
        off_target: log((K - 1)(1 - eps) / eps)
        uniform:    log(1 + K (1 - eps) / eps)

    Parameters
    ----------
    num_classes : int or integer array
        ``K``, ``2 <= K <= 2**53``.
    eps : float or array
        Smoothing strength in ``[0, 1]``; broadcasts against ``num_classes``.
    convention : {"off_target", "uniform"}
        See :func:`smoothed_target`.

    Returns
    -------
    float or ndarray of float64
        The gap, in the broadcast shape.  ``eps = 0`` gives ``+inf`` (no
        finite optimum: one-hot targets push the gap to infinity); off_target
        ``eps = 1`` gives ``-inf``; uniform ``eps = 1`` gives ``0``; off_target
        ``eps = (K-1)/K`` (uniform target) gives exactly ``0``.

    Accuracy: within 2 ulp of the exact value for all valid inputs.  The naive
    ``log((K-1)*(1-eps)/eps)`` loses every digit near the zero of the gap and
    overflows for tiny ``eps`` (see ``docs/accuracy.md``).

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2 (off_target);
    Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform target).

    Examples
    --------
    >>> print(f"{logit_gap(10, 0.1):.4f}")
    4.3944
    >>> print(f"{logit_gap(10, 0.1, convention='uniform'):.4f}")
    4.5109
    >>> float(logit_gap(4, 0.75))
    0.0
    >>> float(logit_gap(10, 0.0))
    inf
    """
    k, e, convention = _prepare(num_classes, eps, convention)
    numer_hi, numer_lo = _gap_numerator(k, e, convention)
    positive = (e > 0) & (numer_hi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = _log_of_ratio(numer_hi, numer_lo, np.where(positive, e, 1.0))
    gap = np.where(e == 0, np.inf, gap)
    gap = np.where((e > 0) & (numer_hi == 0), -np.inf, gap)
    return _scalar_or_array(gap, num_classes, eps)


@_underflow_is_expected
def optimal_logits(
    num_classes: int,
    eps: Any,
    *,
    label: int = 0,
    alpha: Any = 0.0,
    convention: str = "off_target",
):
    r"""Logits that minimise label-smoothed cross-entropy for one label.

    Formula::

        z_i = alpha            for i != label
        z_label = alpha + gap  with gap = logit_gap(K, eps, convention)

    The minimiser is unique up to the shift ``alpha`` (softmax is
    shift-invariant and the loss is strictly convex across the other
    directions).

    Parameters
    ----------
    num_classes : int
        ``K``, ``2 <= K <= 2**53`` (a scalar: it sets the last axis).
    eps : float or array of shape ``S``
        Smoothing strength in ``[0, 1]``.
    label : int
        The true class, ``0 <= label < K``.
    alpha : float or array broadcastable to ``S``
        The free shift (any finite real).
    convention : {"off_target", "uniform"}
        See :func:`smoothed_target`.

    Returns
    -------
    ndarray of shape ``S + (K,)``, float64.

    Accuracy: the label entry is ``alpha + gap`` rounded once.

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2.

    Examples
    --------
    >>> print(optimal_logits(3, 0.1, label=1).round(4))
    [0.     2.8904 0.    ]
    """
    k_array = as_num_classes(num_classes)
    if k_array.ndim:
        raise TypeError(
            f"num_classes must be a single integer for optimal_logits (it sets the last axis); "
            f"got an array of shape {k_array.shape}"
        )
    k = int(k_array)
    label = check_label(label, k)
    shift = as_finite_real(alpha, "alpha")
    gap = np.asarray(logit_gap(k, eps, convention=convention))
    shift, gap = broadcast(alpha=shift, eps=gap)
    logits = allocate(
        shift.shape + (k,),
        f"num_classes={k} is too large for optimal_logits on this machine",
        " (logit_gap gives the one logit that differs, without a K-sized array)",
    )
    logits[...] = shift[..., None]
    logits[..., label] = shift + gap
    return logits


@_underflow_is_expected
def min_loss(num_classes: Any, eps: Any, *, convention: str = "off_target"):
    r"""The minimum of label-smoothed cross-entropy: the entropy of the target.

    Formula, with ``c = (K-1) p_other`` the mass off the true class::

        H = -p_true log p_true - (K-1) p_other log p_other
          = -(1 - c) log(1 - c) + c log((K-1) / c)
        off_target: c = eps,           log((K-1)/c) = log(K-1) - log(eps)
        uniform:    c = eps (K-1) / K, log((K-1)/c) = log(K)   - log(eps)

    Every term is non-negative, so the sum does not cancel.

    Parameters
    ----------
    num_classes : int or integer array
        ``K``, ``2 <= K <= 2**53``.
    eps : float or array
        Smoothing strength in ``[0, 1]``; broadcasts against ``num_classes``.
    convention : {"off_target", "uniform"}
        See :func:`smoothed_target`.

    Returns
    -------
    float or ndarray of float64
        ``eps = 0`` gives ``0``; off_target ``eps = 1`` gives ``log(K-1)``;
        uniform ``eps = 1`` gives ``log(K)``.

    Accuracy: within 4 ulp of the exact value for all valid inputs.

    References: Cover and Thomas, "Elements of Information Theory", 2nd ed.,
    Thm. 2.6.3 (Gibbs' inequality: cross-entropy >= entropy, equality iff
    ``q = p``).

    Examples
    --------
    >>> print(f"{min_loss(1000, 0.1, convention='uniform'):.4f}")
    1.0148
    >>> print(f"{min_loss(1000, 0.1):.4f}")
    1.0158
    """
    k, e, convention = _prepare(num_classes, eps, convention)
    # For tiny eps the loss is c (1 + log((K-1)/c)) with c possibly below the
    # subnormal range (uniform, K=2, eps=5e-324): work with eps * 2**600 and
    # scale the result back once at the end.
    tiny = e < _TINY_EPS
    scale = np.where(tiny, _TINY_EPS_SCALE, 0)
    c_hi, c_lo = _off_target_mass(k, np.ldexp(e, scale), convention)
    s, t = xa.two_sum(np.ones_like(c_hi), -c_hi)
    w_hi, w_lo = xa.fast_two_sum(s, t - c_lo)  # 1 - c
    k_ratio = k - 1.0 if convention == "off_target" else k
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w_safe = np.where(w_hi > 0, w_hi, 1.0)
        log_w = xa.dd_log(w_safe, np.where(w_hi > 0, w_lo, 0.0))
        # -(1-c) log(1-c) = c (1 + O(c)): exactly c to float64 precision when eps is tiny.
        true_term = np.where(tiny, c_hi + c_lo, -(w_hi * log_w + w_lo * log_w))
        log_ratio = np.log(k_ratio) - np.log(np.where(e > 0, e, 1.0))
        other_term = c_hi * log_ratio + c_lo * log_ratio
    loss = np.where(w_hi > 0, true_term, 0.0) + np.where(e > 0, other_term, 0.0)
    loss = np.ldexp(loss, -scale)
    return _scalar_or_array(loss, num_classes, eps)


@_underflow_is_expected
def convert_eps(num_classes: Any, eps: Any, *, src: str, dst: str):
    r"""The eps that gives the same target in the other convention.

    Formula::

        eps_off_target = eps_uniform * (K - 1) / K
        eps_uniform    = eps_off_target * K / (K - 1)

    Both describe the target ``(1 - c, c / (K-1), ...)`` with ``c`` the mass
    off the true class.  An off_target ``eps > (K-1)/K`` puts less than
    ``1/K`` on the true class and has no uniform equivalent in ``[0, 1]``:
    that is an error.

    Parameters
    ----------
    num_classes : int or integer array
        ``K``, ``2 <= K <= 2**53``.
    eps : float or array
        Smoothing strength in ``[0, 1]`` in convention ``src``.
    src, dst : {"off_target", "uniform"}
        Convention of the input and of the result.

    Returns
    -------
    float or ndarray of float64
        Within 1 ulp of the exact value.

    References: the mapping follows from :func:`smoothed_target`; PyTorch
    issues #148884 and #130342 are users caught by it.

    Examples
    --------
    >>> print(f"{convert_eps(10, 0.1, src='uniform', dst='off_target'):.4f}")
    0.0900
    >>> print(f"{convert_eps(2, 0.1, src='off_target', dst='uniform'):.4f}")
    0.2000
    """
    check_convention(src, "src")
    check_convention(dst, "dst")
    k, e, _ = _prepare(num_classes, eps, src)
    if src == dst:
        return _scalar_or_array(e.copy(), num_classes, eps)
    if src == "uniform":
        c_hi, c_lo = _off_target_mass(k, e, "uniform")
        return _scalar_or_array(c_hi + c_lo, num_classes, eps)
    product_hi, product_lo = xa.two_prod(e, k)
    u_hi, u_lo = xa.dd_div_by_double(product_hi, product_lo, k - 1.0)
    uniform = u_hi + u_lo
    bad = uniform > 1.0
    if np.any(bad):
        k_bad, e_bad, u_bad = (x[bad].flat[0] if x.ndim else x for x in (k, e, uniform))
        # repr: enough digits to tell eps from the bound (K-1)/K even one ulp away
        raise ValueError(
            f"eps={float(e_bad)!r} in the off_target convention has no uniform equivalent for "
            f"num_classes={int(k_bad)}: it would need uniform eps = eps*K/(K-1) = "
            f"{float(u_bad)!r} > 1; valid off_target eps for this conversion: "
            f"0 <= eps <= (K-1)/K = {(float(k_bad) - 1) / float(k_bad)!r}"
        )
    return _scalar_or_array(uniform, num_classes, eps)


@_underflow_is_expected
def optimal_logits_for_target(p: Any, *, alpha: Any = 0.0):
    r"""Logits that minimise cross-entropy against an arbitrary full-support target.

    Formula: ``z = log p + alpha``; the minimum is the entropy ``H(p)``.  The
    minimiser of ``-sum_i p_i log softmax(z)_i`` is unique up to ``alpha``.
    ``p`` need not be normalised: scaling ``p`` scales the loss and leaves the
    minimiser unchanged (``alpha`` absorbs ``-log sum(p)``).

    Parameters
    ----------
    p : array of shape ``(..., K)``
        Target masses, last axis = classes, every entry finite and ``> 0``.
        A zero entry has no finite minimiser (the loss keeps falling as that
        class's logit goes to ``-inf``), so it is an error.
    alpha : float or array broadcastable to ``p.shape[:-1]``
        The free shift.

    Returns
    -------
    ndarray of shape ``p.shape``, float64.

    Accuracy: ``log`` of each entry, correctly rounded up to libm's log.

    References: Cover and Thomas, "Elements of Information Theory", 2nd ed.,
    Thm. 2.6.3.

    Examples
    --------
    >>> print(optimal_logits_for_target([0.5, 0.25, 0.25]).round(4))
    [-0.6931 -1.3863 -1.3863]
    """
    target = as_array(p, "p", "a real array of positive target masses, classes on the last axis")
    if target.dtype.kind not in "iuf":
        raise TypeError(f"p must be a real array of positive target masses; got dtype {target.dtype}")
    if target.ndim == 0:
        raise ValueError("p must have at least one axis (the classes, last); got a scalar")
    target = target.astype(np.float64)
    if target.shape[-1] < 2:
        raise ValueError(f"p must have at least 2 classes on its last axis; got shape {target.shape}")
    not_finite = ~np.isfinite(target)
    if np.any(not_finite):
        index = tuple(int(i) for i in np.argwhere(not_finite)[0])
        raise ValueError(f"p must be finite; got {target[index].item()!r} at index {index}")
    non_positive = target <= 0
    if np.any(non_positive):
        index = tuple(int(i) for i in np.argwhere(non_positive)[0])
        raise ValueError(
            f"p must be > 0 everywhere (full support); got p{list(index)} = {target[index].item()!r}. "
            "A class with zero target mass has no finite optimal logit: the loss keeps falling "
            "as that logit goes to -inf"
        )
    shift = as_finite_real(alpha, "alpha")
    try:
        shift = np.broadcast_to(shift, target.shape[:-1])
    except ValueError:
        raise ValueError(
            f"alpha with shape {np.shape(alpha)} does not broadcast to p.shape[:-1] = {target.shape[:-1]}"
        ) from None
    return np.log(target) + shift[..., None]


@_underflow_is_expected
def binary_optimal_logit(eps: Any):
    r"""Optimal logit of sigmoid cross-entropy against the smoothed binary target.

    Formula::

        target t = y (1 - eps) + eps / 2      (y in {0, 1})
        z* = +log((2 - eps) / eps) for y = 1,  -log((2 - eps) / eps) for y = 0

    ``z*`` equals the K = 2 uniform-convention softmax gap
    ``log(1 + 2 (1 - eps) / eps)`` and is computed by the same accurate code
    path as :func:`logit_gap`.

    Parameters
    ----------
    eps : float or array
        Smoothing strength in ``[0, 1]``.

    Returns
    -------
    float or ndarray of float64
        The optimal logit for ``y = 1``; ``eps = 0`` gives ``+inf``, ``eps = 1``
        gives ``0``.

    Accuracy: within 2 ulp over ``[5e-324, 1]`` (tested against mpmath).

    References: Keras ``BinaryCrossentropy(label_smoothing=eps)``; Yamasaki and
    Tanaka 2023, arXiv 2305.08501.

    Examples
    --------
    >>> print(f"{binary_optimal_logit(0.1):.4f}")
    2.9444
    """
    e = as_eps(eps)
    return _scalar_or_array(np.asarray(logit_gap(2, e, convention="uniform")), eps)


@_underflow_is_expected
def binary_smoothed_probability(eta: Any, eps: Any):
    r"""The population minimiser of binary smoothing: ``(1 - eps) eta + eps / 2``.

    With labels ``y ~ Bernoulli(eta)`` the expected smoothed target, and so the
    optimal predicted probability, is squeezed toward 1/2.

    Parameters
    ----------
    eta : float or array
        True class-1 probability in ``[0, 1]``.
    eps : float or array
        Smoothing strength in ``[0, 1]``; broadcasts against ``eta``.

    Returns
    -------
    float64 scalar or array, in ``[eps/2, 1 - eps/2]``.

    References: Yamasaki and Tanaka 2023, arXiv 2305.08501.

    Examples
    --------
    >>> print(f"{binary_smoothed_probability(1.0, 0.1):.2f}")
    0.95
    """
    probability = as_eps(eta, "eta")
    e = as_eps(eps)
    probability, e = broadcast(eta=probability, eps=e)
    return _scalar_or_array((1 - e) * probability + e / 2, eta, eps)


@_underflow_is_expected
def binary_unsmoothed_probability(p: Any, eps: Any):
    r"""Invert :func:`binary_smoothed_probability`: ``eta = (p - eps/2) / (1 - eps)``.

    The consistent way to read a class probability back from a model trained
    with binary smoothing.

    Parameters
    ----------
    p : float or array
        Smoothed probability in ``[eps/2, 1 - eps/2]`` (up to 4 ulps of 1 of
        rounding slack; the result is clipped to ``[0, 1]``).
    eps : float or array
        Smoothing strength in ``[0, 1)`` (at ``eps = 1`` every ``eta`` maps to 1/2).

    Returns
    -------
    float64 scalar or array in ``[0, 1]``.

    Examples
    --------
    >>> print(f"{binary_unsmoothed_probability(0.95, 0.1):.2f}")
    1.00
    """
    probability = as_eps(p, "p")
    e = as_eps(eps)
    probability, e = broadcast(p=probability, eps=e)
    if np.any(e == 1.0):
        raise ValueError("eps must satisfy 0 <= eps < 1 to invert binary smoothing; got eps = 1.0 (every eta maps to 1/2)")
    # Allow the rounding of a forward-computed (1-eps) eta + eps/2: a few ulps of 1.
    slack = 4 * np.finfo(np.float64).eps
    outside = (probability < e / 2 - slack) | (probability > 1 - e / 2 + slack)
    if np.any(outside):
        index = np.argwhere(outside)[0] if outside.ndim else ()
        bad_p, bad_e = probability[tuple(index)].item(), e[tuple(index)].item()
        raise ValueError(f"p must lie in [eps/2, 1 - eps/2] = [{bad_e / 2!r}, {1 - bad_e / 2!r}]; got p = {bad_p!r}")
    return _scalar_or_array(np.clip((probability - e / 2) / (1 - e), 0.0, 1.0), p, eps)


@dataclass(frozen=True)
class Optimum:
    """The optimum of label-smoothed cross-entropy for one ``(K, eps, convention)``: :func:`optimum`'s answer.

    Attributes
    ----------
    num_classes, eps, convention
        The question: ``K``, the smoothing strength and its convention.
    logit_gap : float
        The optimal gap ``z_y - z_i`` (:func:`logit_gap`).
    p_true : float
        The optimal confidence: ``softmax(z*)_y``, the probability the optimal
        logits give the true class, equal to the target's true-class mass.
    p_other : float
        The probability of each other class at the optimum.
    min_loss : float
        The minimum loss in nats: the entropy of the target (:func:`min_loss`).
    min_loss_bits : float
        The same entropy in bits, ``min_loss / log(2)``.
    eps_off_target, eps_uniform : float or None
        The same smoothing written in each convention (one of them is
        ``eps``); ``None`` where it has no equivalent in ``[0, 1]``.
    """

    num_classes: int
    eps: float
    convention: str
    logit_gap: float
    p_true: float
    p_other: float
    min_loss: float
    min_loss_bits: float
    eps_off_target: float | None
    eps_uniform: float | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (``lstheory optimum --json`` prints it)."""
        return asdict(self)

    def __str__(self) -> str:
        other = "uniform" if self.convention == "off_target" else "off_target"
        in_other = getattr(self, f"eps_{other}")
        return "\n".join([
            f"K = {self.num_classes}, eps = {self.eps!r} ({self.convention} convention)",
            f"optimal logit gap z_y - z_i   {self.logit_gap:.6g}",
            f"optimal confidence p_true     {self.p_true:.6g}   (softmax of the true class at the optimum)",
            f"each other class p_other      {self.p_other:.6g}",
            f"minimum loss (target entropy) {self.min_loss:.6g} nats = {self.min_loss_bits:.6g} bits",
            f"same smoothing as {other:<11} " + ("none in [0, 1]" if in_other is None else f"eps = {in_other:.6g}"),
        ])


def _converted_or_none(num_classes: int, eps: float, src: str, dst: str) -> float | None:
    try:
        return convert_eps(num_classes, eps, src=src, dst=dst)
    except ValueError:
        return None


def optimum(num_classes: int, eps: float, *, convention: str = "off_target") -> Optimum:
    r"""Everything about the optimum of label-smoothed cross-entropy, in one call.

    Formula::

        logit_gap = log(p_true / p_other)              z*_y - z*_i at the optimum
        p_true    = softmax(z*)_y                      the optimal confidence
        min_loss  = -p_true log p_true - (K-1) p_other log p_other   (nats; bits: / log 2)
        eps_off_target = eps_uniform (K-1) / K         the same target in both conventions

    Parameters
    ----------
    num_classes : int
        ``K``, ``2 <= K <= 2**53`` (one value; use the individual functions for arrays).
    eps : float
        Smoothing strength in ``[0, 1]``, in ``convention``.
    convention : {"off_target", "uniform"}
        See :func:`smoothed_target`; PyTorch's ``label_smoothing`` is ``"uniform"``.

    Returns
    -------
    Optimum
        Plain floats, each as accurate as the function that computes it
        (:func:`logit_gap` 2 ulp, :func:`min_loss` 4 ulp, the rest 1 ulp).

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2; Szegedy et al. 2016,
    arXiv 1512.00567, sec. 7; Cover and Thomas, "Elements of Information
    Theory", 2nd ed., Thm. 2.6.3.

    Examples
    --------
    PyTorch's ``cross_entropy(label_smoothing=0.1)`` with 1000 classes:

    >>> best = optimum(1000, 0.1, convention="uniform")
    >>> print(f"{best.logit_gap:.4f} {best.p_true:.4f} {best.min_loss:.4f}")
    9.1051 0.9001 1.0148
    >>> best.p_true, best.p_other
    (0.9001, 0.0001)
    >>> print(f"{best.eps_off_target:.4f}")
    0.0999
    """
    k_array, e_array = as_num_classes(num_classes), as_eps(eps)
    if k_array.ndim or e_array.ndim:
        raise TypeError(
            "optimum takes one num_classes and one eps (use logit_gap, smoothed_target and min_loss for arrays); "
            f"got num_classes of shape {k_array.shape} and eps of shape {e_array.shape}"
        )
    check_convention(convention)
    k, e = int(k_array), float(e_array)
    p_true, p_other = smoothed_target(k, e, convention=convention)
    entropy = min_loss(k, e, convention=convention)
    return Optimum(
        num_classes=k,
        eps=e,
        convention=convention,
        logit_gap=logit_gap(k, e, convention=convention),
        p_true=p_true,
        p_other=p_other,
        min_loss=entropy,
        min_loss_bits=entropy / math.log(2),
        eps_off_target=_converted_or_none(k, e, convention, "off_target"),
        eps_uniform=_converted_or_none(k, e, convention, "uniform"),
    )
