"""Every snippet of the README runs: doctests (collected by pytest), the test-file block, the commands."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.DOTALL)


def test_the_python_blocks_are_doctests_or_a_complete_test_file():
    python = [body for language, body in BLOCKS if language == "python"]
    assert python and all(body.lstrip().startswith(">>>") or "def test_" in body for body in python)


def test_the_test_file_block_is_self_contained_and_passes(tmp_path):
    files = [body for language, body in BLOCKS if language == "python" and "def test_" in body]
    assert len(files) == 1
    (tmp_path / "test_readme_snippet.py").write_text(files[0])
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           str(tmp_path / "test_readme_snippet.py")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout


def test_every_console_command_runs(tmp_path):
    # `lstheory docs` writes files: run every command in a copy of the docs folder.
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    commands = [line[2:].split("#")[0].strip() for language, body in BLOCKS if language == "console"
                for line in body.splitlines() if line.startswith("$ ")]
    assert any(c.startswith("lstheory optimum") for c in commands) and any(c == "lstheory docs --check" for c in commands)
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "lstheory", *command.split()[1:]], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"


def test_the_install_commands_put_the_cpu_torch_first_and_match_ci():
    install, test = [body for language, body in BLOCKS if language == "bash"][0].strip().splitlines()
    steps = install.split(" && ")
    torch_step = next(i for i, step in enumerate(steps) if step.startswith("pip install torch"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in steps[torch_step]
    assert steps.index('pip install -e ".[dev]"') > torch_step and steps[-1] == "lstheory verify"
    assert test == "python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("pip install --quiet torch==2.13.0") < ci.index('pip install --quiet -e ".[dev]"')
    for command in ("lstheory verify", test):  # CI runs the README's commands as written
        assert f"\n{command}\n" in ci or f"\n{command} --quiet\n" in ci, command
