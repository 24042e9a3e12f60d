"""The defects an adversarial fuzzing run found (issue 11, items 1 to 4), one test each.

Each failed before its fix.  The bad-input defects (items 5 and 6) are rows of the table in
``test_bad_inputs.py``; the differential suites (``test_fuzz_loss.py``, ``test_fuzz_solver.py``)
keep the whole class of defect out.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lstheory.torch import label_smoothed_cross_entropy, solve_optimal_logits

INF = math.inf
pytestmark = pytest.mark.timeout(60)  # a hang (item 2) fails instead of stalling the run


# ------------------------------------------------------------ 1. integer targets of any dtype


def test_uint8_targets_are_compared_in_int64_not_wrapped_onto_ignore_index():
    """uint8 156 is class 156: compared in uint8, ignore_index=-100 wrapped to 156 and dropped the sample.

    The reference is PyTorch with the same labels as int64.  PyTorch given the uint8 labels
    itself is wrong here (4.1525 for the first sample): its smoothing term compares them with
    ignore_index in uint8 too and drops that term, though its nll term keeps the sample.
    """
    logits = torch.randn(2, 200, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([156, 3], dtype=torch.uint8)
    ours = label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform", reduction="none")
    builtin = F.cross_entropy(logits, target.long(), label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(ours, builtin, rtol=1e-12, atol=0)
    assert ours[0] > 1  # not the silently dropped 0
    mean = label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform")
    torch.testing.assert_close(mean, builtin.mean(), rtol=1e-12, atol=0)  # 5.69, not 6.65


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_narrow_integer_targets_accept_every_class_below_k(dtype):
    """K = 300 does not fit int8/uint8: comparing label < K in the target's dtype rejected valid labels."""
    logits = torch.randn(3, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([100, 3, 120], dtype=dtype)
    ours = label_smoothed_cross_entropy(logits, target, 0.2, convention="uniform", reduction="none")
    builtin = F.cross_entropy(logits, target.long(), label_smoothing=0.2, reduction="none")
    torch.testing.assert_close(ours, builtin, rtol=1e-12, atol=0)


def test_uint64_targets_beyond_int64_are_out_of_range_not_ignored():
    """2**64 - 100 would wrap to -100 = ignore_index in int64: it is no class index, so an error."""
    logits = torch.zeros(2, 5)
    target = torch.tensor([2**64 - 100, 1], dtype=torch.uint64)
    with pytest.raises(ValueError, match="18446744073709551516"):
        label_smoothed_cross_entropy(logits, target, 0.1)


# ------------------------------------------------------------ 2. a solver that never returned


def test_solver_returns_from_a_start_whose_softmax_underflows():
    """A start 1000 apart: q_r underflows, the old Newton step was inf - inf and the line search looped forever."""
    target = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    start = torch.tensor([[-1000.0, 0.0, 0.0]], dtype=torch.float64)
    capped = solve_optimal_logits(target, initial_logits=start, max_iter=5)
    assert not bool(capped.converged.any()) and capped.iterations.item() == 5
    assert bool(torch.isfinite(capped.logits).all())
    solved = solve_optimal_logits(target, initial_logits=start, max_iter=1000)
    assert bool(solved.converged.all())
    torch.testing.assert_close(solved.logits, target.log(), rtol=0, atol=1e-12)


# ------------------------------------------------------------ 3. "converged" with a wrong answer


def test_rows_whose_sum_overflows_are_solved_not_reported_converged_at_zero_gap():
    """[1e308, 5e307, 1e308, 1e308] sums to inf: the old solver divided by it and said 'converged' at gap 0."""
    target = torch.tensor([[1e308, 5e307, 1e308, 1e308]], dtype=torch.float64)
    solution = solve_optimal_logits(target)
    assert bool(solution.converged.all())
    gap = (solution.logits[0, 0] - solution.logits[0, 1]).item()
    assert gap == pytest.approx(math.log(2.0), rel=0, abs=1e-14)


# ------------------------------------------------------------ 4. the loss's documented edge rules


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_subnormal_eps_with_a_minus_inf_logit_gives_inf(dtype, convention):
    """eps = 5e-324 > 0 puts mass on every class: a -inf logit gives +inf (eps/K had underflowed to 0)."""
    logits = torch.tensor([[0.0, -INF, 1.0]], dtype=dtype)
    loss = label_smoothed_cross_entropy(logits, torch.tensor([0]), 5e-324, convention=convention)
    assert loss.item() == INF


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_all_minus_inf_row_with_a_zero_weight_true_class_is_nan(reduction):
    """The softmax of an all -inf row is undefined: NaN, as documented (was 0 at eps = 0)."""
    logits = torch.full((1, 3), -INF, dtype=torch.float64)
    weight = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    loss = label_smoothed_cross_entropy(logits, torch.tensor([0]), 0.0, weight=weight, reduction=reduction)
    assert torch.isnan(loss).all()


@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_off_target_above_the_uniform_point_with_a_minus_inf_true_logit_is_inf(target_kind):
    """off_target eps in ((K-1)/K, 1): a < 0, so a*nll + b*sum was -inf + inf = NaN; the true class has mass 0.1."""
    logits = torch.tensor([[-INF, 0.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([0]) if target_kind == "index" else torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    loss = label_smoothed_cross_entropy(logits, target, 0.9, convention="off_target")
    assert loss.item() == INF


def test_float32_probability_target_keeps_a_tiny_true_class_mass():
    """off_target eps = 1 - 2**-53 leaves p_true = 2**-53 on the true class; a*p + b rounded it to 0 in float32."""
    eps = 1 - 2.0**-53
    logits = torch.tensor([[-INF, 0.0, 0.0]], dtype=torch.float32)
    target = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float32)
    assert label_smoothed_cross_entropy(logits, target, eps, convention="off_target").item() == INF
