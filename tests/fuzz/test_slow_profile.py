"""``python -m pytest -m slow`` also runs the fuzz suite under its slow Hypothesis profile (thousands of examples)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_TESTS = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fuzz_suite_passes_its_slow_profile():
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(FUZZ_TESTS),
               "--hypothesis-profile=lstheory-slow", "-m", "not slow"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=FUZZ_TESTS.parent.parent)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
