"""Benchmarks of ``lstheory bench``: tooling, kept out of the modules users import for the math.

Each module listed in :data:`SUITE_MODULES` defines one
:class:`~lstheory.bench.measure.BenchmarkSuite` named ``SUITE``; the command
line, :func:`run_benchmarks` and the docs read this list, none keeps its own.
Every suite measures lstheory and its baseline in the same run and reports
both figures and their ratio; no test asserts a time.
"""

from __future__ import annotations

import importlib
import time
from typing import Callable, Iterable

from lstheory.bench.measure import BenchmarkReport, BenchmarkSuite

__all__ = ["SUITE_MODULES", "suites", "run_benchmarks"]

# Order is the order of `lstheory bench --help` and of a full run.
SUITE_MODULES: tuple[str, ...] = (
    "lstheory.bench.loss",
    "lstheory.bench.solver",
    "lstheory.bench.cuda",
    "lstheory.bench.vocab_parallel",
    "lstheory.bench.linear_loss",
)


def suites() -> dict[str, BenchmarkSuite]:
    """Every registered suite, name -> suite, in registry order."""
    found = [importlib.import_module(module).SUITE for module in SUITE_MODULES]
    return {suite.name: suite for suite in found}


def run_benchmarks(
    *,
    device: str = "cpu",
    quick: bool = False,
    only: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, BenchmarkReport]:
    """Run the selected suites (all by default) and return one report per suite, in registry order.

    Suites that need CUDA are skipped on other devices unless named in ``only``,
    which then raises.  Each report records the machine, the suite's wall time
    and, on Linux, how much CPU other processes used meanwhile
    (``other_processes_cpu_cores``: compare only quiet runs).
    """
    import torch

    from lstheory.bench.measure import machine_description, other_processes_cpu_seconds

    registered = suites()
    chosen = tuple(registered) if only is None else tuple(only)
    unknown = [name for name in chosen if name not in registered]
    if unknown:
        raise ValueError(f"only must name benchmarks among {', '.join(map(repr, registered))}; got {unknown}")
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but torch.cuda.is_available() is False")
    reports: dict[str, BenchmarkReport] = {}
    for name in chosen:
        suite = registered[name]
        if suite.needs_cuda and torch_device.type != "cuda":
            if only is not None:
                raise ValueError(f"benchmark {name!r} needs a CUDA device; got device={device!r}")
            continue
        if progress:
            progress(f"{name}: {suite.description}")
        report = BenchmarkReport(machine=machine_description(torch_device))
        others_before = other_processes_cpu_seconds()
        start = time.perf_counter()
        report.measurements = list(suite.run(torch_device, quick, progress))
        report.seconds = time.perf_counter() - start
        others_after = other_processes_cpu_seconds()
        if others_before is not None and others_after is not None and report.seconds > 0:
            busy = (others_after - others_before) / report.seconds
            report.machine["other_processes_cpu_cores"] = round(busy, 2)
        reports[name] = report
    return reports
