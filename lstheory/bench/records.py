"""The committed benchmark data (``docs/data/benchmarks.json``): reading, recording, formatting.

No torch here: ``lstheory docs`` reads the data to generate the benchmark
tables without importing the benchmarks themselves.

The file holds one entry per benchmark suite, each from the run that last
recorded it (``lstheory bench --record``)::

    {"suites": {"loss": {"date": "2026-12-02", "command": "lstheory bench --only loss --record",
                         "machine": {...}, "seconds": 41.2, "measurements": [{...}, ...]},
                ...}}

Each measurement has the fields of :class:`lstheory.bench.measure.Measurement`
plus ``ratio`` (``None`` where it does not apply).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

__all__ = ["DEFAULT_DATA_PATH", "load_records", "record_suites", "format_number", "format_rows", "suite_section"]

DEFAULT_DATA_PATH = Path("docs") / "data" / "benchmarks.json"


def load_records(path: Path) -> dict[str, dict]:
    """The recorded suites (name -> entry); empty when the file does not exist."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    suites = data.get("suites")
    if not isinstance(suites, dict):
        raise ValueError(f"{path}: expected a JSON object with a 'suites' mapping (see lstheory.bench.records)")
    return suites


def record_suites(path: Path, entries: dict[str, dict]) -> None:
    """Replace the named suites' entries in ``path`` (keeping the others) and write it back, sorted."""
    suites = load_records(path)
    suites.update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"suites": dict(sorted(suites.items()))}, indent=2, allow_nan=False)
    path.write_text(text + "\n")


def format_number(value: float | None) -> str:
    """Three significant digits, fixed-point from 1e-3 to 1e5, else scientific; ``n/a`` for NaN/None."""
    if value is None or math.isnan(value):
        return "n/a"
    if value == 0 or math.isinf(value):
        return str(value) if value else "0"
    magnitude = abs(value)
    if magnitude >= 1e5:
        return f"{value:.2e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1e-3:
        return f"{value:.{max(0, 2 - math.floor(math.log10(magnitude)))}f}"
    return f"{value:.1e}"


TABLE_HEADER = (
    "| benchmark | case | quantity | lstheory | baseline | ratio | baseline is | note |\n"
    "|---|---|---|---:|---:|---:|---|---|"
)


def format_rows(measurements: Iterable[dict]) -> str:
    """A Markdown table of measurement dicts (``Measurement`` fields plus ``ratio``)."""
    lines = [TABLE_HEADER]
    for m in measurements:
        quantity = f"{m['quantity']} ({m['unit']})" if m.get("unit") else m["quantity"]
        lines.append(
            f"| {m['benchmark']} | {m['case']} | {quantity} | {format_number(m['lstheory'])} | "
            f"{format_number(m['baseline'])} | {format_number(m.get('ratio'))} | {m['baseline_name']} | "
            f"{m.get('note', '')} |"
        )
    return "\n".join(lines)


def suite_section(name: str, entry: dict) -> str:
    """One recorded suite as Markdown: when, how and where it was measured, then its table."""
    machine = entry.get("machine", {})
    where = ", ".join(f"{key} {value}" for key, value in machine.items())
    lines = [
        f"Suite `{name}`, recorded on {entry.get('date', 'an unknown date')} with `{entry.get('command', '?')}` "
        f"in {entry.get('seconds', 0):.0f} s.",
        "",
        f"Machine: {where}.",
        "",
        format_rows(entry.get("measurements", [])),
    ]
    return "\n".join(lines) + "\n"
