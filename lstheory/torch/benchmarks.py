r"""Benchmarks of the torch layer against its baselines (the logic of ``lstheory bench``).

Each benchmark measures lstheory and its baseline in the same process, one
after the other, and reports both figures and their ratio
``lstheory / baseline``.  These are benchmarks, not tests: nothing here
asserts a time.

(a) ``loss``: forward + backward of :func:`label_smoothed_cross_entropy`
    (uniform convention) against ``F.cross_entropy(label_smoothing=eps)``:
    the median wall time over interleaved repeats, and the peak memory
    above what was allocated before the call (logits and target exist
    already; the gradient is part of the peak).
(b) ``solver``: :func:`solve_optimal_logits` on ``M`` label-smoothing
    configurations (``K`` up to 1000, both conventions, ``eps`` log-spaced)
    against a Python loop of :func:`lstheory.numeric.minimize_smoothed`
    (SciPy trust-region Newton + least-squares polish, the SciPy level of
    ``lstheory verify``) over an evenly spaced sample of the same
    configurations: time per configuration, and the largest disagreement
    of the gaps.
(c) ``cuda``: (a) on a CUDA device, with the achieved bandwidth: the
    bytes that forward + backward must move at least (read the logits twice,
    write the gradient once: ``3 N K`` elements) divided by the time,
    against the device's peak (from its memory clock and bus width) and
    against a measured device-to-device copy.

Peak memory on the CPU is the growth of the process's resident set: the
kernel's high-water mark ``VmHWM`` is reset through ``/proc/self/clear_refs``
right before the call and read right after it (Linux only; large tensors
are ``mmap``-ed and returned to the kernel when freed, so the resident set
follows the live tensors).  On CUDA it is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from lstheory.closed_form import logit_gap, smoothed_target
from lstheory.torch.loss import label_smoothed_cross_entropy
from lstheory.torch.solver import solve_optimal_logits

__all__ = [
    "Measurement",
    "BenchmarkReport",
    "machine_description",
    "bench_loss",
    "bench_solver",
    "bench_cuda",
    "run_benchmarks",
    "format_table",
]

LOSS_SHAPES = ((2048, 32000), (8, 32000, 256))
"""Issue 3 (a): a batch of rows and a sequence shape, both 65.5 M logits."""

QUICK_LOSS_SHAPES = ((256, 32000), (2, 32000, 64))

SOLVER_NUM_CLASSES = (2, 3, 5, 10, 30, 100, 300, 1000)
"""Issue 3 (b): K up to 1000; configurations are spread evenly over these."""

SOLVER_EPS_RANGE = (1e-4, 0.999)

MIB = 2**20


@dataclass(frozen=True)
class Measurement:
    """One line of the benchmark table: lstheory's figure, the baseline's, their ratio."""

    benchmark: str
    case: str
    quantity: str
    unit: str
    lstheory: float
    baseline: float
    baseline_name: str
    note: str = ""

    @property
    def ratio(self) -> float:
        """``lstheory / baseline`` (below 1: lstheory is faster or leaner)."""
        if self.baseline == 0 or math.isnan(self.baseline):
            return math.nan
        return self.lstheory / self.baseline


@dataclass
class BenchmarkReport:
    machine: dict
    measurements: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """JSON-ready: NaN becomes None; ``results`` lists ``{name, ratio}`` for the docs figure."""

        def clean(value):
            return None if isinstance(value, float) and math.isnan(value) else value

        measurements = [{k: clean(v) for k, v in dict(asdict(m), ratio=m.ratio).items()} for m in self.measurements]
        return {
            "machine": self.machine,
            "seconds": self.seconds,
            "measurements": measurements,
            "results": [
                {"name": f"{m['benchmark']}: {m['quantity']} ({m['case']})", "ratio": m["ratio"]}
                for m in measurements
                if m["ratio"] is not None
            ],
        }


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: str | torch.device = "cpu") -> dict:
    """CPU model, core and thread counts, library versions and, for CUDA, the GPU."""
    import scipy

    description = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        description["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (OSError, ValueError, AttributeError):
        pass
    device = torch.device(device)
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        description["gpu"] = properties.name
        description["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
        peak = _device_peak_bandwidth(device)
        if peak:
            description["gpu_peak_bandwidth_gb_s"] = round(peak / 1e9, 1)
        description["cuda"] = torch.version.cuda
    return description


def _other_processes_cpu_seconds() -> float | None:
    """CPU seconds used so far by everything but this process (Linux ``/proc``), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        with open("/proc/self/stat") as handle:
            own = handle.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return (busy - int(own[11]) - int(own[12])) / ticks  # minus this process's utime + stime


# --------------------------------------------------------------------------- measuring


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved_times(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Wall times of each function, run in alternating order so that drift hits all alike."""
    names = list(functions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: allocator, thread pool, kernels
        functions[name]()
    _synchronize(device)
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            _synchronize(device)
            start = time.perf_counter()
            functions[name]()
            _synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _interleaved_median_times(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in _interleaved_times(functions, repeats, device).items()}


def _read_status(field_name: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field_name} not in /proc/self/status")


def cpu_peak_memory_available() -> bool:
    """Whether the resident-set high-water mark can be reset (Linux, /proc/self/clear_refs writable)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        _read_status("VmHWM")
        return True
    except OSError:
        return False


def _peak_extra_bytes(function: Callable[[], None], device: torch.device) -> float:
    """Peak memory above the level before ``function`` ran (see the module docstring)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        function()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - before)
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # VmHWM := VmRSS
        before = _read_status("VmRSS")
        function()
        return float(_read_status("VmHWM") - before)
    except OSError:
        return math.nan


def _median_peak_extra_bytes(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, float]:
    names = list(functions)
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            peaks[name].append(_peak_extra_bytes(functions[name], device))
    return {name: statistics.median(values) for name, values in peaks.items()}


# --------------------------------------------------------------------------- (a) the loss


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


def _describe_shape(shape: tuple[int, ...], dtype: torch.dtype) -> str:
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
) -> list[Measurement]:
    """(a): median forward+backward time and peak extra memory, lstheory vs the built-in."""
    device = torch.device(device)
    baseline_name = "F.cross_entropy(label_smoothing=0.1)"
    results = []
    for shape in shapes:
        logits, target = _loss_case(tuple(shape), dtype, device, seed)
        functions = _forward_backward_functions(logits, target, eps)
        times = _interleaved_times(functions, repeats, device)
        peaks = _median_peak_extra_bytes(functions, memory_repeats, device)
        case = _describe_shape(tuple(shape), dtype)
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


# --------------------------------------------------------------------------- (b) the solver


def solver_configurations(num_configurations: int, num_classes: Iterable[int] = SOLVER_NUM_CLASSES):
    """``(K, eps, convention)`` triples: every K, both conventions, ``eps`` log-spaced in 1e-4..0.999."""
    num_classes = tuple(num_classes)
    groups = 2 * len(num_classes)
    per_group = [num_configurations // groups + (1 if i < num_configurations % groups else 0) for i in range(groups)]
    configurations = []
    index = 0
    for k in num_classes:
        for convention in ("off_target", "uniform"):
            count = per_group[index]
            index += 1
            for eps in np.geomspace(*SOLVER_EPS_RANGE, count) if count > 1 else np.array([0.1] * count):
                configurations.append((k, float(eps), convention))
    return configurations


def _two_level_targets(num_classes: int, eps: np.ndarray, conventions: list[str]) -> np.ndarray:
    """Rows ``(p_true, p_other, ..., p_other)``: the label is class 0."""
    target = np.empty((len(eps), num_classes))
    for convention in set(conventions):
        rows = np.array([c == convention for c in conventions])
        p_true, p_other = smoothed_target(num_classes, eps[rows], convention=convention)
        target[rows] = np.asarray(p_other)[:, None]
        target[rows, 0] = p_true
    return target


def _closed_form_gaps(configurations, rows) -> np.ndarray:
    """:func:`lstheory.closed_form.logit_gap` of the chosen configurations, one call per convention."""
    rows = np.asarray(rows)
    k = np.array([configurations[i][0] for i in rows])
    eps = np.array([configurations[i][1] for i in rows])
    conventions = np.array([configurations[i][2] for i in rows])
    gaps = np.empty(len(rows))
    for convention in ("off_target", "uniform"):
        chosen = conventions == convention
        if chosen.any():
            gaps[chosen] = logit_gap(k[chosen], eps[chosen], convention=convention)
    return gaps


def _mean_gap(logits: np.ndarray) -> np.ndarray:
    """``z_0 - mean(z_i, i != 0)`` per row (label 0), as ``MinimizationResult.gap`` defines it."""
    return logits[..., 0] - logits[..., 1:].mean(axis=-1)


def bench_solver(
    num_configurations: int = 10_000,
    *,
    scipy_sample: int = 200,
    device: str | torch.device = "cpu",
    repeats: int = 3,
    num_classes: Iterable[int] = SOLVER_NUM_CLASSES,
) -> list[Measurement]:
    """(b): the batched solver on all configurations vs a SciPy loop over an even sample of them."""
    from lstheory.numeric import minimize_smoothed

    device = torch.device(device)
    configurations = solver_configurations(num_configurations, num_classes)
    by_k: dict[int, list[int]] = {}
    for index, (k, _, _) in enumerate(configurations):
        by_k.setdefault(k, []).append(index)
    eps_all = np.array([c[1] for c in configurations])
    targets = {
        k: torch.from_numpy(_two_level_targets(k, eps_all[rows], [configurations[i][2] for i in rows])).to(device)
        for k, rows in by_k.items()
    }

    solutions: dict[int, object] = {}

    def solve_all() -> None:
        for k, target in targets.items():
            solutions[k] = solve_optimal_logits(target)

    torch_seconds = _interleaved_median_times({"lstheory": solve_all}, repeats, device)["lstheory"]

    # gaps of every configuration against the closed form (all M), and the solver's own flags
    worst_closed_form = 0.0
    converged = 0
    torch_gap = np.empty(len(configurations))
    for k, rows in by_k.items():
        solution = solutions[k]
        logits = solution.logits.double().cpu().numpy()
        converged += int(solution.converged.sum())
        exact = _closed_form_gaps(configurations, rows)
        worst_closed_form = max(worst_closed_form, float(np.abs(logits[:, :1] - logits[:, 1:] - exact[:, None]).max()))
        torch_gap[rows] = _mean_gap(logits)

    sample = np.unique(np.linspace(0, len(configurations) - 1, min(scipy_sample, len(configurations))).round().astype(int))
    scipy_gap = np.empty(len(sample))
    scipy_converged = 0
    start = time.perf_counter()
    for j, index in enumerate(sample):
        k, eps, convention = configurations[index]
        result = minimize_smoothed(k, eps, convention=convention, seed=int(index))
        scipy_gap[j] = result.gap
        scipy_converged += bool(result.converged)
    scipy_seconds = time.perf_counter() - start
    worst_scipy = float(np.abs(torch_gap[sample] - scipy_gap).max())
    exact_sample = _closed_form_gaps(configurations, sample)
    scipy_vs_closed_form = float(np.abs(scipy_gap - exact_sample).max())

    m = len(configurations)
    per_torch = torch_seconds / m
    per_scipy = scipy_seconds / len(sample)
    case = f"M={m}, K in {{{', '.join(map(str, by_k))}}}, float64"
    name = "SciPy loop (lstheory.numeric.minimize_smoothed)"
    return [
        Measurement("solver", case, "time per configuration", "us", 1e6 * per_torch, 1e6 * per_scipy, name,
                    f"{per_scipy / per_torch:.0f}x faster; torch: all {m} at once (median of {repeats}); "
                    f"SciPy: {len(sample)} evenly spaced of them, one by one"),
        Measurement("solver", case, "largest gap error vs the closed form", "logit", worst_closed_form,
                    scipy_vs_closed_form, name,
                    f"torch over all {m}, SciPy over its {len(sample)}; converged: torch {converged}/{m}, "
                    f"SciPy {scipy_converged}/{len(sample)}"),
        Measurement("solver", case, "largest gap disagreement, torch vs SciPy", "logit", worst_scipy, math.nan, name,
                    f"max abs difference of z_y - mean(z_i, i != y) over the {len(sample)} configurations both solved"),
    ]


# --------------------------------------------------------------------------- (c) CUDA


def _device_peak_bandwidth(device: torch.device) -> float | None:
    """Bytes/s from the memory clock (kHz, double data rate) and bus width (bits), if torch reports them."""
    properties = torch.cuda.get_device_properties(device)
    clock_khz = getattr(properties, "memory_clock_rate", 0)
    bus_bits = getattr(properties, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


def _measured_copy_bandwidth(device: torch.device, nbytes: int = 2**30, repeats: int = 5) -> float:
    source = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    destination = torch.empty_like(source)
    seconds = _interleaved_median_times({"copy": lambda: destination.copy_(source)}, repeats, device)["copy"]
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
    peak = _device_peak_bandwidth(device)
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


# --------------------------------------------------------------------------- driver


def run_benchmarks(
    *,
    device: str = "cpu",
    quick: bool = False,
    only: Iterable[str] = ("loss", "solver", "cuda"),
    progress: Callable[[str], None] | None = None,
) -> BenchmarkReport:
    """Run the selected benchmarks; ``quick`` shrinks every size for a smoke run (figures not comparable)."""
    only = set(only)
    unknown = only - {"loss", "solver", "cuda"}
    if unknown:
        raise ValueError(f"only must name benchmarks among 'loss', 'solver', 'cuda'; got {sorted(unknown)}")
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but torch.cuda.is_available() is False")
    report = BenchmarkReport(machine=machine_description(torch_device))
    start = time.perf_counter()
    others_before = _other_processes_cpu_seconds()
    say = progress or (lambda message: None)
    if "loss" in only:
        say("(a) loss: forward+backward on the CPU")
        shapes = QUICK_LOSS_SHAPES if quick else LOSS_SHAPES
        report.measurements += bench_loss(shapes, device="cpu", repeats=3 if quick else 9, memory_repeats=1 if quick else 3)
    if "solver" in only:
        say(f"(b) solver on {device}")
        report.measurements += bench_solver(
            400 if quick else 10_000, scipy_sample=16 if quick else 200, device=torch_device, repeats=1 if quick else 3
        )
    if "cuda" in only and torch_device.type == "cuda":
        say(f"(c) loss on {device}")
        shapes = QUICK_LOSS_SHAPES if quick else LOSS_SHAPES
        report.measurements += bench_cuda(shapes, device=torch_device, repeats=5 if quick else 20)
    report.seconds = time.perf_counter() - start
    others_after = _other_processes_cpu_seconds()
    if others_before is not None and others_after is not None and report.seconds > 0:
        # a busy machine slows the many-block lstheory loss more than the built-in: say how busy it was
        report.machine["other_processes_cpu_cores"] = round((others_after - others_before) / report.seconds, 2)
    return report


def _format_number(value: float) -> str:
    """Three significant digits, fixed-point from 1e-3 to 1e5, else scientific."""
    if math.isnan(value):
        return "n/a"
    if value == 0 or math.isinf(value):
        return str(value) if value else "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1e-3:
        return f"{value:.{max(0, 2 - math.floor(math.log10(magnitude)))}f}"
    return f"{value:.1e}"


def format_table(report: BenchmarkReport) -> str:
    """The measurements as a Markdown table (the format of ``docs/benchmarks.md``)."""
    lines = [
        "| benchmark | case | quantity | lstheory | baseline | ratio | baseline is | note |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for m in report.measurements:
        lines.append(
            f"| {m.benchmark} | {m.case} | {m.quantity} ({m.unit}) | {_format_number(m.lstheory)} | "
            f"{_format_number(m.baseline)} | {_format_number(m.ratio)} | {m.baseline_name} | {m.note} |"
        )
    return "\n".join(lines)


def format_machine(report: BenchmarkReport) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in report.machine.items())
