"""The vocab_parallel benchmark: both figures and their ratio, from two gloo processes and one dense call."""

from __future__ import annotations

import math

import pytest

from lstheory.bench import suites
from lstheory.bench.vocab_parallel import bench_vocab_parallel

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_process_left_behind")]


def test_vocab_parallel_benchmark_reports_the_call_and_its_all_reduces():
    time_row, collective_row = bench_vocab_parallel((64, 1000), repeats=2)
    assert time_row.case == "N=64, K=1000, float32, 2 ranks" and time_row.unit == "ms"
    assert time_row.lstheory > 0 and time_row.baseline > 0 and math.isfinite(time_row.ratio)
    assert collective_row.baseline == time_row.lstheory  # the share of the parallel call
    assert collective_row.case != time_row.case  # distinct bars in the benchmarks figure
    assert 0 < collective_row.lstheory
    assert "vocab_parallel" in suites()
