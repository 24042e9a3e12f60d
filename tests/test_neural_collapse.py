"""lstheory.neural_collapse_optimum: validation, the threshold, mpmath accuracy, and the full model minimised by SciPy."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import lstheory
from lstheory import neural_collapse_optimum
from lstheory.numeric import minimize_unconstrained_features

DECAYS = ((1e-3, 1e-3), (5e-3, 1e-4), (1e-4, 2e-2))
"""(lambda_W, lambda_H): balanced, classifier-heavy, feature-heavy."""


def _optimum(k, eps, n, decay_w, decay_h, convention="off_target"):
    return neural_collapse_optimum(k, eps, samples_per_class=n, classifier_decay=decay_w, feature_decay=decay_h,
                                   convention=convention)


def reference(k: int, eps: float, n: int, decay_w: float, decay_h: float, convention: str, dps: int = 50):
    """mpmath at ``dps`` digits from the exact inputs: ``(collapsed, confidence, gap)``."""
    with mpmath.workdps(dps):
        e = Fraction(eps)
        mass = e if convention == "off_target" else e * (k - 1) / k
        a = 1 - mass
        s = mpmath.sqrt(mpmath.mpf(n) * mpmath.mpf(decay_w) * mpmath.mpf(decay_h))
        margin = (mpmath.mpf(a.numerator) / a.denominator - mpmath.mpf(1) / k) - (k - 1) * s
        if margin <= 0:
            return False, mpmath.mpf(1) / k, mpmath.mpf(0)
        q = mpmath.mpf(a.numerator) / a.denominator - (k - 1) * s
        one_minus_q = mpmath.mpf(mass.numerator) / mass.denominator + (k - 1) * s  # no cancellation
        return True, q, mpmath.log((k - 1) * q / one_minus_q)


def test_docstring_example_by_hand():
    # a = 0.9, s = sqrt(100 * 1e-3 * 1e-3) = 0.01: q = 0.9 - 9 * 0.01 = 0.81; gap = log(9 * 0.81 / 0.19)
    result = _optimum(10, 0.1, 100, 1e-3, 1e-3)
    assert result.collapsed and math.isclose(result.confidence, 0.81, abs_tol=1e-15)
    assert math.isclose(result.logit_gap, math.log(9 * 0.81 / 0.19), rel_tol=1e-14)
    assert math.isclose(result.norm_ratio, 10.0, rel_tol=1e-15)  # sqrt(n lambda_H / lambda_W)
    t = result.logit_gap * 9 / 10
    assert math.isclose(result.classifier_norm * result.feature_norm, t, rel_tol=1e-14)
    assert lstheory.neural_collapse_optimum is neural_collapse_optimum


def test_result_is_frozen_and_echoes_its_inputs():
    result = _optimum(5, 0.2, 3, 1e-3, 2e-3, "uniform")
    assert (result.num_classes, result.eps, result.convention, result.samples_per_class) == (5, 0.2, "uniform", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.confidence = 0.5


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_threshold(convention):
    k, eps, n = 10, 0.1, 100
    a = float(lstheory.smoothed_target(k, eps, convention=convention)[0])
    threshold = (a - 1 / k) / ((k - 1) * math.sqrt(n))  # lambda_W = lambda_H = lambda at the threshold
    below = _optimum(k, eps, n, threshold * (1 - 1e-9), threshold * (1 - 1e-9), convention)
    past = _optimum(k, eps, n, threshold * (1 + 1e-9), threshold * (1 + 1e-9), convention)
    assert below.collapsed and 0 < below.logit_gap < 1e-7 and below.confidence > 1 / k
    assert not past.collapsed
    assert (past.confidence, past.logit_gap, past.classifier_norm, past.feature_norm) == (1 / k, 0.0, 0.0, 0.0)
    assert past.objective == math.log(k) and past.norm_ratio == below.norm_ratio
    # Smoothing of eps >= (K-1)/K (off_target) leaves nothing to collapse for any decay.
    assert not _optimum(k, 0.95, n, 1e-12, 1e-12).collapsed


def test_without_smoothing_the_decays_still_bound_the_gap():
    result = _optimum(10, 0.0, 100, 1e-4, 1e-4)
    assert result.collapsed and result.confidence == pytest.approx(1 - 9 * 10 * 1e-4, abs=1e-15)
    assert math.isfinite(result.logit_gap) and result.logit_gap > 0


def _hard_points():
    points = []
    for k in (2, 3, 10, 1000, 2**40):
        for convention in ("off_target", "uniform"):
            for eps in (0.0, 1e-12, 0.1, 0.5):
                a = float(lstheory.smoothed_target(k, eps, convention=convention)[0])
                if a <= 1 / k:
                    continue
                threshold = (a - 1 / k) / ((k - 1) * math.sqrt(7))
                for factor in (1e-300, 1e-8, 0.5, 1 - 1e-6, 1 - 1e-12):
                    points.append((k, eps, 7, threshold * factor, threshold * factor, convention))
                points.append((k, eps, 7, threshold * 1e-150, threshold / 1e-150 * 1e-300, convention))
    return points


def test_accuracy_against_mpmath_at_50_digits(report_accuracy):
    worst_confidence, worst_gap_over_k, worst_gap_relative_far = 0.0, 0.0, 0.0
    for k, eps, n, decay_w, decay_h, convention in _hard_points():
        result = _optimum(k, eps, n, decay_w, decay_h, convention)
        collapsed, q, gap = reference(k, eps, n, decay_w, decay_h, convention)
        assert result.collapsed == collapsed, (k, eps, decay_w, convention)
        worst_confidence = max(worst_confidence, float(abs(result.confidence - q)))
        if collapsed and q - mpmath.mpf(1) / k > 0.01:  # well away from the threshold
            worst_gap_relative_far = max(worst_gap_relative_far, float(abs(result.logit_gap / gap - 1)))
        else:  # near it the gap is about K (q - 1/K): an absolute error of the confidence, times K
            worst_gap_over_k = max(worst_gap_over_k, float(abs(result.logit_gap - gap)) / k)
    report_accuracy(f"neural_collapse_optimum: confidence {worst_confidence:.2g} absolute; gap {worst_gap_relative_far:.2g} "
                    f"relative where q - 1/K > 0.01, {worst_gap_over_k:.2g} K absolute nearer the threshold")
    assert worst_confidence <= 1e-15
    assert worst_gap_over_k <= 1e-15
    assert worst_gap_relative_far <= 1e-14


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("k", range(3, 11))
def test_agrees_with_scipy_minimisation_of_the_full_model(k, convention):
    """Issue 14, acceptance 2: to 1e-6 in confidence, K = 3..10, several decays, both conventions."""
    for index, (decay_w, decay_h) in enumerate(DECAYS):
        theory = _optimum(k, 0.1, 3, decay_w, decay_h, convention)
        found = minimize_unconstrained_features(k, 0.1, samples_per_class=3, classifier_decay=decay_w,
                                                feature_decay=decay_h, convention=convention, seed=k + index)
        assert theory.collapsed and found.converged
        assert abs(found.confidence - theory.confidence) <= 1e-6
        assert abs(float(np.ptp(found.confidences))) <= 1e-6  # every sample at the same confidence: collapsed
        assert found.objective >= theory.objective - 1e-12  # no lower minimum than the closed form's


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_past_the_threshold_scipy_finds_zero(convention):
    for k in (3, 10):
        theory = _optimum(k, 0.3, 3, 0.3, 0.3, convention)
        found = minimize_unconstrained_features(k, 0.3, samples_per_class=3, classifier_decay=0.3, feature_decay=0.3,
                                                convention=convention, seed=1, start_scale=3.0)
        assert not theory.collapsed
        assert abs(found.confidence - 1 / k) <= 1e-6
        assert max(np.abs(found.classifier).max(), np.abs(found.features).max()) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("k", range(3, 11))
def test_scipy_from_many_random_starts(k):
    for convention in ("off_target", "uniform"):
        for eps in (0.0, 0.05, 0.3):
            for decay_w, decay_h in DECAYS:
                theory = _optimum(k, eps, 4, decay_w, decay_h, convention)
                for seed in range(4):
                    found = minimize_unconstrained_features(k, eps, samples_per_class=4, classifier_decay=decay_w,
                                                            feature_decay=decay_h, convention=convention, seed=seed,
                                                            start_scale=1.0 + seed, feature_dim=k + seed % 2)
                    assert abs(found.confidence - theory.confidence) <= 1e-6


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(num_classes=1), ValueError, "num_classes"),
        (dict(num_classes=2.5), TypeError, "num_classes"),
        (dict(num_classes=[3, 4]), TypeError, "num_classes must be a single number"),
        (dict(eps=1.5), ValueError, "eps"),
        (dict(eps=float("nan")), ValueError, "eps"),
        (dict(eps=[0.1]), TypeError, "eps must be a single number"),
        (dict(samples_per_class=0), ValueError, "samples_per_class must be an integer >= 1; got 0"),
        (dict(samples_per_class=2.0), TypeError, "samples_per_class"),
        (dict(samples_per_class=True), TypeError, "samples_per_class"),
        (dict(classifier_decay=0.0), ValueError, "classifier_decay must be a single finite real number > 0; got 0.0"),
        (dict(classifier_decay=-1e-3), ValueError, "classifier_decay"),
        (dict(feature_decay=float("inf")), ValueError, "feature_decay"),
        (dict(feature_decay="0.1"), TypeError, "feature_decay"),
        (dict(feature_decay=np.array([1e-3, 2e-3])), TypeError, "feature_decay"),
        (dict(convention="pytorch"), ValueError, "convention"),
    ],
)
def test_bad_arguments_are_named(arguments, error, message):
    call = dict(num_classes=10, eps=0.1, samples_per_class=5, classifier_decay=1e-3, feature_decay=1e-3)
    call.update(arguments)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        neural_collapse_optimum(call.pop("num_classes"), call.pop("eps"), **call)
