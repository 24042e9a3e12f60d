r"""Stage "fit": each probed label's model ``L(z, y) = m_y lse(z) - t_y . z + c_y``, twice independently.

With autograd, one call holds ``P`` samples of label ``y`` at random logits
``z_j``; the gradient rows are ``g_j = m softmax(z_j) - t``, so ``m`` is the
least-squares slope of ``g`` against ``softmax(z)`` and ``t = m mean(softmax) -
mean(g)``; the call's value gives ``c``.  Values only, the loss at
``z0 +- s e_c`` for every class ``c`` gives ``t_c`` up to a multiple of ``m``
(``t_c = tau_c + m kappa_c``), and a few random logits then give ``m`` and
``c`` by least squares; for a loss coarser than float32 (half precision,
noisy values) all ``K + 2`` unknowns are instead fitted by least squares to
many random logits, which averages the noise.  Each label is fitted twice,
from independent probes (the two *halves*); their difference measures the
fit's error.

Nothing here builds a ``(K, K)`` matrix beyond the labels asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstheory.testing.adapters import LossAdapter, LossCallError
from lstheory.testing.model import Z
from lstheory.testing.noise import Noise
from lstheory.testing.probes import lse, random_logits, softmax
from lstheory.testing.summary import Errors

__all__ = ["LabelFits", "fit_labels", "fit_errors", "zero_labels", "PROBES_PER_HALF"]

PROBES_PER_HALF = 4
"""Random logits per label and half (autograd)."""
COARSE_PROBES_PER_HALF = 64
"""The same for a loss coarser than float32 (half precision, noisy): 16 times the probes quarter the error,
so that eps = 0.1 uniform and 0.09 off_target (K = 10) are still told apart in bfloat16."""
_RANDOM_VALUE_PROBES = 6  # values only: random logits fixing m and c, per half
COARSE_VALUE_PROBES = 640
"""Values only, coarser than float32: ``max(4, COARSE_VALUE_PROBES // K) (K + 2)`` random logits per label
and half.  At K = 10 (64 per unknown) the normalised diagonal's standard error in bfloat16 is about 8e-4
(measured), so that eps = 0.1 uniform and 0.09 off_target are told apart; eps averages K labels, so
fewer per label suffice at larger K."""


@dataclass
class LabelFits:
    """The fitted model of some labels: row ``i`` is label ``labels[i]``.

    ``m``, ``t``, ``c`` are the means of the two halves; ``dm``, ``dt``, ``dc``
    their differences (half 1 minus half 2).  ``failed`` maps a label whose
    probes raised or returned a non-finite value to the reason.
    """

    num_classes: int
    labels: np.ndarray
    m: np.ndarray
    t: np.ndarray
    c: np.ndarray
    dm: np.ndarray
    dt: np.ndarray
    dc: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)
    nonfinite: set[int] = field(default_factory=set)
    probes: int = PROBES_PER_HALF

    def index(self, label: int) -> int | None:
        """Row of ``label``, or ``None`` when it was not fitted."""
        where = np.flatnonzero(self.labels == label)
        return int(where[0]) if where.size else None


def _fit_half_autograd(adapter: LossAdapter, label: int, rng: np.random.Generator, weight: float, probes: int):
    z = random_logits(rng, (probes, adapter.num_classes))
    result = adapter.evaluate(z, np.full(probes, label), grad=True)
    g = result.gradient / weight
    s = softmax(z)
    ds, dg = s - s.mean(axis=0), g - g.mean(axis=0)
    m = float(np.sum(ds * dg) / np.sum(ds * ds))
    t = m * s.mean(axis=0) - g.mean(axis=0)
    mean_value = result.value / (weight * probes)
    c = mean_value - float(np.mean(m * lse(z) - z @ t))
    return m, t, c


def _fit_half_values(adapter: LossAdapter, label: int, rng: np.random.Generator):
    k = adapter.num_classes
    base = random_logits(rng, (k,))
    step = 1.0
    labels = np.array([label])
    up = np.empty(k)
    down = np.empty(k)
    lse_up = np.empty(k)
    lse_down = np.empty(k)
    shifted = base.copy()
    for c in range(k):
        for sign, values, lses in ((1.0, up, lse_up), (-1.0, down, lse_down)):
            shifted[c] = base[c] + sign * step
            values[c] = adapter.evaluate(shifted[None, :], labels).value
            lses[c] = float(lse(shifted))
        shifted[c] = base[c]
    tau = (down - up) / (2 * step)
    kappa = (lse_up - lse_down) / (2 * step)
    z = np.vstack([base[None, :], random_logits(rng, (_RANDOM_VALUE_PROBES, k))])
    values = np.array([adapter.evaluate(row[None, :], labels).value for row in z])
    design = np.column_stack([lse(z) - z @ kappa, np.ones(len(z))])
    (m, c), *_ = np.linalg.lstsq(design, values + z @ tau, rcond=None)
    return float(m), tau + m * kappa, float(c)


def _fit_half_regression(adapter: LossAdapter, label: int, rng: np.random.Generator, repeats: int):
    """Values only, noisy: ``L = m lse(z) - t . z + c`` by least squares on ``repeats (K + 2)`` random logits."""
    k = adapter.num_classes
    z = random_logits(rng, (repeats * (k + 2), k))
    labels = np.array([label])
    values = np.array([adapter.evaluate(row[None, :], labels).value for row in z])
    design = np.column_stack([lse(z), -z, np.ones(len(z))])
    solution, *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(solution[0]), solution[1 : k + 1], float(solution[-1])


def fit_labels(
    adapter: LossAdapter,
    labels: list[int],
    rng: np.random.Generator,
    weight: float,
    progress=None,
    probes: int = PROBES_PER_HALF,
    coarse: bool = False,
) -> LabelFits:
    """Fit each label of ``labels`` twice; ``weight``: a sample's weight in a batch of ``probes`` samples.

    ``coarse``: the loss is coarser than float32 (values only: fitted by regression).
    """
    k = adapter.num_classes
    rows = {}
    failed: dict[int, str] = {}
    nonfinite: set[int] = set()
    repeats = max(4, COARSE_VALUE_PROBES // k)

    def half(label: int):
        if adapter.autograd:
            return _fit_half_autograd(adapter, label, rng, weight, probes)
        if coarse:
            return _fit_half_regression(adapter, label, rng, repeats)
        return _fit_half_values(adapter, label, rng)

    for label in labels:
        try:
            halves = [half(label) for _ in range(2)]
        except LossCallError as error:
            failed[label] = str(error)
            if "non-finite" in str(error):
                nonfinite.add(label)
            continue
        rows[label] = halves
        if progress is not None:
            progress(1)
    fitted = np.array(sorted(rows), dtype=np.int64)
    first = [rows[y][0] for y in fitted]
    second = [rows[y][1] for y in fitted]

    def stack(parts, i, shape):
        return np.array([p[i] for p in parts], dtype=np.float64).reshape(shape)

    n = len(fitted)
    m1, m2 = stack(first, 0, (n,)), stack(second, 0, (n,))
    t1, t2 = stack(first, 1, (n, k)), stack(second, 1, (n, k))
    c1, c2 = stack(first, 2, (n,)), stack(second, 2, (n,))
    per_half = probes if adapter.autograd else (repeats if coarse else 1)
    return LabelFits(k, fitted, (m1 + m2) / 2, (t1 + t2) / 2, (c1 + c2) / 2, m1 - m2, t1 - t2, c1 - c2, failed, nonfinite,
                     per_half)


def fit_errors(fits: LabelFits, noise: Noise, sigma_value: float, autograd: bool = True) -> Errors:
    """Standard errors from the halves' differences (their half), floored by the measured noise."""
    k = fits.num_classes
    rows = np.arange(len(fits.labels))
    diagonal = fits.dt[rows, fits.labels] if len(rows) else np.zeros(1)
    off = fits.dt.copy()
    off[rows, fits.labels] = 0.0
    floor = noise.level / (2 * math.sqrt(2 * fits.probes))  # half a unit, averaged over the fit's probes
    on = max(float(np.sqrt(np.mean(diagonal**2))) / 2, floor)
    off_error = max(float(np.sqrt(np.mean(off**2) * k / max(k - 1, 1))) / 2 if len(rows) else 0.0, floor / k)
    m = max(float(np.sqrt(np.mean(fits.dm**2))) / 2 if len(rows) else 0.0, floor)
    c = max(float(np.sqrt(np.mean(fits.dc**2))) / 2 if len(rows) else 0.0, sigma_value)
    # eps is read off the normalised diagonal on / m: its own error, to first order d(on) / m - on d(m) / m**2
    massive = np.abs(fits.m) > Z * m if len(rows) else np.zeros(0, dtype=bool)
    normalised = (diagonal / fits.m - fits.t[rows, fits.labels] * fits.dm / fits.m**2)[massive] if massive.any() else np.zeros(1)
    diagonal_error = max(float(np.sqrt(np.mean(normalised**2))) / 2, floor)
    if not autograd:  # t = tau + m kappa with |kappa_c| <= 1: the error of m moves every entry
        on, off_error = max(on, m), max(off_error, m)
    return Errors(on, off_error, m, c, max(len(rows), 1), diagonal=diagonal_error)


def zero_labels(fits: LabelFits, errors: Errors) -> set[int]:
    """Fitted labels whose loss is identically zero (``m = t = c = 0``), and those non-finite alone."""
    zero = set(fits.nonfinite)
    for i, y in enumerate(fits.labels):
        if abs(fits.m[i]) <= Z * errors.m and np.max(np.abs(fits.t[i])) <= Z * errors.on and abs(fits.c[i]) <= Z * errors.c:
            zero.add(int(y))
    return zero
