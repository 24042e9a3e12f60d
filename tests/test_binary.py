"""Binary (sigmoid) smoothing: accuracy of binary_optimal_logit and the population minimiser."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import lstheory
from lstheory.accuracy import ulp_error


def _reference(eps: float) -> mpmath.mpf:
    # An independent oracle: log((2 - eps)/eps) from the exact rational, at 60 digits.
    e = Fraction(eps)
    ratio = (2 - e) / e
    with mpmath.workdps(60):
        return mpmath.log1p(mpmath.mpf((ratio - 1).numerator) / (ratio - 1).denominator)


def _hard_eps():
    rng = np.random.default_rng(7)
    points = [5e-324, 1e-320, 2.0**-1022, 1e-305, 2.0**-900, np.nextafter(2.0**-900, 0), 1e-100, 1e-8, 0.1, 0.5,
              2 / 3, 1 - 2**-53, 1 - 2**-52, 1.0]
    points += list(10 ** rng.uniform(-323, 0, 300)) + list(1 - 10 ** rng.uniform(-16, -1, 100))
    return [float(p) for p in points if 0 < p <= 1]


def test_binary_optimal_logit_within_2_ulp(report_accuracy):
    worst = max((ulp_error(float(lstheory.binary_optimal_logit(e)), _reference(e)), e) for e in _hard_eps())
    report_accuracy(f"binary_optimal_logit: worst {worst[0]:.3g} ulp at eps={worst[1]!r}")
    assert worst[0] <= 2.0


def test_binary_edges_and_equivalence():
    assert lstheory.binary_optimal_logit(0.0) == math.inf
    assert lstheory.binary_optimal_logit(1.0) == 0.0
    eps = np.array([1e-6, 0.1, 0.7])
    np.testing.assert_array_equal(lstheory.binary_optimal_logit(eps), lstheory.logit_gap(2, eps, convention="uniform"))
    with pytest.raises(ValueError, match="eps"):
        lstheory.binary_optimal_logit(1.5)


def test_population_minimiser_round_trip():
    eta = np.linspace(0, 1, 11)
    smoothed = lstheory.binary_smoothed_probability(eta, 0.2)
    assert smoothed.min() == pytest.approx(0.1) and smoothed.max() == pytest.approx(0.9)
    np.testing.assert_allclose(lstheory.binary_unsmoothed_probability(smoothed, 0.2), eta, atol=1e-15)
    with pytest.raises(ValueError, match=r"p must lie in \[eps/2, 1 - eps/2\]"):
        lstheory.binary_unsmoothed_probability(0.01, 0.1)
    with pytest.raises(ValueError, match="eps = 1.0"):
        lstheory.binary_unsmoothed_probability(0.5, 1.0)
    with pytest.raises(ValueError, match="eta"):
        lstheory.binary_smoothed_probability(1.2, 0.1)
