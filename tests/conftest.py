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
