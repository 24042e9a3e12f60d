"""``lstheory bench``: time the torch layer against its baselines and print both figures and their ratio."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from lstheory.cli import UsageError, require_device

BUSY_MACHINE_CORES = 0.25
"""Above this much CPU used by other processes during a run, ``lstheory bench`` warns."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from lstheory.bench import SUITE_MODULES

    names = [module.rsplit(".", 1)[1] for module in SUITE_MODULES]
    parser = subparsers.add_parser(
        "bench",
        help="benchmark lstheory against its baselines (time, memory, accuracy ratios)",
        description=(
            "Benchmarks (not tests).  Each line shows lstheory's figure, the baseline's (measured in the same "
            "run) and their ratio lstheory/baseline.  Suites: " + ", ".join(names) + ".  With --record, the "
            "results replace those suites' entries in docs/data/benchmarks.json, from which `lstheory docs` "
            "generates the benchmark tables."
        ),
    )
    parser.add_argument("--device", default="cpu", help="device for the device-aware suites (cpu, cuda)")
    parser.add_argument("--only", action="append", choices=names, help="run only this suite (repeatable; default all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds (figures not comparable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    parser.add_argument("--record", action="store_true", help="also write the results into the data file (--data)")
    parser.add_argument("--data", type=Path, default=None, help="data file for --record (default docs/data/benchmarks.json)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads before running (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress display (it shows only on a terminal anyway)")
    parser.set_defaults(handler=run)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (recorded with the data)."""
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


def _record(args: argparse.Namespace, reports: dict) -> Path:
    from lstheory.bench.records import DEFAULT_DATA_PATH, record_suites

    path = args.data or DEFAULT_DATA_PATH
    today = datetime.date.today().isoformat()
    entries = {name: dict(report.as_dict(), date=today, command=command_line(args)) for name, report in reports.items()}
    record_suites(path, entries)
    return path


def _print_tables(args: argparse.Namespace, reports: dict) -> None:
    from lstheory.bench.measure import format_machine, format_table

    for name, report in reports.items():
        print(f"## {name}\n")
        print(format_machine(report))
        print(f"- command: `{command_line(args)}`")
        print(f"- wall time: {report.seconds:.0f} s\n")
        print(format_table(report) + "\n")
        busy = report.machine.get("other_processes_cpu_cores")
        if busy is not None and busy > BUSY_MACHINE_CORES:
            print(
                f"warning: other processes used {busy:.2f} CPU cores during the {name} suite; its timings "
                "are not comparable with a quiet machine's (see docs/benchmarks.md)",
                file=sys.stderr,
            )


def run(args: argparse.Namespace) -> int:
    import torch

    from lstheory import bench
    from lstheory._progress import progress_bar

    if args.record and args.quick:
        raise UsageError("--record with --quick would commit smoke-run figures; drop one of them")
    if args.device != "cpu":
        require_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    with progress_bar(show=False if args.quiet else None, desc="bench", bar_format="{desc}  [{elapsed}]") as bar:

        def progress(message: str) -> None:
            bar.set_description_str(message)
            bar.update()

        try:
            reports = bench.run_benchmarks(device=args.device, quick=args.quick, only=args.only, progress=progress)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps({name: report.as_dict() for name, report in reports.items()}, indent=2))
    else:
        _print_tables(args, reports)
    if args.record:
        print(f"# recorded {', '.join(reports)} in {_record(args, reports)}", file=sys.stderr)
    return 0
