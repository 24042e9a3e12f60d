"""The generated loss-floor table and the trained level's section and figures."""

from __future__ import annotations

import math
import pathlib

import lstheory
from lstheory.docgen import figures, pages

DOCS = pathlib.Path(__file__).parent.parent / "docs"
RECORD = DOCS / "data" / "trained_claims.json"


def test_loss_floor_table_rows_are_min_loss_in_three_units():
    table = pages.loss_floor_table()
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 8  # four vocabularies, two conventions
    for k, _, convention, nats, bits, perplexity in rows:
        exact = float(lstheory.min_loss(int(k.strip().replace(",", "")), 0.1, convention=convention.strip()))
        assert float(nats) == round(exact, 4)
        assert float(bits) == round(exact / math.log(2), 4)
        assert float(perplexity) == round(math.exp(exact), 4)
    assert "| 50,257 | GPT-2 | uniform | 1.4075 |" in table


def test_trained_section_without_a_record_says_so(tmp_path):
    section = pages.trained_claims_section(tmp_path / "missing.json")
    assert section.count("not recorded yet") == 5
    assert set(figures.trained_figures(tmp_path / "missing.json")) == {"neural_collapse_confidence.svg"}


def test_trained_section_and_figures_from_the_committed_record():
    section = pages.trained_claims_section(RECORD)
    assert "not recorded yet" not in section and "| [`trained.calibration`](#trainedcalibration) | not reproduced |" in section
    drawn = figures.trained_figures(RECORD)
    assert set(drawn) == {"neural_collapse_confidence.svg", "reliability_diagrams.svg"}
    assert drawn == figures.trained_figures(RECORD)  # deterministic
    assert b"trained network" in drawn["neural_collapse_confidence.svg"]


def test_pages_reference_the_new_generated_files():
    assert '--8<-- "generated/loss_floor.md"' in (DOCS / "conventions.md").read_text()
    claims = (DOCS / "claims.md").read_text()
    assert '--8<-- "generated/trained_claims.md"' in claims and "not reproduced" in claims
    derivations = (DOCS / "derivations.md").read_text()
    assert "Neural collapse under label smoothing" in derivations and "Mixup commutes" in derivations
