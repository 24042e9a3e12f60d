"""Regenerate, or check, every generated file under ``docs/``.

``generate_all(docs_root)`` returns the generated files as a mapping from a
path relative to ``docs_root`` to bytes; :func:`write_all` writes them and
:func:`stale_files` lists those whose committed copy differs (or is missing).
"""

from __future__ import annotations

from pathlib import Path

from lstheory.docgen import accuracy, figures, pages
from lstheory.docgen import tensor_parallel


def generate_all(docs_root: Path) -> dict[str, bytes]:
    """Every generated file: relative path -> content.

    Nothing here depends on the machine that runs it: closed-form values come
    from exact arithmetic or are rounded far above any platform's last-bit
    differences, and measurements are read from the committed files in
    ``docs/data/`` (written by ``lstheory accuracy --record``,
    ``lstheory bench --record`` and ``lstheory experiment --record``).
    """
    data = docs_root / "data"
    accuracy_record = accuracy.load_record(data / "accuracy.json")
    files: dict[str, bytes] = {
        "derivations.md": pages.derivations_page().encode(),
        "claims.md": pages.claims_page().encode(),
        "accuracy.md": accuracy.accuracy_page(accuracy_record).encode(),
    }
    for name, content in pages.tables().items():
        files[f"generated/{name}"] = content.encode()
    for name, content in tensor_parallel.generated_pages().items():
        files[f"generated/{name}"] = content.encode()
    for name, draw in figures.FIGURES.items():
        files[f"figures/{name}"] = draw()
    for name, content in pages.benchmark_tables(data / "benchmarks.json").items():
        files[f"generated/{name}"] = content.encode()
    measured_figures = {
        "accuracy_ulps.svg": accuracy.accuracy_figure(accuracy_record),
        "benchmarks.svg": figures.benchmarks(data / "benchmarks.json"),
        "training_gap.svg": figures.training_gap(data / "experiment.json"),
    }
    files.update({f"figures/{name}": svg for name, svg in measured_figures.items() if svg is not None})
    trained_record = data / "trained_claims.json"
    files["generated/trained_claims.md"] = pages.trained_claims_section(trained_record).encode()
    for name, content in figures.trained_figures(trained_record).items():
        files[f"figures/{name}"] = content
    return files


def write_all(docs_root: Path) -> list[str]:
    """Write every generated file; returns the paths written (relative to ``docs_root``)."""
    written = []
    for relative, content in generate_all(docs_root).items():
        path = docs_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            written.append(relative)
    return written


def stale_files(docs_root: Path) -> list[str]:
    """Generated files whose copy under ``docs_root`` differs from a fresh generation, or is missing."""
    return [
        relative
        for relative, content in generate_all(docs_root).items()
        if not (docs_root / relative).exists() or (docs_root / relative).read_bytes() != content
    ]
