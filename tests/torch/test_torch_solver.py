"""lstheory.torch.solve_optimal_logits against the closed forms (and SciPy, in the claims registry)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstheory import closed_form
from lstheory.torch import solve_optimal_logits

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

GAP_TOLERANCE = 1e-12  # issue 3: float64 gaps within 1e-12 of the closed form


def smoothed_targets(num_classes: int, eps: np.ndarray, convention: str, label: int = 0) -> torch.Tensor:
    p_true, p_other = closed_form.smoothed_target(num_classes, eps, convention=convention)
    target = np.tile(np.asarray(p_other)[:, None], (1, num_classes))
    target[:, label] = p_true
    return torch.from_numpy(target)


def eps_grid() -> np.ndarray:
    """Tiny to near-1 eps (off_target's gap crosses zero at (K-1)/K and turns negative)."""
    return np.concatenate([np.geomspace(1e-12, 0.05, 12), np.linspace(0.1, 0.99, 10), [0.999999]])


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("num_classes", [2, 3, 10, 1000])
def test_gaps_match_the_closed_form(convention, num_classes):
    eps = eps_grid()
    label = num_classes // 2
    solution = solve_optimal_logits(smoothed_targets(num_classes, eps, convention, label))
    assert bool(solution.converged.all())
    gap = closed_form.logit_gap(num_classes, eps, convention=convention)
    others = np.delete(np.arange(num_classes), label)
    solved = solution.logits[:, label : label + 1] - solution.logits[:, others]
    worst = np.abs(solved.numpy() - gap[:, None]).max()
    assert worst <= GAP_TOLERANCE, f"worst gap error {worst:.3e}"


def test_off_target_uniform_point_has_zero_gap():
    """off_target eps = (K-1)/K is the uniform target: every logit equal."""
    solution = solve_optimal_logits(smoothed_targets(4, np.array([0.75]), "off_target"))
    assert solution.iterations.item() == 1  # the zero start is already optimal: one zero step
    assert torch.allclose(solution.logits, torch.full((1, 4), -np.log(4.0), dtype=torch.float64), rtol=0, atol=1e-15)


def test_arbitrary_targets_give_log_p():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.dirichlet(np.full(50, 0.5), size=64)).clamp(min=1e-30)
    target = target / target.sum(1, keepdim=True)
    solution = solve_optimal_logits(target)
    assert bool(solution.converged.all())
    # the gauge is logsumexp = 0, so the logits are log p itself
    assert (solution.logits - target.log()).abs().max().item() <= 1e-12
    entropy = -(target * target.log()).sum(1)
    assert torch.allclose(solution.loss, entropy, rtol=1e-13, atol=0)


def test_rows_need_not_be_normalised_and_batch_shapes_are_kept():
    target = torch.tensor([[[2.0, 1.0, 1.0]], [[0.3, 0.3, 0.3]]], dtype=torch.float64)
    solution = solve_optimal_logits(target)
    assert solution.logits.shape == (2, 1, 3) and solution.converged.shape == (2, 1)
    assert solution.iterations.dtype == torch.int64
    assert abs((solution.logits[0, 0, 0] - solution.logits[0, 0, 1]).item() - np.log(2.0)) <= 1e-15
    assert solution.logits[1].abs().sub(np.log(3.0)).abs().max().item() <= 1e-15


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_single_precision_converges_to_its_own_accuracy(dtype):
    eps = np.array([1e-4, 0.01, 0.1, 0.5, 0.9])
    target = smoothed_targets(100, eps, "uniform").to(dtype)
    solution = solve_optimal_logits(target)
    assert solution.logits.dtype == torch.float32
    assert bool(solution.converged.all())
    exact = np.log(target.double().numpy())  # of the rounded target
    gaps = (solution.logits[:, :1] - solution.logits[:, 1:]).double().numpy()
    assert np.abs(gaps - (exact[:, :1] - exact[:, 1:])).max() <= 1e-5


def test_initial_logits_and_iteration_cap():
    target = smoothed_targets(10, np.array([0.1, 0.2]), "off_target")
    start = torch.log(target) + 5.0  # the optimum, shifted
    assert solve_optimal_logits(target, initial_logits=start).iterations.max().item() == 1
    capped = solve_optimal_logits(target, max_iter=2)
    assert not bool(capped.converged.any()) and capped.iterations.max().item() == 2
    none = solve_optimal_logits(target, max_iter=0)
    assert not bool(none.converged.any()) and torch.equal(none.iterations, torch.zeros(2, dtype=torch.int64))


def test_tolerance_controls_convergence():
    target = smoothed_targets(1000, np.array([1e-3]), "off_target")
    loose = solve_optimal_logits(target, tol=1e-2)
    tight = solve_optimal_logits(target)
    assert loose.iterations.item() < tight.iterations.item()


def test_empty_batch():
    solution = solve_optimal_logits(torch.empty(0, 5, dtype=torch.float64))
    assert solution.logits.shape == (0, 5) and solution.converged.shape == (0,)


@pytest.mark.parametrize(
    "target, kwargs, error, message",
    [
        (torch.tensor([[0.5, 0.5, 0.0]]), {}, ValueError, r"target_probs.*> 0.*index \(0, 2\)"),
        (torch.tensor([[0.5, -0.5]]), {}, ValueError, "target_probs"),
        (torch.tensor([[0.5, float("nan")]]), {}, ValueError, "target_probs"),
        (torch.tensor([[1, 2]]), {}, TypeError, "target_probs"),
        (torch.tensor([[1.0]]), {}, ValueError, "target_probs"),
        ([[0.5, 0.5]], {}, TypeError, "target_probs"),
        (torch.tensor([[0.5, 0.5]]), {"tol": 0.0}, ValueError, "tol"),
        (torch.tensor([[0.5, 0.5]]), {"max_iter": -1}, ValueError, "max_iter"),
        (torch.tensor([[0.5, 0.5]]), {"initial_logits": torch.zeros(3)}, ValueError, "initial_logits"),
    ],
)
def test_bad_input_names_the_argument(target, kwargs, error, message):
    with pytest.raises(error, match=message):
        solve_optimal_logits(target, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_wide_sweep_of_k_and_eps(convention):
    for num_classes in (2, 5, 17, 100, 1000, 10000):
        eps = np.concatenate([np.geomspace(1e-15, 0.1, 40), np.linspace(0.1, 1 - 1e-9, 40)])
        solution = solve_optimal_logits(smoothed_targets(num_classes, eps, convention))
        assert bool(solution.converged.all())
        gap = closed_form.logit_gap(num_classes, eps, convention=convention)
        solved = (solution.logits[:, :1] - solution.logits[:, 1:]).numpy()
        assert np.abs(solved - gap[:, None]).max() <= GAP_TOLERANCE


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_cuda_gaps_match_the_closed_form(convention):
    eps = eps_grid()
    target = smoothed_targets(1000, eps, convention).cuda()
    solution = solve_optimal_logits(target)
    assert solution.logits.device.type == "cuda" and bool(solution.converged.all())
    gap = closed_form.logit_gap(1000, eps, convention=convention)
    solved = (solution.logits[:, :1] - solution.logits[:, 1:]).cpu().numpy()
    assert np.abs(solved - gap[:, None]).max() <= GAP_TOLERANCE
