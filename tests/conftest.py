"""Shared test configuration: Hypothesis profiles; accuracy measurements in the terminal summary.

Hypothesis profiles (select with ``--hypothesis-profile=NAME``, Hypothesis's own pytest option):

* ``lstheory`` (loaded by default): Hypothesis's 100 examples, no deadline (the machine running the
  tests may be busy: a slow example is not a failure);
* ``lstheory-slow``: 2500 examples (the fuzz tests draw a multiple), for the long fuzz run,
  ``python -m pytest tests/fuzz --hypothesis-profile=lstheory-slow``.

Tests that fix their own ``max_examples`` keep it; the fuzz suite (``tests/fuzz``) scales with
the profile.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("lstheory", deadline=None, print_blob=True)
settings.register_profile("lstheory-slow", settings.get_profile("lstheory"), max_examples=2500)
settings.load_profile("lstheory")

ACCURACY_LINES: list[str] = []


@pytest.fixture
def report_accuracy():
    """Append a line to the 'accuracy (ulps vs mpmath)' section of pytest's summary."""
    return ACCURACY_LINES.append


def pytest_terminal_summary(terminalreporter):
    if ACCURACY_LINES:
        terminalreporter.section("accuracy (ulps vs mpmath at 60 digits)")
        for line in ACCURACY_LINES:
            terminalreporter.write_line(line)


def _descendant_processes() -> dict[int, str]:
    """pid -> command line of every process below this one, except multiprocessing's own helpers.

    The forkserver and the resource tracker are started once per Python process by
    ``multiprocessing`` and live as long as it; the ranks of a process group are the
    forkserver's children, so they are found through it.
    """
    import os

    parents, commands = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                commands[int(entry)] = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
    found, frontier = {}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return {pid: command for pid, command in found.items()
            if "multiprocessing.forkserver" not in command and "multiprocessing.resource_tracker" not in command}


@pytest.fixture
def no_process_left_behind():
    """Fail the test if a process it started (a rank of a process group, ...) is still there a few seconds after it."""
    import sys
    import time

    if not sys.platform.startswith("linux"):
        yield
        return
    before = set(_descendant_processes())
    yield
    deadline = time.monotonic() + 5.0
    left = {pid: cmd for pid, cmd in _descendant_processes().items() if pid not in before}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid: cmd for pid, cmd in _descendant_processes().items() if pid not in before}
    assert not left, f"processes left behind: {left}"
