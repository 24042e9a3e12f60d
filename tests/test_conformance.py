"""``lstheory conformance``: the checker on the real installed frameworks (issue 10, item 9).

A framework that is not installed is skipped with the reason (extra ``conformance``).
"""

from __future__ import annotations

import json

import pytest

import lstheory.cli as cli
from lstheory import conformance
from lstheory.docgen.conformance import conformance_markdown


@pytest.mark.parametrize("case", conformance.CASES, ids=lambda case: f"{case.package}: {case.loss}")
def test_every_framework_loss_does_what_its_documentation_says(case):
    try:
        row = conformance.run_case(case)
    except conformance.FrameworkMissing as reason:
        pytest.skip(str(reason))
    assert row["verdict"] == "passes", row
    assert row["is_cross_entropy"] and row["form"] == "cross_entropy"
    assert row["eps_uniform"] == pytest.approx(case.eps, abs=row["eps_error"])
    if case.eps > 0:  # at eps = 0 both conventions are the same target
        assert row["convention"] == "uniform"
    assert row["version"] != "not installed"


def test_pytorch_padding_class_gets_smoothing_mass_like_any_other():
    row = conformance.run_case(conformance.CASES[1])
    assert row["padding"] == "label 0: ignored; the padding class gets smoothing mass"


def test_a_framework_that_cannot_be_imported_is_listed_with_the_reason():
    def missing():
        return conformance._import("no_such_framework_here")

    case = conformance.Case("Nothing", "no-such-package", "loss()", missing)
    data = conformance.run_conformance((conformance.CASES[0], case))
    assert [row["framework"] for row in data["rows"]] == ["PyTorch"]
    assert data["skipped"][0]["reason"].startswith("import no_such_framework_here failed: ModuleNotFoundError")
    text = conformance_markdown(data)
    assert "| PyTorch | " in text and "- Nothing, `loss()`: import no_such_framework_here failed" in text


def test_the_committed_data_has_versions_and_makes_the_table():
    from pathlib import Path

    data = json.loads((Path(__file__).parent.parent / "docs" / "data" / "conformance.json").read_text())
    assert all(row["version"] and row["version"] != "not installed" for row in data["rows"])
    table = conformance_markdown(data)
    assert table.count("\n| ") == len(data["rows"]) + 1  # the header and one line per loss


def test_cli_prints_json_and_records(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("conformance",))
    monkeypatch.setattr(conformance, "CASES", conformance.CASES[:1])
    path = tmp_path / "conformance.json"
    assert cli.main(["conformance", "--json", "--record", "--data", str(path)]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert printed["rows"][0]["loss"] == "F.cross_entropy(label_smoothing=0.1)"
    assert json.loads(path.read_text())["rows"] == printed["rows"] and "recorded 1 losses" in err
    assert cli.main(["conformance", "--seed", "-1"]) == 2
