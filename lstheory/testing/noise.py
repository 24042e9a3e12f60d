r"""Stage "noise": how precisely the loss computes, measured, not assumed.

Rounding is erratic on small scales while the loss itself (and any
systematic deviation of it from a cross-entropy) is smooth: along a very
short line of logits ``z + s d`` (``s = 0..23``), the loss minus its best
quartic fit in ``s`` is rounding noise.  Its RMS (corrected for the five
fitted coefficients) is :attr:`Noise.value_sigma`, the standard deviation of
one value's rounding error; the same for each gradient entry, relative to
the entry's size, is :attr:`Noise.gradient_sigma`.

A loss that rounds its inputs to half precision barely moves along a line
of steps ``2**-20``: the steps grow (``2**-15``, ``2**-10``, ``2**-6``, all
exact on the probe grid) until its values do.

``level`` names the precision: the coarsest of the dtypes the loss is seen
to use (its input and output dtypes, results all exact in a half or single
precision), or coarser when the measured noise is more than that dtype's
rounding explains (``NOISE_PER_UNIT`` units of its machine epsilon, relative
to the size of the loss): then the values are "noisy".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstheory.testing.adapters import PRECISION_LEVELS, LossAdapter, LossCallError
from lstheory.testing.probes import random_logits, softmax

__all__ = ["Noise", "measure_noise", "NOISE_PER_UNIT"]

_POINTS = 24
_DEGREE = 4
_STEP_SCALES = (2.0**-20, 2.0**-15, 2.0**-10, 2.0**-6)
NOISE_PER_UNIT = 8.0
"""Rounding noise of a loss computed in a dtype of machine epsilon ``u`` stays below this many ``u``
relative to the loss's size (measured for K-term softmax sums up to K = 2**17; see the tests)."""


@dataclass(frozen=True)
class Noise:
    """Measured rounding noise of the loss.

    Attributes
    ----------
    value_sigma : float
        Standard deviation of the rounding error of one value (absolute).
    value_scale : float
        Typical size of the loss at the probes, ``max(|L|, 1)``.
    gradient_sigma : float
        Standard deviation of the rounding error of a gradient entry, relative
        to ``|g_i| + softmax(z)_i`` (0 without autograd).
    level : float
        Machine epsilon of the precision the loss computes in.
    dtype : str
        The dtype it shows (``"float64"``, ``"float32"``, ``"bfloat16"``, ``"float16"``).
    noisy : bool
        The noise exceeds what ``dtype`` explains (then ``level`` is coarser).
    step : float
        The line step per unit at which the noise was seen.
    """

    value_sigma: float
    value_scale: float
    gradient_sigma: float
    level: float
    dtype: str
    noisy: bool
    step: float

    @property
    def relative(self) -> float:
        """``value_sigma / value_scale``."""
        return self.value_sigma / self.value_scale


def _detrended_rms(values: np.ndarray) -> np.ndarray:
    """RMS of ``values`` (axis 0 along the line) about their best quartic fit, per column."""
    steps = np.linspace(-1.0, 1.0, len(values))
    basis = np.vander(steps, _DEGREE + 1)
    residual = values - basis @ (np.linalg.pinv(basis) @ values)
    return np.sqrt(np.sum(residual**2, axis=0) / (len(values) - _DEGREE - 1))


def _line(adapter: LossAdapter, start: np.ndarray, direction: np.ndarray, label: int, grad: bool):
    points = start[None, :] + np.arange(_POINTS)[:, None] * direction[None, :]
    results = [adapter.evaluate(p[None, :], np.array([label]), grad=grad) for p in points]
    values = np.array([r.value for r in results])
    gradients = np.stack([r.gradient[0] for r in results]) if grad and results[0].gradient is not None else None
    return points, values, gradients


def _fits_bits(value: float, bits: int, name: str) -> bool:
    """Whether ``value`` is exact in a binary format with ``bits`` significant bits (normal range)."""
    if value == 0 or not math.isfinite(value):
        return True
    mantissa, exponent = math.frexp(value)
    if name == "float16" and not -13 <= exponent <= 16:
        return False
    return float(mantissa * 2.0**bits).is_integer()


def _shown_dtype(adapter: LossAdapter, returned: np.ndarray) -> str:
    """The coarsest dtype the loss shows: input, output, or a coarser dtype (half, float32) all its results fit."""
    base = adapter.precision
    if len(np.unique(returned)) <= 2:  # (nearly) constant values show no precision
        return min((n for n, u in PRECISION_LEVELS.items() if u == base), key=len)
    for name, bits in (("bfloat16", 8), ("float16", 11), ("float32", 24)):
        if all(_fits_bits(float(v), bits, name) for v in returned):
            base = max(base, PRECISION_LEVELS[name])
            break
    return min((n for n, u in PRECISION_LEVELS.items() if u == base), key=len)


def measure_noise(adapter: LossAdapter, labels: list[int], rng: np.random.Generator, lines: int = 2) -> Noise:
    """Measure the loss's rounding noise along ``lines`` short lines (labels taken from ``labels``)."""
    k = adapter.num_classes
    value_sigma = grad_sigma = 0.0
    scale = 1.0
    returned: list[float] = []
    used_step = _STEP_SCALES[0]
    for line in range(lines):
        label = labels[line % len(labels)]
        start = random_logits(rng, (k,))
        unit = rng.integers(-2, 3, size=k).astype(np.float64)
        unit[unit == 0] = 1.0
        for step in _STEP_SCALES:
            points, values, gradients = _line(adapter, start, unit * step, label, adapter.autograd)
            if len(np.unique(values)) >= _POINTS // 2:
                break
        used_step = max(used_step, step)
        returned.extend(values)
        scale = max(scale, float(np.max(np.abs(values))))
        value_sigma = max(value_sigma, float(_detrended_rms(values[:, None])[0]))
        if gradients is not None:
            size = np.abs(gradients) + softmax(points)
            grad_sigma = max(grad_sigma, float(np.sqrt(np.mean((_detrended_rms(gradients) / size.mean(axis=0)) ** 2))))
    dtype = _shown_dtype(adapter, np.array(returned))
    level = PRECISION_LEVELS[dtype]
    relative = value_sigma / scale
    noisy = relative > NOISE_PER_UNIT * level
    if noisy:
        coarser = [u for u in sorted(PRECISION_LEVELS.values()) if relative <= NOISE_PER_UNIT * u]
        level = coarser[0] if coarser else relative / NOISE_PER_UNIT
    return Noise(value_sigma, scale, grad_sigma, level, dtype, noisy, used_step)


def noise_labels(k: int, exclude: set[int], rng: np.random.Generator, count: int = 4) -> list[int]:
    """A few random labels (not known padding)."""
    candidates = [int(y) for y in rng.choice(k, size=min(k, 2 * count + len(exclude)), replace=False)]
    return [y for y in candidates if y not in exclude][: 2 * count] or [0]


def safe_measure_noise(
    adapter: LossAdapter, exclude: set[int], rng: np.random.Generator, labels: list[int] | None = None
) -> tuple[Noise | None, list[int] | str]:
    """:func:`measure_noise` on labels whose loss is finite; also returns those labels (or the error)."""
    k = adapter.num_classes
    normal: list[int] = []
    error = "no label tried"
    for label in labels or noise_labels(k, exclude, rng):
        try:
            adapter.evaluate(random_logits(rng, (1, k)), np.array([label]))
        except LossCallError as failure:
            error = str(failure)
            continue
        normal.append(label)
    if not normal:
        return None, error
    try:
        return measure_noise(adapter, normal[:2], rng), normal
    except LossCallError as failure:
        return None, str(failure)
