"""assert_loss_matches_theory: checks (a)-(d), tolerances, arguments (issue 4, item 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from lstheory import min_loss, optimal_logits, smoothed_target
from lstheory import strategies as lst
from lstheory.testing import SmoothingReport, assert_loss_matches_theory

from published_losses import torch_builtin


def hand_written(eps: float, convention: str, dtype=torch.float64):
    """Label-smoothed CE written from the two conventions' formulas."""

    def loss(logits, labels):
        logits = logits.to(dtype)
        k = logits.shape[-1]
        one_hot = F.one_hot(labels, k).to(dtype)
        off = eps / k if convention == "uniform" else eps / (k - 1)
        target = one_hot * (1 - eps) + (one_hot * eps / k if convention == "uniform" else 0) + (1 - one_hot) * off
        return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return loss


def test_passing_returns_the_report():
    report = assert_loss_matches_theory(torch_builtin(0.1), 10, 0.1, convention="uniform")
    assert isinstance(report, SmoothingReport) and report.convention == "uniform"


def test_default_convention_is_off_target_and_the_message_converts():
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(torch_builtin(0.1), 10, 0.1)
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "torch_builtin(eps=0.1) does not match label smoothing with eps=0.1 in the off_target convention "
        "(K=10: 0.9 on the label, 0.0111111 on each other class)"
    )
    assert lines[1] == (
        "[a] implied targets: expected 0.9 on the label and 0.0111111 on each other class (sum 1); "
        "the loss implies 0.91 on the label and 0.01 on each other class (sum 1)"
    )
    assert "eps=0.1 in the uniform convention, which is eps=0.09 in off_target terms" in lines[2]
    # (b) at optimal_logits: expected min_loss, the value PyTorch gives there.
    assert any(line.startswith("[b] value at optimal_logits") and "expected min_loss = 0.5448054311" in line
               for line in lines)
    assert any(line.startswith("[b] gradient at optimal_logits") for line in lines)
    assert any(line.startswith("[c] numerical minimisation (label 0): lands at logit gap") and "4.51086" in line
               and "optimal_logits has gap 4.39445" in line for line in lines)
    # The report follows the checks.
    assert "lstheory report for torch_builtin(eps=0.1)" in str(info.value)


def test_wrong_eps_in_the_right_convention():
    with pytest.raises(AssertionError, match=r"this loss smooths with eps=0.2 \(uniform\) = eps=0.18 \(off_target\), not eps=0.1"):
        assert_loss_matches_theory(torch_builtin(0.2), 10, 0.1, convention="uniform")


def test_no_smoothing_is_named():
    with pytest.raises(AssertionError, match="does not smooth at all"):
        assert_loss_matches_theory(torch.nn.CrossEntropyLoss(), 4, 0.1, convention="uniform")


def test_eps_zero_skips_the_optimum_checks():
    report = assert_loss_matches_theory(torch.nn.CrossEntropyLoss(), 4, 0.0)
    assert report.eps_off_target == 0.0


def test_class_weights_are_named_as_the_cause():
    w = torch.tensor([1.0, 3.0, 2.0, 1.0])
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(torch_builtin(0.1, weight=w), 4, 0.1, convention="uniform")
    message = str(info.value)
    assert "the off-target mass is not uniform: the targets are class weights w ∝ [1, 3, 2, 1]" in message
    assert "PyTorch #104776" in message


def test_float32_loss_passes_with_the_default_tolerance_and_fails_a_float64_one():
    loss = hand_written(0.1, "off_target", torch.float32)
    report = assert_loss_matches_theory(loss, 10, 0.1)
    assert report.dtype == "float32"
    # rtol tightens (b) to float64 levels; (a) always allows the inferred targets' own error.
    with pytest.raises(AssertionError, match=r"\[b\] value at optimal_logits") as info:
        assert_loss_matches_theory(loss, 10, 0.1, rtol=1e-12)
    assert "[a]" not in str(info.value)


def test_optimum_checks_use_the_closed_forms():
    """What (b) checks, by hand: the loss at optimal_logits is min_loss and the gradient is 0."""
    k, eps = 6, 0.25
    loss = hand_written(eps, "off_target")
    for label in range(k):
        z = torch.tensor(optimal_logits(k, eps, label=label), requires_grad=True)
        value = loss(z[None], torch.tensor([label]))
        (grad,) = torch.autograd.grad(value, z)
        assert value.item() == pytest.approx(float(min_loss(k, eps)), rel=1e-14)
        assert grad.abs().max().item() < 1e-15
    assert_loss_matches_theory(loss, k, eps)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(eps=-0.1), ValueError, "eps must be a real number with 0 <= eps <= 1; got -0.1"),
        (dict(eps=0.1, convention="eps/K"), ValueError, "convention must be one of 'off_target', 'uniform'; got 'eps/K'"),
        (dict(eps=0.1, rtol=2.0), ValueError, "rtol must be a real number with 0 <= rtol < 1"),
        (dict(eps=0.1, rtol="tight"), TypeError, "rtol must be a real number"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        assert_loss_matches_theory(torch_builtin(0.1), 5, **kwargs)
    assert words in str(info.value)


@settings(max_examples=12, deadline=None, database=None)
@given(lst.smoothing_setups(max_classes=12, max_eps=0.95))
def test_hand_written_loss_passes_for_any_setup(setup):
    k, eps, convention = setup
    report = assert_loss_matches_theory(hand_written(eps, convention), k, eps, convention=convention)
    p_true, _ = smoothed_target(k, eps, convention=convention)
    assert np.diag(report.targets) == pytest.approx(float(p_true), abs=1e-12)


@settings(max_examples=8, deadline=None, database=None)
@given(lst.smoothing_setups(min_classes=3, max_classes=12, min_eps=0.01, max_eps=0.6))
def test_any_setup_fails_in_the_other_convention(setup):
    k, eps, convention = setup
    other = "uniform" if convention == "off_target" else "off_target"
    with pytest.raises(AssertionError, match=f"in the {convention} convention, which is"):
        assert_loss_matches_theory(hand_written(eps, convention), k, eps, convention=other)


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_lstheory_own_torch_loss_matches_theory(lstheory_check, convention):
    """Cross-layer check: lstheory.torch's loss, seen only through its behaviour."""
    loss_module = pytest.importorskip("lstheory.torch.loss")

    def loss(logits, labels):
        return loss_module.label_smoothed_cross_entropy(logits, labels, 0.1, convention=convention)

    report = lstheory_check(loss, 10, 0.1, convention=convention)
    assert report.ignore_behaviour == "ignored" and report.reduction == "mean"
