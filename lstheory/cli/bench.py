"""``lstheory bench``: time the torch layer against its baselines and print both figures and their ratio."""

from __future__ import annotations

import argparse
import json
import sys

from lstheory.cli import UsageError, require_device

BENCHMARKS = ("loss", "solver", "cuda")
BUSY_MACHINE_CORES = 0.25
"""Above this much CPU used by other processes during a run, ``lstheory bench`` warns."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the torch loss and solver against PyTorch's built-in and SciPy",
        description=(
            "Benchmarks (not tests): (a) loss forward+backward vs F.cross_entropy(label_smoothing=), time and "
            "peak extra memory; (b) the batched solver vs a SciPy loop, time per configuration and largest "
            "disagreement; (c) with --device cuda, time and achieved bandwidth on the GPU.  Each line shows "
            "lstheory's figure, the baseline's (measured in the same run) and their ratio lstheory/baseline."
        ),
    )
    parser.add_argument("--device", default="cpu", help="device for the solver and the CUDA benchmark (cpu, cuda)")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable; default all)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds (figures not comparable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads before running (default: torch's choice)")
    parser.set_defaults(handler=run)


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (for the record in docs/benchmarks.md)."""
    words = ["lstheory", "bench"]
    if args.device != "cpu":
        words += ["--device", args.device]
    for name in args.only or ():
        words += ["--only", name]
    if args.quick:
        words.append("--quick")
    if args.threads is not None:
        words += ["--threads", str(args.threads)]
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    import torch

    from lstheory.torch.benchmarks import format_machine, format_table, run_benchmarks

    if args.device != "cpu":
        require_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    only = tuple(args.only or BENCHMARKS)
    if only == ("cuda",) and torch.device(args.device).type != "cuda":
        raise UsageError("--only cuda needs --device cuda")
    progress = None if args.json else (lambda message: print(f"# {message}", file=sys.stderr, flush=True))
    report = run_benchmarks(device=args.device, quick=args.quick, only=only, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_machine(report))
        print(f"- command: `{_command_line(args)}`")
        print(f"- wall time: {report.seconds:.0f} s\n")
        print(format_table(report))
        busy = report.machine.get("other_processes_cpu_cores")
        if busy is not None and busy > BUSY_MACHINE_CORES:
            print(
                f"\nwarning: other processes used {busy:.2f} CPU cores during this run; the loss timings "
                "are not comparable with a quiet machine's (see docs/benchmarks.md)",
                file=sys.stderr,
            )
    return 0
