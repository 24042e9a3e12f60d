"""Benchmark ``cuda``: the loss benchmark on a CUDA device, with the achieved memory bandwidth.

The bytes that forward + backward must move at least (read the logits twice,
write the gradient once: ``3 N K`` elements) divided by the time, against the
device's peak (from its memory clock and bus width) and against a measured
device-to-device copy.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from lstheory.bench.loss import LOSS_SHAPES, QUICK_LOSS_SHAPES, bench_loss
from lstheory.bench.measure import BenchmarkSuite, Measurement, device_peak_bandwidth, interleaved_median_times

__all__ = ["bench_cuda", "SUITE"]


def _measured_copy_bandwidth(device: torch.device, nbytes: int = 2**30, repeats: int = 5) -> float:
    source = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    destination = torch.empty_like(source)
    seconds = interleaved_median_times({"copy": lambda: destination.copy_(source)}, repeats, device)["copy"]
    del source, destination
    torch.cuda.empty_cache()
    return 2 * nbytes / seconds  # read + write


def bench_cuda(
    shapes: Iterable[tuple[int, ...]] = LOSS_SHAPES,
    *,
    device: str | torch.device = "cuda",
    dtypes: Iterable[torch.dtype] = (torch.float32, torch.bfloat16),
    repeats: int = 20,
) -> list[Measurement]:
    """(c): time, achieved bandwidth and memory on CUDA, lstheory vs the built-in."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return []
    peak = device_peak_bandwidth(device)
    copy = _measured_copy_bandwidth(device)
    results = []
    for dtype in dtypes:
        for shape in shapes:
            measured = bench_loss([shape], device=device, dtype=dtype, repeats=repeats, benchmark="cuda")
            results.extend(measured)
            time_row = measured[0]
            nbytes = 3 * math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            ours, theirs = nbytes / (time_row.lstheory / 1e3), nbytes / (time_row.baseline / 1e3)
            reference = f"device peak {peak / 1e9:.0f} GB/s" if peak else "device peak unknown"
            share = f"{ours / peak:.0%} of peak, " if peak else ""
            results.append(
                Measurement("cuda", time_row.case, "achieved bandwidth (3 N K elements moved)", "GB/s", ours / 1e9,
                            theirs / 1e9, time_row.baseline_name,
                            f"{share}{ours / copy:.0%} of a measured copy ({copy / 1e9:.0f} GB/s); {reference}")
            )
    return results


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    shapes = QUICK_LOSS_SHAPES if quick else LOSS_SHAPES
    return bench_cuda(shapes, device=device, repeats=5 if quick else 20)


SUITE = BenchmarkSuite(
    name="cuda",
    description="the loss benchmark on a CUDA device, with achieved memory bandwidth (needs --device cuda)",
    run=_run,
    needs_cuda=True,
)
