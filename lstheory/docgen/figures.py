"""Figures for the docs, drawn with matplotlib and written as deterministic SVG.

Determinism (see :mod:`lstheory.docgen.svg`): the same library versions always
write the same bytes, so ``lstheory docs --check`` can compare them.  The
plotted values are computed with mpmath (the accuracy oracle of
:mod:`lstheory.accuracy`) and rounded once to float64, not with NumPy's SIMD
``log``/``power`` or a BLAS, whose last bits differ between CPUs: the closed
forms agree with these values to 2 ulp, and the figures are the same on every
machine.  Measured figures (accuracy, benchmarks, training) are drawn from
the committed data files under ``docs/data/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from fractions import Fraction

import mpmath
import numpy as np

from lstheory.accuracy import reference_logit_gap, reference_min_loss
from lstheory.docgen.svg import COLOURS, svg_figure, to_svg

FIGURE_NUM_CLASSES = (2, 10, 100, 1000, 32000)


def _log_grid(low: float, high: float, count: int) -> list[float]:
    """``count`` log-spaced floats from ``low`` to ``high``, each correctly rounded (mpmath)."""
    with mpmath.workdps(40):
        a, b = mpmath.log10(mpmath.mpf(low)), mpmath.log10(mpmath.mpf(high))
        return [float(mpmath.power(10, a + (b - a) * i / (count - 1))) for i in range(count)]


def _gaps(k: int, eps: list[float], convention: str) -> list[float]:
    return [float(reference_logit_gap(k, e, convention)) for e in eps]


def gap_vs_eps() -> bytes:
    """The optimal gap against eps for several K, both conventions."""
    with svg_figure() as figure:
        axes = figure.subplots()
        eps = _log_grid(1e-4, 1.0, 400)
        for colour, k in zip(COLOURS, FIGURE_NUM_CLASSES):
            axes.plot(eps, _gaps(k, eps, "off_target"), color=colour, label=f"K = {k}")
            axes.plot(eps, _gaps(k, eps, "uniform"), color=colour, linestyle="--")
        axes.set_xscale("log")
        axes.set_ylim(-4, 20)
        axes.axhline(0, color="black", linewidth=0.8)
        axes.set_xlabel("eps")
        axes.set_ylabel("optimal gap  z_y - z_i")
        axes.set_title("Optimal logit gap: off_target (solid) and uniform (dashed)")
        axes.legend(loc="upper right", fontsize=8)
        return to_svg(figure)


def convention_difference() -> bytes:
    """How much larger the uniform gap is than the off_target gap at equal eps."""
    with svg_figure() as figure:
        axes = figure.subplots()
        eps = _log_grid(1e-4, 0.999, 400)
        for k in FIGURE_NUM_CLASSES:
            difference = [float(reference_logit_gap(k, e, "uniform") - reference_logit_gap(k, e, "off_target"))
                          for e in eps]
            axes.plot(eps, difference, label=f"K = {k}")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("eps")
        axes.set_ylabel("uniform gap - off_target gap")
        axes.set_title("The conventions differ most for few classes and large eps")
        axes.legend(fontsize=8)
        return to_svg(figure)


def loss_along_gap() -> bytes:
    """The loss on two-level logits (g, 0, ..., 0) against g, with the optimum marked.

    On those logits the loss is ``log(e^g + K - 1) - p_true g`` (derivation
    ``general_optimum_symbolic_k``, step 3), evaluated exactly with mpmath.
    """
    with svg_figure() as figure:
        axes = figure.subplots()
        k = 10
        gaps = np.linspace(-2, 14, 500)  # start + i * step: exact IEEE operations, the same everywhere
        for eps, convention in ((0.1, "off_target"), (0.1, "uniform"), (0.3, "off_target"), (0.0, "off_target")):
            mass = Fraction(eps) if convention == "off_target" else Fraction(eps) * (k - 1) / k
            with mpmath.workdps(40):
                p_true = 1 - mpmath.mpf(mass.numerator) / mass.denominator
                losses = [float(mpmath.log(mpmath.exp(g) + k - 1) - p_true * g) for g in gaps.tolist()]
            label = f"eps = {eps}, {convention}" if eps else "eps = 0 (one-hot): no minimum"
            (line,) = axes.plot(gaps, losses, label=label)
            if eps:
                best = float(reference_logit_gap(k, eps, convention))
                axes.plot([best], [float(reference_min_loss(k, eps, convention))], "o", color=line.get_color())
        axes.set_xlabel("gap g  (logits (g, 0, ..., 0), K = 10)")
        axes.set_ylabel("cross-entropy")
        axes.set_title("Loss along the gap; dots: closed-form optimum and minimum")
        axes.legend(fontsize=8)
        return to_svg(figure)


def benchmarks(data_path: Path) -> bytes | None:
    """Time and memory ratios of the recorded benchmarks (``docs/data/benchmarks.json``), one panel each."""
    from lstheory.bench.records import load_records

    measurements = [m for entry in load_records(data_path).values() for m in entry.get("measurements", [])]
    panels = {
        "time": [m for m in measurements if m.get("ratio") is not None and m["unit"] in ("ms", "s", "us")],
        "peak extra memory": [m for m in measurements if m.get("ratio") is not None and m["unit"] == "MiB"],
    }
    panels = {title: rows for title, rows in panels.items() if rows}
    if not panels:
        return None
    height = 1.2 + 0.35 * sum(len(rows) for rows in panels.values())
    with svg_figure(figsize=(6.4, height)) as figure:
        axes_list = figure.subplots(len(panels), 1, squeeze=False,
                                    height_ratios=[len(rows) for rows in panels.values()])[:, 0]
        for axes, (title, rows) in zip(axes_list, panels.items()):
            names = [f"{m['benchmark']}: {m['case']}" for m in rows]
            # a case measured against several baselines gets one bar per baseline, named
            names = [f"{name} vs {m['baseline_name']}" if names.count(name) > 1 else name for name, m in zip(names, rows)]
            axes.barh(names, [m["ratio"] for m in rows], color=COLOURS[0])
            axes.axvline(1, color="black", linewidth=0.8)
            axes.set_xlim(0, max(1.1, 1.1 * max(m["ratio"] for m in rows)))
            axes.invert_yaxis()
            axes.set_title(f"{title}: lstheory / baseline (lower is better)", fontsize=10)
        return to_svg(figure)


def training_gap(data_path: Path) -> bytes | None:
    """The recorded training curves (``docs/data/experiment.json``, written by ``lstheory experiment --record``)."""
    from lstheory.experiment import draw_gap_figure

    return draw_gap_figure(json.loads(data_path.read_text())) if data_path.exists() else None


FIGURES: dict[str, Callable[[], bytes]] = {
    "gap_vs_eps.svg": gap_vs_eps,
    "convention_difference.svg": convention_difference,
    "loss_along_gap.svg": loss_along_gap,
}


def neural_collapse_confidence(records: dict) -> bytes:
    """Confidence against weight decay: neural_collapse_optimum for both conventions and the trained points."""
    from lstheory.neural_collapse import neural_collapse_optimum

    recorded = records.get("trained.neural_collapse", {}).get("figures", {})
    n = int(recorded.get("samples_per_class", 100))
    with svg_figure() as figure:
        axes = figure.subplots()
        decays = _log_grid(1e-4, 10**-1.5, 300)  # the closed form itself uses only correctly rounded operations
        for convention, style in (("uniform", "-"), ("off_target", "--")):
            confidence = [neural_collapse_optimum(10, 0.1, samples_per_class=n, classifier_decay=d, feature_decay=d,
                                                  convention=convention).confidence for d in decays]
            axes.plot(decays, confidence, style, color=COLOURS[0], label=f"neural_collapse_optimum ({convention})")
        runs = recorded.get("runs", [])
        if runs:
            axes.plot([r["decay"] for r in runs], [r["confidence"] for r in runs], "o", color=COLOURS[1],
                      label="trained network (uniform, mean over the 1,000 training images)")
        axes.axhline(0.1, color="black", linewidth=0.8, linestyle=":")
        axes.set_xscale("log")
        axes.set_xlabel("weight decay  lambda_W = lambda_H")
        axes.set_ylabel("confidence on the true class")
        axes.set_title(f"Neural collapse with label smoothing: K = 10, n = {n}, eps = 0.1")
        axes.legend(fontsize=8, loc="upper right")
        return to_svg(figure)


def reliability_diagrams(records: dict) -> bytes | None:
    """Reliability diagrams (15 bins, test images of the 3 seeds pooled): plain, smoothed, temperature-scaled."""
    recorded = records.get("trained.calibration", {}).get("figures", {})
    diagrams = recorded.get("reliability")
    if not diagrams:
        return None
    titles = {"plain": "no smoothing", "smoothed": "label smoothing 0.1", "temperature_scaled": "temperature scaling"}
    with svg_figure(figsize=(9.6, 3.4)) as figure:
        for axes, (name, title) in zip(figure.subplots(1, 3, sharey=True), titles.items()):
            diagram = diagrams[name]
            width = 1.0 / diagram["bins"]
            lefts = np.arange(diagram["bins"]) * width
            accuracy = [a if a is not None else 0.0 for a in diagram["accuracy"]]
            axes.bar(lefts, accuracy, width=width, align="edge", color=COLOURS[0], edgecolor="white", label="accuracy")
            confidence = [(left, c) for left, c in zip(lefts, diagram["confidence"]) if c is not None]
            axes.plot([left + width / 2 for left, _ in confidence], [c for _, c in confidence], "o", markersize=3,
                      color=COLOURS[1], label="mean confidence")
            axes.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":")
            ece = np.mean(recorded["ece"][name])
            axes.set_title(f"{title}\nECE {ece:.3f}", fontsize=9)
            axes.set_xlabel("confidence")
            axes.set_xlim(0, 1)
            axes.set_ylim(0, 1)
        figure.axes[0].set_ylabel("accuracy")
        figure.axes[0].legend(fontsize=7, loc="upper left")
        return to_svg(figure)


def trained_figures(data_path: Path) -> dict[str, bytes]:
    """The figures drawn from the trained level's recorded measurements (``docs/data/trained_claims.json``)."""
    from lstheory.trained.records import load_records

    records = load_records(data_path).get("claims", {})
    drawn = {"neural_collapse_confidence.svg": neural_collapse_confidence(records),
             "reliability_diagrams.svg": reliability_diagrams(records)}
    return {name: content for name, content in drawn.items() if content is not None}
