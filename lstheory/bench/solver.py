"""Benchmark ``solver``: the batched Newton solver against a SciPy loop.

:func:`lstheory.torch.solve_optimal_logits` on ``M`` label-smoothing
configurations (``K`` up to 1000, both conventions, ``eps`` log-spaced)
against a Python loop of :func:`lstheory.numeric.minimize_smoothed` (SciPy
trust-region Newton + least-squares polish, the SciPy level of
``lstheory verify``) over an evenly spaced sample of the same
configurations: time per configuration, and the largest disagreement of
the gaps.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import numpy as np
import torch

from lstheory.bench.measure import BenchmarkSuite, Measurement, interleaved_median_times
from lstheory.closed_form import logit_gap, smoothed_target
from lstheory.torch.solver import solve_optimal_logits

__all__ = ["SOLVER_NUM_CLASSES", "solver_configurations", "bench_solver", "SUITE"]

SOLVER_NUM_CLASSES = (2, 3, 5, 10, 30, 100, 300, 1000)
"""K up to 1000; configurations are spread evenly over these."""

SOLVER_EPS_RANGE = (1e-4, 0.999)

def solver_configurations(num_configurations: int, num_classes: Iterable[int] = SOLVER_NUM_CLASSES):
    """``(K, eps, convention)`` triples: every K, both conventions, ``eps`` log-spaced in 1e-4..0.999."""
    num_classes = tuple(num_classes)
    groups = 2 * len(num_classes)
    per_group = [num_configurations // groups + (1 if i < num_configurations % groups else 0) for i in range(groups)]
    configurations = []
    index = 0
    for k in num_classes:
        for convention in ("off_target", "uniform"):
            count = per_group[index]
            index += 1
            for eps in np.geomspace(*SOLVER_EPS_RANGE, count) if count > 1 else np.array([0.1] * count):
                configurations.append((k, float(eps), convention))
    return configurations


def _two_level_targets(num_classes: int, eps: np.ndarray, conventions: list[str]) -> np.ndarray:
    """Rows ``(p_true, p_other, ..., p_other)``: the label is class 0."""
    target = np.empty((len(eps), num_classes))
    for convention in set(conventions):
        rows = np.array([c == convention for c in conventions])
        p_true, p_other = smoothed_target(num_classes, eps[rows], convention=convention)
        target[rows] = np.asarray(p_other)[:, None]
        target[rows, 0] = p_true
    return target


def _closed_form_gaps(configurations, rows) -> np.ndarray:
    """:func:`lstheory.closed_form.logit_gap` of the chosen configurations, one call per convention."""
    rows = np.asarray(rows)
    k = np.array([configurations[i][0] for i in rows])
    eps = np.array([configurations[i][1] for i in rows])
    conventions = np.array([configurations[i][2] for i in rows])
    gaps = np.empty(len(rows))
    for convention in ("off_target", "uniform"):
        chosen = conventions == convention
        if chosen.any():
            gaps[chosen] = logit_gap(k[chosen], eps[chosen], convention=convention)
    return gaps


def _mean_gap(logits: np.ndarray) -> np.ndarray:
    """``z_0 - mean(z_i, i != 0)`` per row (label 0), as ``MinimizationResult.gap`` defines it."""
    return logits[..., 0] - logits[..., 1:].mean(axis=-1)


def bench_solver(
    num_configurations: int = 10_000,
    *,
    scipy_sample: int = 200,
    device: str | torch.device = "cpu",
    repeats: int = 3,
    num_classes: Iterable[int] = SOLVER_NUM_CLASSES,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """(b): the batched solver on all configurations vs a SciPy loop over an even sample of them."""
    from lstheory.numeric import minimize_smoothed

    device = torch.device(device)
    configurations = solver_configurations(num_configurations, num_classes)
    by_k: dict[int, list[int]] = {}
    for index, (k, _, _) in enumerate(configurations):
        by_k.setdefault(k, []).append(index)
    eps_all = np.array([c[1] for c in configurations])
    targets = {
        k: torch.from_numpy(_two_level_targets(k, eps_all[rows], [configurations[i][2] for i in rows])).to(device)
        for k, rows in by_k.items()
    }

    solutions: dict[int, object] = {}

    def solve_all() -> None:
        for k, target in targets.items():
            solutions[k] = solve_optimal_logits(target)

    if progress:
        progress(f"solver: torch, {len(configurations)} configurations x {repeats}")
    torch_seconds = interleaved_median_times({"lstheory": solve_all}, repeats, device)["lstheory"]

    # gaps of every configuration against the closed form (all M), and the solver's own flags
    worst_closed_form = 0.0
    converged = 0
    torch_gap = np.empty(len(configurations))
    for k, rows in by_k.items():
        solution = solutions[k]
        logits = solution.logits.double().cpu().numpy()
        converged += int(solution.converged.sum())
        exact = _closed_form_gaps(configurations, rows)
        worst_closed_form = max(worst_closed_form, float(np.abs(logits[:, :1] - logits[:, 1:] - exact[:, None]).max()))
        torch_gap[rows] = _mean_gap(logits)

    sample = np.unique(np.linspace(0, len(configurations) - 1, min(scipy_sample, len(configurations))).round().astype(int))
    scipy_gap = np.empty(len(sample))
    scipy_converged = 0
    if progress:
        progress(f"solver: SciPy loop, {len(sample)} configurations")
    start = time.perf_counter()
    for j, index in enumerate(sample):
        k, eps, convention = configurations[index]
        result = minimize_smoothed(k, eps, convention=convention, seed=int(index))
        scipy_gap[j] = result.gap
        scipy_converged += bool(result.converged)
    scipy_seconds = time.perf_counter() - start
    worst_scipy = float(np.abs(torch_gap[sample] - scipy_gap).max())
    exact_sample = _closed_form_gaps(configurations, sample)
    scipy_vs_closed_form = float(np.abs(scipy_gap - exact_sample).max())

    m = len(configurations)
    per_torch = torch_seconds / m
    per_scipy = scipy_seconds / len(sample)
    case = f"M={m}, K in {{{', '.join(map(str, by_k))}}}, float64"
    name = "SciPy loop (lstheory.numeric.minimize_smoothed)"
    return [
        Measurement("solver", case, "time per configuration", "us", 1e6 * per_torch, 1e6 * per_scipy, name,
                    f"{per_scipy / per_torch:.0f}x faster; torch: all {m} at once (median of {repeats}); "
                    f"SciPy: {len(sample)} evenly spaced of them, one by one"),
        Measurement("solver", case, "largest gap error vs the closed form", "logit", worst_closed_form,
                    scipy_vs_closed_form, name,
                    f"torch over all {m}, SciPy over its {len(sample)}; converged: torch {converged}/{m}, "
                    f"SciPy {scipy_converged}/{len(sample)}"),
        Measurement("solver", case, "largest gap disagreement, torch vs SciPy", "logit", worst_scipy, math.nan, name,
                    f"max abs difference of z_y - mean(z_i, i != y) over the {len(sample)} configurations both solved"),
    ]


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    return bench_solver(400 if quick else 10_000, scipy_sample=16 if quick else 200, device=device,
                        repeats=1 if quick else 3, progress=progress)


SUITE = BenchmarkSuite(
    name="solver",
    description="solve_optimal_logits on 10,000 configurations vs a SciPy loop: time per configuration, agreement",
    run=_run,
)
