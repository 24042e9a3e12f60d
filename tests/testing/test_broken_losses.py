"""Deliberately broken losses: each fails assert_loss_matches_theory with its cause named (issue 4, acceptance 2)."""

from __future__ import annotations

import pytest

from lstheory.testing import assert_loss_matches_theory, infer_smoothing

from broken_losses import BROKEN, CAUSES


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("num_classes, eps", [(5, 0.1), (12, 0.3)])
def test_broken_loss_fails_with_its_cause(name, num_classes, eps):
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(BROKEN[name](eps), num_classes, eps, convention="uniform")
    message = str(info.value)
    assert CAUSES[name] in message, message
    first_line = message.splitlines()[0]
    assert f"does not match label smoothing with eps={eps} in the uniform convention" in first_line


def test_not_divided_by_k_message_has_expected_and_actual():
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(BROKEN["mass_not_divided_by_k"](0.1), 7, 0.1, convention="uniform")
    lines = str(info.value).splitlines()
    assert lines[1] == (
        "[a] implied targets: expected 0.914286 on the label and 0.0142857 on each other class (sum 1); "
        "the loss implies 1 on the label and 0.1 on each other class (sum 1.6)"
    )
    assert lines[2] == (
        "    likely cause: the target sums to 1.6: the smoothing mass was not divided by K "
        "(each other class gets eps=0.1 instead of 0.0142857)"
    )
    assert lines[3].startswith("[b] value at optimal_logits(K, eps, label=")
    assert any(line.startswith("[c] numerical minimisation (label 0): lands at logit gap") for line in lines)


def test_applied_twice_names_the_compound_eps():
    with pytest.raises(AssertionError, match=r"eps=0.19 = 1 - \(1 - 0.1\)\^2 in the uniform convention"):
        assert_loss_matches_theory(BROKEN["smoothing_applied_twice"](0.1), 10, 0.1, convention="uniform")


def test_wrong_sign_has_no_finite_minimum():
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(BROKEN["wrong_sign"](0.1), 5, 0.1, convention="uniform")
    assert "the loss has no finite minimum" in str(info.value)
    report = infer_smoothing(BROKEN["wrong_sign"](0.1), 5)
    assert report.is_cross_entropy  # against a target with negative entries
    assert report.targets[0, 1] < 0 and report.mass[0] == pytest.approx(0.8, rel=1e-12)


def test_padding_counted_in_the_mean_is_only_a_padding_failure():
    with pytest.raises(AssertionError) as info:
        assert_loss_matches_theory(BROKEN["padding_counted_in_mean"](0.1), 5, 0.1, convention="uniform")
    message = str(info.value).split("\n\n")[0]
    assert "[a]" not in message and "[b]" not in message and "[c]" not in message
    assert "[d] padding (labels = -100): counted in the mean" in message
    assert "divide by the number of non-ignored samples, not by N" in message
    # Without padded labels the same loss is correct.
    assert_loss_matches_theory(BROKEN["padding_counted_in_mean"](0.1), 5, 0.1, convention="uniform", ignore_index=None)


def test_mixture_of_conventions_in_both_directions():
    import torch.nn.functional as F

    def reverse_mixture(logits, labels):  # uniform's label mass, off_target's elsewhere
        k = logits.shape[-1]
        one_hot = F.one_hot(labels, k).to(logits.dtype)
        target = one_hot * (1 - 0.1 + 0.1 / k) + (1 - one_hot) * 0.1 / (k - 1)
        return -(target * F.log_softmax(logits, -1)).sum(-1).mean()

    with pytest.raises(AssertionError, match=r"1 \+ eps/K: the two conventions are mixed"):
        assert_loss_matches_theory(reverse_mixture, 6, 0.1, convention="uniform")
    with pytest.raises(AssertionError, match=r"1 - eps/K: the two conventions are mixed"):
        assert_loss_matches_theory(BROKEN["mixed_conventions"](0.1), 6, 0.1, convention="off_target")


def test_focal_loss_is_not_a_cross_entropy():
    report = infer_smoothing(BROKEN["focal"](0.1), 5)
    assert not report.is_cross_entropy
    assert report.residual > 1e3 * report.tolerance
    assert report.dtype == "float64"  # its smooth deviation is not mistaken for rounding noise
    assert report.eps_off_target is None and report.eps_uniform is None
    assert "nothing lstheory can name" in str(report)


def test_batch_dependence_is_found_by_the_batch_probe():
    report = infer_smoothing(BROKEN["batch_label_histogram"](0.1), 5)
    assert not report.is_cross_entropy and report.reduction is None
    assert any(f.startswith("the loss depends on other samples of the batch") for f in report.findings)
