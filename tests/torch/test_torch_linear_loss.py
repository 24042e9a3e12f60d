"""lstheory.torch.linear_label_smoothed_cross_entropy against the eager composites, and its memory."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import lstheory.torch.linear_loss as linear_loss
from lstheory.bench.linear_loss import DETERMINISTIC_MALLOC
from lstheory.bench.measure import cpu_peak_memory_available
from lstheory.torch import label_smoothed_cross_entropy, linear_label_smoothed_cross_entropy, smoothing_coefficients
from lstheory.torch.linear_loss import default_chunk_size

RTOL = 1e-10  # acceptance 1: float64 values and gradients to 1e-10 relative
REDUCTIONS = ("mean", "sum", "none")
CONVENTIONS = ("off_target", "uniform")
EPS = 0.2
N, H, K, CHUNK = 13, 5, 9, 4  # ragged: 13 rows are 4 + 4 + 4 + 1

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest difference over the largest magnitude (entries near 0 do not dominate)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (actual.shape, expected.shape)
    scale = expected.detach().abs().max().clamp(min=1e-300)
    return float((actual.detach() - expected.detach()).abs().max() / scale)


def make_head(*, bias=False, weighted=False, ignored=True, seed=0, dtype=torch.float64, shape=(N,), device="cpu"):
    generator = torch.Generator().manual_seed(seed)

    def randn(*size):
        return torch.randn(*size, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)

    hidden = randn(*shape, H).requires_grad_()
    classifier = randn(K, H).requires_grad_()
    head_bias = randn(K).requires_grad_() if bias else None
    target = torch.randint(0, K, shape, generator=generator)
    if ignored:
        target.view(-1)[::3] = -100
    weight = (torch.rand(K, generator=generator, dtype=torch.float64) + 0.5).to(device, dtype) if weighted else None
    return hidden, classifier, head_bias, target.to(device), weight


def eager_loss(hidden, classifier, bias, target, convention, **options):
    """The composite: F.cross_entropy (uniform) or lstheory's O(N)-memory loss (off_target) on F.linear."""
    logits = F.linear(hidden, classifier, bias)
    if target.is_floating_point() or target.dim() > 1:
        logits, target = logits.movedim(-1, 1), target.movedim(-1, 1) if target.is_floating_point() else target
    if convention == "uniform":
        weight = options.pop("class_weight", None)
        return F.cross_entropy(logits, target, weight=weight, label_smoothing=EPS, **options)
    return label_smoothed_cross_entropy(logits, target, EPS, weight=options.pop("class_weight", None), **options)


def fairseq_form(hidden, classifier, bias, target, reduction):
    """fairseq's off_target loss written from its formula: (1-eps-eps/(K-1)) nll + eps/(K-1) sum_c -log q_c."""
    log_q = torch.log_softmax(F.linear(hidden, classifier, bias), dim=-1)
    kept = target != -100
    safe = torch.where(kept, target, torch.zeros_like(target))
    nll = -log_q.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    smooth = -log_q.sum(-1)
    per_row = ((1 - EPS - EPS / (K - 1)) * nll + EPS / (K - 1) * smooth) * kept
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.sum() / kept.sum()


def value_and_gradients(loss, inputs, seed=1):
    """The loss and the gradients of ``sum(upstream * loss)``: a random per-row upstream for ``"none"``."""
    upstream = torch.randn(loss.shape, generator=torch.Generator().manual_seed(seed), dtype=loss.dtype)
    return (loss, *torch.autograd.grad(loss, inputs, upstream.to(loss.device)))


def assert_same_values_and_gradients(fused, eager, inputs, rtol=RTOL):
    for name, x, y in zip(("value", "hidden", "classifier", "bias"), value_and_gradients(fused, inputs),
                          value_and_gradients(eager, inputs)):
        assert relative_error(x, y) <= rtol, (name, relative_error(x, y))


# --------------------------------------------------------------------------- acceptance 1: equality


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_equals_the_eager_composite_in_value_and_every_gradient(convention, reduction, bias, weighted):
    hidden, classifier, head_bias, target, weight = make_head(bias=bias, weighted=weighted)
    inputs = [t for t in (hidden, classifier, head_bias) if t is not None]
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, convention=convention,
                                                class_weight=weight, reduction=reduction, chunk_size=CHUNK)
    eager = eager_loss(hidden, classifier, head_bias, target, convention, class_weight=weight, reduction=reduction)
    assert fused.dtype == torch.float64 and fused.shape == eager.shape
    assert_same_values_and_gradients(fused, eager, inputs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bias", [False, True], ids=["no_bias", "bias"])
def test_off_target_equals_fairseqs_formula(reduction, bias):
    hidden, classifier, head_bias, target, _ = make_head(bias=bias, seed=3)
    inputs = [t for t in (hidden, classifier, head_bias) if t is not None]
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, reduction=reduction,
                                                chunk_size=CHUNK)
    assert_same_values_and_gradients(fused, fairseq_form(hidden, classifier, head_bias, target, reduction), inputs)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sequence_shaped_hidden_states_and_their_targets(convention, reduction):
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, shape=(3, 5), seed=4)
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, convention=convention,
                                                class_weight=weight, reduction=reduction, chunk_size=CHUNK)
    eager = eager_loss(hidden, classifier, head_bias, target, convention, class_weight=weight, reduction=reduction)
    assert fused.shape == ((3, 5) if reduction == "none" else ())
    assert_same_values_and_gradients(fused, eager, [hidden, classifier, head_bias])


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probability_targets(convention, reduction):
    hidden, classifier, head_bias, _, weight = make_head(bias=True, weighted=True, seed=5)
    target = torch.softmax(torch.randn(N, K, generator=torch.Generator().manual_seed(6), dtype=torch.float64), -1)
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, convention=convention,
                                                class_weight=weight, reduction=reduction, chunk_size=CHUNK)
    eager = eager_loss(hidden, classifier, head_bias, target, convention, class_weight=weight, reduction=reduction)
    assert_same_values_and_gradients(fused, eager, [hidden, classifier, head_bias])


@pytest.mark.parametrize("chunk_size", [1, 2, 5, N, 100, None])
def test_every_chunk_size_gives_the_same_result(chunk_size):
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, seed=7)
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, class_weight=weight,
                                                reduction="none", chunk_size=chunk_size)
    eager = eager_loss(hidden, classifier, head_bias, target, "off_target", class_weight=weight, reduction="none")
    assert_same_values_and_gradients(fused, eager, [hidden, classifier, head_bias])


@pytest.mark.parametrize("eps", [0.0, 1e-300, 0.5, 1.0])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_the_ends_of_eps(eps, convention):
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, seed=8)
    inputs = [hidden, classifier, head_bias]
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, eps, bias=head_bias, convention=convention,
                                                class_weight=weight, chunk_size=CHUNK)
    eager = label_smoothed_cross_entropy(F.linear(hidden, classifier, head_bias), target, eps, convention=convention,
                                         weight=weight)
    assert_same_values_and_gradients(fused, eager, inputs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, shape=(2, 3), seed=9)
    target[0, 1] = -100

    def loss(h, w, b):
        return linear_label_smoothed_cross_entropy(h, w, target, 0.1, bias=b, class_weight=weight, reduction=reduction,
                                                   chunk_size=2)

    assert torch.autograd.gradcheck(loss, (hidden, classifier, head_bias))


def test_double_backward_equals_the_eager_composites():
    """create_graph=True (e.g. a gradient penalty) differentiates the eager composite: same second derivatives."""
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, seed=9)

    def penalty(loss):
        grads = torch.autograd.grad(loss, [hidden, classifier], create_graph=True)
        return sum((g**2).sum() for g in grads)

    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, class_weight=weight,
                                                convention="uniform", chunk_size=CHUNK)
    eager = eager_loss(hidden, classifier, head_bias, target, "uniform", class_weight=weight)
    assert_same_values_and_gradients(penalty(fused), penalty(eager), [hidden, classifier, head_bias])


def test_a_scaled_upstream_and_a_second_backward():
    hidden, classifier, head_bias, target, _ = make_head(bias=True, seed=10)
    loss = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, chunk_size=CHUNK)
    first = torch.autograd.grad(3.0 * loss, [hidden, classifier, head_bias], retain_graph=True)
    second = torch.autograd.grad(loss, [hidden, classifier, head_bias])  # recomputed: the first used the stored ones
    eager = eager_loss(hidden, classifier, head_bias, target, "off_target")
    reference = torch.autograd.grad(eager, [hidden, classifier, head_bias])
    for a, b, c in zip(first, second, reference):
        assert relative_error(a, 3.0 * c) <= RTOL and relative_error(b, c) <= RTOL


def test_gradients_accumulate_like_any_parameters():
    hidden, classifier, _, target, _ = make_head(seed=11)
    for _ in range(2):
        linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, chunk_size=CHUNK).backward()
    reference, = torch.autograd.grad(eager_loss(hidden, classifier, None, target, "off_target"), [classifier])
    assert relative_error(classifier.grad, 2 * reference) <= RTOL


def test_only_the_inputs_that_require_grad_get_one():
    hidden, classifier, head_bias, target, _ = make_head(bias=True, seed=12)
    classifier.requires_grad_(False)
    loss = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, chunk_size=CHUNK)
    loss.backward()
    assert classifier.grad is None and hidden.grad is not None and head_bias.grad is not None
    reference = torch.autograd.grad(eager_loss(hidden, classifier, head_bias, target, "off_target"), [hidden])[0]
    assert relative_error(hidden.grad, reference) <= RTOL


# --------------------------------------------------------------------------- edge rules (as the eager composite)


def test_all_rows_ignored_gives_nan_and_zero_gradients_like_pytorch():
    hidden, classifier, _, target, _ = make_head(seed=13)
    target[:] = -100
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, convention="uniform")
    eager = F.cross_entropy(F.linear(hidden, classifier), target, label_smoothing=EPS)
    assert math.isnan(fused.item()) and math.isnan(eager.item())
    fused_grads = torch.autograd.grad(fused, [hidden, classifier])
    eager_grads = torch.autograd.grad(eager, [hidden, classifier])
    for a, b in zip(fused_grads, eager_grads):
        assert torch.equal(a, torch.zeros_like(a)) and torch.equal(b, torch.zeros_like(b))


def test_kept_rows_of_zero_weight_give_nan_like_pytorch():
    hidden, classifier, _, _, _ = make_head(seed=14)
    target = torch.zeros(N, dtype=torch.long)
    target[::2] = -100
    weight = torch.ones(K, dtype=torch.float64)
    weight[0] = 0.0
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, convention="uniform",
                                                class_weight=weight)
    eager = F.cross_entropy(F.linear(hidden, classifier), target, weight=weight, label_smoothing=EPS)
    assert math.isnan(fused.item()) and math.isnan(eager.item())
    for a, b in zip(torch.autograd.grad(fused, [hidden, classifier]), torch.autograd.grad(eager, [hidden, classifier])):
        assert torch.equal(torch.isnan(a), torch.isnan(b))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_no_rows(reduction):
    hidden = torch.zeros(0, H, dtype=torch.float64, requires_grad=True)
    classifier = torch.randn(K, H, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(0, dtype=torch.long)
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, convention="uniform",
                                                reduction=reduction)
    eager = F.cross_entropy(F.linear(hidden, classifier), target, label_smoothing=EPS, reduction=reduction)
    assert fused.shape == eager.shape
    assert torch.equal(torch.isnan(fused), torch.isnan(eager))
    if reduction != "none":
        fused.backward()
        assert torch.equal(classifier.grad, torch.zeros_like(classifier))


def test_small_integer_target_dtypes_are_compared_in_int64():
    hidden, classifier, _, _, _ = make_head(seed=15)
    num_classes = 200
    classifier = torch.randn(num_classes, H, dtype=torch.float64)
    target = torch.tensor([156, 3] * 6 + [199], dtype=torch.uint8)  # 156 is -100 wrapped in uint8: still a class
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, reduction="none")
    eager = label_smoothed_cross_entropy(F.linear(hidden, classifier), target.long(), EPS, reduction="none")
    assert relative_error(fused, eager) <= RTOL and bool((fused > 0).all())


# --------------------------------------------------------------------------- half precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_as_accurate_as_the_eager_composite(dtype):
    generator = torch.Generator().manual_seed(16)
    hidden = torch.randn(96, 32, generator=generator).to(dtype).requires_grad_()
    classifier = (torch.randn(1000, 32, generator=generator) * 0.3).to(dtype).requires_grad_()
    target = torch.randint(0, 1000, (96,), generator=generator)
    exact_inputs = [hidden.detach().double().requires_grad_(), classifier.detach().double().requires_grad_()]
    exact = F.cross_entropy(F.linear(*exact_inputs), target, label_smoothing=0.1)
    exact_grads = (exact, *torch.autograd.grad(exact, exact_inputs))
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, convention="uniform", chunk_size=10)
    eager = F.cross_entropy(F.linear(hidden, classifier), target, label_smoothing=0.1)
    assert fused.dtype == dtype
    for name, ours, theirs, reference in zip(
        ("value", "hidden", "classifier"),
        (fused, *torch.autograd.grad(fused, [hidden, classifier])),
        (eager, *torch.autograd.grad(eager, [hidden, classifier])),
        exact_grads,
    ):
        assert ours.dtype == dtype
        ours_error, eager_error = relative_error(ours.double(), reference), relative_error(theirs.double(), reference)
        # float32 accumulation: no worse than the eager composite (plus one rounding of the result)
        assert ours_error <= eager_error + torch.finfo(dtype).eps, (name, ours_error, eager_error)


# --------------------------------------------------------------------------- acceptance 3: no (N, K) tensor


class AllocationRecorder(TorchDispatchMode):
    """The storage size of every tensor any ATen op returns (forward and backward): deterministic.

    Views of the ``inputs``' storages (a probability target is itself ``(N, K)``) are not new memory.
    """

    def __init__(self, *inputs: torch.Tensor):
        super().__init__()
        self.existing = {t.untyped_storage().data_ptr() for t in inputs}
        self.records: list[tuple[str, tuple[int, ...], int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.untyped_storage().data_ptr() not in self.existing:
                self.records.append((str(func), tuple(tensor.shape), tensor.untyped_storage().nbytes()))
        return out

    def largest(self) -> int:
        return max(nbytes for _, _, nbytes in self.records)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["indices", "probabilities"])
def test_no_tensor_of_n_by_k_is_allocated_in_forward_or_backward(reduction, target_kind):
    num_rows, hidden_size, num_classes, chunk = 96, 8, 50, 16
    generator = torch.Generator().manual_seed(17)
    hidden = torch.randn(num_rows, hidden_size, generator=generator, requires_grad=True)
    classifier = torch.randn(num_classes, hidden_size, generator=generator, requires_grad=True)
    bias = torch.randn(num_classes, generator=generator, requires_grad=True)
    if target_kind == "indices":
        target = torch.randint(0, num_classes, (num_rows,), generator=generator)
    else:
        target = torch.softmax(torch.randn(num_rows, num_classes, generator=generator), -1)
    with AllocationRecorder(hidden, classifier, bias, target) as fused_run:
        loss = linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, bias=bias, reduction=reduction,
                                                   chunk_size=chunk)
        loss.backward(torch.ones_like(loss))
    with AllocationRecorder(hidden, classifier, bias, target) as eager_run:  # control: the recorder does see the composite's (N, K) tensors
        eager = F.cross_entropy(F.linear(hidden, classifier, bias), target, label_smoothing=0.1, reduction=reduction)
        eager.backward(torch.ones_like(eager))
    n_by_k = num_rows * num_classes * 4
    bound = 4 * max(chunk * num_classes, num_classes * hidden_size, num_rows * hidden_size)  # float32
    assert bound < n_by_k / 2
    assert fused_run.largest() <= bound, [r for r in fused_run.records if r[2] > bound]
    assert eager_run.largest() >= n_by_k
    assert any(name.startswith("aten.mm") for name, _, _ in fused_run.records[len(fused_run.records) // 2:])


def test_evaluation_under_no_grad_allocates_no_gradient():
    generator = torch.Generator().manual_seed(18)
    hidden = torch.randn(64, 8, generator=generator, requires_grad=True)
    classifier = torch.randn(50, 8, generator=generator, requires_grad=True)
    target = torch.randint(0, 50, (64,), generator=generator)
    with torch.no_grad(), AllocationRecorder(hidden, classifier, target) as run:
        linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, chunk_size=16)
    assert (50, 8) not in [shape for _, shape, _ in run.records]  # no classifier gradient was built


PEAK_SCRIPT = """
import json, sys, torch
from lstheory.bench.measure import peak_extra_bytes
from lstheory.torch import linear_label_smoothed_cross_entropy
torch.set_num_threads(1)
n, h, k, chunk = 2048, 32, 32000, 128
g = torch.Generator().manual_seed(0)
hidden = torch.randn(n, h, generator=g, requires_grad=True)
classifier = (torch.randn(k, h, generator=g) / h ** 0.5).requires_grad_()
target = torch.randint(0, k, (n,), generator=g)
def step():
    hidden.grad = classifier.grad = None
    linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, chunk_size=chunk).backward()
    hidden.grad = classifier.grad = None
step()
print(json.dumps([peak_extra_bytes(step, torch.device("cpu")) for _ in range(2)]))
"""


@pytest.mark.skipif(not cpu_peak_memory_available(), reason="needs /proc/self/clear_refs (Linux)")
def test_peak_memory_stays_far_below_one_n_by_k_tensor():
    """Peak RSS growth of forward + backward at N=2048, K=32000 (the (N, K) logits: 250 MiB)."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **DETERMINISTIC_MALLOC})
    assert done.returncode == 0, done.stderr[-2000:]
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 2**20
    required = (2048 + 32000) * 32 * 4  # the gradients dh, dW
    chunk_logits = 128 * 32000 * 4
    # 2 MiB of slack: a copy of the classifier gradient (3.9 MiB) would not fit
    assert all(peak <= required + chunk_logits + 2 * mib for peak in peaks), [p / mib for p in peaks]
    assert all(peak >= required for peak in peaks)  # the gradients are counted: the measurement sees allocations
    assert max(peaks) < 2048 * 32000 * 4 / 4


# --------------------------------------------------------------------------- the chunk rule


def test_default_chunk_size_keeps_the_chunk_within_its_share_of_the_classifier_gradient():
    assert default_chunk_size(32000, 512) == 512 * linear_loss.CHUNK_MEMORY_FRACTION
    for num_classes, hidden_size in ((32000, 512), (128256, 1024), (128256, 4096), (50, 8)):
        for dtype, probability in ((torch.float32, False), (torch.float64, False), (torch.bfloat16, False),
                                   (torch.float32, True), (torch.float16, True)):
            rows = default_chunk_size(num_classes, hidden_size, dtype, probability_target=probability)
            accumulate = 8 if dtype == torch.float64 else 4
            per_logit = accumulate + (2 if dtype in (torch.bfloat16, torch.float16) else 0) + accumulate * probability
            target = max(linear_loss.CHUNK_MEMORY_FRACTION * num_classes * hidden_size * accumulate,
                         linear_loss.MIN_CHUNK_BYTES)
            assert rows * num_classes * per_logit <= target < (rows + 1) * num_classes * per_logit


# --------------------------------------------------------------------------- bad input


BAD_INPUTS = [
    ({"hidden": [[1.0]]}, TypeError, "hidden must be a torch.Tensor"),
    ({"hidden": torch.ones(3, 2, dtype=torch.long)}, TypeError, "hidden must have a floating dtype"),
    ({"hidden": torch.ones(2)}, ValueError, "hidden must have shape"),
    ({"classifier": torch.ones(4, 3)}, ValueError, "classifier must have shape (K, H) = (K, 2)"),
    ({"classifier": torch.ones(1, 2)}, ValueError, "K >= 2"),
    ({"classifier": torch.ones(4, 2, dtype=torch.float64)}, TypeError, "classifier must have the dtype of hidden"),
    ({"bias": torch.ones(3)}, ValueError, "bias must have shape (4,)"),
    ({"bias": [0.0] * 4}, TypeError, "bias must be None or a torch.Tensor"),
    ({"target": torch.tensor([0, 4, 1])}, ValueError, "target must hold class indices in [0, 3]"),
    ({"target": torch.tensor([0, 1])}, ValueError, "target with class indices must have shape (3,)"),
    ({"target": torch.ones(3, 5)}, ValueError, "target with class probabilities must have shape (3, 4)"),
    ({"target": torch.ones(3, dtype=torch.bool)}, TypeError, "target must hold integer class indices"),
    ({"target": torch.full((3, 4), 0.25, requires_grad=True)}, ValueError, "target probabilities that require grad"),
    ({"target": torch.full((3, 4), 0.25), "ignore_index": 0}, ValueError, "ignore_index must be negative"),
    ({"eps": 1.5}, ValueError, "eps"),
    ({"eps": "0.1"}, TypeError, "eps"),
    ({"convention": "fairseq"}, ValueError, "convention must be one of"),
    ({"reduction": "avg"}, ValueError, "reduction must be one of"),
    ({"ignore_index": 1.5}, TypeError, "ignore_index must be an integer"),
    ({"ignore_index": 2**70}, ValueError, "ignore_index must fit in int64"),
    ({"class_weight": torch.ones(3)}, ValueError, "class_weight must have shape (4,)"),
    ({"class_weight": torch.ones(4, dtype=torch.long)}, TypeError, "class_weight must have a floating dtype"),
    ({"class_weight": torch.ones(4, requires_grad=True)}, ValueError, "class_weight must not require grad"),
    ({"chunk_size": 0}, ValueError, "chunk_size must be None (automatic) or a positive integer"),
    ({"chunk_size": 2.5}, ValueError, "chunk_size must be None"),
]


@pytest.mark.parametrize("change, error, words", BAD_INPUTS, ids=[words for _, _, words in BAD_INPUTS])
def test_bad_input_is_named(change, error, words):
    arguments = {"hidden": torch.ones(3, 2), "classifier": torch.ones(4, 2), "target": torch.tensor([0, 1, 2]),
                 "eps": 0.1}
    arguments.update(change)
    positional = [arguments.pop(name) for name in ("hidden", "classifier", "target", "eps")]
    with pytest.raises(error) as raised:
        linear_label_smoothed_cross_entropy(*positional, **arguments)
    assert words in str(raised.value)


# --------------------------------------------------------------------------- CUDA


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cuda_equals_the_eager_composite(reduction):
    hidden, classifier, head_bias, target, weight = make_head(bias=True, weighted=True, device="cuda")
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, bias=head_bias, convention="uniform",
                                                class_weight=weight, reduction=reduction, chunk_size=CHUNK)
    eager = eager_loss(hidden, classifier, head_bias, target, "uniform", class_weight=weight, reduction=reduction)
    assert fused.device.type == "cuda"
    assert_same_values_and_gradients(fused, eager, [hidden, classifier, head_bias])


@cuda
@pytest.mark.cuda
def test_cuda_bfloat16_is_as_accurate_as_the_eager_composite():
    generator = torch.Generator().manual_seed(19)
    hidden = torch.randn(96, 32, generator=generator).to("cuda", torch.bfloat16).requires_grad_()
    classifier = (torch.randn(1000, 32, generator=generator) * 0.3).to("cuda", torch.bfloat16).requires_grad_()
    target = torch.randint(0, 1000, (96,), generator=generator).cuda()
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, convention="uniform", chunk_size=10)
    grads = torch.autograd.grad(fused, [hidden, classifier])
    exact_inputs = [hidden.detach().double().requires_grad_(), classifier.detach().double().requires_grad_()]
    exact = F.cross_entropy(F.linear(*exact_inputs), target, label_smoothing=0.1)
    for ours, reference in zip((fused, *grads), (exact, *torch.autograd.grad(exact, exact_inputs))):
        assert relative_error(ours.double(), reference) <= 2e-2


def test_smoothing_coefficients_are_the_ones_the_fused_loss_uses():
    a, b = smoothing_coefficients(K, EPS, "uniform")
    hidden, classifier, _, target, _ = make_head(ignored=False, seed=20)
    logits = F.linear(hidden, classifier)
    log_q = torch.log_softmax(logits, -1)
    by_hand = -(a * log_q.gather(1, target.unsqueeze(1)).squeeze(1) + b * log_q.sum(1))
    fused = linear_label_smoothed_cross_entropy(hidden, classifier, target, EPS, convention="uniform",
                                                reduction="none", chunk_size=CHUNK)
    assert relative_error(fused, by_hand) <= RTOL
