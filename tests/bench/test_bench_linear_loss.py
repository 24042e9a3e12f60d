"""The linear_loss benchmark: structure, ratios and the deterministic-memory subprocess; never timings."""

from __future__ import annotations

import math

import pytest

from lstheory.bench import linear_loss as linear_loss_bench
from lstheory.bench.measure import MIB, cpu_peak_memory_available


@pytest.mark.skipif(not cpu_peak_memory_available(), reason="needs /proc/self/clear_refs (Linux)")
def test_rows_compare_with_eager_and_with_the_required_gradients():
    shape = (256, 16, 4000)
    rows = linear_loss_bench.bench_linear_loss([shape], methods=("lstheory", "eager"), repeats=1, memory_repeats=2,
                                               chunk_size=32)
    assert [(row.quantity, row.baseline_name) for row in rows] == [
        ("median time, forward+backward", linear_loss_bench.BASELINE_NAMES["eager"]),
        ("peak extra memory", linear_loss_bench.BASELINE_NAMES["eager"]),
        ("peak extra memory", linear_loss_bench.BASELINE_NAMES["required"]),
    ]
    assert all(row.case == "N=256, H=16, K=4000, float32, chunk 32" for row in rows)
    required = rows[2]
    assert required.baseline == pytest.approx((256 + 4000) * 16 * 4 / MIB)
    # deterministic allocator: the gradients (4.2 MiB) plus one chunk of logits (0.5 MiB), far below (N, K) (3.9 MiB
    # for each of the eager composite's tensors)
    assert required.baseline <= required.lstheory <= required.baseline + 1.0
    assert rows[1].baseline > rows[1].lstheory + 2 * 256 * 4000 * 4 / MIB
    assert rows[1].ratio == pytest.approx(rows[1].lstheory / rows[1].baseline)
    assert "goal <= 1.0" in rows[0].note and "goal <= 1.5" in required.note


def test_the_measurement_runs_in_a_process_with_the_deterministic_allocator(monkeypatch):
    seen = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs)

        class Done:
            returncode, stderr = 0, ""
            stdout = '{"times": {}, "peaks": {}, "chunk_size": 1}\n'

        return Done()

    monkeypatch.setattr(linear_loss_bench.subprocess, "run", fake_run)
    linear_loss_bench._measure_in_subprocess((4, 2, 3), methods=("lstheory",), repeats=1, memory_repeats=1,
                                             chunk_size=None)
    assert seen["env"]["MALLOC_MMAP_THRESHOLD_"] == "65536"


def test_a_failing_subprocess_is_reported(monkeypatch):
    class Failed:
        returncode, stdout, stderr = 1, "", "Traceback: boom"

    monkeypatch.setattr(linear_loss_bench.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(RuntimeError, match="boom"):
        linear_loss_bench._measure_in_subprocess((4, 2, 3), methods=("lstheory",), repeats=1, memory_repeats=1,
                                                 chunk_size=None)


@pytest.mark.slow
def test_compiled_baseline_runs():
    """torch.compile of the eager composite (needs a C++ compiler; about a minute)."""
    result = linear_loss_bench.measure_linear_loss((64, 8, 500), repeats=1, memory_repeats=1)
    assert set(result["times"]) == {"lstheory", "eager", "compiled"}
    assert all(math.isfinite(t) for values in result["times"].values() for t in values)
