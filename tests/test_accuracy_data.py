"""The recorded accuracy data (docs/data/accuracy.json) is current and within the promised bounds."""

from __future__ import annotations

import pathlib

from lstheory.accuracy import ACCURACY_REGIONS, hard_points, points_fingerprint
from lstheory.docgen.accuracy import load_record

DATA = pathlib.Path(__file__).parent.parent / "docs" / "data" / "accuracy.json"
BOUNDS = {"logit_gap": 2.0, "min_loss": 4.0}


def test_recorded_on_the_current_hard_points():
    # The hard points are built with exact arithmetic (mpmath), so this fingerprint is the same on every
    # machine; a change to hard_points() makes the record stale: re-run `lstheory accuracy --record`.
    record = load_record(DATA)
    assert record is not None, "run `lstheory accuracy --record`"
    assert record["points_sha256"] == points_fingerprint(hard_points())
    assert [row["region"] for row in record["regions"]][::2] == list(ACCURACY_REGIONS)


def test_recorded_errors_hold_the_bounds_and_the_naive_formulas_fail():
    record = load_record(DATA)
    for row in record["regions"]:
        for quantity, bound in BOUNDS.items():
            assert row[quantity] <= bound, row
    everywhere = [row for row in record["regions"] if row["region"] == "all hard points"]
    assert all(row["naive_logit_gap"] > 1e6 for row in everywhere)


def test_hard_points_do_not_depend_on_numpy_simd():
    # 10**u through mpmath: the same bits whatever np.power's dispatch target; spot-check two values.
    from lstheory.accuracy import _exact_power_of_ten

    assert _exact_power_of_ten(-1.0) == 0.1 and _exact_power_of_ten(-300.0) == 1e-300
