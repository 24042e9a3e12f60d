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

    def raises_for_label_3(logits, labels):
        if (labels == 3).any():
            raise RuntimeError("label 3 unsupported")
        return smoothed(logits, labels)

    def constant(logits, labels):
        return 0 * logits.sum() + 2.0

    def nll_of_log_probs(log_probs, labels):
        return 0.9 * F.nll_loss(log_probs, labels) - 0.1 * log_probs.mean(-1).mean()

    def keras_order_one_hot(y_true, y_pred):
        smoothed_target = y_true * 0.9 + 0.1 / y_pred.shape[-1]
        return -(smoothed_target * F.log_softmax(y_pred, -1)).sum(-1)

    def sequence_btk(logits, labels):
        return F.cross_entropy(logits.movedim(-1, 1), labels, label_smoothing=0.1)

    def no_mass_on_padding(logits, labels):
        target = logits.new_full(logits.shape, 0.1 / (logits.shape[-1] - 2))
        target[:, 0] = 0.0
        target.scatter_(1, labels[:, None], 0.9)
        keep = labels != 0
        return -(target * F.log_softmax(logits, -1)).sum(-1)[keep].sum() / keep.sum()
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
        try:
            status = cli.main(["check", *argv])
        except SystemExit as exit:  # argparse's own usage errors
            status = exit.code
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
        (["my_losses:smoothed", "--classes", "5", "--eps", "0.1", "--rtol", "2"], "rtol must be a real number"),
        (["my_losses:smoothed", "--classes", "5", "--seed", "-1"], "seed must be a non-negative integer"),
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


def test_a_plain_dotted_path_to_a_class(check):
    status, out, _ = check("torch.nn.CrossEntropyLoss", "--classes", "5")
    assert status == 0 and "lstheory report for CrossEntropyLoss with K=5" in out


def test_eps_below_the_smallest_float64_is_a_usage_error(check):
    status, out, err = check("my_losses:smoothed", "--classes", "5", "--eps", "1e-400")
    assert status == 2 and out == "" and "below the smallest float64" in err


@pytest.mark.parametrize("name, cause", [
    ("raises_for_label_3", "RuntimeError: label 3 unsupported"),
    ("constant", "the loss does not depend on the logits"),
])
def test_a_loss_failing_or_constant_while_probed_exits_1_with_a_finding(check, name, cause):
    status, out, err = check(f"my_losses:{name}", "--classes", "6", "--ignore-index", "none")
    assert status == 1 and cause in out and "Traceback" not in out + err


@pytest.mark.parametrize("argv", [
    ["my_losses:nll_of_log_probs", "--inputs", "log_probs", "--ignore-index", "none"],
    ["my_losses:keras_order_one_hot", "--targets", "one_hot", "--argument-order", "target_first"],
    ["my_losses:sequence_btk", "--layout", "NTK"],
    ["my_losses:no_mass_on_padding", "--ignore-index", "0", "--no-smooth-padding-class", "--convention", "off_target"],
])
def test_adapter_and_padding_flags(check, argv):
    status, out, _ = check(*argv, "--classes", "10", "--eps", "0.1")
    assert status == 0, out


def test_the_padding_flags_fail_the_other_semantics(check):
    status, out, _ = check("my_losses:no_mass_on_padding", "--classes", "10", "--eps", "0.1", "--ignore-index", "0")
    assert status == 1 and "receives no smoothing mass" in out


def test_progress_shows_on_a_terminal_only_and_never_with_quiet(check, monkeypatch):
    argv = ("my_losses:smoothed", "--classes", "5")
    assert check(*argv)[2] == ""  # stderr is no terminal here
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert "lstheory check: fit" in check(*argv)[2]
    assert check(*argv, "--quiet")[2] == ""
