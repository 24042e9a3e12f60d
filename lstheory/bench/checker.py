"""Benchmark ``checker``: how long :func:`~lstheory.testing.assert_loss_matches_theory` takes at real vocabularies.

Issue 10, item 8: an autograd loss (``F.cross_entropy(label_smoothing=0.1)``)
is inferred and asserted at ``K = 32,000`` in at most 15 s and at
``K = 128,256`` (Llama 3's vocabulary) in at most 60 s with at most 4 GiB of
peak memory, and a value-only NumPy loss at ``K = 1,000`` in at most 60 s,
on a 2-core machine.  One call of ``assert_loss_matches_theory`` runs the
whole checker (inference, then checks (a)-(d)); it is timed once per case.

Rows per case:

* wall time against the bound (the ratio is the share of the bound used);
  the note gives the process's CPU time, which other processes on a loaded
  machine inflate less than the wall time;
* peak extra memory against 4 GiB (the bound is stated for ``K = 128,256``);
* CPU time against the floor any every-label check has: one forward call
  of the same loss on all ``K`` label rows (``K x K`` logits, in the sweep's
  batches of about :data:`~lstheory.testing.inference.SWEEP_LOGITS` logits),
  measured in the same run: the ratio is the checker's cost in such passes
  (CPU time, as other processes on a shared machine move it less than wall time).
"""

from __future__ import annotations

import gc
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lstheory.bench.measure import MIB, BenchmarkSuite, Measurement, peak_extra_bytes
from lstheory.testing import assert_loss_matches_theory
from lstheory.testing.inference import SWEEP_LOGITS

__all__ = ["CHECKER_CASES", "QUICK_CHECKER_CASES", "bench_checker", "SUITE", "numpy_smoothed_cross_entropy"]

EPS = 0.1
MEMORY_BOUND_MIB = 4096.0

CHECKER_CASES = (("torch", 32000, 15.0), ("torch", 128256, 60.0), ("numpy", 1000, 60.0))
"""``(backend, K, bound in seconds)``: the cases and bounds of issue 10, item 8."""

QUICK_CHECKER_CASES = (("torch", 4096, 15.0), ("numpy", 200, 60.0))


def torch_smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The autograd case: PyTorch's label-smoothed cross-entropy (uniform convention)."""
    return F.cross_entropy(logits, labels, label_smoothing=EPS)


def numpy_smoothed_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The value-only case: the same loss in NumPy, returning a Python float."""
    k = logits.shape[-1]
    target = np.full(logits.shape, EPS / k)
    target[np.arange(len(labels)), labels] += 1 - EPS
    shifted = logits - logits.max(-1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-(target * log_q).sum(-1).mean())


LOSSES: dict[str, Callable] = {"torch": torch_smoothed_cross_entropy, "numpy": numpy_smoothed_cross_entropy}
LOSS_NAMES = {
    "torch": f"F.cross_entropy(label_smoothing={EPS}), autograd",
    "numpy": "NumPy label-smoothed CE, values only",
}


def every_label_forward_seconds(backend: str, k: int, seed: int = 0) -> float:
    """CPU seconds of the loss's forward on ``K`` rows of ``K`` logits (one row per label), in sweep-sized batches."""
    rng = np.random.default_rng(seed)
    batch = max(8, min(256, SWEEP_LOGITS // k))
    dtype = np.float32 if backend == "torch" else np.float64
    logits = rng.standard_normal((batch, k)).astype(dtype)
    loss = LOSSES[backend]
    start = time.process_time()
    for first in range(0, k, batch):
        labels = np.arange(first, min(k, first + batch))
        if backend == "torch":
            with torch.no_grad():
                loss(torch.from_numpy(logits[: len(labels)]), torch.from_numpy(labels))
        else:
            loss(logits[: len(labels)], labels)
    return time.process_time() - start


def _timed_check(backend: str, k: int, seed: int) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak extra bytes of one ``assert_loss_matches_theory``."""
    timing: dict[str, float] = {}

    def check() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        assert_loss_matches_theory(LOSSES[backend], k, EPS, convention="uniform",
                                   ignore_index=-100 if backend == "torch" else None, seed=seed)
        timing["wall"], timing["cpu"] = time.perf_counter() - wall, time.process_time() - cpu

    gc.collect()
    peak = peak_extra_bytes(check, torch.device("cpu"))
    return timing["wall"], timing["cpu"], peak


def bench_checker(cases=CHECKER_CASES, *, seed: int = 0, benchmark: str = "checker",
                  progress: Callable[[str], None] | None = None) -> list[Measurement]:
    """Time and peak memory of the checker for each ``(backend, K, bound)`` case (see the module docstring)."""
    results = []
    for backend, k, bound in cases:
        if progress:
            progress(f"checker: {backend}, K={k}")
        wall, cpu, peak = _timed_check(backend, k, seed)
        floor = every_label_forward_seconds(backend, k, seed)
        case = f"K={k}, {LOSS_NAMES[backend]}"
        threads = torch.get_num_threads()
        results += [
            Measurement(benchmark, case, "time, infer + assert", "s", wall, bound, f"bound: {bound:g} s",
                        f"CPU time {cpu:.1f} s on {threads} threads; one check, seed {seed}"),
            Measurement(benchmark, case, "peak extra memory", "MiB", peak / MIB if math.isfinite(peak) else math.nan,
                        MEMORY_BOUND_MIB, "bound: 4 GiB", "stated for K=128,256; resident-set growth"),
            Measurement(benchmark, case, "CPU time per every-label forward", "s", cpu, floor,
                        "one forward on all K label rows", "the floor of checking every label once by its value"),
        ]
        gc.collect()
    return results


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    return bench_checker(QUICK_CHECKER_CASES if quick else CHECKER_CASES, progress=progress)


SUITE = BenchmarkSuite(
    name="checker",
    description="assert_loss_matches_theory at K = 32,000 and 128,256 (autograd) and 1,000 (values only): time, memory",
    run=_run,
)
