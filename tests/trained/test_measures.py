"""lstheory.trained.measures against hand computations and known answers (no scikit-learn needed)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lstheory.trained import measures  # noqa: E402


def test_reliability_diagram_and_ece_by_hand():
    # Confidences 0.9 (correct), 0.9 (wrong), 0.6 (correct), 0.6 (correct): bins of width 1/5.
    probabilities = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]], dtype=torch.float64)
    logits, labels = probabilities.log(), torch.tensor([0, 0, 0, 1])
    diagram = measures.reliability_diagram(logits, labels, bins=5)
    assert diagram["counts"] == [0, 0, 2, 0, 2]
    assert diagram["accuracy"][2] == 1.0 and diagram["accuracy"][4] == 0.5 and diagram["accuracy"][0] is None
    assert diagram["confidence"][2] == pytest.approx(0.6) and diagram["confidence"][4] == pytest.approx(0.9)
    # ECE = 2/4 |1 - 0.6| + 2/4 |0.5 - 0.9| = 0.4
    assert measures.expected_calibration_error(logits, labels, bins=5) == pytest.approx(0.4, abs=1e-15)


def test_a_confidence_of_exactly_one_lands_in_the_last_bin():
    logits, labels = torch.tensor([[50.0, -50.0]], dtype=torch.float64), torch.tensor([0])
    assert measures.reliability_diagram(logits, labels, bins=15)["counts"][-1] == 1
    assert measures.expected_calibration_error(logits, labels) == pytest.approx(0.0, abs=1e-15)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    generator = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(20000, 5, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(true_logits, dim=1), 1, generator=generator)[:, 0]
    fitted = measures.fit_temperature(3.0 * true_logits, labels)  # over-confident by a factor 3
    assert fitted == pytest.approx(3.0, rel=0.03)


def test_spread_ratio_and_gap_on_constructed_data():
    labels = torch.tensor([0, 0, 1, 1])
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [-1.0, 0.0], [-3.0, 0.0]], dtype=torch.float64)
    # class means +-2, overall mean 0: within = 4 * 1, between = 4 * 4
    assert measures.spread_ratio(features, labels) == pytest.approx(0.25)
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 4.0, 0.0]], dtype=torch.float64)
    # (3 - 1.5) and (4 - 0): mean 2.75
    assert measures.mean_logit_gap(logits, torch.tensor([0, 1])) == pytest.approx(2.75)
    assert measures.accuracy(logits, torch.tensor([0, 0])) == 0.5
    mean, spread = measures.mean_true_class_confidence(torch.zeros(3, 4, dtype=torch.float64), torch.tensor([0, 1, 2]))
    assert mean == pytest.approx(0.25) and spread == pytest.approx(0.0) and math.isfinite(spread)
