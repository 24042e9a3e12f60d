"""Shared test configuration: accuracy measurements are printed in the terminal summary."""

from __future__ import annotations

import pytest

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
