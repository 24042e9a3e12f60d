"""Tests of ``lstheory.experiment`` and the ``lstheory experiment`` sub-command.

Small settings (K=5, 10 samples per class, 300 Adam steps: about 0.3 s a
run) keep the file fast; the defaults are exercised once through the CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import pytest

import lstheory
import lstheory.cli as cli
from lstheory.cli import UsageError
from lstheory.cli import experiment as experiment_cli
from lstheory.experiment import (
    ExperimentResult,
    checkpoint_steps,
    gap_figure,
    make_cluster_data,
    run_experiment,
)

torch = pytest.importorskip("torch")

SMALL = dict(steps=300, samples_per_class=10)


@pytest.fixture(scope="module")
def off_target_run() -> ExperimentResult:
    return run_experiment(5, 0.1, convention="off_target", **SMALL)


@pytest.fixture(scope="module")
def uniform_run() -> ExperimentResult:
    return run_experiment(5, 0.1, convention="uniform", **SMALL)


@pytest.fixture(params=["off_target", "uniform"])
def result(request, off_target_run, uniform_run) -> ExperimentResult:
    return off_target_run if request.param == "off_target" else uniform_run


# --- the theory side comes from the closed forms, never re-derived ---------------------------------


def test_theory_values_are_the_closed_forms(result):
    k, eps, convention = result.num_classes, result.eps, result.convention
    assert result.theory_gap == float(lstheory.logit_gap(k, eps, convention=convention))
    assert result.theory_confidence == float(lstheory.smoothed_target(k, eps, convention=convention)[0])
    assert result.theory_loss == float(lstheory.min_loss(k, eps, convention=convention))


# --- acceptance: the smoothed run's gap converges to the closed form --------------------------------


def test_trained_gap_within_5_percent_of_theory(result):
    """Issue 6 acceptance 3 (5%); the small run in fact agrees to better than 0.5%."""
    assert result.relative_error == abs(result.trained_gap - result.theory_gap) / abs(result.theory_gap)
    assert result.relative_error < 0.05
    assert result.relative_error < 0.005, result.as_dict()


def test_every_sample_reaches_the_optimum(result):
    """Over-parameterised features: the per-sample gaps all converge, not only their mean."""
    assert result.gap_std < 0.1 * result.theory_gap


def test_confidence_matches_p_true(result):
    assert result.confidence == pytest.approx(result.theory_confidence, abs=2e-3)
    assert result.trained_loss == pytest.approx(result.theory_loss, abs=1e-3)
    assert result.trained_loss >= result.theory_loss - 1e-12  # the closed form is the minimum


def test_uniform_run_uses_torch_label_smoothing_and_agrees_with_converted_off_target(uniform_run):
    """uniform eps = 0.1 and off_target eps = convert_eps(...) describe one target: same gap."""
    eps_off = float(lstheory.convert_eps(5, 0.1, src="uniform", dst="off_target"))
    converted = run_experiment(5, eps_off, convention="off_target", **SMALL)
    assert converted.theory_gap == pytest.approx(uniform_run.theory_gap, rel=1e-14)
    assert converted.trained_gap == pytest.approx(uniform_run.trained_gap, rel=1e-3)


# --- the unsmoothed run has no finite optimum -----------------------------------------------------


def test_unsmoothed_gap_keeps_growing(off_target_run):
    gaps = off_target_run.unsmoothed_gaps
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert off_target_run.unsmoothed_gap == gaps[-1]
    assert off_target_run.unsmoothed_gap > 1.5 * off_target_run.trained_gap
    assert off_target_run.unsmoothed_confidence > off_target_run.confidence + 0.09


def test_smoothed_gap_settles(off_target_run):
    """The last checkpoints of the smoothed run agree with each other: it has stopped."""
    assert off_target_run.smoothed_gaps[-1] == pytest.approx(off_target_run.smoothed_gaps[-2], rel=1e-3)


def test_zero_and_negative_theory_gap():
    """off_target eps = (K-1)/K is the uniform target (gap 0); beyond it the gap is negative."""
    zero = run_experiment(2, 0.5, **SMALL)
    assert zero.theory_gap == 0.0
    assert zero.relative_error is None
    assert abs(zero.trained_gap) < 0.01
    assert "n/a" in zero.report()
    negative = run_experiment(4, 0.9, **SMALL)
    assert negative.theory_gap < 0
    assert negative.relative_error < 0.05


# --- bookkeeping ----------------------------------------------------------------------------------


def test_histories_and_checkpoints(off_target_run):
    r = off_target_run
    assert r.checkpoint_steps == checkpoint_steps(300) == (1, 2, 5, 10, 20, 50, 100, 200, 300)
    for history in (r.smoothed_gap_history, r.unsmoothed_gap_history,
                    r.smoothed_confidence_history, r.unsmoothed_confidence_history):
        assert len(history) == r.steps + 1
    assert r.smoothed_gap_history[0] == 0.0  # zero initialisation
    assert r.smoothed_confidence_history[0] == pytest.approx(1 / r.num_classes)
    assert r.smoothed_gaps == tuple(r.smoothed_gap_history[s] for s in r.checkpoint_steps)
    assert r.trained_gap == r.smoothed_gap_history[-1]


@pytest.mark.parametrize("steps, expected", [(1, (1,)), (2, (1, 2)), (10, (1, 2, 5, 10)), (11, (1, 2, 5, 10, 11))])
def test_checkpoint_steps(steps, expected):
    assert checkpoint_steps(steps) == expected


def test_cluster_data_is_seeded_and_full_rank():
    features, labels = make_cluster_data(4, 5, seed=3)
    again, _ = make_cluster_data(4, 5, seed=3)
    other, _ = make_cluster_data(4, 5, seed=4)
    assert features.shape == (20, 40) and features.dtype == torch.float64
    assert labels.tolist() == [c for c in range(4) for _ in range(5)]
    assert torch.equal(features, again) and not torch.equal(features, other)
    assert int(torch.linalg.matrix_rank(features)) == 20  # every logit matrix is reachable


def test_same_seed_same_numbers(off_target_run):
    again = run_experiment(5, 0.1, convention="off_target", **SMALL)
    first = off_target_run.as_dict(history=True)
    second = again.as_dict(history=True)
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    other = run_experiment(5, 0.1, convention="off_target", seed=1, **SMALL)
    assert other.trained_gap != off_target_run.trained_gap


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    run_experiment(3, 0.1, steps=5, samples_per_class=2)
    assert torch.get_num_threads() == before


def test_as_dict_is_json_ready(off_target_run):
    data = off_target_run.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert "smoothed_gap_history" not in data
    assert len(off_target_run.as_dict(history=True)["smoothed_gap_history"]) == 301


# --- argument checking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(num_classes=1), "num_classes must be an integer >= 2"),
        (dict(num_classes=2.5), "num_classes"),
        (dict(eps=0.0), "+inf"),
        (dict(eps=1.0), "0 < eps < 1"),
        (dict(eps=-0.1), "0 < eps < 1"),
        (dict(eps=math.nan), "0 < eps < 1"),
        (dict(eps="0.1"), "eps must be a real number"),
        (dict(convention="label_smoothing"), "convention must be one of"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(samples_per_class=0), "samples_per_class"),
        (dict(num_classes=1000, samples_per_class=5), "<= 4000"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=math.inf), "learning_rate"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    arguments = dict(num_classes=3, eps=0.1)
    arguments.update(kwargs)
    num_classes, eps = arguments.pop("num_classes"), arguments.pop("eps")
    with pytest.raises(ValueError) as info:
        run_experiment(num_classes, eps, **arguments)
    assert words in str(info.value)


# --- figure ---------------------------------------------------------------------------------------


def test_gap_figure_is_deterministic_svg(off_target_run):
    pytest.importorskip("matplotlib")
    svg = gap_figure(off_target_run)
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert svg == gap_figure(off_target_run)
    assert b"<dc:date>" not in svg
    assert b"logit_gap = 3.584" in svg  # text kept as text (svg.fonttype none)


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstheory")
    experiment_cli.register(parser.add_subparsers(dest="command"))
    return parser


def _run_cli(argv: list[str]) -> int:
    args = _parser().parse_args(["experiment", *argv])
    return args.handler(args)


def test_cli_json_defaults(capsys):
    """The default run (K=10, eps=0.1, 1000 steps): one JSON object, the acceptance criterion."""
    assert _run_cli(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("theory_gap", "trained_gap", "relative_error", "confidence", "theory_confidence",
                "unsmoothed_gaps", "smoothed_gaps", "checkpoint_steps", "steps", "num_classes", "eps",
                "convention", "seed", "seconds"):
        assert key in data
    assert (data["num_classes"], data["eps"], data["convention"], data["steps"]) == (10, 0.1, "off_target", 1000)
    assert data["theory_gap"] == float(lstheory.logit_gap(10, 0.1))
    assert abs(data["trained_gap"] - data["theory_gap"]) <= 0.05 * data["theory_gap"]
    assert data["relative_error"] < 1e-3
    assert data["unsmoothed_gaps"][-1] > data["unsmoothed_gaps"][-2] > data["theory_gap"]


def test_cli_report_and_figure(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "gap.svg"
    argv = ["--classes", "5", "--convention", "uniform", "--steps", "300", "--samples-per-class", "10",
            "--figure", str(figure)]
    assert _run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "theory 3.828" in out and "uniform" in out and "keeps growing" in out
    assert figure.read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--eps", "0"], "--eps must satisfy 0 < eps < 1; got 0"),
        (["--eps", "1.5"], "--eps"),
        (["--classes", "1"], "--classes must be"),
        (["--steps", "0"], "--steps must be"),
        (["--classes", "100", "--samples-per-class", "50"], "--classes * --samples-per-class"),
        (["--figure", "/no/such/dir/x.svg"], "no such directory"),
    ],
)
def test_cli_bad_values_raise_usage_error(argv, words):
    with pytest.raises(UsageError) as info:
        _run_cli(argv)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_cli_main_exit_status_2(monkeypatch, capsys):
    """Through ``lstheory.cli.main`` (with "experiment" registered): one line on stderr, exit 2."""
    if "experiment" not in cli.SUBCOMMAND_MODULES:
        monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", (*cli.SUBCOMMAND_MODULES, "experiment"))
    assert cli.main(["experiment", "--eps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstheory experiment: error: --eps") and err.count("\n") == 1


def test_experiment_help_states_how_time_grows():
    done = subprocess.run([sys.executable, "-m", "lstheory", "experiment", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "K^3" in done.stdout.replace("\n", " ") and "--quiet" in done.stdout


def test_progress_bar_shows_on_request_and_never_in_a_pipe():
    import io

    from lstheory._progress import progress_bar

    shown = io.StringIO()
    for _ in progress_bar(range(3), show=True, file=shown, desc="work"):
        pass
    assert "work" in shown.getvalue()
    hidden = io.StringIO()  # not a terminal: show=None stays quiet
    for _ in progress_bar(range(3), show=None, file=hidden, desc="work"):
        pass
    assert hidden.getvalue() == ""
    done = subprocess.run([sys.executable, "-m", "lstheory", "experiment", "--steps", "5", "--samples-per-class", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""
