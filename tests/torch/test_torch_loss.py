"""lstheory.torch.label_smoothed_cross_entropy against PyTorch's built-in and fairseq's form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lstheory.torch.loss as loss_module
from lstheory.closed_form import logit_gap, smoothed_target
from lstheory.torch import label_smoothed_cross_entropy
from lstheory.torch.loss import smoothing_coefficients

RTOL = 1e-10  # acceptance 1: float64 values and gradients to 1e-10 relative
REDUCTIONS = ("mean", "sum", "none")
SHAPES = ((7, 5), (4, 6, 3), (3, 5, 2, 2), (5,))  # (N, K), (N, K, d), (N, K, d1, d2), unbatched (K,)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = RTOL, what: str = "") -> None:
    """Relative agreement, scaled by the largest magnitude (so that entries near 0 do not dominate)."""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (what, actual.dtype, expected.dtype)
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    both_nan = torch.isnan(a) & torch.isnan(e)
    assert torch.equal(torch.isnan(a), torch.isnan(e)), f"{what}: NaN positions differ\n{a}\n{e}"
    assert torch.equal(torch.isinf(a), torch.isinf(e)) and torch.equal(a[torch.isinf(a)], e[torch.isinf(e)]), what
    finite = torch.isfinite(e) & ~both_nan
    if finite.any():
        scale = e[finite].abs().max().clamp(min=1e-300)
        worst = ((a[finite] - e[finite]).abs() / scale).max().item()
        assert worst <= rtol, f"{what}: worst relative difference {worst:.3e} > {rtol:.1e}"


def make_case(shape, *, target_kind, weighted, ignore_index=-100, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(shape, generator=generator, dtype=dtype)).requires_grad_()
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    if target_kind == "index":
        target = torch.randint(0, num_classes, target_shape, generator=generator)
        if target.numel() > 1:
            target.view(-1)[1] = ignore_index  # at least one ignored position
    else:
        class_dim = 0 if len(shape) == 1 else 1
        target = torch.softmax(torch.randn(shape, generator=generator, dtype=dtype), class_dim).requires_grad_()
    weight = torch.rand(num_classes, generator=generator, dtype=dtype) + 0.1 if weighted else None
    return logits, target, weight


def value_and_grads(fn, logits, target, seed=1):
    inputs = [logits] + ([target] if target.is_floating_point() else [])
    value = fn()
    upstream = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed), dtype=value.dtype)
    grads = torch.autograd.grad(value, inputs, upstream)
    return value.detach(), grads


# ----------------------------------------------------------------- uniform == F.cross_entropy


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_uniform_equals_builtin(shape, reduction, weighted, target_kind):
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=weighted)
    for eps in (0.0, 0.1, 0.73, 1.0):
        ours = value_and_grads(
            lambda: label_smoothed_cross_entropy(
                logits, target, eps, convention="uniform", weight=weight, reduction=reduction
            ),
            logits,
            target,
        )
        builtin = value_and_grads(
            lambda: F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=eps),
            logits,
            target,
        )
        assert_close(ours[0], builtin[0], what=f"value eps={eps}")
        for mine, theirs in zip(ours[1], builtin[1]):
            assert_close(mine, theirs, what=f"gradient eps={eps}")


@pytest.mark.parametrize("ignore_index", [0, 2, -1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_uniform_equals_builtin_for_other_ignore_index(ignore_index, reduction):
    logits, target, weight = make_case((9, 4, 2), target_kind="index", weighted=True, ignore_index=ignore_index)
    ours = value_and_grads(
        lambda: label_smoothed_cross_entropy(
            logits, target, 0.2, convention="uniform", weight=weight, ignore_index=ignore_index, reduction=reduction
        ),
        logits,
        target,
    )
    builtin = value_and_grads(
        lambda: F.cross_entropy(
            logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=0.2
        ),
        logits,
        target,
    )
    assert_close(ours[0], builtin[0])
    assert_close(ours[1][0], builtin[1][0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(0, 5), (0, 5, 3), (4, 5, 0)])
def test_empty_batch_matches_builtin(shape, reduction, weighted):
    logits, target, weight = make_case(shape, target_kind="index", weighted=weighted)
    ours = label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform", weight=weight, reduction=reduction)
    builtin = F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=0.1)
    assert_close(ours.detach(), builtin.detach())
    if reduction != "none":
        (grad,) = torch.autograd.grad(ours, logits)
        assert grad.shape == logits.shape


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_batch_matches_builtin(reduction, weighted):
    logits, _, weight = make_case((5, 4, 3), target_kind="index", weighted=weighted)
    target = torch.full((5, 3), -100)
    ours = value_and_grads(
        lambda: label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform", weight=weight, reduction=reduction),
        logits,
        target,
    )
    builtin = value_and_grads(
        lambda: F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=0.1),
        logits,
        target,
    )
    assert_close(ours[0], builtin[0])  # NaN (0/0) under "mean", 0 otherwise
    assert_close(ours[1][0], builtin[1][0])  # zero gradient
    assert torch.count_nonzero(ours[1][0]) == 0


# ----------------------------------------------------------------- off_target == fairseq


def fairseq_form(logits, target, eps, *, weight=None, ignore_index=-100, reduction="mean"):
    """``(1 - eps - eps/(K-1)) * nll + eps/(K-1) * sum_c(-log q_c)`` with PyTorch's weight/ignore/mean rules.

    Written from fairseq's formula (``label_smoothed_nll_loss``, PR #3182), with plain autograd ops.
    """
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    lprobs = torch.log_softmax(logits, class_dim)
    w = torch.ones(num_classes, dtype=logits.dtype) if weight is None else weight
    shape = [1] * logits.dim()
    shape[class_dim] = num_classes
    eps_i = eps / (num_classes - 1)
    if target.is_floating_point():
        smoothed = target * (1 - eps - eps_i) + eps_i
        per_position = -(lprobs * smoothed * w.view(shape)).sum(class_dim)
        if reduction == "none":
            return per_position
        return per_position.sum() / (per_position.numel() if reduction == "mean" else 1)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    nll = -lprobs.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim) * w[safe]
    smooth = -(lprobs * w.view(shape)).sum(class_dim)
    per_position = torch.where(valid, (1 - eps - eps_i) * nll + eps_i * smooth, torch.zeros_like(nll))
    if reduction == "none":
        return per_position
    if reduction == "sum":
        return per_position.sum()
    return per_position.sum() / torch.where(valid, w[safe], torch.zeros_like(nll)).sum()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_off_target_equals_fairseq_form(shape, reduction, weighted, target_kind):
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=weighted, seed=3)
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    for eps in (0.0, 0.1, (num_classes - 1) / num_classes, 0.95, 1.0):
        ours = value_and_grads(
            lambda: label_smoothed_cross_entropy(logits, target, eps, weight=weight, reduction=reduction),
            logits,
            target,
        )
        reference = value_and_grads(
            lambda: fairseq_form(logits, target, eps, weight=weight, reduction=reduction), logits, target
        )
        assert_close(ours[0], reference[0], what=f"value eps={eps}")
        for mine, theirs in zip(ours[1], reference[1]):
            assert_close(mine, theirs, what=f"gradient eps={eps}")


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_loss_is_cross_entropy_against_the_closed_form_target(convention):
    """Unweighted index targets: the loss is -sum_c t_c log q_c with t from smoothed_target."""
    logits, target, _ = make_case((6, 7), target_kind="index", weighted=False, ignore_index=0)
    target = target.clamp(min=0)
    p_true, p_other = smoothed_target(7, 0.3, convention=convention)
    explicit = torch.full((6, 7), float(p_other), dtype=torch.float64)
    explicit.scatter_(1, target.unsqueeze(1), float(p_true))
    expected = -(explicit * torch.log_softmax(logits, 1)).sum(1)
    ours = label_smoothed_cross_entropy(logits, target, 0.3, convention=convention, reduction="none")
    assert_close(ours.detach(), expected.detach())


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_index_and_one_hot_probability_targets_agree(convention):
    logits, target, weight = make_case((6, 5, 2), target_kind="index", weighted=True, ignore_index=0)
    target = target.clamp(min=0)
    one_hot = F.one_hot(target, 5).movedim(-1, 1).double()
    by_index = label_smoothed_cross_entropy(logits, target, 0.2, convention=convention, weight=weight, reduction="sum")
    by_probability = label_smoothed_cross_entropy(
        logits, one_hot, 0.2, convention=convention, weight=weight, reduction="sum"
    )
    assert_close(by_index.detach(), by_probability.detach())


# ----------------------------------------------------------------- gradients


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_gradcheck_float64(convention, reduction, target_kind):
    """Logits, probability targets and class weights, against finite differences."""
    logits, target, weight = make_case((4, 5, 2), target_kind=target_kind, weighted=True, seed=7)
    weight.requires_grad_()
    inputs = (logits, weight) + ((target,) if target_kind == "probability" else ())

    def fn(z, w, *maybe_target):
        t = maybe_target[0] if maybe_target else target
        return label_smoothed_cross_entropy(z, t, 0.3, convention=convention, weight=w, reduction=reduction)

    assert torch.autograd.gradcheck(fn, inputs)


def test_probability_target_and_weight_gradients_match_builtin():
    """PyTorch differentiates probability targets and weights there; so do we."""
    logits, target, weight = make_case((5, 4, 3), target_kind="probability", weighted=True)
    weight.requires_grad_()
    inputs = [logits, target, weight]
    ours = label_smoothed_cross_entropy(logits, target, 0.25, convention="uniform", weight=weight)
    builtin = F.cross_entropy(logits, target, weight=weight, label_smoothing=0.25)
    for mine, theirs in zip(torch.autograd.grad(ours, inputs), torch.autograd.grad(builtin, inputs)):
        assert_close(mine, theirs)


# ----------------------------------------------------------------- blocks, memory, precision


@pytest.mark.parametrize("block_bytes", [8, 100, 1000])
@pytest.mark.parametrize("shape", [(9, 5), (3, 5, 7), (2, 4, 3, 5)])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_block_boundaries_do_not_change_the_result(monkeypatch, block_bytes, shape, target_kind):
    """Tiny blocks split rows and spatial positions; the result must not depend on them."""
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=True, seed=5)
    reference = value_and_grads(
        lambda: label_smoothed_cross_entropy(logits, target, 0.1, weight=weight, reduction="none"), logits, target
    )
    monkeypatch.setattr(loss_module, "_block_bytes", lambda device: block_bytes)
    monkeypatch.setattr(loss_module, "_backward_block_bytes", lambda device, needs_scratch: block_bytes)
    blocked = value_and_grads(
        lambda: label_smoothed_cross_entropy(logits, target, 0.1, weight=weight, reduction="none"), logits, target
    )
    assert_close(blocked[0], reference[0], rtol=1e-14)
    for mine, theirs in zip(blocked[1], reference[1]):
        assert_close(mine, theirs, rtol=1e-14)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_block_boundaries_in_half_and_single_precision(monkeypatch, dtype):
    """Tiny blocks give the default-block result up to float32 summation order."""
    logits64, target, _ = make_case((6, 50, 3), target_kind="index", weighted=False, seed=8)
    logits = logits64.detach().to(dtype).requires_grad_()
    reference = value_and_grads(lambda: label_smoothed_cross_entropy(logits, target, 0.1, reduction="none"), logits, target)
    monkeypatch.setattr(loss_module, "_block_bytes", lambda device: 64)
    monkeypatch.setattr(loss_module, "_backward_block_bytes", lambda device, needs_scratch: 64)
    blocked = value_and_grads(lambda: label_smoothed_cross_entropy(logits, target, 0.1, reduction="none"), logits, target)
    assert_close(blocked[0], reference[0], rtol=1e-6)
    assert_close(blocked[1][0], reference[1][0], rtol=1e-6)


@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_saves_only_inputs_and_one_number_per_position(target_kind):
    """No (N, K) intermediate is kept for backward: saved tensors are the inputs plus O(N)."""
    shape = (16, 50, 3)
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=True)
    inputs = {id(logits), id(target), id(weight)}
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        label_smoothed_cross_entropy(logits, target, 0.1, weight=weight)
    positions = shape[0] * shape[2]
    large = [t for t in saved if t.numel() > positions]
    for tensor in large:
        # the only large saved tensors are views of the inputs
        assert any(
            tensor.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
            for x in (logits, target, weight)
            if x is not None
        ), f"an intermediate of shape {tuple(tensor.shape)} is kept for backward"
    extra = sum(t.numel() for t in saved if t.numel() <= positions and id(t) not in inputs)
    assert extra <= 4 * positions + 64


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_half_precision_accumulates_in_float32(dtype, target_kind, convention):
    logits64, target, weight = make_case((64, 300, 2), target_kind=target_kind, weighted=True, seed=11)
    logits = logits64.detach().to(dtype).requires_grad_()
    # the float32 reference sees exactly the same (rounded) inputs
    logits32 = logits.detach().float().requires_grad_()
    target_half = target.detach().to(dtype) if target_kind == "probability" else target
    target32 = target_half.float() if target_kind == "probability" else target
    weight_half = weight.to(dtype)
    half = label_smoothed_cross_entropy(logits, target_half, 0.1, convention=convention, weight=weight_half)
    single = label_smoothed_cross_entropy(logits32, target32, 0.1, convention=convention, weight=weight_half.float())
    assert half.dtype == dtype
    unit = torch.finfo(dtype).eps  # two roundings of the result at most
    assert abs(half.float().item() - single.item()) <= unit * abs(single.item())
    (grad_half,) = torch.autograd.grad(half, logits)
    (grad_single,) = torch.autograd.grad(single, logits32)
    assert grad_half.dtype == dtype
    # each gradient entry is the float32 one rounded once (plus float32 noise; subnormals round
    # to a multiple of tiny * eps)
    scale = grad_single.abs().max()
    spacing = torch.finfo(dtype).tiny * unit
    assert ((grad_half.float() - grad_single).abs() <= unit * grad_single.abs() + 1e-6 * scale + spacing).all()


@pytest.mark.parametrize("shape, value_tolerance", [((8, 32000), 1e-6), ((4, 32000, 8), 1e-5)])
def test_float32_at_large_k_is_as_accurate_as_builtin(shape, value_tolerance):
    """float32 at K = 32000 against float64 on the same inputs: values near PyTorch's, gradients better.

    Both use PyTorch's (log_)softmax kernels, whose float32 row sums are naive; the
    class-axis-not-last kernel of (N, K, d) logits is the less accurate one.
    """
    logits64, target, _ = make_case(shape, target_kind="index", weighted=False, seed=2)
    logits32 = logits64.detach().float().requires_grad_()
    exact64 = logits32.detach().double().requires_grad_()
    exact = value_and_grads(lambda: label_smoothed_cross_entropy(exact64, target, 0.1, convention="uniform"), exact64, target)
    ours = value_and_grads(lambda: label_smoothed_cross_entropy(logits32, target, 0.1, convention="uniform"), logits32, target)
    builtin = value_and_grads(lambda: F.cross_entropy(logits32, target, label_smoothing=0.1), logits32, target)

    def error(result):
        value, (grad,) = result
        grad_scale = exact[1][0].abs().max()
        return (
            abs(value.double().item() - exact[0].item()) / exact[0].item(),
            ((grad.double() - exact[1][0]).abs().max() / grad_scale).item(),
        )

    ours_error, builtin_error = error(ours), error(builtin)
    assert ours_error[0] <= value_tolerance
    assert ours_error[1] <= builtin_error[1]


def test_shifted_logits_keep_float32_accuracy():
    """The row sums are taken after subtracting the row maximum: a shift of 1000 costs nothing."""
    logits, target, _ = make_case((16, 1000), target_kind="index", weighted=False, seed=4)
    exact = label_smoothed_cross_entropy(logits, target, 0.1, reduction="none")
    shifted = label_smoothed_cross_entropy((logits + 1000).float(), target, 0.1, reduction="none")
    assert torch.allclose(shifted.double(), exact, rtol=1e-5)


# ----------------------------------------------------------------- -inf logits


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_minus_inf_logit_gives_inf_loss_and_finite_gradient(convention, reduction):
    logits, target, _ = make_case((4, 5), target_kind="index", weighted=False, ignore_index=0)
    target = torch.tensor([0, 1, 2, 3])
    masked = logits.detach().clone()
    masked[0, 4] = -math.inf  # a masked class that is not the target
    masked.requires_grad_()
    loss = label_smoothed_cross_entropy(masked, target, 0.1, convention=convention, reduction=reduction)
    (grad,) = torch.autograd.grad(loss.sum(), masked)
    assert torch.isinf(loss).any() and not torch.isnan(loss).any() and (loss >= 0).all()
    assert torch.isfinite(grad).all()
    if convention == "uniform":
        builtin = F.cross_entropy(masked, target, reduction=reduction, label_smoothing=0.1)
        (builtin_grad,) = torch.autograd.grad(builtin.sum(), masked)
        assert_close(loss.detach(), builtin.detach())
        assert_close(grad, builtin_grad)
    # without smoothing the masked class has no target mass: finite loss
    plain = label_smoothed_cross_entropy(masked, target, 0.0, convention=convention, reduction=reduction)
    assert torch.isfinite(plain).all()


def test_minus_inf_logit_of_zero_weight_class_contributes_nothing():
    """A masked class with zero weight has no target mass: finite loss (PyTorch gives 0 * inf = NaN)."""
    logits, _, _ = make_case((3, 4), target_kind="index", weighted=False)
    masked = logits.detach().clone()
    masked[:, 3] = -math.inf
    masked.requires_grad_()
    weight = torch.tensor([1.0, 2.0, 0.5, 0.0], dtype=torch.float64)
    target = torch.tensor([0, 1, 2])
    loss = label_smoothed_cross_entropy(masked, target, 0.1, weight=weight)
    (grad,) = torch.autograd.grad(loss, masked)
    # the same sum over the three live classes, with the K = 4 coefficients
    a, b = smoothing_coefficients(4, 0.1, "off_target")
    lprobs = torch.log_softmax(logits.detach()[:, :3], 1)
    nll = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1) * weight[target]
    smooth = -(lprobs * weight[:3]).sum(1)
    expected = (a * nll + b * smooth).sum() / weight[target].sum()
    assert_close(loss.detach(), expected)
    assert torch.isfinite(grad).all() and (grad[:, 3] == 0).all()


# ----------------------------------------------------------------- the optimum of the weighted loss


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_weighted_optimum_shifts_the_gap_by_log_weight_ratio(convention):
    """conventions.md: with class weights the optimal gap is logit_gap + log(w_y / w_i)."""
    num_classes, eps, label = 6, 0.2, 2
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25, 3.0], dtype=torch.float64)
    gap = float(logit_gap(num_classes, eps, convention=convention))
    logits = torch.log(weight)  # z_i = log w_i, z_y = gap + log w_y: z_y - z_i = gap + log(w_y / w_i)
    logits[label] += gap
    logits = logits.unsqueeze(0).requires_grad_()
    loss = label_smoothed_cross_entropy(
        logits, torch.tensor([label]), eps, convention=convention, weight=weight, reduction="sum"
    )
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad.abs().max().item() < 1e-14
    # and the unweighted optimum is not stationary for the weighted loss
    plain = torch.zeros(1, num_classes, dtype=torch.float64)
    plain[0, label] = gap
    plain.requires_grad_()
    loss = label_smoothed_cross_entropy(plain, torch.tensor([label]), eps, convention=convention, weight=weight)
    (grad,) = torch.autograd.grad(loss, plain)
    assert grad.abs().max().item() > 1e-3


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(eps=-0.1), ValueError, "eps"),
        (dict(eps=1.5), ValueError, "eps"),
        (dict(eps=float("nan")), ValueError, "eps"),
        (dict(eps="0.1"), TypeError, "eps"),
        (dict(eps=torch.tensor([0.1, 0.2])), TypeError, "eps"),
        (dict(convention="fairseq"), ValueError, "convention"),
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(ignore_index=1.5), TypeError, "ignore_index"),
        (dict(target=torch.tensor([0, 1, 5])), ValueError, r"target.*\[0, 4\].*got 5"),
        (dict(target=torch.tensor([0, -2, 1])), ValueError, r"target.*got -2"),
        (dict(target=torch.tensor([0, 1])), ValueError, r"target.*shape"),
        (dict(target=torch.tensor([True, False, True])), TypeError, "target"),
        (dict(target=torch.rand(3, 4, dtype=torch.float64)), ValueError, r"target.*shape"),
        (dict(target=[0, 1, 2]), TypeError, "target"),
        (dict(logits=torch.zeros(3, 5, dtype=torch.int64)), TypeError, "logits"),
        (dict(logits=torch.zeros(3, 1, dtype=torch.float64), target=torch.tensor([0, 0, 0])), ValueError, "logits"),
        (dict(logits=torch.tensor(1.0)), ValueError, "logits"),
        (dict(weight=torch.ones(4, dtype=torch.float64)), ValueError, "weight"),
        (dict(weight=torch.ones(5, dtype=torch.int64)), TypeError, "weight"),
    ],
)
def test_bad_input_names_the_argument(change, error, message):
    arguments = dict(logits=torch.zeros(3, 5, dtype=torch.float64), target=torch.tensor([0, 1, 4]), eps=0.1)
    arguments.update(change)
    logits, target, eps = arguments.pop("logits"), arguments.pop("target"), arguments.pop("eps")
    with pytest.raises(error, match=message):
        label_smoothed_cross_entropy(logits, target, eps, **arguments)


def test_probability_targets_reject_a_non_negative_ignore_index():
    logits = torch.zeros(3, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="ignore_index"):
        label_smoothed_cross_entropy(logits, torch.full((3, 5), 0.2, dtype=torch.float64), 0.1, ignore_index=0)


def test_accepts_numpy_and_tensor_eps():
    logits, target, _ = make_case((4, 5), target_kind="index", weighted=False)
    reference = label_smoothed_cross_entropy(logits, target, 0.25)
    for eps in (np.float64(0.25), torch.tensor(0.25), np.array(0.25)):
        assert_close(label_smoothed_cross_entropy(logits, target, eps).detach(), reference.detach(), rtol=0)


# ----------------------------------------------------------------- CUDA


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_cuda_matches_cpu(dtype, target_kind):
    """The same (rounded) inputs on CUDA and, in float64, on the CPU."""
    logits, target, weight = make_case((32, 1000, 3), target_kind=target_kind, weighted=True, seed=9)

    def rounded(x):
        return x.detach().to(dtype).double()

    cpu_logits = rounded(logits).requires_grad_()
    cpu_target = rounded(target) if target_kind == "probability" else target
    cpu = label_smoothed_cross_entropy(cpu_logits, cpu_target, 0.1, weight=rounded(weight))
    (cpu_grad,) = torch.autograd.grad(cpu, cpu_logits)
    device_logits = logits.detach().to("cuda", dtype).requires_grad_()
    device_target = target.detach().to("cuda", dtype) if target_kind == "probability" else target.cuda()
    on_device = label_smoothed_cross_entropy(device_logits, device_target, 0.1, weight=weight.to("cuda", dtype))
    (grad,) = torch.autograd.grad(on_device, device_logits)
    assert on_device.device.type == "cuda" and grad.device.type == "cuda" and grad.dtype == dtype
    tolerance = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: torch.finfo(torch.bfloat16).eps}[dtype]
    assert abs(on_device.double().item() - cpu.item()) <= tolerance * abs(cpu.item())
    grad_error = (grad.double().cpu() - cpu_grad).abs().max() / cpu_grad.abs().max()
    assert grad_error.item() <= tolerance


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cuda_uniform_equals_builtin(reduction):
    logits, target, weight = make_case((16, 100, 4), target_kind="index", weighted=True)
    logits = logits.detach().cuda().requires_grad_()
    target, weight = target.cuda(), weight.cuda()
    ours = value_and_grads(
        lambda: label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform", weight=weight, reduction=reduction),
        logits,
        target,
    )
    builtin = value_and_grads(
        lambda: F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=0.1),
        logits,
        target,
    )
    assert_close(ours[0], builtin[0])
    assert_close(ours[1][0], builtin[1][0])


@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 5, 4)])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_non_contiguous_inputs(shape, target_kind):
    """Strided views (a transposed or sliced tensor) give the result of their contiguous copies."""
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=True, seed=13)
    wide = torch.zeros(shape + (2,), dtype=torch.float64)
    wide[..., 0] = logits.detach()
    strided = wide[..., 0].requires_grad_()  # a leaf view with stride 2 everywhere
    assert not strided.is_contiguous()
    if target_kind == "probability":
        wide_target = torch.zeros(shape + (2,), dtype=torch.float64)
        wide_target[..., 1] = target.detach()
        strided_target = wide_target[..., 1]
    else:
        strided_target = target
    expected = value_and_grads(
        lambda: label_smoothed_cross_entropy(logits, target, 0.2, weight=weight, reduction="sum"), logits, target
    )
    value = label_smoothed_cross_entropy(strided, strided_target, 0.2, weight=weight, reduction="sum")
    assert_close(value.detach(), expected[0], rtol=1e-14)
    (grad,) = torch.autograd.grad(value, strided, torch.randn((), generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    assert_close(grad, expected[1][0], rtol=1e-14)


# ----------------------------------------------------------------- review fixes: double backward, zero weights, eps = 1


def _penalised_gradient(loss_fn, inputs):
    """The gradient of ``loss + sum(dloss/dlogits ** 2)`` (a gradient penalty: needs double backward)."""
    loss = loss_fn()
    (grad,) = torch.autograd.grad(loss.sum(), inputs[0], create_graph=True)
    assert grad.requires_grad  # the penalty is not silently a constant
    return torch.autograd.grad(loss.sum() + (grad**2).sum(), inputs)


def test_double_backward_reproducer_matches_builtin():
    """The reviewer's reproducer: once_differentiable used to drop the penalty term silently."""
    logits = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    target = torch.tensor([0, 1, 2, 3])
    ours = _penalised_gradient(lambda: label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform"), [logits])
    builtin = _penalised_gradient(lambda: F.cross_entropy(logits, target, label_smoothing=0.1), [logits])
    assert_close(ours[0], builtin[0])


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_double_backward_matches_builtin_and_fairseq(shape, reduction, weighted, target_kind):
    logits, target, weight = make_case(shape, target_kind=target_kind, weighted=weighted, seed=17)
    inputs = [logits] + ([target] if target_kind == "probability" else [])
    ours = _penalised_gradient(
        lambda: label_smoothed_cross_entropy(
            logits, target, 0.2, convention="uniform", weight=weight, reduction=reduction
        ),
        inputs,
    )
    builtin = _penalised_gradient(
        lambda: F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=0.2), inputs
    )
    for mine, theirs in zip(ours, builtin):
        assert_close(mine, theirs, what="uniform vs F.cross_entropy")
    ours = _penalised_gradient(
        lambda: label_smoothed_cross_entropy(logits, target, 0.2, weight=weight, reduction=reduction), inputs
    )
    reference = _penalised_gradient(
        lambda: fairseq_form(logits, target, 0.2, weight=weight, reduction=reduction), inputs
    )
    for mine, theirs in zip(ours, reference):
        assert_close(mine, theirs, what="off_target vs fairseq")


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_gradgradcheck_float64(convention, target_kind):
    """Second derivatives in logits, class weights and probability targets, against finite differences."""
    logits, target, weight = make_case((3, 4, 2), target_kind=target_kind, weighted=True, seed=19)
    weight.requires_grad_()
    inputs = (logits, weight) + ((target,) if target_kind == "probability" else ())

    def fn(z, w, *maybe_target):
        t = maybe_target[0] if maybe_target else target
        return label_smoothed_cross_entropy(z, t, 0.3, convention=convention, weight=w, reduction="none")

    assert torch.autograd.gradgradcheck(fn, inputs)


def test_double_backward_in_half_precision_matches_float32():
    logits, target, _ = make_case((6, 5), target_kind="index", weighted=False, seed=23)
    half = logits.detach().to(torch.bfloat16).requires_grad_()
    single = half.detach().float().requires_grad_()
    (grad_half,) = _penalised_gradient(lambda: label_smoothed_cross_entropy(half, target, 0.1), [half])
    (grad_single,) = _penalised_gradient(lambda: label_smoothed_cross_entropy(single, target, 0.1), [single])
    assert grad_half.dtype == torch.bfloat16
    assert torch.allclose(grad_half.float(), grad_single, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weight_requires_grad", [False, True])
def test_kept_samples_with_zero_weight_give_nan_mean_like_builtin(eps, weight_requires_grad):
    """weight=[1, 0], ignore_index=0, targets [1, 1, 0]: the mean's denominator is 0, PyTorch gives NaN."""
    logits = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(29)).requires_grad_()
    weight = torch.tensor([1.0, 0.0], dtype=torch.float64)
    target = torch.tensor([1, 1, 0])
    ours_weight = weight.clone().requires_grad_() if weight_requires_grad else weight
    ours = value_and_grads(
        lambda: label_smoothed_cross_entropy(
            logits, target, eps, convention="uniform", weight=ours_weight, ignore_index=0
        ),
        logits,
        target,
    )
    builtin = value_and_grads(
        lambda: F.cross_entropy(logits, target, weight=weight, ignore_index=0, label_smoothing=eps), logits, target
    )
    assert torch.isnan(builtin[0]) and torch.isnan(ours[0])
    assert_close(ours[0], builtin[0])
    assert_close(ours[1][0], builtin[1][0])  # NaN at the kept rows, 0 at the ignored one
    # sum and none are finite (0 at the zero-weight true class, smoothing term elsewhere)
    for reduction in ("sum", "none"):
        mine = label_smoothed_cross_entropy(
            logits, target, eps, convention="uniform", weight=weight, ignore_index=0, reduction=reduction
        )
        theirs = F.cross_entropy(
            logits, target, weight=weight, ignore_index=0, reduction=reduction, label_smoothing=eps
        )
        assert_close(mine.detach(), theirs.detach())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_off_target_eps_one_with_minus_inf_true_logit_is_finite(weighted, target_kind):
    """off_target eps = 1 puts no mass on the true class: a -inf logit there adds 0, not inf - inf."""
    num_classes = 4
    logits, _, _ = make_case((3, num_classes), target_kind="index", weighted=False, seed=31)
    masked = logits.detach().clone()
    target = torch.tensor([0, 2, 3])
    masked[torch.arange(3), target] = -math.inf
    masked.requires_grad_()
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64, requires_grad=True) if weighted else None
    w = torch.ones(num_classes, dtype=torch.float64) if weight is None else weight
    given = target if target_kind == "index" else F.one_hot(target, num_classes).double()
    inputs = [masked] + ([weight] if weighted else [])
    for reduction in REDUCTIONS:
        loss = label_smoothed_cross_entropy(masked, given, 1.0, weight=weight, reduction=reduction)
        grads = torch.autograd.grad(loss.sum(), inputs)
        # expected: -(1/(K-1)) sum_{c != y} w_c log q_c
        lprobs = torch.log_softmax(masked.detach(), 1)
        off = torch.ones(3, num_classes, dtype=torch.bool)
        off[torch.arange(3), target] = False
        per_row = -(torch.where(off, lprobs, torch.zeros_like(lprobs)) * w.detach()).sum(1) / (num_classes - 1)
        if reduction == "none":
            expected = per_row
        elif reduction == "sum":
            expected = per_row.sum()
        else:
            expected = per_row.sum() / (w.detach()[target].sum() if target_kind == "index" else 3)
        assert torch.isfinite(loss).all(), (reduction, loss)
        assert_close(loss.detach(), expected, what=reduction)
        for grad in grads:
            assert torch.isfinite(grad).all(), (reduction, grad)
        # and no gradient flows into the masked true class (q_y = 0, t_y = 0)
        assert (grads[0][torch.arange(3), target] == 0).all()


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7, 5), (4, 6, 3), (5,)])
def test_index_target_weight_gradient_matches_plain_autograd_formula(convention, reduction, shape):
    """PyTorch cannot differentiate weight for index targets; compare with autograd through a composite."""
    logits, target, weight = make_case(shape, target_kind="index", weighted=True, seed=37)
    weight.requires_grad_()
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    eps = 0.3
    a, b = (1 - eps, eps / num_classes) if convention == "uniform" else (1 - eps - eps / (num_classes - 1), eps / (num_classes - 1))

    def composite():
        class_dim = 0 if logits.dim() == 1 else 1
        view = [1] * logits.dim()
        view[class_dim] = num_classes
        lprobs = torch.log_softmax(logits, class_dim)
        valid = target != -100
        safe = torch.where(valid, target, torch.zeros_like(target))
        nll = -lprobs.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim) * weight[safe]
        smooth = -(lprobs * weight.view(view)).sum(class_dim)
        per_position = torch.where(valid, a * nll + b * smooth, torch.zeros_like(nll))
        if reduction == "none":
            return per_position
        if reduction == "sum":
            return per_position.sum()
        return per_position.sum() / torch.where(valid, weight[safe], torch.zeros_like(nll)).sum()

    def ours():
        return label_smoothed_cross_entropy(
            logits, target, eps, convention=convention, weight=weight, reduction=reduction
        )

    upstream = torch.randn(ours().shape, generator=torch.Generator().manual_seed(41), dtype=torch.float64)
    mine = torch.autograd.grad(ours(), [logits, weight], upstream)
    theirs = torch.autograd.grad(composite(), [logits, weight], upstream)
    assert_close(mine[1], theirs[1], what="weight gradient")
    assert_close(mine[0], theirs[0], what="logits gradient")
    assert torch.count_nonzero(mine[1]) > 0


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
@pytest.mark.parametrize("eps", [0.0, 0.2, 1.0])
def test_double_backward_path_gives_the_first_order_gradients(convention, target_kind, eps):
    """Under create_graph=True (composite path) the gradients equal the O(N) backward's, zero weights included."""
    logits, target, weight = make_case((5, 4, 3), target_kind=target_kind, weighted=True, seed=43)
    weight = weight.detach().clone()
    weight[2] = 0.0
    weight.requires_grad_()
    if target_kind == "probability":
        target = target.detach().clone()
        target[:, 1] = 0.0  # zero target mass (a zero coefficient when eps = 0)
        target.requires_grad_()
    inputs = [logits, weight] + ([target] if target_kind == "probability" else [])
    for reduction in REDUCTIONS:
        def loss():
            return label_smoothed_cross_entropy(
                logits, target, eps, convention=convention, weight=weight, reduction=reduction
            )

        upstream = torch.randn(loss().shape, generator=torch.Generator().manual_seed(47), dtype=torch.float64)
        lean = torch.autograd.grad(loss(), inputs, upstream)
        composite = torch.autograd.grad(loss(), inputs, upstream, create_graph=True)
        for mine, theirs in zip(composite, lean):
            assert_close(mine.detach(), theirs, what=f"{reduction}")
