r"""Benchmark ``linear_loss``: the fused linear + label-smoothed loss against eager and compiled PyTorch.

Forward + backward of
:func:`lstheory.torch.linear_label_smoothed_cross_entropy` (uniform
convention, ``eps = 0.1``, no bias: a language-model head) against, in the
same process and run, the eager composite
``F.cross_entropy(F.linear(h, W), y, label_smoothing=eps)`` and
``torch.compile`` of that composite.  All three return the same value and the
gradients ``dh (N, H)`` and ``dW (K, H)``: those gradients are what any method
must hold, ``(N + K) H`` floats, and the third baseline of the memory rows.

Each shape runs in a fresh subprocess started with
``MALLOC_MMAP_THRESHOLD_=65536``: glibc then serves every allocation above
64 KiB with its own ``mmap`` and returns it when freed, so the resident set
follows the live tensors and the peak extra memory (the growth of ``VmHWM``,
:func:`lstheory.bench.measure.peak_extra_bytes`) is deterministic.  With
glibc's default (a threshold that adapts up to 32 MiB) chunk-sized buffers
stay in the heap after they are freed and the same call read anywhere from
63 to 250 MiB.  The variable must be set before the process starts, hence the
subprocess.  Times are medians of interleaved repeats in that subprocess.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from lstheory.bench.measure import MIB, BenchmarkSuite, Measurement, interleaved_times, median_peak_extra_bytes
from lstheory.torch.linear_loss import default_chunk_size, linear_label_smoothed_cross_entropy

__all__ = ["LINEAR_LOSS_SHAPES", "QUICK_LINEAR_LOSS_SHAPES", "METHODS", "measure_linear_loss", "bench_linear_loss",
           "SUITE"]

LINEAR_LOSS_SHAPES = ((2048, 512, 32000), (1024, 1024, 128256))
"""``(N, H, K)``: a Llama-2-sized vocabulary, and Llama 3's with a wider model."""

QUICK_LINEAR_LOSS_SHAPES = ((256, 64, 4000),)

METHODS = ("lstheory", "eager", "compiled")

DETERMINISTIC_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536"}
"""The allocator setting of the measuring subprocess (see the module docstring)."""

EPS = 0.1

BASELINE_NAMES = {
    "eager": "eager composite",
    "compiled": "torch.compile(eager composite)",
    "required": "required gradients dh, dW",
}
"""Short: the figure names each bar by them.  The eager composite is
``F.cross_entropy(F.linear(h, W), y, label_smoothing=0.1)``."""

GOALS = {  # issue 12, item 4: (quantity, baseline) -> the ratio lstheory / baseline aimed at
    ("time", "eager"): 1.0,
    ("time", "compiled"): 1.1,
    ("memory", "eager"): 0.2,
    ("memory", "compiled"): 0.5,
    ("memory", "required"): 1.5,
}


def _case(shape: tuple[int, int, int], dtype: torch.dtype, seed: int):
    num_rows, hidden_size, num_classes = shape
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(num_rows, hidden_size, generator=generator, dtype=torch.float32).to(dtype)
    classifier = (torch.randn(num_classes, hidden_size, generator=generator) / hidden_size**0.5).to(dtype)
    target = torch.randint(0, num_classes, (num_rows,), generator=generator)
    return hidden.requires_grad_(), classifier.requires_grad_(), target


def _forward_backward_functions(hidden, classifier, target, methods, chunk_size) -> dict[str, Callable[[], None]]:
    def eager_loss(h, w, y):
        return F.cross_entropy(F.linear(h, w), y, label_smoothing=EPS)

    losses = {
        "lstheory": lambda h, w, y: linear_label_smoothed_cross_entropy(h, w, y, EPS, convention="uniform",
                                                                          chunk_size=chunk_size),
        "eager": eager_loss,
        "compiled": torch.compile(eager_loss, dynamic=False) if "compiled" in methods else None,
    }

    def run(loss) -> Callable[[], None]:
        def forward_backward() -> None:
            hidden.grad = classifier.grad = None
            loss(hidden, classifier, target).backward()
            hidden.grad = classifier.grad = None

        return forward_backward

    return {name: run(losses[name]) for name in methods}


def measure_linear_loss(shape, *, methods=METHODS, repeats=5, memory_repeats=2, chunk_size=None,
                        dtype=torch.float32, seed=0) -> dict:
    """Times (s) and peak extra memory (bytes) of each method at one ``(N, H, K)``, in this process.

    Returns ``{"times": {method: [s, ...]}, "peaks": {method: [bytes, ...]}, "chunk_size": rows}`` (the rows
    of a chunk: at most ``N``).
    For deterministic memory run it in a process started with :data:`DETERMINISTIC_MALLOC`
    (:func:`bench_linear_loss` does).
    """
    hidden, classifier, target = _case(tuple(shape), dtype, seed)
    chunk_size = chunk_size or default_chunk_size(shape[2], shape[1], dtype)
    functions = _forward_backward_functions(hidden, classifier, target, methods, chunk_size)
    device = torch.device("cpu")
    times = interleaved_times(functions, repeats, device)
    peaks = {name: [median_peak_extra_bytes({name: f}, 1, device)[name] for _ in range(memory_repeats)]
             for name, f in functions.items()}
    return {"times": times, "peaks": peaks, "chunk_size": min(chunk_size, shape[0])}


def _measure_in_subprocess(shape, *, methods, repeats, memory_repeats, chunk_size) -> dict:
    request = {"shape": list(shape), "methods": list(methods), "repeats": repeats, "memory_repeats": memory_repeats,
               "chunk_size": chunk_size, "threads": torch.get_num_threads()}
    code = "import sys; from lstheory.bench.linear_loss import _worker; _worker(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", code, json.dumps(request)], capture_output=True, text=True,
                          env={**os.environ, **DETERMINISTIC_MALLOC}, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"linear_loss benchmark subprocess failed for shape {shape}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker(request_json: str) -> None:
    """Entry point of the measuring subprocess: one JSON line on stdout."""
    request = json.loads(request_json)
    torch.set_num_threads(request["threads"])
    result = measure_linear_loss(tuple(request["shape"]), methods=tuple(request["methods"]),
                                 repeats=request["repeats"], memory_repeats=request["memory_repeats"],
                                 chunk_size=request["chunk_size"])
    print(json.dumps(result))


def _describe(shape, dtype: torch.dtype, chunk_size: int) -> str:
    num_rows, hidden_size, num_classes = shape
    return f"N={num_rows}, H={hidden_size}, K={num_classes}, {str(dtype).replace('torch.', '')}, chunk {chunk_size}"


def _rows_for_shape(shape, result: dict, methods, repeats: int, benchmark: str) -> list[Measurement]:
    num_rows, hidden_size, num_classes = shape
    case = _describe(shape, torch.float32, result["chunk_size"])
    times, peaks = result["times"], result["peaks"]
    ours_time = statistics.median(times["lstheory"])
    ours_peak = statistics.median(peaks["lstheory"])
    spread = {name: f"{min(v) / MIB:.1f}-{max(v) / MIB:.1f}" for name, v in peaks.items()}
    rows = []
    for baseline in [m for m in methods if m != "lstheory"]:
        fastest = min(times["lstheory"]) / min(times[baseline])
        rows.append(Measurement(benchmark, case, "median time, forward+backward", "ms", 1e3 * ours_time,
                                1e3 * statistics.median(times[baseline]), BASELINE_NAMES[baseline],
                                f"median of {repeats}, interleaved; ratio of the fastest runs {fastest:.3f}; "
                                f"goal <= {GOALS[('time', baseline)]}"))
    for baseline in [m for m in methods if m != "lstheory"]:
        rows.append(Measurement(benchmark, case, "peak extra memory", "MiB", ours_peak / MIB,
                                statistics.median(peaks[baseline]) / MIB, BASELINE_NAMES[baseline],
                                f"MALLOC_MMAP_THRESHOLD_=65536; runs: lstheory {spread['lstheory']}, {baseline} "
                                f"{spread[baseline]} MiB; goal <= {GOALS[('memory', baseline)]} at N=2048, H=512, "
                                f"K=32000"))
    required = (num_rows + num_classes) * hidden_size * 4
    rows.append(Measurement(benchmark, case, "peak extra memory", "MiB", ours_peak / MIB, required / MIB,
                            BASELINE_NAMES["required"],
                            f"(N + K) H float32 = {required / MIB:.1f} MiB; goal <= {GOALS[('memory', 'required')]}"))
    return rows


def bench_linear_loss(shapes: Iterable[tuple[int, int, int]] = LINEAR_LOSS_SHAPES, *, methods=METHODS,
                      repeats: int = 5, memory_repeats: int = 2, chunk_size: int | None = None,
                      benchmark: str = "linear_loss", progress=None) -> list[Measurement]:
    """Time and peak extra memory of the fused loss against eager and compiled, one subprocess per shape."""
    results = []
    for shape in shapes:
        if progress:
            progress(f"linear_loss: (N, H, K) = {tuple(shape)}")
        result = _measure_in_subprocess(shape, methods=methods, repeats=repeats, memory_repeats=memory_repeats,
                                        chunk_size=chunk_size)
        results.extend(_rows_for_shape(tuple(shape), result, methods, repeats, benchmark))
    return results


def _run(device: torch.device, quick: bool, progress) -> list[Measurement]:
    if quick:
        return bench_linear_loss(QUICK_LINEAR_LOSS_SHAPES, methods=("lstheory", "eager"), repeats=2,
                                 memory_repeats=1, progress=progress)
    first, second = LINEAR_LOSS_SHAPES  # the second is four times the work: fewer repeats
    return (bench_linear_loss([first], repeats=5, progress=progress)
            + bench_linear_loss([second], repeats=3, progress=progress))


SUITE = BenchmarkSuite(
    name="linear_loss",
    description="linear_label_smoothed_cross_entropy vs eager and torch.compile'd F.cross_entropy(F.linear(...)) "
    "on the CPU: time, peak memory, memory against the required gradients",
    run=_run,
)
