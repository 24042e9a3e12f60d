"""Values, edge values, broadcasting and errors of lstheory.closed_form.

Expected values come from an independent route: exact rational arithmetic
(``fractions.Fraction``) and mpmath, never from the function under test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import lstheory
from lstheory import (
    convert_eps,
    logit_gap,
    min_loss,
    optimal_logits,
    optimal_logits_for_target,
    smoothed_target,
)
from lstheory.accuracy import reference_logit_gap, reference_min_loss

CONVENTIONS = ("off_target", "uniform")


# --- values from an independent route ---------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("k, eps", [(2, 0.1), (5, 0.1), (10, 0.1), (1000, 0.1), (32000, 0.2), (3, 0.9)])
def test_smoothed_target_matches_exact_fractions(k, eps, convention):
    e = Fraction(eps)
    if convention == "off_target":
        exact_true, exact_other = 1 - e, e / (k - 1)
    else:
        exact_true, exact_other = 1 - e + e / k, e / k
    p_true, p_other = smoothed_target(k, eps, convention=convention)
    assert p_true == float(exact_true)  # correctly rounded
    assert p_other == float(exact_other)


@pytest.mark.parametrize(
    "k, uniform_gap, off_target_gap",
    # conventions.md's worked table (eps = 0.1), to its 4 decimals.
    [(2, 2.9444, 2.1972), (5, 3.8286, 3.5835), (10, 4.5109, 4.3944), (1000, 9.1051, 9.1040)],
)
def test_worked_table_of_conventions_md(k, uniform_gap, off_target_gap):
    assert round(float(logit_gap(k, 0.1, convention="uniform")), 4) == uniform_gap
    assert round(float(logit_gap(k, 0.1, convention="off_target")), 4) == off_target_gap


def test_pytorch_issue_148884_two_classes():
    # The user expected softmax [0.9, 0.1] (off_target) but PyTorch (uniform) gives [0.95, 0.05].
    for convention, expected in (("uniform", 0.95), ("off_target", 0.9)):
        z = optimal_logits(2, 0.1, convention=convention)
        q = np.exp(z) / np.exp(z).sum()
        assert q[0] == pytest.approx(expected, rel=1e-15)


def test_pytorch_issue_130342_minimum():
    assert round(float(min_loss(1000, 0.1, convention="uniform")), 4) == 1.0148
    assert round(float(min_loss(1000, 0.1, convention="off_target")), 4) == 1.0158


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_min_loss_is_entropy_of_full_target(convention):
    k, eps = 7, 0.3
    p_true, p_other = smoothed_target(k, eps, convention=convention)
    p = np.array([p_true] + [p_other] * (k - 1))
    assert float(min_loss(k, eps, convention=convention)) == pytest.approx(-(p @ np.log(p)), rel=1e-15)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_optimal_logits_have_gap_at_label_and_alpha_elsewhere(convention):
    z = optimal_logits(6, 0.2, label=4, alpha=-1.5, convention=convention)
    assert z.shape == (6,)
    assert np.all(np.delete(z, 4) == -1.5)
    assert z[4] == -1.5 + logit_gap(6, 0.2, convention=convention)


def test_optimal_logits_broadcast_eps_and_alpha():
    eps = np.array([[0.1], [0.2]])
    z = optimal_logits(4, eps, label=1, alpha=np.array([0.0, 1.0, 2.0]))
    assert z.shape == (2, 3, 4)
    assert z[1, 2, 1] == 2.0 + logit_gap(4, 0.2)
    assert z[1, 2, 0] == 2.0


def test_convert_eps_round_trip_and_values():
    assert float(convert_eps(10, 0.1, src="uniform", dst="off_target")) == float(Fraction(0.1) * 9 / 10)
    assert float(convert_eps(10, 0.09, src="off_target", dst="uniform")) == float(Fraction(0.09) * 10 / 9)
    eps = np.linspace(0, 1, 11)
    back = convert_eps(10, convert_eps(10, eps, src="uniform", dst="off_target"), src="off_target", dst="uniform")
    np.testing.assert_allclose(back, eps, rtol=2e-16, atol=0)
    assert convert_eps(10, 0.3, src="uniform", dst="uniform") == 0.3


@pytest.mark.parametrize("k, eps", [(2, 0.3), (10, 0.1), (1000, 0.01), (4, 0.75)])
def test_gap_in_one_convention_equals_other_at_converted_eps(k, eps):
    converted = convert_eps(k, eps, src="uniform", dst="off_target")
    assert float(logit_gap(k, eps, convention="uniform")) == pytest.approx(
        float(logit_gap(k, converted, convention="off_target")), rel=1e-14, abs=1e-15
    )


def test_optimal_logits_for_target_is_log_p_plus_alpha():
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.3, 0.6]])
    z = optimal_logits_for_target(p, alpha=np.array([0.0, 2.0]))
    np.testing.assert_array_equal(z, np.log(p) + np.array([[0.0], [2.0]]))
    unnormalised = optimal_logits_for_target(3 * p)
    np.testing.assert_allclose(np.exp(unnormalised) / np.exp(unnormalised).sum(-1, keepdims=True), p, rtol=1e-15)


# --- broadcasting and return types ----------------------------------------------------------


def test_scalar_inputs_give_plain_floats_and_arrays_broadcast():
    assert type(logit_gap(10, 0.1)) is float  # prints as 4.39..., not np.float64(4.39...)
    gaps = logit_gap(np.array([2, 10, 100]), np.array([[0.1], [0.2]]))
    assert gaps.shape == (2, 3)
    assert gaps[1, 2] == logit_gap(100, 0.2)
    assert min_loss(np.array([2, 3]), 0.1).shape == (2,)


def test_exact_zero_of_gap():
    assert logit_gap(4, 0.75) == 0.0
    assert logit_gap(2, 0.5) == 0.0
    k = 2**20
    assert logit_gap(k, (k - 1) / k) == 0.0  # (K-1)/K is exact for a power of two


# --- edge values with a mathematical answer ---------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_eps_zero_gives_infinite_gap_and_zero_loss(convention):
    assert logit_gap(10, 0.0, convention=convention) == math.inf
    assert min_loss(10, 0.0, convention=convention) == 0.0
    assert optimal_logits(3, 0.0, convention=convention)[0] == math.inf


def test_eps_one():
    assert logit_gap(10, 1.0, convention="off_target") == -math.inf
    assert logit_gap(10, 1.0, convention="uniform") == 0.0
    assert min_loss(10, 1.0, convention="off_target") == pytest.approx(math.log(9), rel=1e-16)
    assert min_loss(10, 1.0, convention="uniform") == pytest.approx(math.log(10), rel=1e-16)
    assert min_loss(2, 1.0, convention="off_target") == 0.0


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_never_nan_over_edge_grid(convention):
    k = np.array([2, 3, 10, 10**6, 2**53])[:, None]
    eps = np.array([0.0, 5e-324, 1e-305, 0.5, 1 - 2**-53, 1.0])
    for f in (logit_gap, min_loss):
        assert not np.any(np.isnan(f(k, eps, convention=convention)))
    assert not np.any(np.isnan(np.asarray(smoothed_target(k, eps, convention=convention))))


def test_naive_formula_overflow_point_is_finite_and_accurate():
    # log((K-1)(1-eps)/eps) overflows to inf in float64 for K = 10**6, eps = 1e-305.
    value = float(logit_gap(10**6, 1e-305))
    assert math.isfinite(value)
    assert value == pytest.approx(float(reference_logit_gap(10**6, 1e-305, "off_target")), rel=4e-16)
    assert float(min_loss(10**6, 1e-305)) == pytest.approx(float(reference_min_loss(10**6, 1e-305, "off_target")), rel=1e-15)


# --- bad input: every message names the argument, the value and the valid range ----------------


@pytest.mark.parametrize(
    "num_classes, error, fragments",
    [
        (1, ValueError, ["num_classes", "1", "2 <= num_classes <= 2**53"]),
        (0, ValueError, ["num_classes", "0"]),
        (-3, ValueError, ["num_classes", "-3"]),
        (2**53 + 1, ValueError, ["num_classes", str(2**53 + 1)]),
        (True, TypeError, ["num_classes", "True", "bool"]),
        (np.bool_(True), TypeError, ["num_classes", "bool"]),
        (2.0, TypeError, ["num_classes", "2.0", "float"]),
        ("10", TypeError, ["num_classes", "'10'"]),
        (None, TypeError, ["num_classes", "None"]),
        (np.array([2.0, 3.0]), TypeError, ["num_classes", "float64"]),
        (np.array([2, 1]), ValueError, ["num_classes", "1"]),
    ],
)
def test_bad_num_classes(num_classes, error, fragments):
    for function in (logit_gap, min_loss, smoothed_target):
        with pytest.raises(error) as info:
            function(num_classes, 0.1)
        for fragment in fragments:
            assert fragment in str(info.value)


@pytest.mark.parametrize(
    "eps, error, fragments",
    [
        (-0.1, ValueError, ["eps", "-0.1", "0 <= eps <= 1"]),
        (1.5, ValueError, ["eps", "1.5", "0 <= eps <= 1"]),
        (float("nan"), ValueError, ["eps", "nan", "0 <= eps <= 1"]),
        (float("inf"), ValueError, ["eps", "inf"]),
        (np.array([0.1, -1e-300]), ValueError, ["eps", "-1e-300"]),
        (np.array([0.1, np.nan]), ValueError, ["eps", "nan"]),
        (True, TypeError, ["eps", "bool"]),
        ("0.1", TypeError, ["eps", "'0.1'"]),
        (None, TypeError, ["eps", "None"]),
        (1j, TypeError, ["eps", "complex"]),
    ],
)
def test_bad_eps(eps, error, fragments):
    for function in (logit_gap, min_loss, smoothed_target):
        with pytest.raises(error) as info:
            function(10, eps)
        for fragment in fragments:
            assert fragment in str(info.value)


def test_unknown_convention_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        logit_gap(10, 0.1, convention="eps_over_k")
    message = str(info.value)
    assert "convention" in message and "'eps_over_k'" in message
    assert "'off_target'" in message and "'uniform'" in message
    with pytest.raises(TypeError, match="convention"):
        min_loss(10, 0.1, convention=None)
    with pytest.raises(ValueError, match="src"):
        convert_eps(10, 0.1, src="pytorch", dst="uniform")
    with pytest.raises(ValueError, match="dst"):
        convert_eps(10, 0.1, src="uniform", dst="fairseq")


def test_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError) as info:
        logit_gap(np.array([2, 3, 4]), np.array([0.1, 0.2]))
    assert "num_classes with shape (3,)" in str(info.value) and "eps with shape (2,)" in str(info.value)


@pytest.mark.parametrize("label, error", [(-1, ValueError), (5, ValueError), (1.0, TypeError), (True, TypeError)])
def test_bad_label(label, error):
    with pytest.raises(error) as info:
        optimal_logits(5, 0.1, label=label)
    assert "label" in str(info.value) and "num_classes=5" in str(info.value) or "0 <= label < 5" in str(info.value)


def test_bad_alpha_and_array_num_classes_in_optimal_logits():
    with pytest.raises(ValueError, match="alpha"):
        optimal_logits(5, 0.1, alpha=float("inf"))
    with pytest.raises(TypeError, match="alpha"):
        optimal_logits(5, 0.1, alpha="1")
    with pytest.raises(TypeError, match="num_classes must be a single integer"):
        optimal_logits(np.array([5, 6]), 0.1)


def test_convert_eps_without_uniform_equivalent():
    with pytest.raises(ValueError) as info:
        convert_eps(10, 0.95, src="off_target", dst="uniform")
    message = str(info.value)
    assert "eps=0.95" in message and "num_classes=10" in message and "(K-1)/K = 0.9" in message
    assert float(convert_eps(10, 0.9, src="off_target", dst="uniform")) == pytest.approx(1.0, rel=1e-16)


@pytest.mark.parametrize(
    "p, error, fragment",
    [
        ([0.5, 0.5, 0.0], ValueError, "full support"),
        ([0.5, -0.1, 0.6], ValueError, "p[1] = -0.1"),
        ([0.5, np.nan], ValueError, "finite"),
        ([1.0], ValueError, "at least 2 classes"),
        (0.5, ValueError, "at least one axis"),
        (["a", "b"], TypeError, "real array"),
        ([True, False], TypeError, "real array"),
    ],
)
def test_optimal_logits_for_target_rejects_bad_targets(p, error, fragment):
    with pytest.raises(error) as info:
        optimal_logits_for_target(p)
    assert fragment in str(info.value)


def test_public_api_names():
    for name in ("smoothed_target", "logit_gap", "optimal_logits", "min_loss", "convert_eps", "optimal_logits_for_target"):
        assert callable(getattr(lstheory, name))
        assert getattr(lstheory, name).__doc__
    assert lstheory.CONVENTIONS == ("off_target", "uniform")


def test_list_num_classes_in_optimal_logits_and_huge_integer_eps():
    with pytest.raises(TypeError, match="num_classes must be a single integer"):
        optimal_logits([3], 0.1)
    with pytest.raises(ValueError, match="an integer of 302 digits"):
        logit_gap(10, 2**1000)
    with pytest.raises(ValueError, match="got 2$"):
        logit_gap(10, 2)


def test_strict_floating_point_settings_of_the_caller_are_respected():
    # Subnormal intermediates are by design; a caller's np.seterr(all="raise") must not break the closed forms.
    with np.errstate(all="raise"):
        assert logit_gap(10, 5e-324, convention="uniform") > 700
        assert min_loss(10, 5e-324) > 0
        assert smoothed_target(10, 1e-310)[1] > 0
        assert np.array_equal(logit_gap(10, [0.0, 1.0]), [math.inf, -math.inf])
        assert min_loss(2, 1.0) == 0.0
