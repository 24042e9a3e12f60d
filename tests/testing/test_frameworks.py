"""The checker on JAX (optax) and Keras (torch backend) losses: called through NumPy or torch (issue 10, item 7).

Skipped where the framework is not installed (``pip install -e ".[conformance]"``).
"""

from __future__ import annotations

import os

import pytest

from lstheory.testing import assert_loss_matches_theory, infer_smoothing


def keras_on_torch():
    """Keras 3 with the torch backend (the backend is chosen when keras is first imported)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {keras.backend.backend()} backend")
    return keras


def test_optax_smoothed_labels_are_the_uniform_convention_through_numpy():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")

    def loss(logits, labels):
        targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), 0.1)
        return optax.softmax_cross_entropy(logits, targets).mean()

    report = assert_loss_matches_theory(loss, 5, 0.1, convention="uniform", ignore_index=None)
    assert report.backend == "numpy" and not report.autograd
    assert report.dtype == "float32"  # JAX computes in float32 unless x64 is enabled


def test_optax_per_sample_integer_labels_are_reduced_by_a_mean():
    optax = pytest.importorskip("optax")
    report = infer_smoothing(optax.softmax_cross_entropy_with_integer_labels, 4, eps=0.0, ignore_index=None)
    assert report.is_cross_entropy and "one value per sample" in report.reduction_detail


def test_keras_categorical_crossentropy_one_hot_and_target_first():
    keras = keras_on_torch()
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    report = assert_loss_matches_theory(
        loss, 8, 0.1, convention="uniform", targets="one_hot", argument_order="target_first", ignore_index=None
    )
    assert report.backend == "torch" and report.dtype == "float32"


@pytest.mark.parametrize("seed", [0, 1] + [pytest.param(seed, marks=pytest.mark.slow) for seed in range(2, 6)])
def test_keras_sparse_ignore_class_is_padding_for_every_seed(seed):
    """Issue 10 item 5: a ZeroDivisionError with seeds 1-5; class 0 is padding, the rest a plain cross-entropy."""
    keras = keras_on_torch()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    report = infer_smoothing(loss, 6, eps=0.0, argument_order="target_first", ignore_index=0, seed=seed)
    assert report.is_cross_entropy and report.padding_classes == (0,) and report.ignore_behaviour == "ignored"
    assert report.convention is not None and report.eps_off_target == pytest.approx(0.0, abs=report.eps_error)
