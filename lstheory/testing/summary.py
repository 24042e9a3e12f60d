"""From the fitted model to what a user asks: eps in both conventions, padding, unsmoothed classes, form."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstheory.closed_form import convert_eps
from lstheory.testing.model import Z, TargetModel, classify_form, kl_offset
from lstheory.testing.probes import LOGIT_RANGE
from lstheory.testing.report import WeightedSmoothing, matching_convention

__all__ = [
    "Errors", "Smoothing", "summarise_smoothing", "constants_dtype", "constants_rounding", "loss_arithmetic", "form_of", "weighted_smoothing",
]


_ARITHMETIC = 4 * float(np.finfo(np.float64).eps)


@dataclass
class Errors:
    """Standard errors of the fit: per target entry on and off the label, of ``m`` and ``c``; eps's rounding.

    ``rounding`` and ``mass_rounding``: what rounding the loss's constants
    moves eps and the mass by; ``arithmetic``: what the loss's own sums over
    ``K`` classes move them by (see :func:`loss_arithmetic`).  Both are the
    same for every probe of a label, so the halves' difference cannot show them.
    ``approximation``: an approximate cross-entropy's measured deviation as an
    error of each target entry (:class:`~lstheory.testing.validate.Approximation`);
    ``on / m`` moves by up to twice that.
    """

    on: float
    off: float
    m: float
    c: float
    count: int
    rounding: float = 0.0
    diagonal: float = 0.0
    mass_rounding: float = 0.0
    arithmetic: float = 0.0
    approximation: float = 0.0

    @property
    def eps(self) -> float:
        """Allowed error of eps: ``Z`` standard errors of the mean of ``count`` labels' normalised diagonal
        ``on / m``, the constants' rounding, and the float64 rounding of computing eps from them (``1 - p``
        and the conversion: a few ulp of 1)."""
        return Z * self.diagonal / np.sqrt(max(self.count, 1)) + self.rounding + self.arithmetic + 2 * self.approximation + _ARITHMETIC

    @property
    def mass(self) -> float:
        """Allowed error of a label's mass ``m``: ``Z`` standard errors, the constants' rounding, arithmetic."""
        return Z * self.m + max(self.mass_rounding, 2 * self.rounding) + self.arithmetic + 2 * self.approximation + _ARITHMETIC


@dataclass
class Smoothing:
    """eps over the classes that receive smoothing, and those that do not."""

    eps_off_target: float | None
    eps_uniform: float | None
    unsmoothed: tuple[int, ...]
    classes: int


def _eps_pair(k: int, eps_off: float, atol: float) -> tuple[float | None, float | None]:
    c = eps_off
    if -atol <= c < 0:
        c = 0.0
    if 1 < c <= 1 + atol:
        c = 1.0
    if not 0 <= c <= 1:
        return None, None
    try:
        uniform = float(convert_eps(k, c, src="off_target", dst="uniform"))
    except ValueError:  # c > (K-1)/K: no uniform equivalent, unless within the error
        uniform = 1.0 if c - (k - 1) / k <= atol else None
    return c, uniform


def summarise_smoothing(model: TargetModel, ordinary: list[int], errors: Errors) -> Smoothing:
    """Both eps when every ordinary label has one value on itself and one on each smoothed class."""
    k = model.num_classes
    if not ordinary:
        return Smoothing(None, None, (), k)
    labels = np.array(ordinary)
    m = model.m[labels]
    on, off = model.on[labels] / m, model.off[labels] / m
    profile = model.profile
    smoothing = float(np.median(off)) > Z * errors.off
    level = abs(float(np.median(off)))
    unsmoothed = tuple(int(i) for i in np.flatnonzero(np.abs(profile) * level <= Z * errors.off)) if smoothing else ()
    # Spread allowed between labels: the fit's errors, the loss's own sums (m by up to ``arithmetic``
    # per label, so t / m), an approximation's deviation; float64's own rounding of t / m.
    relative = 2 * (errors.arithmetic + _ARITHMETIC)
    shared = (
        np.ptp(on) <= 2 * Z * errors.on + relative * float(np.max(np.abs(on))) + 2 * errors.approximation
        and np.ptp(off) <= 2 * Z * errors.off + relative * float(np.max(np.abs(off))) + 2 * errors.approximation
    )
    if model.exceptions or not shared:
        return Smoothing(None, None, unsmoothed, k)
    receiving = np.delete(profile, list(unsmoothed))
    allowed = Z * errors.off + relative * level + errors.approximation
    if smoothing and np.any(np.abs(receiving - 1) * float(np.mean(off)) > allowed):
        return Smoothing(None, None, unsmoothed, k)
    classes = k - len(unsmoothed)
    eps_off, eps_uniform = _eps_pair(classes, 1.0 - float(np.mean(on)), errors.eps)
    return Smoothing(eps_off, eps_uniform, unsmoothed, classes)


def constants_dtype(model: TargetModel, ordinary: list[int], errors: Errors, intended: float | None, classes: int) -> str:
    """``"float32"`` when a float64 loss's target constants are float32 numbers the float64 ones are not."""
    if not ordinary or intended is None:
        return "float64"
    y = ordinary[0]
    values = [(float(model.on[y]), errors.on), (float(model.off[y]), errors.off)]
    near = all(abs(v - float(np.float32(v))) <= Z * e and Z * e < float(np.spacing(np.float32(v))) / 4 for v, e in values)
    expected = [1 - intended + intended / classes, intended / classes, 1 - intended, intended / max(classes - 1, 1)]
    exact = all(float(np.float32(v)) == v for v in expected)
    return "float32" if near and not exact else "float64"


def unit_in_last_place(value: float, dtype: str) -> float:
    """The spacing of ``dtype`` numbers at ``|value|`` (normal range): ``2**floor(log2 |value|)`` times its epsilon."""
    from lstheory.testing.adapters import PRECISION_LEVELS

    if value == 0 or not np.isfinite(value):
        return 0.0
    return float(2.0 ** np.floor(np.log2(abs(value)))) * PRECISION_LEVELS[dtype]


def loss_arithmetic(dtype: str, classes: int) -> float:
    """The relative error of a sum over ``K`` classes the loss computes (its target's sum, its softmax's).

    Summing ``K`` terms in order is exact to ``(K - 1)`` units of the
    accumulating dtype (Higham, "Accuracy and Stability of Numerical
    Algorithms", 2nd ed., sec. 4.2); pairwise summation does better, but
    PyTorch's label-smoothed cross-entropy at ``K = 32000`` in float64 was
    measured with a mass off by 3.4e-14 (150 units, about ``K / 200``), more
    than ``log2 K`` units, so the bound is the worst case.
    Half-precision losses accumulate in float32 (PyTorch's, JAX's and Keras'
    CPU kernels do), so their unit is float32's.
    """
    from lstheory.testing.adapters import PRECISION_LEVELS

    unit = min(PRECISION_LEVELS[dtype], PRECISION_LEVELS["float32"])
    return max(classes, 2) * unit


def constants_rounding(dtype: str, on: float, off: float, mass: float, classes: int) -> tuple[float, float]:
    """How far rounding the target's constants to ``dtype`` can move eps (either convention), and the mass.

    eps is read off ``on / m`` with ``m = on + (K' - 1) off``: rounding ``on``
    by ``d`` moves it by ``d (m - on) / m**2`` (``m`` moves too), each ``off``
    by ``d`` moves it by ``on d / m**2``.  ``on`` may be a sum of two rounded
    constants (``1 - eps`` and ``eps / K``): a whole unit; each ``off`` half a
    unit.  Times ``K' / (K' - 1)`` for the uniform convention.  The mass
    moves by up to ``ulp(on) + (K' - 1) ulp(off) / 2``.
    """
    if dtype == "float64" or mass <= 0:
        return 0.0, 0.0
    on_unit, off_half_unit = unit_in_last_place(on, dtype), unit_in_last_place(off, dtype) / 2
    shift = (on_unit * abs(mass - on) + on * (classes - 1) * off_half_unit) / mass**2
    return shift * classes / max(classes - 1, 1), on_unit + (classes - 1) * off_half_unit


def form_of(model: TargetModel, ordinary: list[int], errors: Errors) -> str:
    """The form of the constants ``c_y`` of the ordinary labels (see :func:`~lstheory.testing.model.classify_form`)."""
    if not ordinary:
        return "cross_entropy"
    labels = [int(y) for y in ordinary[:64]]
    offsets = model.c[labels]
    kl = np.array([kl_offset(model.row(y)) for y in labels])
    kl_normalised = kl - np.array([model.m[y] * np.log(model.m[y]) if model.m[y] > 0 else 0.0 for y in labels])
    # The loss's own sums move m by up to ``arithmetic``; the fit's c then moves by that times lse(z) at the probes.
    lse_size = math.log(model.num_classes) + LOGIT_RANGE
    statistical = np.full(len(labels), errors.c) + np.array([_kl_error(model.row(y), errors) for y in labels])
    allowed = Z * statistical + errors.arithmetic * lse_size
    form = classify_form(offsets, kl, allowed)
    if form == "cross_entropy_plus_constant" and classify_form(offsets, kl_normalised, allowed) == "kl_divergence":
        return "kl_divergence"
    return form


def _kl_error(row: np.ndarray, errors: Errors) -> float:
    positive = row[row > 0]
    return float(np.sum((np.abs(np.log(positive)) + 1) * errors.off)) if positive.size else 0.0


def weighted_smoothing(targets: np.ndarray, atol: float) -> WeightedSmoothing | None:
    """Fit ``targets[y, i] ∝ w_i s_i(y)`` with ``s`` a label smoothing; ``None`` if it does not fit."""
    k = targets.shape[0]
    if k < 3 or np.any(targets <= 0):
        return None
    off = ~np.eye(k, dtype=bool)
    log_t = np.log(targets)
    lam = np.zeros(k)
    beta = np.zeros(k)
    for _ in range(50):  # log t[y, i] = lam_i + beta_y off the diagonal: alternate row and column means
        beta = np.array([np.mean(log_t[y, off[y]] - lam[off[y]]) for y in range(k)])
        lam = np.array([np.mean(log_t[off[:, i], i] - beta[off[:, i]]) for i in range(k)])
    misfit = np.max(np.abs((log_t - lam[None, :] - beta[:, None])[off]))
    if misfit > 4 * atol / np.min(targets):
        return None
    weights = np.exp(lam - lam[0])
    unweighted = targets / weights[None, :]
    unweighted /= unweighted.sum(axis=1, keepdims=True)
    diagonal, rest = np.diag(unweighted), unweighted[off]
    if np.ptp(diagonal) > 8 * atol / np.min(targets) or np.ptp(rest) > 8 * atol / np.min(targets):
        return None
    eps_off, eps_uniform = _eps_pair(k, 1.0 - float(np.mean(diagonal)), atol)
    if eps_off is None:
        return None
    return WeightedSmoothing(weights, eps_off, eps_uniform)


def convention_of(smoothing: Smoothing, intended: float | None, mass_ok: bool, errors: Errors) -> str | None:
    """The convention in which the found eps equals ``intended`` (needs a proper mass)."""
    if intended is None or smoothing.eps_off_target is None or not mass_ok:
        return None
    return matching_convention(smoothing.eps_off_target, smoothing.eps_uniform, intended, errors.eps)
