"""Tables of the closed forms in csv, json, markdown and LaTeX (``lstheory table``).

Values come from :mod:`lstheory.closed_form` and are written at full
precision (``repr`` of the float) in csv and json, so they agree with the
closed forms bit for bit; markdown and LaTeX round to 4 decimals and say so.
Infinite values (``eps = 0``) are written ``inf``/``-inf`` (csv, markdown,
LaTeX) and as the strings ``"inf"``/``"-inf"`` in json, which has no infinity.
A conversion with no answer (an off_target ``eps > (K-1)/K`` has no uniform
equivalent in ``[0, 1]``) is an empty csv field, ``null`` in json and ``n/a``
elsewhere.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Callable, Sequence

from lstheory._validation import CONVENTIONS, as_eps, as_num_classes, check_convention
from lstheory.closed_form import convert_eps, logit_gap, min_loss, smoothed_target

FORMATS: tuple[str, ...] = ("markdown", "latex", "csv", "json")
ROUNDING_DECIMALS = 4


def _other(convention: str) -> str:
    return "uniform" if convention == "off_target" else "off_target"


def _eps_other_convention(k: int, eps: float, convention: str) -> float | None:
    try:
        return float(convert_eps(k, eps, src=convention, dst=_other(convention)))
    except ValueError:
        return None


QUANTITIES: dict[str, tuple[str, Callable[[int, float, str], float | None]]] = {
    "gap": ("optimal logit gap z_y - z_i", lambda k, e, c: float(logit_gap(k, e, convention=c))),
    "p_true": ("target mass on the true class", lambda k, e, c: float(smoothed_target(k, e, convention=c)[0])),
    "p_other": ("target mass on each other class", lambda k, e, c: float(smoothed_target(k, e, convention=c)[1])),
    "min_loss": ("minimum loss (entropy of the target)", lambda k, e, c: float(min_loss(k, e, convention=c))),
    "eps_other_convention": ("the same target's eps in the other convention", _eps_other_convention),
}


@dataclass(frozen=True)
class Table:
    """A computed table: one value per ``(num_classes, eps)`` pair."""

    quantity: str
    convention: str
    num_classes: tuple[int, ...]
    eps: tuple[float, ...]
    values: dict[tuple[int, float], float | None]

    def rows(self) -> list[tuple[int, float, float | None]]:
        return [(k, e, self.values[(k, e)]) for k in self.num_classes for e in self.eps]


def compute_table(
    quantity: str, num_classes: Sequence[int], eps: Sequence[float], convention: str = "off_target"
) -> Table:
    """Evaluate ``quantity`` on the grid ``num_classes x eps`` (validated like the closed forms)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}; got {quantity!r}")
    check_convention(convention)
    ks = tuple(int(as_num_classes(int(k))) for k in num_classes)
    es = tuple(float(as_eps(float(e))) for e in eps)
    if not ks or not es:
        raise ValueError("a table needs at least one class count and one eps")
    compute = QUANTITIES[quantity][1]
    return Table(quantity, convention, ks, es, {(k, e): compute(k, e, convention) for k in ks for e in es})


def _full(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _json_value(value: float | None):
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _rounded(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{ROUNDING_DECIMALS}f}"


def _latex_cell(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "$" + _rounded(value).replace("inf", "\\infty") + "$"


def _eps_label(e: float) -> str:
    return repr(e)


def format_table(table: Table, fmt: str) -> str:
    """Render a :class:`Table` as ``markdown``, ``latex``, ``csv`` or ``json``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    title = QUANTITIES[table.quantity][0]
    if fmt == "csv":
        out = io.StringIO()
        out.write(f"num_classes,eps,convention,{table.quantity}\n")
        for k, e, v in table.rows():
            out.write(f"{k},{e!r},{table.convention},{_full(v)}\n")
        return out.getvalue()
    if fmt == "json":
        rows = [
            {"num_classes": k, "eps": e, "convention": table.convention, table.quantity: _json_value(v)}
            for k, e, v in table.rows()
        ]
        return json.dumps(rows, indent=2) + "\n"
    note = f"{title}, {table.convention} convention; values rounded to {ROUNDING_DECIMALS} decimals (csv/json: full precision)"
    if fmt == "markdown":
        header = "| K \\ eps | " + " | ".join(_eps_label(e) for e in table.eps) + " |"
        rule = "|---:|" + "---:|" * len(table.eps)
        lines = [header, rule]
        for k in table.num_classes:
            lines.append(f"| {k} | " + " | ".join(_rounded(table.values[(k, e)]) for e in table.eps) + " |")
        return "\n".join(lines) + f"\n\n*{note}.*\n"
    columns = "r" * (len(table.eps) + 1)
    lines = [
        f"% {note}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\hline",
        "$K \\backslash \\varepsilon$ & " + " & ".join(f"${e!r}$" for e in table.eps) + " \\\\",
        "\\hline",
    ]
    for k in table.num_classes:
        cells = [_latex_cell(table.values[(k, e)]) for e in table.eps]
        lines.append(f"{k} & " + " & ".join(cells) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


__all__ = ["CONVENTIONS", "FORMATS", "QUANTITIES", "Table", "compute_table", "format_table"]
