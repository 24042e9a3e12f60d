"""The conformance table (docs page "Conformance") from ``docs/data/conformance.json``.

The data is written by ``lstheory conformance --record`` (:mod:`lstheory.conformance`);
this module only lays it out, so the page is the same on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["conformance_table", "conformance_markdown"]

_FORMS = {
    "cross_entropy": "cross-entropy",
    "kl_divergence": "KL divergence",
    "cross_entropy_plus_constant": "cross-entropy + constant",
    "not_cross_entropy": "not a cross-entropy",
}


def _eps(row: dict) -> str:
    from lstheory.testing.report import fmt_known

    if row["eps_off_target"] is None:
        return "none"
    error = row["eps_error"]
    uniform = "none" if row["eps_uniform"] is None else fmt_known(row["eps_uniform"], error)
    return f"{uniform} (uniform) = {fmt_known(row['eps_off_target'], error)} (off_target)"


def _convention(row: dict) -> str:
    if row["eps_off_target"] == 0 and row["convention"] is not None:
        return "either (no smoothing)"
    return row["convention"] or "neither"


def _verdict(row: dict) -> str:
    documented = row["documented"]
    what = f"eps={documented['eps']:g} {documented['convention']}"
    if row["verdict"] == "passes":
        return f"passes ({what})"
    return f"fails ({what}): {row['cause']}".replace("|", "\\|")


def conformance_markdown(data: dict) -> str:
    """The table and the frameworks not run, as Markdown."""
    lines = [
        f"Recorded on {data.get('date', 'an unknown date')} with lstheory {data.get('lstheory', '?')} "
        f"(Python {data.get('python', '?')}), `lstheory conformance --record`, K = "
        f"{data['rows'][0]['num_classes'] if data.get('rows') else '?'}, seed {data.get('seed', 0)}.",
        "",
        "| framework | version | loss | convention | eps | padding | reduction | precision | form | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data.get("rows", []):
        cells = [row["framework"], row["version"], f"`{row['loss']}`", _convention(row), _eps(row), row["padding"],
                 row["reduction"], row["precision"], _FORMS.get(row["form"], row["form"]), _verdict(row)]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = data.get("skipped", [])
    if skipped:
        lines += ["", "Not run where the data was recorded:", ""]
        lines += [f"- {s['framework']}, `{s['loss']}`: {s['reason']}" for s in skipped]
    return "\n".join(lines) + "\n"


def conformance_table(data_path: Path) -> str:
    """``docs/generated/conformance_table.md``: the recorded table, or a line saying none is recorded."""
    from lstheory.docgen.pages import GENERATED_NOTE

    if not Path(data_path).exists():
        return GENERATED_NOTE + "No conformance data recorded yet: run `lstheory conformance --record`.\n"
    return GENERATED_NOTE + conformance_markdown(json.loads(Path(data_path).read_text()))
