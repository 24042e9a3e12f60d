"""`lstheory table` and `lstheory docs`: generated docs agree with the closed forms and cannot go stale."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

import lstheory
from lstheory.cli import main
from lstheory.docgen.tables import QUANTITIES, compute_table, format_table

DOCS = pathlib.Path(__file__).parent.parent / "docs"
CLASSES = [2, 10, 100, 1000, 32000]
EPS = [0.0, 0.01, 0.05, 0.1, 0.2, 1.0]


def _closed_form(quantity, k, e, convention):
    if quantity == "gap":
        return float(lstheory.logit_gap(k, e, convention=convention))
    if quantity in ("p_true", "p_other"):
        return float(lstheory.smoothed_target(k, e, convention=convention)[quantity == "p_other"])
    if quantity == "min_loss":
        return float(lstheory.min_loss(k, e, convention=convention))
    other = "uniform" if convention == "off_target" else "off_target"
    try:
        return float(lstheory.convert_eps(k, e, src=convention, dst=other))
    except ValueError:
        return None


def _run(capsys, *args):
    status = main(["table", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
def test_csv_agrees_bit_for_bit(quantity, convention, capsys):
    status, out, _ = _run(capsys, "--classes", ",".join(map(str, CLASSES)), "--eps", ",".join(map(str, EPS)),
                          "--quantity", quantity, "--convention", convention, "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["num_classes", "eps", "convention", quantity]
    assert len(rows) == 1 + len(CLASSES) * len(EPS)
    for k, e, c, value in rows[1:]:
        expected = _closed_form(quantity, int(k), float(e), c)
        assert c == convention
        assert (value == "" and expected is None) or float(value) == expected  # exact equality


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
def test_json_agrees_bit_for_bit(quantity, capsys):
    status, out, _ = _run(capsys, "--eps", "0,0.1,0.95,1", "--quantity", quantity, "--format", "json")
    assert status == 0
    for row in json.loads(out):
        expected = _closed_form(quantity, row["num_classes"], row["eps"], row["convention"])
        value = row[quantity]
        if expected is None:
            assert value is None
        elif expected in (float("inf"), float("-inf")):
            assert value == ("inf" if expected > 0 else "-inf")
        else:
            assert value == expected


def test_markdown_and_latex_round_and_say_so(capsys):
    status, out, _ = _run(capsys, "--classes", "10", "--eps", "0.1")
    assert status == 0 and "| 10 | 4.3944 |" in out and "rounded to 4 decimals" in out
    status, out, _ = _run(capsys, "--classes", "10", "--eps", "0,0.1", "--format", "latex")
    assert status == 0 and "\\begin{tabular}" in out and "$4.3944$" in out and "$\\infty$" in out
    assert "rounded to 4 decimals" in out


def test_default_grid_matches_the_issue():
    table = compute_table("gap", [2, 10, 100, 1000, 32000], [0.01, 0.05, 0.1, 0.2])
    assert len(table.rows()) == 20
    assert format_table(table, "csv").count("\n") == 21


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--classes", "1"], "num_classes"),
        (["--eps", "1.5"], "eps"),
        (["--eps", "-0.1"], "eps"),
        (["--quantity", "entropy"], "invalid choice"),
        (["--format", "html"], "invalid choice"),
        (["--classes", "ten"], "comma-separated integers"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(args, fragment):
    done = subprocess.run([sys.executable, "-m", "lstheory", "table", *args], capture_output=True, text=True)
    assert done.returncode != 0
    assert fragment in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_docs_check_passes_on_main_and_names_a_hand_edited_file(tmp_path, capsys):
    assert main(["docs", "--check", "--root", str(DOCS)]) == 0
    assert "current" in capsys.readouterr().out
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy)
    edited = copy / "generated" / "gap_uniform.md"
    edited.write_text(edited.read_text().replace("4.5109", "4.5110"))
    (copy / "figures" / "gap_vs_eps.svg").unlink()
    assert main(["docs", "--check", "--root", str(copy)]) == 1
    out = capsys.readouterr().out
    assert str(edited) in out and "gap_vs_eps.svg" in out
    assert "claims.md" not in out  # only the stale files are named
    assert main(["docs", "--root", str(copy)]) == 0
    assert main(["docs", "--check", "--root", str(copy)]) == 0


def test_at_least_four_figures_each_referenced_from_a_page():
    figures = sorted((DOCS / "figures").glob("*.svg"))
    assert len(figures) >= 4
    pages = "".join(p.read_text() for p in DOCS.glob("*.md"))
    for figure in figures:
        assert f"figures/{figure.name}" in pages, figure.name


def test_figures_are_deterministic_svg():
    from lstheory.docgen import figures

    first, second = figures.gap_vs_eps(), figures.gap_vs_eps()
    assert first == second
    assert b"<dc:date>" not in first
