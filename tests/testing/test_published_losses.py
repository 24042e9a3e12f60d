"""Published label-smoothing losses, rewritten from their formulas, are each inferred right (issue 4, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstheory import convert_eps, logit_gap, min_loss
from lstheory.testing import infer_smoothing

from published_losses import PUBLISHED, torch_builtin

CASES = [(name, k, eps) for name in PUBLISHED for k, eps in ((2, 0.1), (10, 0.1), (10, 0.5))]


@pytest.mark.parametrize("name, num_classes, eps", CASES)
def test_published_loss_passes_in_its_own_convention(lstheory_check, name, num_classes, eps):
    factory, convention = PUBLISHED[name]
    report = lstheory_check(factory(eps), num_classes, eps, convention=convention)
    assert report.convention == convention
    assert report.is_cross_entropy and report.reduction == "mean"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_loss_is_inferred_right(name):
    factory, convention = PUBLISHED[name]
    k, eps = 10, 0.1
    report = infer_smoothing(factory(eps), k, eps=eps)
    found = {"off_target": report.eps_off_target, "uniform": report.eps_uniform}
    assert abs(found[convention] - eps) < 1e-5
    other = "uniform" if convention == "off_target" else "off_target"
    assert found[other] == pytest.approx(float(convert_eps(k, eps, src=convention, dst=other)), abs=1e-5)
    assert report.logit_gap == pytest.approx(float(logit_gap(k, eps, convention=convention)), rel=1e-5)
    np.testing.assert_allclose(report.mass, 1.0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_loss_fails_in_the_other_convention_with_the_conversion(lstheory_check, name):
    factory, convention = PUBLISHED[name]
    other = "uniform" if convention == "off_target" else "off_target"
    k, eps = 10, 0.1
    converted = float(convert_eps(k, eps, src=convention, dst=other))
    with pytest.raises(AssertionError) as info:
        lstheory_check(factory(eps), k, eps, convention=other)
    message = str(info.value)
    assert f"this loss smooths with eps=0.1 in the {convention} convention, which is eps={converted:.6g}" in message
    # ... and passes once the eps is converted.
    lstheory_check(factory(eps), k, converted, convention=other)


@pytest.mark.parametrize("name, ignore", [
    ("torch_builtin", "ignored"),
    ("huggingface", "ignored"),
    ("fairseq", "not accepted"),
    ("timm", "not accepted"),
])
def test_padding_behaviour_of_published_losses(name, ignore):
    factory, _ = PUBLISHED[name]
    assert infer_smoothing(factory(0.1), 5).ignore_behaviour == ignore


def test_pytorch_issue_130342_minimum_is_the_uniform_entropy():
    """The built-in's minimum for K=1000, eps=0.1 is 1.0148 (uniform), not the issue's 1.0158."""
    k, eps = 1000, 0.1
    z = torch.from_numpy(np.array([[0.0] * 999 + [float(logit_gap(k, eps, convention="uniform"))]]))
    value = torch_builtin(eps)(z, torch.tensor([999])).item()
    assert value == pytest.approx(float(min_loss(k, eps, convention="uniform")), rel=1e-13)
    assert round(value, 4) == 1.0148


def test_pytorch_issue_148884_two_classes():
    """K=2, eps=0.1: PyTorch's optimum is softmax [0.95, 0.05], the off_target reading's is [0.9, 0.1]."""
    report = infer_smoothing(torch_builtin(0.1), 2, eps=0.1)
    np.testing.assert_allclose(report.targets[0], [0.95, 0.05], rtol=1e-13)
    assert report.convention == "uniform"
    assert report.eps_off_target == pytest.approx(0.05, abs=1e-14)
