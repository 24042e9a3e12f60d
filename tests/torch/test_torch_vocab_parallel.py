"""vocab_parallel_label_smoothed_cross_entropy under gloo: the dense loss at world sizes 1 to 4, value and gradient.

One run of 4 processes (a module fixture) evaluates every variant at every world size;
the tests compare its results with the dense :func:`lstheory.torch.label_smoothed_cross_entropy`.
K = 11 is divisible by none of 2, 3, 4, and world size 3 uses lopsided shards.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch

from lstheory.claims.tensor_parallel_losses import exact_loss
from lstheory.testing.process_groups import ProcessGroupError, run_in_process_group
from lstheory.testing.vocab_parallel import LossProbe, gathered, run_vocab_parallel_losses
from lstheory.torch import label_smoothed_cross_entropy, vocab_parallel_label_smoothed_cross_entropy, vocab_shard_bounds

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_process_left_behind")]

K = 11
EPS = 0.1
RTOL = 1e-12  # acceptance 1: float64 value and gathered gradient equal to the dense loss to 1e-12
LAYOUTS = {1: ((0, 11),), 2: ((0, 6), (6, 11)), 3: ((0, 2), (2, 9), (9, 11)), 4: ((0, 3), (3, 6), (6, 9), (9, 11))}
WEIGHT = torch.tensor([0.5, 1.0, 2.0, 0.1, 0.0, 1.5, 0.7, 1.2, 0.9, 3.0, 0.4], dtype=torch.float64)  # class 4: zero weight
UPSTREAM = torch.linspace(0.5, 2.0, 12, dtype=torch.float64)  # a per-row upstream gradient for reduction="none"


def rows_loss(local_logits, target, group, vocab_start, **options):
    """``reduction="none"`` with a non-uniform upstream gradient: sum of UPSTREAM-weighted rows."""
    per_row = exact_loss(local_logits, target, group, vocab_start, num_classes=K, reduction="none", **options)
    return (per_row * UPSTREAM).sum()


def sequence_loss(local_logits, target, group, vocab_start, **options):
    """The rows viewed as a (2, 6, K_r) batch of sequences, classes last."""
    return exact_loss(local_logits.reshape(2, 6, -1), target.reshape(2, 6), group, vocab_start, num_classes=K, **options)


def half_precision_loss(local_logits, target, group, vocab_start, *, dtype, **options):
    return exact_loss(local_logits.to(dtype), target.to(torch.int32), group, vocab_start, num_classes=K, **options)


def _variants() -> dict:
    """name -> (loss in the checker's convention, keyword arguments of the dense reference)."""
    variants = {}
    for convention in ("off_target", "uniform"):
        for weighted in (False, True):
            for reduction in ("mean", "sum"):
                options = dict(eps=EPS, convention=convention, weight=WEIGHT if weighted else None, reduction=reduction)
                variants[f"{convention} weighted={weighted} {reduction}"] = (
                    partial(exact_loss, num_classes=K, eps=EPS, convention=convention,
                            class_weight=WEIGHT if weighted else None, reduction=reduction), options)
        variants[f"{convention} none"] = (partial(rows_loss, eps=EPS, convention=convention, class_weight=WEIGHT),
                                          dict(eps=EPS, convention=convention, weight=WEIGHT, reduction="none"))
    for eps in (0.0, 1.0):  # edges: no smoothing; off_target eps = 1 puts no mass on the true class
        variants[f"off_target eps={eps:g}"] = (partial(exact_loss, num_classes=K, eps=eps, class_weight=WEIGHT),
                                               dict(eps=eps, weight=WEIGHT))
    variants["sequences (2, 6, K_r)"] = (partial(sequence_loss, eps=EPS, convention="uniform"),
                                         dict(eps=EPS, convention="uniform"))
    return variants


VARIANTS = _variants()
HALF = {dtype: partial(half_precision_loss, eps=EPS, dtype=getattr(torch, dtype)) for dtype in ("bfloat16", "float16", "float32")}


def _probes() -> list[LossProbe]:
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(12) % K)  # every class is a label somewhere: every rank holds some
    padded = labels.copy()
    padded[[1, 6]] = -100
    masked = rng.normal(0, 3, (12, K))
    masked[2, (labels[2] + 1) % K] = masked[7, (labels[7] + 3) % K] = -math.inf  # a masked class in two rows
    return [LossProbe("random", rng.normal(0, 3, (12, K)), labels),
            LossProbe("padded", rng.normal(0, 3, (12, K)), padded, -100),
            LossProbe("masked classes (-inf logits)", masked, labels),
            LossProbe("huge logits", rng.normal(0, 300, (12, K)), labels)]


PROBES = _probes()


@pytest.fixture(scope="module")
def runs():
    losses = {name: loss for name, (loss, _) in VARIANTS.items()}
    losses.update({f"half {dtype}": loss for dtype, loss in HALF.items()})
    return run_vocab_parallel_losses(losses, PROBES, LAYOUTS, timeout=100)


def dense(probe: LossProbe, options: dict, dtype=torch.float64):
    """The dense loss and its gradient for the full logits (``reduction="none"``: UPSTREAM-weighted sum)."""
    z = torch.from_numpy(probe.logits).to(dtype).requires_grad_(True)
    options = dict(options)
    eps = options.pop("eps")
    value = label_smoothed_cross_entropy(z, torch.from_numpy(probe.target), eps, **options)
    if options.get("reduction") == "none":
        value = (value * UPSTREAM).sum()
    (grad,) = torch.autograd.grad(value, z)
    return float(value.detach()), grad.double().numpy()


def relative_value_error(values: list[float], expected: float) -> float:
    if math.isinf(expected):
        assert all(v == expected for v in values), (values, expected)
        return 0.0
    return max(abs(v - expected) / abs(expected) for v in values)


def relative_gradient_error(gradient: np.ndarray, expected: np.ndarray) -> float:
    assert np.all(np.isfinite(gradient)) and np.all(np.isfinite(expected))
    return float(np.max(np.abs(gradient - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_value_and_gathered_gradient_equal_the_dense_loss_at_world_sizes_1_to_4(runs, name):
    _, options = VARIANTS[name]
    worst_value, worst_gradient = 0.0, 0.0
    for i, probe in enumerate(PROBES):
        expected_value, expected_gradient = dense(probe, options)
        for world_size, per_probe in runs[name].items():
            values = [run[0] for run in per_probe[i]]
            assert len(set(values)) == 1, f"world size {world_size}: the ranks disagree: {values}"
            worst_value = max(worst_value, relative_value_error(values, expected_value))
            worst_gradient = max(worst_gradient, relative_gradient_error(gathered(per_probe[i]), expected_gradient))
    print(f"{name}: worst relative difference from the dense loss: value {worst_value:.2e}, gradient {worst_gradient:.2e}")
    assert worst_value <= RTOL and worst_gradient <= RTOL


@pytest.mark.parametrize("dtype", list(HALF))
def test_half_precision_accumulates_in_float32_like_the_dense_loss(runs, dtype):
    tolerance = {"bfloat16": 2**-7, "float16": 2**-10, "float32": 1e-6}[dtype]
    probe = PROBES[0]
    expected_value, expected_gradient = dense(probe, dict(eps=EPS), getattr(torch, dtype))
    for world_size, per_probe in runs[f"half {dtype}"].items():
        assert {run[2] for run in per_probe[0]} == {dtype}
        assert relative_value_error([run[0] for run in per_probe[0]], expected_value) <= tolerance, world_size
        assert relative_gradient_error(gathered(per_probe[0]), expected_gradient) <= 4 * tolerance, world_size


# --------------------------------------------------------------------------- DTensor, tiling, empty shards


DTENSOR_CASES = {k: (np.random.default_rng(k).normal(0, 2, (6, k)), np.random.default_rng(k).integers(0, k, 6))
                 for k in (11, 5)}  # K = 5 over 4 ranks: DTensor's shards are 2, 2, 1 and 0 classes


def dtensor_rank(context):
    """``{(K, W): (loss, local gradient)}`` for logits distributed with ``Shard(-1)`` on sub-meshes of 2, 3, 4 ranks."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    results = {}
    for world_size in (2, 3, 4):
        group = dist.new_group(list(range(world_size)))
        if context.rank >= world_size:
            continue
        mesh = DeviceMesh.from_group(group, "cpu")
        for k, (logits, target) in DTENSOR_CASES.items():
            full = distribute_tensor(torch.from_numpy(logits), mesh, [Shard(-1)]).requires_grad_(True)
            replicated_target = distribute_tensor(torch.from_numpy(target), mesh, [Replicate()])
            loss = vocab_parallel_label_smoothed_cross_entropy(full, replicated_target, EPS, convention="uniform")
            loss.backward()
            results[k, world_size] = float(loss), full.grad.to_local().numpy()
    return results


def test_a_dtensor_sharded_on_the_classes_gives_the_dense_loss():
    per_rank = run_in_process_group(dtensor_rank, 4, timeout=100)
    for k, (logits, target) in DTENSOR_CASES.items():
        expected_value, expected_gradient = dense(LossProbe("", logits, target), dict(eps=EPS, convention="uniform"))
        for world_size in (2, 3, 4):
            results = [per_rank[rank][k, world_size] for rank in range(world_size)]
            assert relative_value_error([value for value, _ in results], expected_value) <= RTOL
            gradient = np.concatenate([grad for _, grad in results], axis=-1)
            assert relative_gradient_error(gradient, expected_gradient) <= RTOL


def untiled_rank(context):
    logits = torch.zeros(3, 4, dtype=torch.float64)
    return vocab_parallel_label_smoothed_cross_entropy(logits, torch.zeros(3, dtype=torch.long), EPS,
                                                       vocab_start=0, num_classes=4 * context.world_size)


def test_shards_that_do_not_tile_the_vocabulary_raise_on_every_rank():
    with pytest.raises(ProcessGroupError) as raised:
        run_in_process_group(untiled_rank, 2, timeout=60)
    assert [f.kind for f in raised.value.failures] == ["raised", "raised"]
    assert all("do not tile the vocabulary" in f.error for f in raised.value.failures)


# --------------------------------------------------------------------------- one process, bad input


def test_without_torch_distributed_it_is_the_dense_loss_in_one_process():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, 7, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 7, (4, 3), generator=generator)
    ours = vocab_parallel_label_smoothed_cross_entropy(z, y, 0.2, vocab_start=0, num_classes=7, reduction="none")
    theirs = label_smoothed_cross_entropy(z.transpose(1, 2), y, 0.2, reduction="none")  # classes on axis 1 there
    assert torch.allclose(ours, theirs, rtol=1e-14, atol=0)
    empty = vocab_parallel_label_smoothed_cross_entropy(z[:0], y[:0], 0.2, vocab_start=0, num_classes=7)
    assert math.isnan(empty.item())  # a mean over no rows is NaN, as in PyTorch


def test_shard_bounds_are_balanced_and_contiguous():
    assert vocab_shard_bounds(11, 4) == ((0, 3), (3, 6), (6, 9), (9, 11))
    assert vocab_shard_bounds(8, 2) == ((0, 4), (4, 8))
    with pytest.raises(ValueError, match="world_size must be at most num_classes=3"):
        vocab_shard_bounds(3, 4)


Z = torch.zeros(2, 3, dtype=torch.float64)
Y = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        (dict(local_logits=Z.long()), TypeError, "floating dtype"),
        (dict(target=Y.double()), TypeError, "integer class indices"),
        (dict(target=Y[:1]), ValueError, "shape of local_logits without its last"),
        (dict(vocab_start=None), TypeError, "vocab_start is required"),
        (dict(num_classes=None), TypeError, "num_classes is required"),
        (dict(num_classes=1), ValueError, "K >= 2"),
        (dict(vocab_start=2), ValueError, "vocab_start + K_r <= num_classes"),
        (dict(num_classes=5), ValueError, "do not tile the vocabulary"),
        (dict(class_weight=torch.ones(3, dtype=torch.float64), num_classes=6, vocab_start=3), ValueError,
         "full vector of all 6 class weights"),
        (dict(class_weight=torch.ones(4, dtype=torch.float64)), ValueError, "class_weight must have shape (3,)"),
        (dict(class_weight=torch.ones(3, dtype=torch.float64, requires_grad=True)), ValueError, "must not require grad"),
        (dict(reduction="max"), ValueError, "reduction must be one of"),
        (dict(ignore_index=1.5), TypeError, "ignore_index must be an integer"),
        (dict(ignore_index=2**70), ValueError, "fit in int64"),
        (dict(eps=1.5), ValueError, "eps"),
        (dict(convention="pytorch"), ValueError, "convention"),
        (dict(group=object()), ValueError, "not initialised"),
        (dict(target=torch.tensor([0, 3])), ValueError, "class indices in [0, 2]"),
    ],
)
def test_bad_input_names_the_argument(arguments, error, words):
    call = dict(local_logits=Z, target=Y, eps=0.1, vocab_start=0, num_classes=3)
    call.update(arguments)
    with pytest.raises(error, match=None) as raised:
        vocab_parallel_label_smoothed_cross_entropy(call.pop("local_logits"), call.pop("target"), call.pop("eps"), **call)
    assert words in str(raised.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_cuda_in_one_process_equals_the_dense_loss_there(dtype):
    """One process on a CUDA device (no collectives): the dense loss on the same device and dtype."""
    probe = PROBES[1]  # with padded rows
    z = torch.from_numpy(probe.logits).to("cuda", dtype).requires_grad_(True)
    y, weight = torch.from_numpy(probe.target).cuda(), WEIGHT.to("cuda", dtype)
    ours = vocab_parallel_label_smoothed_cross_entropy(z, y, EPS, vocab_start=0, num_classes=K, class_weight=weight)
    theirs = label_smoothed_cross_entropy(z, y, EPS, weight=weight)
    (our_grad,), (their_grad,) = torch.autograd.grad(ours, z), torch.autograd.grad(theirs, z)
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 2**-7}[dtype]
    assert ours.device.type == "cuda" and our_grad.dtype == dtype
    assert relative_value_error([ours.double().item()], theirs.double().item()) <= tolerance
    assert relative_gradient_error(our_grad.double().cpu().numpy(), their_grad.double().cpu().numpy()) <= 4 * tolerance
