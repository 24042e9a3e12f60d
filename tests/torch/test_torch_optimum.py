"""lstheory.torch.optimal_logits / logit_gap: the closed forms as tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstheory import closed_form
from lstheory.torch import label_smoothed_cross_entropy, logit_gap, optimal_logits

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

EPS = torch.tensor([[1e-300, 1e-12, 0.1], [0.5, 0.9, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("num_classes", [2, 3, 1000])
def test_float64_values_are_the_closed_form_bit_for_bit(convention, num_classes):
    result = optimal_logits(num_classes, EPS, label=1, convention=convention)
    expected = closed_form.optimal_logits(num_classes, EPS.numpy(), label=1, convention=convention)
    assert result.shape == EPS.shape + (num_classes,) and result.dtype == torch.float64
    assert np.array_equal(result.numpy(), expected)


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("num_classes", [2, 1000, 2**40, torch.tensor([[2], [2**40]])])
def test_logit_gap_is_the_closed_form_bit_for_bit(convention, num_classes):
    gap = logit_gap(num_classes, EPS, convention=convention)
    k = num_classes.numpy() if isinstance(num_classes, torch.Tensor) else num_classes
    assert np.array_equal(gap.numpy(), closed_form.logit_gap(k, EPS.numpy(), convention=convention))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_other_dtypes_round_the_float64_value_once(dtype):
    eps = torch.tensor([0.01, 0.1, 0.3], dtype=dtype)
    result = optimal_logits(10, eps, label=0)
    assert result.dtype == dtype
    exact = closed_form.optimal_logits(10, eps.double().numpy(), label=0)  # eps read exactly
    assert torch.equal(result, torch.from_numpy(exact).to(dtype))


def test_defaults_follow_eps_and_torch():
    assert optimal_logits(4, torch.tensor(0.1, dtype=torch.float64)).dtype == torch.float64
    assert optimal_logits(4, 0.1).dtype == torch.get_default_dtype()
    assert optimal_logits(4, 0.1).shape == (4,)
    assert optimal_logits(4, [0.1, 0.2], dtype=torch.float64, device="cpu").shape == (2, 4)


def test_alpha_broadcasts_and_shifts_every_logit():
    eps = torch.tensor([0.1, 0.2], dtype=torch.float64)
    alpha = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    shifted = optimal_logits(3, eps, alpha=alpha, label=2)
    assert shifted.shape == (2, 2, 3)
    base = optimal_logits(3, eps, label=2)
    assert torch.allclose(shifted - base, alpha.unsqueeze(-1).expand(2, 2, 3), rtol=0, atol=1e-15)


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_loss_is_stationary_at_the_optimal_logits(convention):
    """The torch loss and the closed form agree: the gradient vanishes at optimal_logits."""
    eps = torch.tensor([0.01, 0.1, 0.5, 0.9], dtype=torch.float64)
    for num_classes in (2, 7, 1000):
        label = num_classes - 1
        logits = optimal_logits(num_classes, eps, label=label, alpha=0.3, convention=convention).requires_grad_()
        target = torch.full((eps.numel(),), label)
        # one eps per row: sum the per-row losses of each eps separately
        total = sum(
            label_smoothed_cross_entropy(logits[i : i + 1], target[i : i + 1], float(e), convention=convention)
            for i, e in enumerate(eps.tolist())
        )
        (grad,) = torch.autograd.grad(total, logits)
        assert grad.abs().max().item() < 1e-14


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(num_classes=1, eps=0.1), ValueError, "num_classes"),
        (dict(num_classes=4, eps=torch.tensor([0.1, 1.5])), ValueError, "eps"),
        (dict(num_classes=4, eps=0.1, label=4), ValueError, "label"),
        (dict(num_classes=4, eps=0.1, convention="szegedy"), ValueError, "convention"),
        (dict(num_classes=4, eps=0.1, dtype=torch.int64), TypeError, "dtype"),
        (dict(num_classes=4, eps=torch.tensor([True])), TypeError, "eps"),
        (dict(num_classes=4, eps=0.1, alpha=float("inf")), ValueError, "alpha"),
    ],
)
def test_bad_input_names_the_argument(arguments, error, message):
    with pytest.raises(error, match=message):
        optimal_logits(**arguments)


@cuda
@pytest.mark.cuda
def test_cuda_values_equal_cpu_values():
    eps = EPS.cuda()
    on_device = optimal_logits(10, eps, label=3)
    assert on_device.device.type == "cuda"
    assert torch.equal(on_device.cpu(), optimal_logits(10, EPS, label=3))
    assert logit_gap(10, eps).device.type == "cuda"
