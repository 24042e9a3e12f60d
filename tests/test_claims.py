"""The claims registry and `lstheory verify`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lstheory.claims import DEFAULT_LEVELS, LEVELS, STATUS_MEANINGS, STATUSES, CheckResult, Claim, all_claims, get_claim
from lstheory.claims import registry
from lstheory.cli import main
from lstheory.verify import run_verification


def test_registry_shape():
    claims = all_claims()
    assert len(claims) >= 8
    ids = [c.id for c in claims]
    assert len(ids) == len(set(ids))
    for claim in claims:
        if set(claim.checks) == {"trained"}:  # claims about trained networks: measured, not derived
            assert claim.status in ("reproduced", "not reproduced"), claim.id
        else:
            assert {"symbolic", "scipy"} <= set(claim.checks), claim.id
        assert claim.statement and claim.source
    seed_claims = [c for c in claims if c.id.startswith("seed.")]
    assert {c.id for c in seed_claims if c.status == "corrected"} == {"seed.optimal_logits", "seed.loss_rewrite"}
    assert all(c.correction for c in claims if c.status == "corrected")
    assert get_claim("off_target.gap").source.startswith("He et al. 2019")
    with pytest.raises(KeyError, match="no claim"):
        get_claim("nope")


def test_every_status_has_a_meaning_and_the_trained_level_is_not_a_default():
    assert set(STATUS_MEANINGS) == set(STATUSES)
    assert "trained" in LEVELS and "trained" not in DEFAULT_LEVELS
    assert set(DEFAULT_LEVELS) | {"trained"} == set(LEVELS)


def test_claim_validation():
    with pytest.raises(ValueError, match="status"):
        Claim("x", "s", "src", "maybe")
    with pytest.raises(ValueError, match="trained check"):
        Claim("x", "s", "src", "reproduced", checks={"scipy": lambda c: None})
    with pytest.raises(ValueError, match="trained check"):
        Claim("x", "s", "src", "verified", checks={"trained": lambda c: None})
    with pytest.raises(ValueError, match="unknown levels"):
        Claim("x", "s", "src", "verified", checks={"jax": lambda c: None})
    with pytest.raises(ValueError, match="corrected claim"):
        Claim("x", "s", "src", "corrected")


def test_duplicate_ids_are_refused(monkeypatch):
    monkeypatch.setattr(registry, "CLAIM_MODULES", registry.CLAIM_MODULES + ("lstheory.claims.seed",))
    with pytest.raises(RuntimeError, match="duplicate claim ids"):
        all_claims()


def test_verify_runs_every_check_and_passes():
    report = run_verification(levels=("symbolic", "scipy"))
    assert report.passed, report.table()
    assert len(report.claims()) >= 8
    levels_by_claim = {}
    for outcome in report.outcomes:
        levels_by_claim.setdefault(outcome.claim.id, set()).add(outcome.level)
    assert all({"symbolic", "scipy"} <= levels for levels in levels_by_claim.values())
    assert all("trained" not in levels for levels in levels_by_claim.values())
    table = report.table()
    assert "seed.optimal_logits" in table and "all passed" in table
    trained = [c.id for c in all_claims() if "trained" in c.checks]
    assert {c.id for c in report.unchecked} == set(trained) and "lstheory verify --level trained" in table


def _failing_claim():
    return Claim("demo.failing", "a claim whose check fails", "test", "verified",
                 checks={"symbolic": lambda context: CheckResult(False, 0.5, "deliberately failing")})


def _raising_claim():
    def boom(context):
        raise ZeroDivisionError("boom")

    return Claim("demo.raising", "a claim whose check raises", "test", "verified", checks={"scipy": boom})


def test_failures_and_exceptions_are_reported_not_hidden():
    report = run_verification([_failing_claim(), _raising_claim()])
    assert not report.passed
    data = report.as_dict()
    assert data["claims"][0]["checks"][0] == {
        "level": "symbolic", "passed": False, "max_error": 0.5, "detail": "deliberately failing",
        "seconds": data["claims"][0]["checks"][0]["seconds"],
    }
    assert "ZeroDivisionError: boom" in data["claims"][1]["checks"][0]["detail"]
    assert "2 FAILED" in report.table()


def test_cli_exit_status_is_1_on_failure(monkeypatch, capsys):
    monkeypatch.setattr("lstheory.claims.all_claims", lambda: (_failing_claim(),))
    assert main(["verify", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False


def test_cli_json_schema(capsys):
    assert main(["verify", "--json", "--claim", "seed.", "--claim", "conventions.conversion"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True
    assert {c["id"] for c in data["claims"]} >= {"seed.optimal_logits", "conventions.conversion"}
    for claim in data["claims"]:
        assert set(claim) >= {"id", "statement", "source", "checks"}
        for check in claim["checks"]:
            assert set(check) >= {"level", "passed", "max_error"}
            assert check["level"] in LEVELS


def test_cli_errors_are_one_line(capsys):
    assert main(["verify", "--claim", "no.such.claim"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstheory verify: error: no claim id starts with") and err.count("\n") == 1
    assert main(["verify", "--device", "no-such-device"]) == 2
    assert "not available" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "lstheory", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("lstheory ")
