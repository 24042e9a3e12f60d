"""Fuzzing ``solve_optimal_logits`` on extreme targets: it always returns, and "converged" means right.

Drawn: float64 and float32 rows with ``K`` from 2 to ``10**5``; masses spread over many decades
(down to ``1e-300``), crowded at the top of the range (row sums that overflow), all tiny,
near one-hot, or smoothed one-hot with tiny eps; starts at zero or far away (logit differences
up to ``10**6``); ``max_iter`` from 0 to 1000 (to 50 for ``K > 10``, where steps cost more).

* Wall-clock guards turn a hang into a failure instead of a stalled run: each solve must return
  within 30 s (a failure Hypothesis can shrink), and pytest-timeout ends the whole test (and the
  run, printing every stack) past its budget.
* Every row whose ``converged`` is true has the right logits: ``log(p / sum(p))`` (the gauge
  ``logsumexp = 0``), computed here from the masses in float64, within the solver's ``tol``
  plus the rounding of the logits in their dtype; its loss is ``-sum_c p_c log(p_c / sum(p))``.
* Every row has finite logits, at most ``max_iter`` steps, and a solution of the input's shape.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from lstheory.torch import solve_optimal_logits

from budget import fuzz_settings, returns_within

SOLVER_SETTINGS = fuzz_settings(0.6)
SECONDS_PER_EXAMPLE = 3  # a generous ceiling (the slowest drawn solve takes well under 1 s): only a hang exceeds it


def _decimal_range(dtype: torch.dtype) -> tuple[int, int]:
    finfo = torch.finfo(dtype)
    return math.ceil(math.log10(finfo.tiny)), math.floor(math.log10(finfo.max))


@st.composite
def solver_cases(draw):
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    num_classes = draw(st.one_of(st.integers(2, 10), st.sampled_from([100, 1000, 10**5])))
    rows = draw(st.integers(1, 4)) if num_classes <= 1000 else 1
    low, high = _decimal_range(dtype)
    generator = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["spread", "overflowing sum", "all tiny", "near one-hot", "smoothed one-hot"]))
    shape = (rows, num_classes)
    if kind == "spread":  # log10 of the masses uniform over a drawn window of decades
        top = draw(st.integers(low, high))
        bottom = draw(st.integers(max(low, top - 300), top))
        exponents = generator.uniform(bottom, top, shape)
    elif kind == "overflowing sum":
        exponents = high - generator.uniform(0, 1, shape)
    elif kind == "all tiny":
        exponents = low + generator.uniform(0, 2, shape)
    elif kind == "near one-hot":
        exponents = np.full(shape, float(draw(st.integers(max(low, -300), -1))))
        exponents[:, 0] = 0.0
    else:
        eps = 10.0 ** draw(st.integers(max(low, -300), -1))
        exponents = np.full(shape, math.log10(eps / (num_classes - 1)))
        exponents[:, 0] = math.log10(1 - eps)
    masses = torch.from_numpy(10.0**exponents).to(dtype)
    masses = masses.clamp(min=torch.finfo(dtype).tiny, max=torch.finfo(dtype).max)  # in range after rounding
    spread = draw(st.sampled_from([None, 1.0, 30.0, 1000.0, 1e6]))
    start = None if spread is None else torch.from_numpy(generator.normal(0, spread, shape)).to(dtype)
    # long runs only where a step is cheap: 1000 steps at K = 10**5 would take seconds
    max_iter = draw(st.sampled_from([0, 1, 5, 100, 1000] if num_classes <= 10 else [0, 1, 5, 50]))
    event(f"{kind}, start spread {spread}")
    return masses, start, max_iter


def expected_log_probabilities(masses: torch.Tensor) -> np.ndarray:
    """``log(p / sum(p))`` per row in float64, from the logs of the masses (no sum that overflows)."""
    p = masses.double().numpy()
    top = p.max(axis=1, keepdims=True)
    scaled_sum = np.array([[math.fsum(row)] for row in p / top])
    return np.log(p) - np.log(top) - np.log(scaled_sum)


def expected_loss(masses: torch.Tensor, log_q: np.ndarray) -> np.ndarray:
    """``-sum_c p_c log q_c`` per row, as ``top * sum_c (p_c / top) (-log q_c)`` (inf where it overflows)."""
    p = masses.double().numpy()
    top = p.max(axis=1)
    with np.errstate(over="ignore"):
        return top * np.array([math.fsum(row) for row in (p / top[:, None]) * -log_q])


# the whole test: the thread method ends the run with every stack printed, even inside Hypothesis
@pytest.mark.timeout(30 + SECONDS_PER_EXAMPLE * SOLVER_SETTINGS.max_examples, method="thread")
@SOLVER_SETTINGS
@given(solver_cases())
def test_solver_returns_and_converged_rows_are_right(case):
    masses, start, max_iter = case
    with returns_within(SECONDS_PER_EXAMPLE * 10, "solve_optimal_logits"):
        solution = solve_optimal_logits(masses, initial_logits=start, max_iter=max_iter)
    rows, num_classes = masses.shape
    assert solution.logits.shape == masses.shape and solution.converged.shape == (rows,)
    assert bool(torch.isfinite(solution.logits).all()), "logits must be finite, converged or not"
    assert bool((solution.iterations <= max_iter).all())
    assert not bool((solution.converged & (solution.iterations == 0)).any())
    converged = solution.converged.numpy()
    event("converged" if converged.all() else "not converged" if not converged.any() else "some converged")
    if not converged.any():
        return
    finfo = torch.finfo(masses.dtype)
    tol = math.sqrt(finfo.eps)  # the solver's default tolerance
    expected = expected_log_probabilities(masses)[converged]
    logits = solution.logits.double().numpy()[converged]
    allowed = tol + 8 * finfo.eps * (np.abs(expected) + math.log(num_classes))
    error = np.abs(logits - expected)
    assert (error <= allowed).all(), f"converged but wrong: worst logit error {error.max():.3e} (allowed {allowed.max():.3e})"
    loss = solution.loss.double().numpy()[converged]
    reference = expected_loss(masses[converged], expected)
    with np.errstate(over="ignore", invalid="ignore"):  # row sums that overflow: the loss is inf
        total = masses.double().numpy()[converged].sum(axis=1)
        loss_allowed = total * np.max(allowed, axis=1) + 8 * num_classes * finfo.eps * np.abs(reference)
        close = np.abs(loss - reference) <= loss_allowed
    both_inf = np.isinf(loss) & np.isinf(reference)
    near_overflow = np.abs(reference) + loss_allowed >= finfo.max
    assert (both_inf | near_overflow | close).all(), (loss, reference)
