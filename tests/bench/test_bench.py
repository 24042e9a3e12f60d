"""The benchmark machinery of ``lstheory bench``: structure and correctness, never timings."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

from lstheory.cli import bench as bench_command
from lstheory import bench
from lstheory.bench import checker as checker_bench, loss as loss_bench, measure, records, solver as solver_bench


def test_loss_benchmark_reports_both_figures_and_their_ratio():
    rows = loss_bench.bench_loss([(8, 1000), (2, 1000, 3)], repeats=1, memory_repeats=1)
    assert [row.quantity for row in rows] == ["median time, forward+backward", "peak extra memory"] * 2
    for row in rows:
        # tiny tensors may fit in memory the process already holds: 0 is a valid peak here
        assert row.lstheory >= 0 and (row.baseline >= 0 or math.isnan(row.baseline))
        if row.baseline > 0:
            assert row.ratio == pytest.approx(row.lstheory / row.baseline)
    assert rows[0].case == "N=8, K=1000, float32" and rows[2].case == "N=2, K=1000, d1=3, float32"


def test_checker_benchmark_times_a_passing_check_against_its_bound_and_the_every_label_floor():
    rows = checker_bench.bench_checker([("torch", 300, 15.0), ("numpy", 70, 60.0)])
    assert [row.quantity for row in rows] == [
        "time, infer + assert", "peak extra memory", "CPU time per every-label forward"] * 2
    assert rows[0].baseline == 15.0 and rows[3].baseline == 60.0 and rows[1].baseline == 4096.0
    assert rows[2].lstheory > rows[2].baseline > 0  # the check does more than one pass over every label
    assert rows[0].case == "K=300, F.cross_entropy(label_smoothing=0.1), autograd"


def test_the_numpy_case_is_the_label_smoothed_cross_entropy():
    import torch.nn.functional as F

    logits, labels = torch.randn(3, 7, dtype=torch.float64), torch.tensor([0, 4, 6])
    expected = float(F.cross_entropy(logits, labels, label_smoothing=0.1))
    assert checker_bench.numpy_smoothed_cross_entropy(logits.numpy(), labels.numpy()) == pytest.approx(expected, rel=1e-14)


@pytest.mark.skipif(not measure.cpu_peak_memory_available(), reason="needs /proc/self/clear_refs (Linux)")
def test_cpu_peak_memory_sees_a_large_allocation():
    nbytes = 64 * 2**20
    peak = measure.peak_extra_bytes(lambda: torch.ones(nbytes // 4), torch.device("cpu"))
    assert 0.9 * nbytes <= peak <= 1.2 * nbytes


def test_solver_benchmark_agrees_with_scipy_and_the_closed_form():
    time_row, error_row, disagreement_row = solver_bench.bench_solver(40, scipy_sample=4, repeats=1, num_classes=(2, 10))
    assert time_row.quantity == "time per configuration" and time_row.unit == "us"
    assert error_row.lstheory <= 1e-12 and error_row.baseline <= 1e-9  # each against the closed form
    assert "converged: torch 40/40, SciPy 4/4" in error_row.note
    assert disagreement_row.lstheory <= 1e-9 and math.isnan(disagreement_row.ratio)


def test_solver_configurations_cover_every_k_and_both_conventions():
    configurations = solver_bench.solver_configurations(10_000)
    assert len(configurations) == 10_000
    assert {k for k, _, _ in configurations} == set(solver_bench.SOLVER_NUM_CLASSES)
    assert {c for _, _, c in configurations} == {"off_target", "uniform"}
    assert all(1e-4 <= eps <= 0.999 for _, eps, _ in configurations)


def test_table_and_json_output():
    report = measure.BenchmarkReport(machine=measure.machine_description())
    report.measurements.append(
        measure.Measurement("loss", "N=1, K=2, float32", "median time, forward+backward", "ms", 1.0, 4.0, "F")
    )
    table = measure.format_table(report)
    assert "| loss | N=1, K=2, float32 | median time, forward+backward (ms) | 1.00 | 4.00 | 0.250 | F |" in table
    report.measurements.append(measure.Measurement("solver", "M=1", "disagreement", "logit", 1e-15, math.nan, "S"))
    data = json.loads(json.dumps(report.as_dict(), allow_nan=False))
    assert data["measurements"][0]["ratio"] == 0.25 and data["measurements"][1]["ratio"] is None
    assert report.machine["cpu"] and report.machine["torch"] == torch.__version__


def test_format_number_keeps_three_significant_digits():
    assert [records.format_number(v) for v in (1234.5, 0.012345, 1.5e-7, 2.5e6, None, math.nan, 0.0)] == [
        "1234", "0.0123", "1.5e-07", "2.50e+06", "n/a", "n/a", "0"]


def test_record_replaces_only_the_suites_it_ran(tmp_path):
    path = tmp_path / "data" / "benchmarks.json"
    row = {"benchmark": "loss", "case": "c", "quantity": "q", "unit": "ms", "lstheory": 1.0, "baseline": 2.0,
           "baseline_name": "b", "note": "", "ratio": 0.5}
    records.record_suites(path, {"loss": {"date": "d1", "measurements": [row]},
                                 "solver": {"date": "d1", "measurements": []}})
    records.record_suites(path, {"loss": {"date": "d2", "measurements": [dict(row, lstheory=3.0, ratio=1.5)]}})
    stored = records.load_records(path)
    assert stored["solver"]["date"] == "d1" and stored["loss"]["date"] == "d2"
    assert stored["loss"]["measurements"][0]["lstheory"] == 3.0
    assert "| loss | c | q (ms) | 3.00 | 2.00 | 1.50 | b |" in records.suite_section("loss", stored["loss"])


def test_every_registered_suite_has_a_unique_name_and_a_runner():
    registered = bench.suites()
    assert list(registered) == [module.rsplit(".", 1)[1] for module in bench.SUITE_MODULES]
    assert all(callable(suite.run) and suite.description for suite in registered.values())


def test_bench_subcommand_registers_and_runs(monkeypatch, capsys, tmp_path):
    parser = argparse.ArgumentParser(prog="lstheory")
    bench_command.register(parser.add_subparsers(dest="command"))
    calls = {}

    def fake_run_benchmarks(**kwargs):
        calls.update(kwargs)
        report = measure.BenchmarkReport(machine={"cpu": "test"}, seconds=1.0)
        report.measurements.append(measure.Measurement("solver", "M=1", "time", "us", 1.0, 2.0, "S"))
        return {"solver": report}

    monkeypatch.setattr(bench, "run_benchmarks", fake_run_benchmarks)
    args = parser.parse_args(["bench", "--quick", "--only", "solver"])
    assert args.handler(args) == 0
    assert calls["quick"] is True and calls["only"] == ["solver"] and calls["device"] == "cpu"
    output = capsys.readouterr().out
    assert "- command: `lstheory bench --only solver --quick`" in output and "| benchmark |" in output
    args = parser.parse_args(["bench", "--json"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["solver"]["machine"] == {"cpu": "test"}
    data = tmp_path / "benchmarks.json"
    args = parser.parse_args(["bench", "--only", "solver", "--record", "--data", str(data)])
    assert args.handler(args) == 0
    entry = records.load_records(data)["solver"]
    assert entry["command"] == "lstheory bench --only solver" and entry["measurements"][0]["ratio"] == 0.5


def test_bench_subcommand_refuses_to_record_a_quick_run():
    parser = argparse.ArgumentParser(prog="lstheory")
    bench_command.register(parser.add_subparsers(dest="command"))
    from lstheory.cli import UsageError

    args = parser.parse_args(["bench", "--quick", "--record"])
    with pytest.raises(UsageError, match="--quick"):
        args.handler(args)


def test_bench_subcommand_rejects_a_missing_device():
    parser = argparse.ArgumentParser(prog="lstheory")
    bench_command.register(parser.add_subparsers(dest="command"))
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    from lstheory.cli import UsageError

    args = parser.parse_args(["bench", "--device", "cuda"])
    with pytest.raises(UsageError, match="--device"):
        args.handler(args)


def test_run_benchmarks_rejects_unknown_names_and_cuda_suites_on_the_cpu():
    with pytest.raises(ValueError, match="only"):
        bench.run_benchmarks(only=("speed",))
    with pytest.raises(ValueError, match="CUDA"):
        bench.run_benchmarks(only=("cuda",))
