"""Error-free transformations and double-double helpers for the closed forms.

A double-double value is a pair ``(hi, lo)`` of float64 arrays whose exact sum
represents a real number to about 106 bits.  The closed forms in
:mod:`lstheory.closed_form` build the argument of a logarithm in double-double
and round only once, at the end, which is what keeps them within a couple of
ulps where the naive float expressions cancel or overflow.

References: T. J. Dekker, "A floating-point technique for extending the
available precision", Numer. Math. 18 (1971); D. E. Knuth, TAOCP vol. 2,
sec. 4.2.2 (TwoSum).  All functions work elementwise on NumPy arrays.
"""

from __future__ import annotations

import numpy as np

_VELTKAMP_SPLITTER = 134217729.0  # 2**27 + 1

# log(2) split so that n * LN2_HI is exact for |n| < 2**21 (fdlibm's constants).
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def fast_two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`two_sum`, valid when ``|a| >= |b|`` (or ``a == 0``)."""
    s = a + b
    return s, b - (s - a)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp split of ``a`` into two halves of at most 26 significant bits."""
    t = _VELTKAMP_SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(p, e)`` with ``p = fl(a * b)`` and ``a * b = p + e`` exactly (Dekker).

    Exact while ``|a|, |b| < 2**995`` and the product does not underflow.
    """
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def dd_div_by_double(
    n_hi: np.ndarray, n_lo: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Divide the double-double ``n_hi + n_lo`` by the double ``d``."""
    q = n_hi / d
    p, e = two_prod(q, d)
    correction = (((n_hi - p) - e) + n_lo) / d
    return fast_two_sum(q, correction)


def dd_log(x_hi: np.ndarray, x_lo: np.ndarray) -> np.ndarray:
    """``log(x_hi + x_lo)`` rounded to float64, for positive normalised pairs.

    ``log(hi + lo) = log(hi) + log1p(lo / hi)``, and ``|lo / hi| <= 2**-53``
    makes ``log1p(lo / hi) = lo / hi`` to far below an ulp.
    """
    return np.log(x_hi) + x_lo / x_hi
