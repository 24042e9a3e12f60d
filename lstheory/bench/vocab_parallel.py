"""Benchmark ``vocab_parallel``: the vocabulary-parallel loss over 2 gloo processes against the dense loss on one.

:func:`lstheory.torch.vocab_parallel_label_smoothed_cross_entropy` at
``N = 4096, K = 32,000`` (float32, uniform convention), the classes split over
two local ``gloo`` processes with one thread each, against
:func:`lstheory.torch.label_smoothed_cross_entropy` of the full logits in this
process (torch's default thread count): the median wall time of forward +
backward (per repeat the slower rank's, after a barrier), and the median time
of the loss's two all-reduces (``N + 2`` numbers MAX, ``3 N + 1`` SUM) timed
alone in the same processes.  Report only: the CPU and gloo say nothing about
GPUs and NCCL, and the ranks share this machine's cores with nothing else
running between repeats.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.distributed as dist

from lstheory.bench.measure import BenchmarkSuite, Measurement, interleaved_times
from lstheory.torch.loss import label_smoothed_cross_entropy
from lstheory.torch.vocab_parallel import vocab_parallel_label_smoothed_cross_entropy, vocab_shard_bounds

__all__ = ["VOCAB_PARALLEL_SHAPE", "bench_vocab_parallel", "SUITE"]

VOCAB_PARALLEL_SHAPE = (4096, 32000)
QUICK_SHAPE = (512, 32000)
EPS = 0.1


def _rank_timings(context, num_rows: int, num_classes: int, repeats: int, seed: int) -> dict:
    """In each rank: per repeat, the forward + backward time and the time of the two all-reduces alone."""
    start, stop = vocab_shard_bounds(num_classes, context.world_size)[context.rank]
    generator = torch.Generator().manual_seed(seed + context.rank)
    logits = torch.randn(num_rows, stop - start, generator=generator).requires_grad_(True)
    target = torch.randint(0, num_classes, (num_rows,), generator=torch.Generator().manual_seed(seed))
    maxima, sums = torch.zeros(num_rows + 2), torch.zeros(3 * num_rows + 1)

    def loss_call() -> None:
        logits.grad = None
        vocab_parallel_label_smoothed_cross_entropy(logits, target, EPS, vocab_start=start, num_classes=num_classes,
                                                    convention="uniform").backward()

    def all_reduces() -> None:
        dist.all_reduce(maxima, op=dist.ReduceOp.MAX)
        dist.all_reduce(sums)

    times: dict[str, list[float]] = {"loss": [], "all_reduces": []}
    cpu_start = time.process_time()
    for repeat in range(repeats + 1):  # the first is a warm-up
        for name, function in (("loss", loss_call), ("all_reduces", all_reduces)):
            dist.barrier()
            begin = time.perf_counter()
            function()
            if repeat:
                times[name].append(time.perf_counter() - begin)
    return dict(times, cpu_seconds=time.process_time() - cpu_start)


def bench_vocab_parallel(
    shape: tuple[int, int] = VOCAB_PARALLEL_SHAPE, *, world_size: int = 2, repeats: int = 7, seed: int = 0,
) -> list[Measurement]:
    """Median forward + backward time over ``world_size`` gloo processes vs the dense loss in this process."""
    from lstheory.testing.process_groups import run_in_process_group

    num_rows, num_classes = shape
    ranks = run_in_process_group(_rank_timings, world_size, args=(num_rows, num_classes, repeats, seed), timeout=600.0)
    parallel = statistics.median(max(rank["loss"][i] for rank in ranks) for i in range(repeats))
    collectives = statistics.median(max(rank["all_reduces"][i] for rank in ranks) for i in range(repeats))
    cpu = sum(rank["cpu_seconds"] for rank in ranks)

    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_rows, num_classes, generator=generator).requires_grad_(True)
    target = torch.randint(0, num_classes, (num_rows,), generator=generator)

    def dense_call() -> None:
        logits.grad = None
        label_smoothed_cross_entropy(logits, target, EPS, convention="uniform").backward()

    dense = statistics.median(interleaved_times({"dense": dense_call}, repeats, torch.device("cpu"))["dense"])
    case = f"N={num_rows}, K={num_classes}, float32, {world_size} ranks"
    threads = torch.get_num_threads()
    return [
        Measurement("vocab_parallel", case, "median time, forward+backward", "ms", 1e3 * parallel, 1e3 * dense,
                    f"dense label_smoothed_cross_entropy, 1 process, {threads} threads",
                    f"{world_size} gloo processes x 1 thread, K/{world_size} classes each; median of {repeats}, per "
                    f"repeat the slower rank; the ranks used {cpu:.1f} CPU-s"),
        Measurement("vocab_parallel", f"{case}, all-reduces alone", "time in the two all-reduces", "ms", 1e3 * collectives, 1e3 * parallel,
                    "the whole parallel call", f"all-reduce MAX of N+2 and SUM of 3N+1 float32, timed alone; the "
                    "ratio is their share of the call"),
    ]


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    return bench_vocab_parallel(QUICK_SHAPE if quick else VOCAB_PARALLEL_SHAPE, repeats=3 if quick else 7)


SUITE = BenchmarkSuite(
    name="vocab_parallel",
    description="vocab_parallel_label_smoothed_cross_entropy over 2 gloo processes vs the dense loss on one (CPU; report only)",
    run=_run,
)
