"""Each derivation script runs, prints its derivation step by step, and proves every step."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

SCRIPTS = sorted((pathlib.Path(__file__).parent.parent / "derivations").glob("[0-9][0-9]_*.py"))


def test_there_are_at_least_four_scripts():
    assert len(SCRIPTS) >= 4


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_prints_a_proven_derivation(script):
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "[proven]" in out and "[NOT PROVEN]" not in out
    assert "LaTeX:" in out
    assert "steps proven exactly" in out.splitlines()[-1] or "steps proven exactly" in out
