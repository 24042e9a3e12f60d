"""Measure the closed forms in ulps against mpmath, on deliberately hard points.

The oracle follows scipy.special's mpmath tests: each float64 input reaches
mpmath as the exact same number (through :class:`fractions.Fraction`), the
arithmetic that can be exact is exact (rationals), and the remaining
transcendental step runs at ``dps`` decimal digits (60 by default).  The
oracle is itself cross-checked by agreement at rising precision
(``tests/test_closed_form_accuracy.py``).

The naive formulas are kept here, and only here, as the baseline the docs
compare against: they are what a user would type, not what lstheory computes.

:func:`accuracy_record` measures the worst errors by region and the errors
near the gap's zero; ``lstheory accuracy --record`` writes them to
``docs/data/accuracy.json``, from which ``lstheory docs`` generates the
accuracy page and figure (so the page does not depend on the machine that
builds the docs; the tests re-measure on every run).
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

import mpmath
import numpy as np

from lstheory._validation import as_integer, as_num_classes, check_seed
from lstheory.closed_form import logit_gap, min_loss

REFERENCE_DPS = 60

HARD_NUM_CLASSES: tuple[int, ...] = (2, 3, 4, 7, 10, 1000, 32000, 10**6, 2**31, 2**53 - 1, 2**53)
"""Class counts: the smallest, small odd/even, typical, huge, and the float64 limit."""


def _mpf(value: Fraction) -> mpmath.mpf:
    return mpmath.mpf(value.numerator) / value.denominator


def _off_target_mass(num_classes: int, eps: Fraction, convention: str) -> Fraction:
    return eps if convention == "off_target" else eps * (num_classes - 1) / num_classes


@lru_cache(maxsize=200_000)
def reference_logit_gap(num_classes: int, eps: float, convention: str, dps: int = REFERENCE_DPS) -> mpmath.mpf:
    """Exact-input mpmath value of the optimal gap (``log(p_true / p_other)``)."""
    e = Fraction(eps)
    if e == 0:
        return mpmath.inf
    mass = _off_target_mass(num_classes, e, convention)
    if mass == 1:
        return -mpmath.inf
    ratio = (1 - mass) * (num_classes - 1) / mass  # p_true / p_other, exactly
    with mpmath.workdps(dps):
        # log1p of (ratio - 1) keeps full relative accuracy near the zero of the gap.
        return +mpmath.log1p(_mpf(ratio - 1))


@lru_cache(maxsize=200_000)
def reference_min_loss(num_classes: int, eps: float, convention: str, dps: int = REFERENCE_DPS) -> mpmath.mpf:
    """Exact-input mpmath value of the target's entropy."""
    e = Fraction(eps)
    mass = _off_target_mass(num_classes, e, convention)
    with mpmath.workdps(dps):
        true_term = -_mpf(1 - mass) * mpmath.log1p(-_mpf(mass)) if mass < 1 else mpmath.mpf(0)
        if mass == 0:
            return +true_term
        other_term = _mpf(mass) * mpmath.log(_mpf(Fraction(num_classes - 1) / mass))
        return true_term + other_term


def naive_logit_gap(num_classes: int, eps: float, convention: str) -> float:
    """The formula as usually typed, in float64: the baseline, not the library's answer."""
    k = np.float64(num_classes)
    e = np.float64(eps)
    with np.errstate(all="ignore"):
        if convention == "off_target":
            return float(np.log((k - 1) * (1 - e) / e))
        return float(np.log(1 + k * (1 - e) / e))


def naive_min_loss(num_classes: int, eps: float, convention: str) -> float:
    """``-p_true log p_true - (K-1) p_other log p_other`` typed directly in float64."""
    k = np.float64(num_classes)
    e = np.float64(eps)
    with np.errstate(all="ignore"):
        if convention == "off_target":
            p_true, p_other = 1 - e, e / (k - 1)
        else:
            p_true, p_other = 1 - e + e / k, e / k
        return float(-p_true * np.log(p_true) - (k - 1) * p_other * np.log(p_other))


def ulp_of(value) -> float:
    """The float64 ulp at the real number ``|value|``: ``2**(floor(log2|value|) - 52)``, at least ``2**-1074``.

    Taken from the exact value's binade (not from its rounded double, whose
    spacing is twice as large when the value rounds up to a power of two).
    """
    if value == 0:
        return 2.0**-1074
    _, exponent = mpmath.frexp(mpmath.mpf(value))  # |value| = m * 2**exponent, 0.5 <= m < 1
    return float(mpmath.ldexp(1, max(int(exponent) - 53, -1074)))


def ulp_error(computed: float, exact: mpmath.mpf) -> float:
    """``|computed - exact| / ulp(exact)``; infinities must match exactly (else ``inf``)."""
    if mpmath.isinf(exact) or math.isinf(computed) or math.isnan(computed):
        return 0.0 if (mpmath.isinf(exact) and computed == float(exact)) else math.inf
    with mpmath.workdps(REFERENCE_DPS):
        return float(abs(mpmath.mpf(computed) - exact) / ulp_of(exact))


def _neighbours(x: float, count: int) -> list[float]:
    """``x`` and the ``count`` consecutive floats on either side of it."""
    below, above = [x], [x]
    for _ in range(count):
        below.append(float(np.nextafter(below[-1], -np.inf)))
        above.append(float(np.nextafter(above[-1], np.inf)))
    return below[::-1] + above[1:]


def hard_eps(num_classes: int, seed: int = 0, n_random: int = 40) -> list[float]:
    """Values of eps where a careless evaluation breaks, for one class count.

    - the zero of the off_target gap ``(K-1)/K`` and 40 floats either side,
      plus points 1e-15, 1e-14 and 1e-12 away from it;
    - the smallest subnormal, other subnormals, the normal threshold, and
      ``1e-305`` (where ``(K-1)/eps`` overflows for ``K = 10**6``);
    - the scaling threshold used by the closed forms (``2**-900``) either side;
    - ``0.5`` either side (the zero for K = 2) and eps next to 1;
    - log-uniform random eps over ``[1e-320, 1]`` and random eps close to 1.
    """
    seed = check_seed(seed)
    k = as_num_classes(num_classes)
    if k.ndim:
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got an array of shape {k.shape}")
    num_classes = int(k)
    n_random = as_integer(n_random, "n_random", "an integer >= 0")
    if n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0; got {n_random}")
    zero = float(Fraction(num_classes - 1, num_classes))
    points = [
        5e-324, 1e-323, 1e-320, 2.0**-1022, np.nextafter(2.0**-1022, 0.0), 1e-308, 1e-305, 1e-300,
        2.0**-900, np.nextafter(2.0**-900, 0.0), np.nextafter(2.0**-900, 1.0), 1e-200, 1e-100,
        1e-20, 1e-8, 1e-6, 0.01, 0.1, 0.2, 0.5, np.nextafter(0.5, 0.0), np.nextafter(0.5, 1.0),
        1 - 2.0**-52, 1 - 2.0**-53, 1 - 1e-15, 1.0,
    ]
    points += _neighbours(zero, 40)
    points += [zero - d for d in (1e-15, 1e-14, 1e-12)] + [zero + d for d in (1e-15, 1e-14, 1e-12)]
    rng = np.random.default_rng(seed + num_classes % 1000)
    # 10**u through mpmath, not NumPy's power: its last bit depends on the CPU's SIMD dispatch,
    # and the hard points (and so the recorded accuracy data) must be the same on every machine.
    points += [_exact_power_of_ten(u) for u in rng.uniform(-320, 0, n_random)]
    points += [1 - _exact_power_of_ten(u) for u in rng.uniform(-16, -1, n_random // 2)]
    return sorted({float(p) for p in points if 0.0 < p <= 1.0})


def _exact_power_of_ten(exponent: float) -> float:
    """``10**exponent`` correctly rounded to float64 (mpmath at 40 digits), the same on every platform."""
    with mpmath.workdps(40):
        return float(mpmath.power(10, mpmath.mpf(exponent)))


def hard_points(num_classes: Iterable[int] = HARD_NUM_CLASSES, seed: int = 0) -> Iterator[tuple[int, float]]:
    """All ``(K, eps)`` pairs of :func:`hard_eps` over the given class counts."""
    for k in num_classes:
        for e in hard_eps(k, seed=seed):
            yield k, e


@dataclass(frozen=True)
class WorstCase:
    """The worst ulp error found, and where."""

    quantity: str
    convention: str
    max_ulp: float
    num_classes: int
    eps: float
    points: int

    def __str__(self) -> str:
        return (
            f"{self.quantity} ({self.convention}): worst {self.max_ulp:.3g} ulp at "
            f"K={self.num_classes}, eps={self.eps!r} over {self.points} points"
        )


QUANTITIES: dict[str, tuple[Callable, Callable, Callable]] = {
    # name: (lstheory function, naive float64 baseline, mpmath reference)
    "logit_gap": (logit_gap, naive_logit_gap, reference_logit_gap),
    "min_loss": (min_loss, naive_min_loss, reference_min_loss),
}


def worst_ulp_error(
    quantity: str,
    convention: str,
    points: Iterable[tuple[int, float]] | None = None,
    *,
    naive: bool = False,
) -> WorstCase:
    """Worst ulp error of ``quantity`` (or of its naive formula) over ``points``."""
    accurate, baseline, reference = QUANTITIES[quantity]
    pairs = list(hard_points() if points is None else points)
    worst = (-1.0, 0, 0.0)
    for k, e in pairs:
        computed = baseline(k, e, convention) if naive else float(accurate(k, e, convention=convention))
        error = ulp_error(computed, reference(k, e, convention))
        if error > worst[0]:
            worst = (error, k, e)
    name = f"naive {quantity}" if naive else quantity
    return WorstCase(name, convention, float(worst[0]), int(worst[1]), float(worst[2]), len(pairs))


ACCURACY_REGIONS: dict[str, Callable[[int, float], bool]] = {
    "near the zero of the gap (eps within 1e-15 of (K-1)/K)": lambda k, e: abs(e - (k - 1) / k) <= 1e-15,
    "tiny and subnormal eps (eps < 1e-300)": lambda k, e: e < 1e-300,
    "eps next to 1 (1 - eps < 1e-3)": lambda k, e: 1 - e < 1e-3 and e < 1,
    "all hard points": lambda k, e: True,
}
"""The regions of the accuracy page: name -> which hard points ``(K, eps)`` belong to it."""

NEAR_ZERO_CLASSES = 10
NEAR_ZERO_STEPS = 150
"""The figure's points: eps = 0.9 + s * ulp(0.9) for |s| <= 150, K = 10 (0.9 is the gap's zero)."""


def points_fingerprint(points: Iterable[tuple[int, float]]) -> str:
    """SHA-256 of the points' exact values: tells whether recorded data was measured on these points."""
    text = "\n".join(f"{k} {float(e).hex()}" for k, e in points)
    return hashlib.sha256(text.encode()).hexdigest()


def simd_description() -> dict[str, Any]:
    """NumPy's version and the SIMD targets its dispatch uses on this machine (they change ``np.log``'s last bit)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return {
        "numpy": np.__version__,
        "dispatch": [target for target in __cpu_dispatch__ if __cpu_features__.get(target)],
        "NPY_DISABLE_CPU_FEATURES": os.environ.get("NPY_DISABLE_CPU_FEATURES", ""),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_regions(progress: Callable[[Iterable], Iterable] = iter) -> list[dict[str, Any]]:
    """Worst ulp error of each closed form and of its naive formula, per region and convention.

    ``progress`` wraps the iteration over (region, convention) pairs (for a progress bar).
    """
    points = list(hard_points())
    pairs = [(region, convention) for region in ACCURACY_REGIONS for convention in ("off_target", "uniform")]
    rows = []
    for region, convention in progress(pairs):
        chosen = [(k, e) for k, e in points if ACCURACY_REGIONS[region](k, e)]
        row: dict[str, Any] = {"region": region, "convention": convention, "points": len(chosen)}
        for quantity in QUANTITIES:
            for naive in (False, True):
                worst = worst_ulp_error(quantity, convention, chosen, naive=naive)
                row[f"naive_{quantity}" if naive else quantity] = worst.max_ulp
        rows.append(row)
    return rows


def near_zero_errors(num_classes: int = NEAR_ZERO_CLASSES, steps: int = NEAR_ZERO_STEPS) -> dict[str, Any]:
    """Ulp errors of ``logit_gap`` and of the naive formula at ``eps = zero + s * ulp(zero)``, ``|s| <= steps``."""
    zero = float(Fraction(num_classes - 1, num_classes))
    offsets = list(range(-steps, steps + 1))
    eps = [zero + s * float(np.spacing(zero)) for s in offsets]
    exact = [reference_logit_gap(num_classes, e, "off_target") for e in eps]
    return {
        "num_classes": num_classes,
        "zero": zero,
        "offsets": offsets,
        "accurate": [ulp_error(float(logit_gap(num_classes, e)), x) for e, x in zip(eps, exact)],
        "naive": [ulp_error(naive_logit_gap(num_classes, e, "off_target"), x) for e, x in zip(eps, exact)],
    }


def accuracy_record(progress: Callable[[Iterable], Iterable] = iter) -> dict[str, Any]:
    """Everything the accuracy page shows, measured here: what ``lstheory accuracy --record`` writes."""
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": _cpu_model(), "python": platform.python_version(), **simd_description()},
        "reference_dps": REFERENCE_DPS,
        "points_sha256": points_fingerprint(hard_points()),
        "regions": measure_regions(progress),
        "near_zero": near_zero_errors(),
    }
