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
