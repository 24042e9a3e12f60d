"""Building blocks the claims' checks share: proofs, tolerance comparisons, cached sweeps.

The SciPy sweeps are computed once per process and shared by every claim that
reads them (gap, confidence, minimum value and conversion all come from the
same minimisations).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable, Sequence

import numpy as np

from lstheory.claims.registry import CheckResult
from lstheory.symbolic.derivation import Derivation

GAP_TOLERANCE = 1e-9
"""Absolute agreement required between a numeric optimum's gap and the closed form."""

SWEEP_NUM_CLASSES: tuple[int, ...] = (2, 3, 10, 100, 1000, 10000)
SWEEP_EPS: tuple[float, ...] = (1e-6, 1e-3, 0.1, 0.5, 0.9, 1 - 1e-6)


def proven(derivation: Derivation, steps: Sequence[int] | None = None) -> CheckResult:
    """Prove the chosen steps (1-based; all by default) of a derivation exactly."""
    chosen = range(1, len(derivation.steps) + 1) if steps is None else steps
    failed = [n for n in chosen if not derivation.steps[n - 1].check()]
    if failed:
        return CheckResult(False, None, f"{derivation.title}: steps {failed} not proven")
    return CheckResult(True, 0.0, f"{derivation.title}: steps {list(chosen)} proven exactly")


def all_of(*results: CheckResult) -> CheckResult:
    """Combine checks: passes when all pass; the worst error; details joined."""
    errors = [r.max_error for r in results]
    worst = None if any(e is None for e in errors) else max(errors)
    return CheckResult(all(r.passed for r in results), worst, "; ".join(r.detail for r in results))


def within(errors: Iterable[float], tolerance: float, what: str) -> CheckResult:
    """Pass when every error is finite and ``<= tolerance``."""
    values = np.asarray(list(errors), dtype=np.float64)
    worst = float(np.max(values)) if values.size else 0.0
    passed = bool(values.size and np.all(np.isfinite(values)) and worst <= tolerance)
    return CheckResult(passed, worst, f"{what}: worst {worst:.3g} over {values.size} cases (tolerance {tolerance:g})")


@lru_cache(maxsize=None)
def smoothed_sweep(convention: str) -> tuple:
    """SciPy minimisations over :data:`SWEEP_NUM_CLASSES` x :data:`SWEEP_EPS`.

    Returns a tuple of ``(num_classes, eps, MinimizationResult)``.
    """
    from lstheory.numeric import sweep

    pairs = [(k, e) for k in SWEEP_NUM_CLASSES for e in SWEEP_EPS]
    results = sweep(pairs, convention=convention, progress=False)  # inside `lstheory verify`'s own bar
    return tuple((k, e, r) for (k, e), r in zip(pairs, results))


@lru_cache(maxsize=None)
def dirichlet_targets(seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random full-support targets of several sizes (concentration 0.5: far from uniform)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.dirichlet(np.full(k, 0.5)) for k in (2, 3, 5, 50, 1000))


@lru_cache(maxsize=None)
def general_sweep(seed: int = 0) -> tuple:
    """SciPy minimisations for :func:`dirichlet_targets`: ``(target, MinimizationResult)``."""
    from lstheory.numeric import minimize_cross_entropy

    return tuple((p, minimize_cross_entropy(p, seed=seed + i)) for i, p in enumerate(dirichlet_targets(seed)))


def symbolic_check(derivation_function: Callable[[], Derivation], *steps: int) -> Callable:
    """A check proving the chosen steps (1-based; all when none are given) of ``derivation_function()``."""

    def check(context) -> CheckResult:
        return proven(derivation_function(), steps=list(steps) or None)

    return check
