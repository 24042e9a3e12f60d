r"""Run a function on every rank of a local ``torch.distributed`` process group, and always clean up.

:func:`run_in_process_group` starts ``world_size`` processes with
``torch.multiprocessing``, joins them in one ``gloo`` process group (the
rendezvous is a file in a private temporary directory: no port to collide
with other jobs on the machine), runs ``worker(context, *args)`` on each rank
and returns the per-rank results.  It never leaves a process behind:

* every collective carries a timeout (``collective_timeout``), and the whole
  run a wall-clock limit (``timeout``): a rank that hangs is killed and
  reported with the last stage it announced (:meth:`RankContext.report_progress`);
* a rank that raises stops the run at once: the other ranks are terminated,
  and :class:`ProcessGroupError` names the rank, its stage and its exception;
* whatever happens, every rank still alive is killed and reaped before the
  call returns or raises (the processes are also daemonic, and die with a
  parent that is killed).

Processes are started with ``forkserver`` where the platform has it (a clean
server process, started once per Python process with torch preloaded, forks
each rank in milliseconds) and ``spawn`` elsewhere; either way the worker and
its arguments are pickled, so they must be defined at the top level of an
importable module (``functools.partial`` of such a function is fine).
"""

from __future__ import annotations

import datetime
import faulthandler
import logging
import multiprocessing
import numbers
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["ProcessGroupError", "RankContext", "RankFailure", "run_in_process_group"]

_GRACE_SECONDS = 1.0  # after a rank fails: how long the others get to exit (and report) before SIGTERM, then SIGKILL
_POLL_SECONDS = 0.5
_STACK_SIGNAL = getattr(signal, "SIGUSR1", None)
_OPEN_FILES: list = []  # per rank: its stack file, open for faulthandler
_FORKSERVER_PRELOAD = ["__main__", "torch", "torch.distributed", "lstheory.testing.process_groups"]


@dataclass(frozen=True)
class RankContext:
    """What the worker learns about its process: its rank, the world size, and a progress channel."""

    rank: int
    world_size: int
    progress_path: str

    def report_progress(self, stage: str) -> None:
        """Announce what this rank is doing now; a failure or a hang report quotes the last stage."""
        Path(self.progress_path).write_text(stage)


@dataclass(frozen=True)
class RankFailure:
    """How one rank ended in a failed run.

    ``kind`` is ``"raised"`` (its worker raised; ``error`` is ``"Type: message"``),
    ``"died"`` (a signal or an exit status without an exception), ``"stopped"`` (still
    running when the run was stopped: a hang, or waiting on a failed rank) or
    ``"no result"`` (it exited cleanly without one).  ``stage`` is its last announced stage.
    For a stopped rank, ``error`` is its innermost Python frame and ``traceback`` its stack
    when the run was stopped (from :mod:`faulthandler`, where the platform has ``SIGUSR1``).
    """

    rank: int
    kind: str
    stage: str
    error: str = ""
    traceback: str = ""

    def describe(self) -> str:
        where = f" at {self.error}" if self.error else ""
        what = {"raised": f"raised {self.error}", "died": f"died ({self.error})",
                "stopped": f"was stopped while still running{where}", "no result": "exited without a result"}[self.kind]
        return f"rank {self.rank} {what} (stage: {self.stage})"


class ProcessGroupError(RuntimeError):
    """A rank of :func:`run_in_process_group` raised, died or did not finish in time.

    ``failures`` lists every rank that did not return a result, the first cause first.
    """

    def __init__(self, summary: str, failures: Sequence[RankFailure]):
        self.failures = tuple(failures)
        details = "; ".join(f.describe() for f in self.failures)
        first = next((f for f in self.failures if f.traceback), None)
        tail = f"\n\ntraceback of rank {first.rank}:\n{first.traceback}" if first else ""
        super().__init__(f"{summary}: {details}{tail}")
        self.summary = summary


# --------------------------------------------------------------------------- in each rank


def _write_atomically(path: Path, payload: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(payload))
    os.replace(partial, path)


def _rank_entry(rank: int, world_size: int, workdir: str, blob: bytes, parent_path: list[str],
                collective_timeout: float, threads: int, backend: str) -> None:
    """Body of each process (called by ``torch.multiprocessing`` as ``fn(rank, *args)``)."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    sys.path.extend(entry for entry in parent_path if entry not in sys.path)
    folder = Path(workdir)
    if _STACK_SIGNAL is not None:  # the caller asks a rank that hangs where it is (faulthandler, from C)
        _OPEN_FILES.append(open(folder / f"stack-{rank}", "w"))
        faulthandler.register(_STACK_SIGNAL, file=_OPEN_FILES[-1], all_threads=False)
    context = RankContext(rank, world_size, str(folder / f"progress-{rank}"))
    try:
        context.report_progress("loading the worker and its arguments")
        worker, args = pickle.loads(blob)
        context.report_progress(f"joining the {backend} process group")
        dist.init_process_group(backend, init_method=f"file://{folder / 'rendezvous'}", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=collective_timeout))
        context.report_progress("running the worker")
        result = worker(context, *args)
        context.report_progress("waiting for the other ranks to finish")
        dist.barrier()
        dist.destroy_process_group()
        _write_atomically(folder / f"result-{rank}", result)
    except Exception as error:
        _write_atomically(folder / f"error-{rank}", {"error": f"{type(error).__name__}: {error}",
                                                     "traceback": traceback.format_exc()})
        raise


# --------------------------------------------------------------------------- in the caller


def _start_method(start_method: str | None) -> str:
    available = multiprocessing.get_all_start_methods()
    if start_method is None:
        start_method = "forkserver" if "forkserver" in available else "spawn"
    if start_method not in available:
        raise ValueError(f"start_method must be one of {available} on this platform; got {start_method!r}")
    if start_method == "forkserver":
        # takes effect when the server starts (once per Python process); later calls change nothing
        multiprocessing.get_context("forkserver").set_forkserver_preload(_FORKSERVER_PRELOAD)
    return start_method


def _pickled(worker: Callable[..., Any], args: tuple) -> bytes:
    try:
        return pickle.dumps((worker, args))
    except Exception as error:
        raise TypeError(
            f"worker and args must be picklable: they run in new processes, so define functions at the top level "
            f"of an importable module (functools.partial of one is fine), not as lambdas, closures or in an "
            f"interactive session; pickling failed with {type(error).__name__}: {error}"
        ) from None


def _check_limits(world_size: Any, timeout: Any, collective_timeout: Any, threads_per_rank: Any) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, numbers.Integral) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer; got {world_size!r}")
    for name, value in (("timeout", timeout), ("collective_timeout", collective_timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0):
            raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
    if isinstance(threads_per_rank, bool) or not isinstance(threads_per_rank, numbers.Integral) or threads_per_rank < 1:
        raise ValueError(f"threads_per_rank must be a positive integer; got {threads_per_rank!r}")


def _read(path: Path) -> Any:
    return pickle.loads(path.read_bytes()) if path.exists() else None


def _stage(folder: Path, rank: int) -> str:
    path = folder / f"progress-{rank}"
    return path.read_text() if path.exists() else "starting the process"


def _failures(folder: Path, processes: list, first_failed: int | None) -> list[RankFailure]:
    """Every rank without a result: the first to fail first, then those that raised or died, then the rest."""
    failures = []
    for rank, process in enumerate(processes):
        if (folder / f"result-{rank}").exists():
            continue
        error, stage = _read(folder / f"error-{rank}"), _stage(folder, rank)
        if error is not None:
            failures.append(RankFailure(rank, "raised", stage, error["error"], error["traceback"]))
        elif rank == first_failed:
            failures.append(RankFailure(rank, "died", stage, _exit_description(process.exitcode)))
        elif process.exitcode == 0:
            failures.append(RankFailure(rank, "no result", stage))
        else:
            failures.append(RankFailure(rank, "stopped", stage, *_innermost_frame(folder, rank)))
    order = {"raised": 1, "died": 1, "no result": 2, "stopped": 3}
    return sorted(failures, key=lambda f: (f.rank != first_failed, order[f.kind], _waiting(f), f.rank))


def _waiting(failure: RankFailure) -> bool:
    """A stopped rank whose innermost frame is torch.distributed's waits for another: list it after those that do not."""
    return failure.kind == "stopped" and f"torch{os.sep}distributed" in failure.error


def _exit_description(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _dump_stacks(context: Any) -> None:
    """Ask every rank still running to write its Python stack (see :func:`_rank_entry`)."""
    if _STACK_SIGNAL is None:
        return
    alive = [process for process in context.processes if process.is_alive()]
    for process in alive:
        try:
            os.kill(process.pid, _STACK_SIGNAL)
        except OSError:
            pass
    if alive:
        time.sleep(0.5)


def _innermost_frame(folder: Path, rank: int) -> tuple[str, str]:
    """``(innermost frame, whole stack)`` a stopped rank wrote, or empty strings."""
    path = folder / f"stack-{rank}"
    stack = path.read_text() if path.exists() else ""
    frames = [line.strip() for line in stack.splitlines() if line.strip().startswith("File ")]
    return (frames[0] if frames else ""), stack


def _stop(context: Any) -> None:
    """Kill every rank still alive, reap all of them, remove torch's error files."""
    for process in context.processes:
        if process.is_alive():
            process.kill()
    for process in context.processes:
        process.join(10)
    for path in context.error_files:
        if path and os.path.exists(path):
            os.unlink(path)


def _wait(context: Any, folder: Path, timeout: float, world_size: int) -> None:
    from torch.multiprocessing.spawn import ProcessException

    spawn_log = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_log.level
    spawn_log.setLevel(logging.ERROR)  # its "Terminating process ..." warnings: the failure report says it all
    try:
        _join(context, folder, timeout, world_size, ProcessException)
    finally:
        spawn_log.setLevel(level)


def _join(context: Any, folder: Path, timeout: float, world_size: int, ProcessException: type) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _dump_stacks(context)
            _stop(context)
            raise ProcessGroupError(f"the run on {world_size} processes did not finish within {timeout:g} s",
                                    _failures(folder, context.processes, None))
        try:
            if context.join(timeout=min(remaining, _POLL_SECONDS), grace_period=_GRACE_SECONDS):
                return
        except ProcessException as error:
            _stop(context)
            raise ProcessGroupError(f"rank {error.error_index} of {world_size} failed",
                                    _failures(folder, context.processes, error.error_index)) from None


def run_in_process_group(
    worker: Callable[..., Any],
    world_size: int,
    *,
    args: tuple = (),
    timeout: float = 120.0,
    collective_timeout: float | None = None,
    threads_per_rank: int = 1,
    start_method: str | None = None,
    backend: str = "gloo",
) -> list[Any]:
    r"""Run ``worker(context, *args)`` on each rank of a fresh local process group; return the results.

    Parameters
    ----------
    worker : callable
        ``worker(context: RankContext, *args) -> result``, run once per rank after
        ``torch.distributed.init_process_group``: collectives on the default group (or on
        groups it creates with ``torch.distributed.new_group``) reach every rank.  It and
        ``args`` must be picklable (top-level functions of an importable module); the
        result must be picklable too.
    world_size : int
        Number of processes, ``>= 1``.
    args : tuple
        Extra arguments, the same for every rank.
    timeout : float
        Wall-clock limit of the whole run in seconds, start-up included (default 120).
    collective_timeout : float, optional
        Timeout of each collective (``init_process_group(timeout=...)``); default ``timeout``.
    threads_per_rank : int
        ``torch.set_num_threads`` in each rank (default 1: ranks share the machine's cores).
    start_method : {"forkserver", "spawn", "fork"}, optional
        Default ``"forkserver"`` where available, else ``"spawn"``.  ``"fork"`` copies the
        caller, threads and all, and is not recommended.
    backend : str
        ``"gloo"`` (CPU; the default) or another backend torch.distributed has here.

    Returns
    -------
    list
        ``[result of rank 0, result of rank 1, ...]``.

    Raises
    ------
    ProcessGroupError
        A rank raised (named, with its exception, stage and traceback), died, or the run
        passed ``timeout``; every process has been killed and reaped by then.
    TypeError
        ``worker`` or ``args`` cannot be pickled.

    Examples
    --------
    >>> import functools
    >>> run_in_process_group(functools.partial(getattr), 2, args=("rank",))
    [0, 1]
    """
    _check_limits(world_size, timeout, collective_timeout, threads_per_rank)
    method = _start_method(start_method)
    blob = _pickled(worker, tuple(args))
    import torch.multiprocessing

    with tempfile.TemporaryDirectory(prefix="lstheory-process-group-") as workdir:
        folder = Path(workdir)
        entry_args = (world_size, workdir, blob, list(sys.path), float(collective_timeout or timeout),
                      int(threads_per_rank), backend)
        context = torch.multiprocessing.start_processes(_rank_entry, args=entry_args, nprocs=world_size,
                                                        join=False, daemon=True, start_method=method)
        try:
            _wait(context, folder, float(timeout), world_size)
        finally:
            _stop(context)
        failures = _failures(folder, context.processes, None)
        if failures:
            raise ProcessGroupError(f"{len(failures)} of {world_size} ranks returned no result", failures)
        return [_read(folder / f"result-{rank}") for rank in range(world_size)]
