"""The likely cause a failure names is the right one (review of issue 4).

Detaching is blamed only when the values alone are a cross-entropy; a loss with
a finite minimum (temperature, z-loss) is not said to have none; a loss divided
by K, or scaled, is named as such, with the smoothing it does get right.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lstheory import logit_gap
from lstheory.testing import assert_loss_matches_theory, infer_smoothing

from broken_losses import BROKEN

K, EPS = 10, 0.1


def failure(loss, *, k=K, eps=EPS, convention="uniform", **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(loss, k, eps, convention=convention, **kwargs)
    return str(info.value).split("\n\n")[0]  # the checks, without the report


def temperature(logits, labels):
    return F.cross_entropy(logits / 1.5, labels, label_smoothing=EPS)


def z_loss(logits, labels):
    return F.cross_entropy(logits, labels, label_smoothing=EPS) + 1e-2 * (torch.logsumexp(logits, -1) ** 2).mean()


def detached_smoothing(logits, labels):
    log_q = F.log_softmax(logits, -1)
    nll = -log_q.gather(1, labels[:, None])[:, 0]
    return ((1 - EPS) * nll - EPS * log_q.mean(-1).detach()).mean()


def mean_over_classes(logits, labels):
    """The whole smoothed cross-entropy averaged over classes: the loss divided by K."""
    k = logits.shape[-1]
    target = F.one_hot(labels, k).to(logits.dtype) * (1 - EPS) + EPS / k
    return -(target * F.log_softmax(logits, -1)).mean(-1).mean()


def smoothing_term_averaged(logits, labels):
    """``eps/K`` times the *mean* of -log q over classes: each other class gets eps/K^2."""
    log_q = F.log_softmax(logits, -1)
    nll = -log_q.gather(1, labels[:, None])[:, 0]
    return ((1 - EPS) * nll - EPS / logits.shape[-1] * log_q.mean(-1)).mean()


def doubled(logits, labels):
    return 2 * F.cross_entropy(logits, labels, label_smoothing=EPS)


@pytest.mark.parametrize("loss", [BROKEN["focal"](EPS), temperature, z_loss], ids=["focal", "temperature", "z-loss"])
def test_a_loss_that_is_no_cross_entropy_is_not_said_to_be_detached(loss):
    message = failure(loss)
    assert "not a cross-entropy against a fixed target" in message
    assert "detached" not in message
    assert "no finite minimum" not in message  # (temperature and z-loss have one)


def test_temperature_minimisation_lands_on_its_own_minimiser():
    """Under temperature T the minimiser's gap is T times the closed form's (the step halving finds it)."""
    message = failure(temperature)
    gap = 1.5 * float(logit_gap(K, EPS, convention="uniform"))
    assert f"[c] numerical minimisation (label 0): lands at logit gap z_y - mean(z_i) = {gap:.6g}" in message


def test_a_detached_smoothing_term_is_named_and_nothing_else_is_blamed():
    message = failure(detached_smoothing)
    assert "the loss's values are a cross-entropy against a fixed target" in message
    assert "part of the loss is detached or has a custom backward" in message
    assert "not a cross-entropy against a fixed target:" not in message
    assert "no finite minimum" not in message


def test_the_wrong_sign_still_has_no_finite_minimum():
    message = failure(BROKEN["wrong_sign"](EPS), k=5)
    assert "the loss has no finite minimum: its target for label 0 has a negative entry" in message


def test_a_loss_divided_by_k_is_named():
    message = failure(mean_over_classes)
    assert "the target sums to 0.1 = 1/K: the loss is divided by K" in message
    assert "averages over classes instead of summing" in message
    assert "normalised, it smooths with eps=0.1 in the uniform convention, as intended" in message
    report = infer_smoothing(mean_over_classes, K, eps=EPS)
    assert "intended eps 0.1: matches uniform, up to a scale factor 0.1" in str(report)


def test_a_smoothing_term_averaged_over_classes_is_named():
    message = failure(smoothing_term_averaged)
    assert "the smoothing term averages over classes instead of summing" in message
    assert "eps/K^2 = 0.001" in message


def test_a_scaled_loss_matches_its_convention_up_to_the_scale():
    report = infer_smoothing(doubled, K, eps=EPS)
    assert report.convention is None  # not label smoothing: twice it
    assert "intended eps 0.1: matches uniform, up to a scale factor 2" in str(report)
    message = failure(doubled)
    assert "the loss is 2 times a cross-entropy" in message
    assert "normalised, it smooths with eps=0.1 in the uniform convention, as intended" in message
    # Asserted in the other convention, the scaled loss still names the one it matches.
    assert "normalised, it smooths with eps=0.1 in the uniform convention" in failure(doubled, convention="off_target")
