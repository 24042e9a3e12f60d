"""The pytest11 plugin: its fixture in this suite and in a fresh pytest run (issue 4, item 3)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from lstheory.pytest_plugin import LabelSmoothingCheck

from published_losses import torch_builtin

pytest_plugins = ("pytester",)


def test_entry_point_is_registered():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("lstheory") == "lstheory.pytest_plugin"


def test_fixture_checks_and_records(lstheory_check, request):
    assert isinstance(lstheory_check, LabelSmoothingCheck)
    report = lstheory_check(torch_builtin(0.1), 10, 0.1, convention="uniform")
    assert report.convention == "uniform"
    inferred = lstheory_check.infer(torch_builtin(0.1), 10)
    assert inferred.eps_uniform == pytest.approx(0.1, abs=1e-13)
    assert lstheory_check.reports == [report, inferred]
    recorded = [value for name, value in request.node.user_properties if name == "lstheory_report"]
    assert recorded == [str(report), str(inferred)]


def test_fixture_failure_is_an_assertion_naming_the_cause(lstheory_check):
    with pytest.raises(AssertionError, match="eps=0.09 in off_target terms"):
        lstheory_check(torch_builtin(0.1), 10, 0.1)


USER_SUITE = '''
import torch.nn.functional as F

def smoothed(logits, labels):
    return F.cross_entropy(logits, labels, label_smoothing=0.1)

def test_matches(lstheory_check):
    lstheory_check(smoothed, 5, 0.1, convention="uniform")

def test_wrong_convention(lstheory_check):
    lstheory_check(smoothed, 5, 0.1)  # off_target by default: fails
'''


def test_fixture_in_a_fresh_pytest_run(pytester):
    pytester.makepyfile(test_user_suite=USER_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*[[]a[]] implied targets: expected 0.9 on the label and 0.025 on each other class*",
        "*likely cause: this loss smooths with eps=0.1 in the uniform convention, which is eps=0.08 in off_target*",
    ])


def test_fixture_takes_the_adapter_and_padding_keywords(lstheory_check):
    """Keras' order and one-hot targets, a (B, T, K) sequence loss, a padding class without smoothing mass."""
    import torch
    import torch.nn.functional as F

    def keras_like(y_true, y_pred):
        smoothed = y_true * 0.9 + 0.1 / y_pred.shape[-1]
        return -(smoothed * torch.log_softmax(y_pred, -1)).sum(-1)

    report = lstheory_check(keras_like, 10, 0.1, convention="uniform", targets="one_hot", argument_order="target_first")
    assert report.options.argument_order == "target_first"
    sequence = lambda z, y: F.cross_entropy(z.movedim(-1, 1), y, label_smoothing=0.1)  # noqa: E731
    assert lstheory_check.infer(sequence, 10, layout="NTK").reduction_detail == "mean over B, mean over T"

    def no_mass_on_padding(logits, labels):  # eps over the K - 1 classes other than padding class 0
        target = torch.full_like(logits, 0.1 / 8)
        target[:, 0] = 0.0
        target.scatter_(1, labels[:, None], 0.9)
        keep = labels != 0
        return -(target * F.log_softmax(logits, -1)).sum(-1)[keep].sum() / keep.sum()

    lstheory_check(no_mass_on_padding, 10, 0.1, ignore_index=0, smooth_padding_class=False)
    with pytest.raises(AssertionError, match="receives no smoothing mass"):
        lstheory_check(no_mass_on_padding, 10, 0.1, ignore_index=0)
