"""infer_smoothing: the target any loss implies, recovered from its behaviour (issue 4, acceptance 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstheory import convert_eps, logit_gap, smoothed_target
from lstheory.testing import SmoothingReport, infer_smoothing

from published_losses import fairseq, fairseq_label_smoothed_nll_loss, torch_builtin

# -- losses written here, one per (framework, dtype, convention) ------------


def torch_loss(eps: float, convention: str, dtype: torch.dtype):
    """Label-smoothed CE in torch, computing in ``dtype`` whatever the input dtype."""

    def loss(logits, labels):
        logits = logits.to(dtype)
        k = logits.shape[-1]
        one_hot = F.one_hot(labels, k).to(dtype)
        if convention == "uniform":
            target = one_hot * (1 - eps) + eps / k
        else:
            target = one_hot * (1 - eps) + (1 - one_hot) * eps / (k - 1)
        return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return loss


def numpy_loss(eps: float, convention: str, dtype):
    """The same in NumPy (no autograd), computing and returning ``dtype``."""

    def loss(logits, labels):
        z = np.asarray(logits, dtype=dtype)
        k = z.shape[-1]
        one_hot = np.eye(k, dtype=dtype)[np.asarray(labels)]
        if convention == "uniform":
            target = one_hot * dtype(1 - eps) + dtype(eps / k)
        else:
            target = one_hot * dtype(1 - eps) + (1 - one_hot) * dtype(eps / (k - 1))
        shifted = z - z.max(axis=-1, keepdims=True)
        log_q = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return -(target * log_q).sum(axis=-1).mean(dtype=dtype)

    return loss


FRAMEWORKS = {
    "torch-float64": lambda eps, convention: torch_loss(eps, convention, torch.float64),
    "torch-float32": lambda eps, convention: torch_loss(eps, convention, torch.float32),
    "numpy-float64": lambda eps, convention: numpy_loss(eps, convention, np.float64),
    "numpy-float32": lambda eps, convention: numpy_loss(eps, convention, np.float32),
}


# -- acceptance 1: eps to 1e-5 in float32 and float64, both conventions ------


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("num_classes, eps", [(2, 0.1), (10, 0.1), (10, 0.37), (31, 0.01)])
def test_recovers_eps_of_both_conventions_in_both_precisions(framework, convention, num_classes, eps):
    report = infer_smoothing(FRAMEWORKS[framework](eps, convention), num_classes, eps=eps)
    assert report.is_cross_entropy, str(report)
    recovered = report.eps_off_target if convention == "off_target" else report.eps_uniform
    assert abs(recovered - eps) < 1e-5
    other = "uniform" if convention == "off_target" else "off_target"
    other_recovered = report.eps_uniform if convention == "off_target" else report.eps_off_target
    assert other_recovered == pytest.approx(float(convert_eps(num_classes, eps, src=convention, dst=other)), abs=1e-5)
    assert report.convention == convention
    np.testing.assert_allclose(report.mass, 1.0, atol=1e-5)
    p_true, p_other = smoothed_target(num_classes, eps, convention=convention)
    expected = np.full((num_classes, num_classes), p_other)
    np.fill_diagonal(expected, p_true)
    np.testing.assert_allclose(report.targets, expected, atol=1e-5)
    assert report.logit_gap == pytest.approx(float(logit_gap(num_classes, eps, convention=convention)), rel=1e-4)
    assert report.dtype == framework.split("-")[1]
    assert report.backend == framework.split("-")[0]
    assert report.autograd == (framework.split("-")[0] == "torch")


def test_float64_recovery_is_accurate_to_a_few_ulps_times_k():
    report = infer_smoothing(torch_builtin(0.1), 10, eps=0.1)
    assert abs(report.eps_uniform - 0.1) < 1e-14
    assert report.precision == np.finfo(np.float64).eps
    assert report.residual < report.tolerance < 1e-12


def test_a_float32_computation_behind_a_python_float_is_recognised_as_float32():
    def loss(logits, labels):  # float64 in, float64 out, float32 inside
        return float(F.cross_entropy(logits.float(), labels, label_smoothing=0.2))

    report = infer_smoothing(loss, 7, eps=0.2)
    assert report.dtype == "float32" and report.precision == np.finfo(np.float32).eps
    assert report.is_cross_entropy and report.convention == "uniform"
    assert report.autograd is False
    assert abs(report.eps_uniform - 0.2) < 1e-5


def test_a_loss_autograd_does_not_reach_is_read_from_its_values():
    def loss(logits, labels):
        return F.cross_entropy(logits.detach(), labels, label_smoothing=0.1)

    report = infer_smoothing(loss, 5, eps=0.1)
    assert report.autograd is False and report.backend == "torch"
    assert abs(report.eps_uniform - 0.1) < 1e-12


def test_a_module_instance_works():
    report = infer_smoothing(torch.nn.CrossEntropyLoss(label_smoothing=0.3), 4, eps=0.3)
    assert report.convention == "uniform" and abs(report.eps_uniform - 0.3) < 1e-12


# -- acceptance 1: the class-weighted built-in --------------------------------


def test_class_weighted_builtin_reports_its_shifted_targets_and_no_eps():
    k, eps = 5, 0.1
    w = torch.tensor([1.0, 2.0, 0.5, 4.0, 3.0], dtype=torch.float64)
    report = infer_smoothing(torch_builtin(eps, weight=w), k, eps=eps)
    assert report.is_cross_entropy
    assert report.eps_off_target is None and report.eps_uniform is None and report.convention is None
    assert report.logit_gap is None
    weights = w.numpy()
    # Target for label y is proportional to (w_y (1 - eps + eps/K), w_i eps/K).
    expected = np.tile(weights * eps / k, (k, 1))
    np.fill_diagonal(expected, weights * (1 - eps + eps / k))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(report.targets, expected, rtol=1e-12)
    # Gap shifted by log(w_y / w_i) (PyTorch #104776).
    gaps = float(logit_gap(k, eps, convention="uniform")) + np.log(weights[:, None] / weights[None, :])
    off = ~np.eye(k, dtype=bool)
    np.testing.assert_allclose(report.gaps[off], gaps[off], rtol=1e-12)
    # The mean divides by sum_n w_{y_n}: a label-weighted mean with weights w.
    assert report.reduction == "weighted mean"
    np.testing.assert_allclose(report.sample_weights, weights / weights[0], rtol=1e-9)
    assert report.weighted_smoothing is not None
    np.testing.assert_allclose(report.weighted_smoothing.weights, weights / weights[0], rtol=1e-9)
    assert report.weighted_smoothing.eps_uniform == pytest.approx(eps, abs=1e-12)
    assert report.ignore_behaviour == "ignored"
    text = str(report)
    assert "eps: none" in text and "class weights w ∝ [1, 2, 0.5, 4, 3]" in text


def test_uniform_class_weights_are_plain_smoothing():
    report = infer_smoothing(torch_builtin(0.1, weight=torch.full((6,), 2.5)), 6, eps=0.1)
    assert report.reduction == "mean" and report.convention == "uniform"


# -- the report ------------------------------------------------------------------


def test_report_string_names_gap_both_eps_and_the_equivalent():
    report = infer_smoothing(torch_builtin(0.1), 10, eps=0.1)
    assert isinstance(report, SmoothingReport)
    text = str(report)
    assert "cross-entropy against a fixed target: yes" in text
    assert "implied logit gap z_y - z_i: 4.51086" in text
    assert "eps: 0.09 (off_target) = 0.1 (uniform)" in text
    assert "intended eps 0.1: matches the uniform convention" in text
    assert "torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)" in text
    assert "labels -100: ignored" in text


def test_convention_is_none_when_eps_matches_neither():
    report = infer_smoothing(torch_builtin(0.1), 10, eps=0.2)
    assert report.convention is None and report.eps == 0.2
    assert "matches neither convention" in str(report)


def test_without_eps_no_convention_is_claimed():
    report = infer_smoothing(fairseq(0.1), 10)
    assert report.convention is None and report.eps is None
    assert report.eps_off_target == pytest.approx(0.1, abs=1e-13)


def test_unsmoothed_cross_entropy_matches_eps_zero_in_the_default_convention():
    report = infer_smoothing(torch.nn.CrossEntropyLoss(), 3, eps=0.0)
    assert report.eps_off_target == 0.0 and report.eps_uniform == 0.0
    assert report.convention == "off_target"
    assert report.logit_gap == math.inf


def test_off_target_eps_beyond_uniform_target_has_no_uniform_equivalent():
    k, eps = 4, 0.9  # off_target eps > (K-1)/K: less than 1/K on the label
    report = infer_smoothing(torch_loss(eps, "off_target", torch.float64), k, eps=eps)
    assert report.eps_off_target == pytest.approx(eps, abs=1e-12)
    assert report.eps_uniform is None
    assert report.convention == "off_target"
    assert report.logit_gap == pytest.approx(float(logit_gap(k, eps)), rel=1e-10) and report.logit_gap < 0


def test_mass_is_reported_before_normalising():
    def doubled(logits, labels):
        return 2 * F.cross_entropy(logits, labels, label_smoothing=0.1)

    report = infer_smoothing(doubled, 5, eps=0.1)
    np.testing.assert_allclose(report.mass, 2.0, rtol=1e-12)
    assert report.eps_uniform == pytest.approx(0.1, abs=1e-12)
    assert report.convention is None  # a proper smoothing has mass 1
    assert "a scaled label-smoothed cross-entropy" in str(report)


# -- batches and padding ------------------------------------------------------------


def test_sum_reduction_is_recognised():
    def summed(logits, labels):
        return fairseq_label_smoothed_nll_loss(F.log_softmax(logits, -1), labels, 0.1)[0]

    report = infer_smoothing(summed, 6, eps=0.1)
    assert report.reduction == "sum" and report.is_cross_entropy
    assert report.convention == "off_target"


def test_padding_that_still_enters_the_smoothing_term_is_found():
    """PyTorch #73205: ignored samples excluded from the NLL term but not from the smoothing term."""

    def loss(logits, labels):
        logp = F.log_softmax(logits, -1)
        keep = labels != -100
        nll = -logp[keep].gather(1, labels[keep][:, None]).sum()
        smooth = -logp.mean(-1).sum()
        return (0.9 * nll + 0.1 * smooth) / keep.sum()

    report = infer_smoothing(loss, 5, eps=0.1)
    assert report.ignore_behaviour == "padded logits change the loss"
    assert "PyTorch #73205" in report.ignore_detail
    assert report.is_cross_entropy  # per sample and on unpadded batches it is fine


def test_labels_that_cannot_be_padded_are_reported_not_accepted():
    report = infer_smoothing(fairseq(0.1), 5)
    assert report.ignore_behaviour == "not accepted" and report.is_cross_entropy


def test_padding_probe_can_be_skipped():
    report = infer_smoothing(torch_builtin(0.1), 5, ignore_index=None)
    assert report.ignore_behaviour == "not probed" and report.ignore_index is None


def test_the_report_is_deterministic():
    first = infer_smoothing(torch_loss(0.1, "uniform", torch.float32), 5)
    second = infer_smoothing(torch_loss(0.1, "uniform", torch.float32), 5)
    assert str(first) == str(second)
    np.testing.assert_array_equal(first.targets, second.targets)


# -- argument errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(num_classes=1), ValueError, "num_classes must be an integer with 2 <= num_classes"),
        (dict(num_classes=2.5), TypeError, "num_classes"),
        (dict(num_classes=5, eps=1.5), ValueError, "eps must be a real number with 0 <= eps <= 1; got 1.5"),
        (dict(num_classes=5, ignore_index="pad"), TypeError, "ignore_index must be an integer"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_valid_range(kwargs, error, words):
    with pytest.raises(error) as info:
        infer_smoothing(torch_builtin(0.1), **kwargs)
    assert words in str(info.value)


def test_a_non_callable_is_rejected():
    with pytest.raises(TypeError, match="loss_fn must be a callable"):
        infer_smoothing("cross_entropy", 5)


def test_a_loss_returning_one_value_per_sample_is_reduced_by_a_mean_and_says_so():
    def per_sample(logits, labels):
        return F.cross_entropy(logits, labels, reduction="none", label_smoothing=0.1)

    report = infer_smoothing(per_sample, 5, eps=0.1)
    assert report.is_cross_entropy and report.convention == "uniform" and report.reduction == "mean"
    assert "the loss returns one value per sample; lstheory takes their mean" in str(report)


def test_a_loss_returning_a_wrong_shape_is_rejected_with_the_reason():
    def wrong_shape(logits, labels):
        return F.cross_entropy(logits, labels, reduction="none")[:1].repeat(3)

    with pytest.raises(TypeError, match="scalar or one value per sample"):
        infer_smoothing(wrong_shape, 5)


@pytest.mark.slow
def test_thousand_classes_with_autograd():
    report = infer_smoothing(torch_builtin(0.1), 1000, eps=0.1)
    assert report.convention == "uniform"
    assert abs(report.eps_uniform - 0.1) < 1e-12
    assert report.logit_gap == pytest.approx(9.1051, abs=1e-4)
