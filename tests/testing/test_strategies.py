"""lstheory.strategies: what they draw, and property tests of losses built on them (issue 4, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lstheory import CONVENTIONS, convert_eps, min_loss, optimal_logits
from lstheory import strategies as lst

PROPERTY = settings(max_examples=25, deadline=None, database=None)


@PROPERTY
@given(lst.smoothing_setups(min_classes=3, max_classes=50))
def test_setups_are_in_range_with_a_finite_optimum(setup):
    assert isinstance(setup, lst.SmoothingSetup)
    k, eps, convention = setup  # unpacks like a tuple
    assert 3 <= k <= 50 and 0 < eps < 1 and convention in CONVENTIONS


@PROPERTY
@given(lst.smoothing_setups(conventions=("uniform",), min_eps=0.05, max_eps=0.2, finite_optimum=False))
def test_setups_respect_restrictions(setup):
    assert setup.convention == "uniform" and 0.05 <= setup.eps <= 0.2


@PROPERTY
@given(lst.logits_and_labels(lst.num_classes(2, 9), ignore_index=-100))
def test_batches_have_matching_shapes_and_padding_never_fills_them(batch):
    z, y = batch
    n, k = z.shape
    assert z.dtype == np.float64 and y.dtype == np.int64 and y.shape == (n,)
    assert 1 <= n <= 8 and 2 <= k <= 9
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) <= 30)
    assert np.all((y == -100) | ((0 <= y) & (y < k))) and np.any(y != -100)


@PROPERTY
@given(lst.logits(4, 3, max_abs=2.0, dtype=np.float32))
def test_float32_logits(z):
    assert z.shape == (3, 4) and z.dtype == np.float32 and np.all(np.abs(z) <= 2)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: lst.num_classes(1, 5), "need 2 <= min_value <= max_value"),
        (lambda: lst.eps_values(0.5, 0.2), "need 0.0 <= min_value <= max_value <= 1.0"),
        (lambda: lst.conventions(("eps/K",)), "allowed must be one of"),
        (lambda: lst.logits(3, 2, max_abs=0.0), "max_abs must be a positive number"),
        (lambda: lst.logits(3, 2, dtype=np.float16), "dtype must be np.float64 or np.float32"),
        # Padding needs a sample that is not padding, and a padding label that is no class.
        (lambda: lst.labels(5, 0, ignore_index=-100), "need batch_size >= 1"),
        (lambda: lst.logits_and_labels(5, 0, ignore_index=-100), "needs batch_size >= 1"),
        (lambda: lst.labels(5, 3, ignore_index=2), "ignore_index must lie outside the class indices [0, 5)"),
        (lambda: lst.logits_and_labels(5, 3, ignore_index=4), "ignore_index must lie outside the class indices"),
        (lambda: lst.labels(5, 3, ignore_index="pad"), "ignore_index must be an integer label outside [0, K)"),
        (lambda: lst.labels(5, -1), "batch_size must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_named(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


@PROPERTY
@given(lst.labels(5, 0), lst.logits_and_labels(4, st.integers(0, 3), ignore_index=-100))
def test_empty_batches_without_padding_and_drawn_sizes_with_padding(empty, batch):
    assert empty.shape == (0,)
    z, y = batch  # a drawn batch size 0 is skipped under padding, not Unsatisfiable
    assert len(y) >= 1 and np.any(y != -100)


# -- property tests of a loss, as a user would write them ---------------------------


def builtin(logits: np.ndarray, labels: np.ndarray, eps: float) -> torch.Tensor:
    return F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), label_smoothing=eps)


@PROPERTY
@given(lst.smoothing_cases(max_classes=20, conventions=("uniform",)))
def test_builtin_never_goes_below_min_loss(case):
    """Gibbs: cross-entropy against the smoothed target >= its entropy, for any logits."""
    setup, z, y = case
    value = builtin(z, y, setup.eps).item()
    assert value >= float(min_loss(setup.num_classes, setup.eps, convention="uniform")) * (1 - 1e-12)


@PROPERTY
@given(lst.smoothing_setups(max_classes=20), st.data())
def test_builtin_attains_min_loss_at_optimal_logits_in_either_convention(setup, data):
    """PyTorch's label_smoothing is the uniform eps; convert from the drawn convention first."""
    k, eps, convention = setup
    if convention == "off_target" and eps > (k - 1) / k:
        return  # less than 1/K on the label: no uniform equivalent
    eps_uniform = float(convert_eps(k, eps, src=convention, dst="uniform"))
    label = data.draw(st.integers(0, k - 1))
    alpha = data.draw(st.floats(-5, 5))
    z = optimal_logits(k, eps, label=label, alpha=alpha, convention=convention)[None, :]
    value = builtin(z, np.array([label]), eps_uniform).item()
    expected = float(min_loss(k, eps, convention=convention))
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12 * (1 + np.abs(z).max()))
