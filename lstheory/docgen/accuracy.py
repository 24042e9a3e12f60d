"""The accuracy page and figure, generated from the recorded measurement ``docs/data/accuracy.json``.

``lstheory accuracy --record`` measures (:func:`lstheory.accuracy.accuracy_record`)
and writes the file; ``lstheory docs`` turns it into ``accuracy.md`` and
``figures/accuracy_ulps.svg``.  The ulp errors of ``np.log`` differ in the last
bit between NumPy's SIMD targets, so the page shows one recorded machine's
figures, says which, and never depends on the machine that builds the docs.
Infinite errors are stored as the string ``"inf"`` (JSON has no infinity).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

DATA_PATH = Path("docs") / "data" / "accuracy.json"
COLUMNS = (("logit_gap", "logit_gap"), ("naive_logit_gap", "naive gap"),
           ("min_loss", "min_loss"), ("naive_min_loss", "naive min_loss"))


def _encode(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a measurement (from :func:`lstheory.accuracy.accuracy_record`) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_encode(record), indent=1, allow_nan=False) + "\n")


def load_record(path: Path) -> dict[str, Any] | None:
    """The recorded measurement, or ``None`` when the file does not exist."""
    return _decode(json.loads(path.read_text())) if path.exists() else None


def _ulps(value: float) -> str:
    if math.isinf(value):
        return "inf (overflow or NaN)"
    return f"{value:.3g}" if value < 1e4 else f"{value:.2e}"


def accuracy_page(record: dict[str, Any] | None) -> str:
    """``accuracy.md``: the promise, the recorded worst errors by region, how, and the figure."""
    from lstheory.accuracy import HARD_NUM_CLASSES
    from lstheory.docgen.pages import GENERATED_NOTE

    lines = [
        GENERATED_NOTE,
        "# Accuracy",
        "",
        "`lstheory.logit_gap` promises 2 ulp and `lstheory.min_loss` 4 ulp in float64, against mpmath at "
        "60 digits with exact inputs, for every `2 <= K <= 2**53` and every `eps` in `[5e-324, 1]`. "
        f"The hard points are `lstheory.accuracy.hard_points()`: K in {list(HARD_NUM_CLASSES)}, eps at the gap's "
        "zero and 40 floats either side, subnormals, the overflow point of the naive formula, eps next to 1, "
        "and log-uniform random eps. The *naive* columns evaluate the formulas as usually typed, "
        "`log((K-1)*(1-eps)/eps)` and `-p_true*log(p_true) - (K-1)*p_other*log(p_other)`.",
        "",
    ]
    if record is None:
        return "\n".join(lines + ["No measurement is recorded yet: run `lstheory accuracy --record`.", ""])
    machine = record["machine"]
    lines += [
        f"The worst errors below were recorded on {record['date']} with `lstheory accuracy --record` "
        f"({machine['cpu']}, Python {machine['python']}, NumPy {machine['numpy']}, SIMD dispatch "
        f"{' '.join(machine['dispatch']) or 'baseline only'}). The last bit of `np.log` differs between NumPy's "
        "SIMD targets, so another machine measures slightly different figures (for example 0.99 or 1.00 ulp); "
        "the bounds hold on all of them. `lstheory accuracy` measures on yours, and "
        "`python -m pytest tests/test_closed_form_accuracy.py` asserts the bounds on every run (CI runs it "
        "twice: with the CPU's best SIMD target and with AVX-512 disabled through `NPY_DISABLE_CPU_FEATURES`).",
        "",
        "Worst error in ulps:",
        "",
        "| region | convention | points | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in record["regions"]:
        cells = " | ".join(_ulps(row[key]) for key, _ in COLUMNS)
        lines.append(f"| {row['region']} | {row['convention']} | {row['points']} | {cells} |")
    lines += [
        "",
        "How: the argument of each logarithm is formed in double-double arithmetic (Dekker's TwoProduct, "
        "Knuth's TwoSum) and rounded once; tiny eps is scaled by 2**600 before dividing; the minimum loss is "
        "written as a sum of non-negative terms, `-(1-c) log(1-c) + c log((K-1)/c)`, which cannot cancel.",
        "",
        "![Ulp error near the zero of the gap](figures/accuracy_ulps.svg)",
        "",
    ]
    return "\n".join(lines)


def accuracy_figure(record: dict[str, Any] | None) -> bytes | None:
    """``figures/accuracy_ulps.svg``: the recorded errors near the gap's zero, lstheory against the naive formula."""
    from lstheory.docgen.svg import svg_figure, to_svg

    if record is None:
        return None
    near = record["near_zero"]
    floor = 1e-3
    with svg_figure() as figure:
        axes = figure.subplots()
        for key, label in (("naive", "naive log((K-1)*(1-eps)/eps)"), ("accurate", "lstheory.logit_gap")):
            axes.semilogy(near["offsets"], [max(float(f"{u:.4g}"), floor) for u in near[key]], ".",
                          markersize=3, label=label)
        axes.axhline(2, color="black", linewidth=0.8, linestyle=":")
        axes.set_xlabel(f"eps - {near['zero']}, in ulps of {near['zero']}  (K = {near['num_classes']}: the gap's zero)")
        axes.set_ylabel(f"error in ulps (floored at {floor:g})")
        axes.set_title("Accuracy near the zero of the off_target gap (recorded)")
        axes.legend(fontsize=8)
        return to_svg(figure)
