"""The trained level: the digits split, the experiments' plumbing, the recorded data, the CLI.

The full trained level (a few minutes) runs in the slow test at the end; the
default run checks everything else quickly.  Tests that need scikit-learn skip
without it.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from lstheory.claims import all_claims, get_claim
from lstheory.cli import main
from lstheory.trained.records import load_records

DOCS = pathlib.Path(__file__).parent.parent.parent / "docs"
RECORD = DOCS / "data" / "trained_claims.json"
TRAINED = [c for c in all_claims() if "trained" in c.checks]


def test_every_trained_claim_is_recorded_with_its_registered_status():
    """The committed figures are the ones the docs show; they must say what the registry says."""
    records = load_records(RECORD)["claims"]
    assert sorted(records) == sorted(c.id for c in TRAINED)
    for claim in TRAINED:
        record = records[claim.id]
        assert record["status"] == claim.status and record["passed"] is True, claim.id
        assert record["figures"]["reproduced"] == (claim.status == "reproduced"), claim.id
    assert {c.status for c in TRAINED} <= {"reproduced", "not reproduced"}


def test_the_recorded_figures_agree_with_the_closed_forms_they_are_compared_with():
    import lstheory

    records = load_records(RECORD)["claims"]
    gap = records["trained.gap"]["figures"]
    assert gap["theory_gap"] == float(lstheory.logit_gap(10, 0.1, convention="uniform"))
    for run in records["trained.neural_collapse"]["figures"]["runs"]:
        theory = lstheory.neural_collapse_optimum(10, 0.1, samples_per_class=100, classifier_decay=run["decay"],
                                                  feature_decay=run["decay"], convention="uniform")
        assert run["theory_confidence"] == theory.confidence and run["theory_collapsed"] == theory.collapsed
        assert run["objective"] >= run["theory_objective"] - 1e-9  # a network cannot beat the model's minimum


def test_record_round_trip_keeps_other_claims(tmp_path):
    from lstheory.claims import CheckResult
    from lstheory.trained.records import write_records
    from lstheory.verify import CheckOutcome, VerificationReport

    path = tmp_path / "trained.json"
    path.write_text(json.dumps({"claims": {"trained.other": {"status": "reproduced"}}}))
    claim = get_claim("trained.gap")
    outcome = CheckOutcome(claim, "trained", CheckResult(True, None, "measured", {"reproduced": True, "x": [1.5]}), 2.0)
    written = write_records(VerificationReport((outcome,), "cpu"), path)
    assert load_records(path) == written
    assert written["claims"]["trained.gap"]["figures"] == {"reproduced": True, "x": [1.5]}
    assert "trained.other" in written["claims"] and written["environment"]["torch"]


def test_cli_refuses_record_without_the_trained_level(capsys):
    assert main(["verify", "--record", "--claim", "seed."]) == 2
    assert "--level trained" in capsys.readouterr().err


def test_cli_names_the_extra_when_scikit_learn_is_missing(monkeypatch, capsys):
    monkeypatch.setattr("lstheory.trained.data.scikit_learn_available", lambda: False)
    assert main(["verify", "--level", "trained"]) == 2
    assert "pip install 'lstheory[trained]'" in capsys.readouterr().err


def test_a_wrong_status_fails_the_trained_check(monkeypatch):
    """A measurement that disagrees with the registered status fails, naming both."""
    from lstheory.claims import CheckContext
    from lstheory.claims import trained as trained_claims
    from lstheory.trained import experiments

    monkeypatch.setattr(experiments, "trained_gap", lambda: experiments.TrainedMeasurement(False, "gap far off", {}))
    result = trained_claims.CLAIMS[0].checks["trained"](CheckContext())
    assert not result.passed and "registered as 'reproduced'" in result.detail and result.figures["reproduced"] is False


def test_digits_split_is_balanced_and_fixed():
    pytest.importorskip("sklearn")
    from lstheory.trained.data import load_digits_split

    split = load_digits_split()
    assert tuple(split.train_x.shape) == (1000, 64) and tuple(split.validation_x.shape) == (300, 64)
    assert tuple(split.test_x.shape) == (497, 64)
    assert split.train_y.bincount().tolist() == [100] * 10
    assert 0.0 <= float(split.train_x.min()) and float(split.train_x.max()) <= 1.0
    assert split.train_y[:3].tolist() == load_digits_split.__wrapped__().train_y[:3].tolist()


def test_experiments_run_end_to_end_on_a_short_schedule(monkeypatch):
    """The experiments' plumbing with 30 training steps and one seed (the figures mean nothing here)."""
    pytest.importorskip("sklearn")
    from lstheory.trained import experiments

    monkeypatch.setattr(experiments, "SEEDS", (0,))
    monkeypatch.setattr(experiments, "STEPS", 30)
    monkeypatch.setattr(experiments, "STUDENT_STEPS", 10)
    monkeypatch.setattr(experiments, "TEMPERATURES", (2.0,))
    monkeypatch.setattr(experiments, "NC_DECAYS", (1e-3,))
    monkeypatch.setattr(experiments, "NC_ADAM_STEPS", 10)
    monkeypatch.setattr(experiments, "NC_LBFGS_ITERATIONS", 5)
    experiments.smoothing_run.cache_clear()
    try:
        for experiment in (experiments.trained_gap, experiments.calibration, experiments.penultimate_clusters,
                           experiments.distillation, experiments.neural_collapse):
            measurement = experiment()
            assert isinstance(measurement.reproduced, bool) and measurement.summary
            json.dumps(measurement.figures)  # JSON-ready
        reliability = experiments.calibration().figures["reliability"]["plain"]
        assert sum(reliability["counts"]) == 497
    finally:
        experiments.smoothing_run.cache_clear()


@pytest.mark.slow
def test_the_trained_level_passes_and_prints_its_figures(capsys):
    pytest.importorskip("sklearn")
    assert main(["verify", "--level", "trained"]) == 0
    out = capsys.readouterr().out
    assert "Measured on the trained level:" in out
    for claim in TRAINED:
        assert f"{claim.id} ({claim.status}):" in out
