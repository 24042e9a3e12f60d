"""`lstheory check MODULE:CALLABLE --classes K [--eps E] [--convention C]` (issue 4, item 4)."""

from __future__ import annotations

import sys
import textwrap

import pytest

import lstheory.cli as cli

LOSSES = textwrap.dedent(
    """
    import torch.nn.functional as F

    def smoothed(logits, labels):
        return F.cross_entropy(logits, labels, label_smoothing=0.1)

    def not_divided(logits, labels):
        logp = F.log_softmax(logits, -1)
        nll = -logp.gather(1, labels[:, None])[:, 0]
        return (0.9 * nll - 0.1 * logp.sum(-1)).mean()

    class Wrapper:
        def loss(self, logits, labels):
            return smoothed(logits, labels)

    wrapper = Wrapper()
    not_callable = 3

    def bad_sig(z):
        return z.sum()
    """
)


@pytest.fixture
def check(monkeypatch, tmp_path, capsys):
    """Run `lstheory check ...` in-process from a temporary folder holding my_losses.py."""
    (tmp_path / "my_losses.py").write_text(LOSSES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("check",))  # whatever else is registered
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command adds the current folder

    def run(*argv):
        status = cli.main(["check", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    yield run
    sys.modules.pop("my_losses", None)


def test_match_exits_0_and_prints_the_report(check):
    status, out, err = check("my_losses:smoothed", "--classes", "10", "--eps", "0.1", "--convention", "uniform")
    assert status == 0 and err == ""
    assert "lstheory report for smoothed with K=10" in out
    assert "eps: 0.09 (off_target) = 0.1 (uniform)" in out
    assert out.rstrip().endswith("OK: smoothed is label smoothing with eps=0.1 in the uniform convention")


def test_without_convention_either_one_matches_and_is_named(check):
    status, out, _ = check("my_losses:smoothed", "--classes", "10", "--eps", "0.1")
    assert status == 0 and "intended eps 0.1: matches the uniform convention" in out


def test_mismatch_exits_1_with_the_cause(check):
    status, out, _ = check("my_losses:smoothed", "--classes", "10", "--eps", "0.1", "--convention", "off_target")
    assert status == 1
    assert "which is eps=0.09 in off_target terms" in out


def test_a_file_path_works(check, tmp_path):
    status, out, _ = check(f"{tmp_path / 'my_losses.py'}:not_divided", "--classes", "10", "--eps", "0.1")
    assert status == 1
    assert "the smoothing mass was not divided by K" in out


def test_without_eps_a_proper_cross_entropy_passes_and_a_scaled_one_does_not(check):
    assert check("my_losses:smoothed", "--classes", "4")[0] == 0
    status, out, _ = check("my_losses:not_divided", "--classes", "4")
    assert status == 1 and "unnormalised sum 1.3" in out


def test_dotted_callables_and_classes(check):
    assert check("my_losses:wrapper.loss", "--classes", "5", "--eps", "0.1")[0] == 0
    status, out, _ = check("torch.nn:CrossEntropyLoss", "--classes", "5", "--eps", "0")
    assert status == 0 and "eps: 0 (off_target) = 0 (uniform)" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["my_losses", "--classes", "5"], "expected MODULE:CALLABLE"),
        (["my_losses:missing", "--classes", "5"], "module 'my_losses' has no attribute 'missing'"),
        (["no_such_module:f", "--classes", "5"], "cannot import module 'no_such_module'"),
        (["./nowhere.py:f", "--classes", "5"], "no such file: ./nowhere.py"),
        (["my_losses:not_callable", "--classes", "5"], "my_losses:not_callable is not callable"),
        (["my_losses:smoothed", "--classes", "1"], "num_classes must be an integer with 2 <= num_classes"),
        (["my_losses:smoothed", "--classes", "5", "--eps", "2"], "eps must be a real number with 0 <= eps <= 1"),
        (["my_losses:smoothed", "--classes", "5", "--convention", "uniform"], "--convention needs --eps"),
        (["my_losses:smoothed", "--classes", "5", "--ignore-index", "pad"], "--ignore-index must be an integer"),
    ],
)
def test_usage_errors_exit_2_with_one_line(check, argv, words):
    status, out, err = check(*argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lstheory check: error: ") and words in err
    assert "Traceback" not in err


def test_ignore_index_none_skips_the_padding_probe(check):
    status, out, _ = check("my_losses:smoothed", "--classes", "5", "--ignore-index", "none")
    assert status == 0 and "labels" not in out.splitlines()[2]


def test_a_loss_that_cannot_be_called_is_a_usage_error(check):
    """Exit 1 means "mismatch": a loss with the wrong signature is a usage error (2), in one line."""
    status, out, err = check("my_losses:bad_sig", "--classes", "5")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lstheory check: error: loss_fn (bad_sig) could not be called as loss_fn(logits, labels)")
    assert "bad_sig() takes 1 positional argument but 2 were given" in err
