"""SciPy confirmation: the numeric minimiser agrees with the closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from lstheory import logit_gap, min_loss
from lstheory.numeric import minimize_cross_entropy, minimize_smoothed, sweep

NUM_CLASSES = (2, 3, 7, 10, 100, 1000, 10**4)
EPS = (1e-6, 1e-4, 0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-6)


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("k", NUM_CLASSES)
def test_gap_agrees_with_closed_form_to_1e9(k, convention):
    for index, eps in enumerate(EPS):
        result = minimize_smoothed(k, eps, convention=convention, seed=index)
        assert result.converged, result.message
        assert abs(result.gap - logit_gap(k, eps, convention=convention)) <= 1e-9, (k, eps)
        assert result.gap_spread <= 1e-9
        assert result.loss == pytest.approx(float(min_loss(k, eps, convention=convention)), rel=1e-12)
        assert result.logits.shape == (k,) and result.iterations > 0


@pytest.mark.slow
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_dense_sweep(convention):
    rng = np.random.default_rng(1)
    pairs = [(int(k), float(e)) for k, e in zip(rng.integers(2, 10**4, 200), 10 ** rng.uniform(-6, np.log10(1 - 1e-6), 200))]
    for (k, e), result in zip(pairs, sweep(pairs, convention=convention, progress=False)):
        assert abs(result.gap - logit_gap(k, e, convention=convention)) <= 1e-9


def test_label_and_start_do_not_matter():
    a = minimize_smoothed(12, 0.2, label=5, seed=1)
    b = minimize_smoothed(12, 0.2, label=5, seed=2, start_scale=10.0)
    assert a.gap == pytest.approx(b.gap, abs=1e-12)
    assert int(np.argmax(a.logits)) == 5


def test_general_target_minimiser_is_log_p_plus_constant():
    p = np.random.default_rng(0).dirichlet(np.ones(30))
    result = minimize_cross_entropy(p, seed=3)
    shift = result.logits - np.log(p)
    assert np.ptp(shift) < 1e-10
    with pytest.raises(ValueError, match="gap needs a label"):
        result.gap


def test_zero_mass_needs_polish_off():
    with pytest.raises(ValueError, match="polish=False"):
        minimize_cross_entropy([1.0, 0.0, 0.0])
    result = minimize_cross_entropy([1.0, 0.0, 0.0], label=0, polish=False, tol=1e-8)
    assert result.gap > 15  # ran off towards infinity


def test_sweep_shows_a_progress_bar(capsys):
    results = sweep([(2, 0.1), (3, 0.2)], progress=True, description="demo sweep")
    assert len(results) == 2
    assert "demo sweep" in capsys.readouterr().err
