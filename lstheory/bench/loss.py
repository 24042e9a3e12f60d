"""Benchmark ``loss``: forward + backward of the label-smoothed loss against PyTorch's built-in.

:func:`lstheory.torch.label_smoothed_cross_entropy` (uniform convention)
against ``F.cross_entropy(label_smoothing=eps)``, which computes the same
value and gradient: the median wall time over interleaved repeats, and the
peak memory above what was allocated before the call (logits and target
exist already; the gradient is part of the peak).
"""

from __future__ import annotations

import gc
import statistics
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from lstheory.bench.measure import (
    MIB,
    BenchmarkSuite,
    Measurement,
    interleaved_times,
    median_peak_extra_bytes,
)
from lstheory.torch.loss import label_smoothed_cross_entropy

__all__ = ["LOSS_SHAPES", "QUICK_LOSS_SHAPES", "bench_loss", "SUITE"]

LOSS_SHAPES = ((2048, 32000), (8, 32000, 256))
"""A batch of rows and a sequence shape, both 65.5 M logits."""

QUICK_LOSS_SHAPES = ((256, 32000), (2, 32000, 64))


def _loss_case(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    logits = torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
    logits.requires_grad_()
    target_shape = (shape[0],) + tuple(shape[2:])
    target = torch.randint(0, shape[1], target_shape, generator=generator).to(device)
    return logits, target


def _forward_backward_functions(logits: torch.Tensor, target: torch.Tensor, eps: float) -> dict[str, Callable[[], None]]:
    def lstheory_loss() -> None:
        logits.grad = None
        label_smoothed_cross_entropy(logits, target, eps, convention="uniform").backward()
        logits.grad = None

    def builtin_loss() -> None:
        logits.grad = None
        F.cross_entropy(logits, target, label_smoothing=eps).backward()
        logits.grad = None

    return {"lstheory": lstheory_loss, "baseline": builtin_loss}


def describe_shape(shape: tuple[int, ...], dtype: torch.dtype) -> str:
    """``"N=2048, K=32000, float32"``: the case column of the tables."""
    names = ["N", "K"] + [f"d{i}" for i in range(1, len(shape) - 1)]
    return ", ".join(f"{name}={size}" for name, size in zip(names, shape)) + f", {str(dtype).replace('torch.', '')}"


def bench_loss(
    shapes: Iterable[tuple[int, ...]] = LOSS_SHAPES,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    eps: float = 0.1,
    repeats: int = 7,
    memory_repeats: int = 3,
    seed: int = 0,
    benchmark: str = "loss",
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Median forward+backward time and peak extra memory, lstheory vs the built-in.

    ``progress`` (optional) is called with a short message as each shape starts.
    """
    device = torch.device(device)
    baseline_name = f"F.cross_entropy(label_smoothing={eps})"
    results = []
    for shape in shapes:
        if progress:
            progress(f"loss: {describe_shape(tuple(shape), dtype)}")
        logits, target = _loss_case(tuple(shape), dtype, device, seed)
        functions = _forward_backward_functions(logits, target, eps)
        times = interleaved_times(functions, repeats, device)
        peaks = median_peak_extra_bytes(functions, memory_repeats, device)
        case = describe_shape(tuple(shape), dtype)
        ours, theirs = (statistics.median(times[name]) for name in ("lstheory", "baseline"))
        fastest = min(times["lstheory"]) / min(times["baseline"])
        results.append(
            Measurement(benchmark, case, "median time, forward+backward", "ms", 1e3 * ours, 1e3 * theirs,
                        baseline_name, f"median of {repeats}, interleaved; ratio of the fastest runs {fastest:.3f}")
        )
        logits_mib = logits.numel() * logits.element_size() / MIB
        results.append(
            Measurement(benchmark, case, "peak extra memory", "MiB", peaks["lstheory"] / MIB, peaks["baseline"] / MIB,
                        baseline_name, f"logits are {logits_mib:.0f} MiB; the gradient is part of the peak")
        )
        del logits, target, functions
        gc.collect()
    return results


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    shapes = QUICK_LOSS_SHAPES if quick else LOSS_SHAPES
    return bench_loss(shapes, device="cpu", repeats=3 if quick else 9, memory_repeats=1 if quick else 3,
                      progress=progress)


SUITE = BenchmarkSuite(
    name="loss",
    description="label_smoothed_cross_entropy vs F.cross_entropy(label_smoothing=) on the CPU: time, peak memory",
    run=_run,
)
