r"""What every benchmark shares: the measurement record, the machine, timing and peak memory.

Each benchmark measures lstheory and its baseline in the same process, one
after the other, and reports both figures and their ratio
``lstheory / baseline``.  These are benchmarks, not tests: nothing here
asserts a time.

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
from typing import Callable

import numpy as np
import torch

from lstheory.bench.records import format_rows

__all__ = [
    "MIB",
    "Measurement",
    "BenchmarkReport",
    "BenchmarkSuite",
    "machine_description",
    "interleaved_times",
    "interleaved_median_times",
    "peak_extra_bytes",
    "median_peak_extra_bytes",
    "cpu_peak_memory_available",
    "other_processes_cpu_seconds",
    "format_table",
    "format_machine",
]

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


@dataclass(frozen=True)
class BenchmarkSuite:
    """A named benchmark of ``lstheory bench``.

    ``run(device, quick, progress)`` returns its measurements; ``quick`` shrinks
    every size for a smoke run (figures not comparable); ``progress`` is a
    callable taking a short message, or ``None``.  ``needs_cuda`` suites are
    skipped unless the device is a CUDA device.
    """

    name: str
    description: str
    run: Callable[..., list[Measurement]]
    needs_cuda: bool = False


@dataclass
class BenchmarkReport:
    machine: dict
    measurements: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """JSON-ready: NaN becomes None; ``ratio`` is stored with each measurement."""

        def clean(value):
            return None if isinstance(value, float) and math.isnan(value) else value

        measurements = [{k: clean(v) for k, v in dict(asdict(m), ratio=m.ratio).items()} for m in self.measurements]
        return {"machine": self.machine, "seconds": self.seconds, "measurements": measurements}


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


def device_peak_bandwidth(device: torch.device) -> float | None:
    """Bytes/s from the memory clock (kHz, double data rate) and bus width (bits), if torch reports them."""
    properties = torch.cuda.get_device_properties(device)
    clock_khz = getattr(properties, "memory_clock_rate", 0)
    bus_bits = getattr(properties, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


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
        peak = device_peak_bandwidth(device)
        if peak:
            description["gpu_peak_bandwidth_gb_s"] = round(peak / 1e9, 1)
        description["cuda"] = torch.version.cuda
    return description


def _stat_fields(pid: str) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 1 is the parent pid, 11-14 the CPU ticks)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def _own_tree_ticks() -> int:
    """CPU ticks of this process and its descendants, live ones and those already reaped.

    ``utime + stime`` of this process and of every live descendant, plus the
    ``cutime + cstime`` each of them has collected from children it reaped:
    the subprocesses a benchmark starts itself (a measuring subprocess, a
    ``torch.distributed`` group behind a fork server) count as its own work.
    """
    parents: dict[str, str] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[pid] = _stat_fields(pid)[1]
        except (OSError, IndexError):
            continue  # ended meanwhile
    tree, frontier = set(), {str(os.getpid())}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
    ticks = 0
    for pid in tree:
        try:
            ticks += sum(int(v) for v in _stat_fields(pid)[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return ticks


def other_processes_cpu_seconds() -> float | None:
    """CPU seconds used so far by everything but this process and its descendants (Linux ``/proc``), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        own = _own_tree_ticks()
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return (busy - own) / ticks


# --------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Wall times of each function, run in alternating order so that drift hits all alike."""
    names = list(functions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: allocator, thread pool, kernels
        functions[name]()
    synchronize(device)
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            synchronize(device)
            start = time.perf_counter()
            functions[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_median_times(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in interleaved_times(functions, repeats, device).items()}


# --------------------------------------------------------------------------- peak memory


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


def peak_extra_bytes(function: Callable[[], None], device: torch.device) -> float:
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


def median_peak_extra_bytes(
    functions: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, float]:
    names = list(functions)
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            peaks[name].append(peak_extra_bytes(functions[name], device))
    return {name: statistics.median(values) for name, values in peaks.items()}


def format_table(report: BenchmarkReport) -> str:
    """The measurements as a Markdown table (the format of the docs' benchmark tables)."""
    return format_rows(report.as_dict()["measurements"])


def format_machine(report: BenchmarkReport) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in report.machine.items())
