"""Bad inputs to every public function: a clear ValueError/TypeError naming the argument, never a raw error.

Two parts:

* ``BAD_INPUTS``, a table ``call -> expected exception and the words its message must hold``:
  the raw errors an adversarial run found (issue 11, items 5 and 6) and their neighbours;
* a sweep that puts each value of ``JUNK`` into each argument of each public function (with the
  other arguments valid): the call either works (the value happens to be valid) or raises a
  ValueError/TypeError whose message names that argument.  Nothing else may escape: no NumPy
  "inhomogeneous shape", no ``int()`` TypeError, no OverflowError, no torch AssertionError, no
  MemoryError without a size.

The checker (``lstheory.testing``, ``lstheory check``) is tested with its own bad inputs in
``tests/testing``.
"""

from __future__ import annotations

import inspect
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lstheory
import lstheory.torch as lst_torch
from lstheory import strategies as lst
from lstheory.accuracy import hard_eps
from lstheory.cli import main
import lstheory.numeric
from lstheory.numeric import (
    minimize_cross_entropy,
    minimize_smoothed,
    minimize_unconstrained_features,
    smoothed_target_vector,
    sweep,
)
from lstheory.verify import run_verification

from budget import fuzz_settings

NAN, INF = math.nan, math.inf


def loss(**changes):
    arguments = dict(logits=torch.zeros(2, 3), target=torch.tensor([0, 1]), eps=0.1)
    arguments.update(changes)
    return lambda: lst_torch.label_smoothed_cross_entropy(**arguments)


BAD_INPUTS = [
    # item 5: ragged lists
    ("ragged num_classes", lambda: lstheory.logit_gap([[2, 3], [4]], 0.1), TypeError, ["num_classes", "rectangular"]),
    ("ragged p", lambda: lstheory.optimal_logits_for_target([[0.5, 0.5], [1.0]]), TypeError, ["p ", "rectangular"]),
    ("ragged eps", lambda: lstheory.min_loss(10, [[0.1], [0.2, 0.3]]), TypeError, ["eps", "rectangular"]),
    ("ragged numeric target", lambda: minimize_cross_entropy([[0.5], [0.5, 0.1]]), TypeError, ["target"]),
    # item 5: timedelta64 (NumPy files it under integers)
    ("timedelta eps", lambda: lstheory.logit_gap(10, np.timedelta64(1)), TypeError, ["eps", "timedelta64"]),
    ("timedelta eps in days", lambda: lstheory.logit_gap(10, np.timedelta64(1, "D")), TypeError, ["eps", "0 <= eps <= 1"]),
    ("timedelta K", lambda: lstheory.logit_gap(np.timedelta64(10), 0.1), TypeError, ["num_classes", "integer"]),
    ("timedelta loss eps", loss(eps=np.timedelta64(1)), TypeError, ["eps"]),
    # item 5: arrays where one number is needed
    ("array K for coefficients", lambda: lst_torch.smoothing_coefficients(np.array([10, 20]), 0.1), TypeError,
     ["num_classes", "single integer", "(2,)"]),
    ("array eps for coefficients", lambda: lst_torch.smoothing_coefficients(10, np.array([0.1])), TypeError,
     ["eps", "single", "(1,)"]),
    ("array eps for the loss", loss(eps=np.array([0.1])), TypeError, ["eps", "single", "(1,)"]),
    ("tensor eps of shape (1,)", loss(eps=torch.tensor([0.1])), TypeError, ["eps", "single", "(1,)"]),
    ("array K for optimal_logits", lambda: lstheory.optimal_logits(np.array([3, 4]), 0.1), TypeError,
     ["num_classes", "single integer"]),
    # item 5: ignore_index beyond int64
    ("ignore_index 2**70", loss(ignore_index=2**70), ValueError, ["ignore_index", "int64", "1180591620717411303424"]),
    ("ignore_index -2**70", loss(ignore_index=-(2**70)), ValueError, ["ignore_index", "[-2**63, 2**63 - 1]"]),
    ("ignore_index float", loss(ignore_index=-100.0), TypeError, ["ignore_index", "integer"]),
    # item 5: seeds (the checker's seed is tested in tests/testing)
    ("numeric seed -1", lambda: minimize_smoothed(10, 0.1, seed=-1), ValueError, ["seed", ">= 0", "-1"]),
    ("sweep seed -1", lambda: sweep([(10, 0.1)], seed=-1, progress=False), ValueError, ["seed", ">= 0"]),
    ("hard_eps seed -1", lambda: hard_eps(10, seed=-1), ValueError, ["seed", ">= 0"]),
    ("verify seed -1", lambda: run_verification([], seed=-1), ValueError, ["seed", ">= 0"]),
    ("numeric seed float", lambda: minimize_smoothed(10, 0.1, seed=1.5), TypeError, ["seed", "integer"]),
    # item 5: strategies
    ("conventions as a string", lambda: lst.conventions("uniform"), TypeError, ["allowed", "'uniform'", "sequence"]),
    ("setups' conventions as a string", lambda: lst.smoothing_setups(conventions="uniform"), TypeError,
     ["conventions", "sequence"]),
    ("min_classes > max_classes", lambda: lst.smoothing_setups(min_classes=30, max_classes=20), ValueError,
     ["min_classes=30", "max_classes=20"]),
    ("min_eps > max_eps", lambda: lst.smoothing_setups(min_eps=0.5, max_eps=0.2), ValueError, ["min_eps", "max_eps"]),
    ("cases' min_classes > max_classes", lambda: lst.smoothing_cases(min_classes=30, max_classes=20), ValueError,
     ["min_classes", "max_classes"]),
    ("num_classes bound as a string", lambda: lst.num_classes("2", 5), TypeError, ["min_value", "integer"]),
    ("logits batch_size -1", lambda: lst.logits(3, -1), ValueError, ["batch_size", ">= 0"]),
    ("logits max_abs inf", lambda: lst.logits(3, 2, max_abs=INF), ValueError, ["max_abs"]),
    ("logits dtype junk", lambda: lst.logits(3, 2, dtype="x"), ValueError, ["dtype"]),
    # item 5: a device this torch build cannot use
    ("cuda on a CPU build", lambda: lst_torch.logit_gap(10, 0.1, device="cuda:99"), ValueError,
     ["device", "cuda:99", "not available"]),
    ("optimal_logits on a missing device", lambda: lst_torch.optimal_logits(3, 0.1, device="cuda:99"), ValueError,
     ["device", "not available"]),
    ("device junk", lambda: lst_torch.logit_gap(10, 0.1, device="gpu"), ValueError, ["device", "'gpu'"]),
    ("device not a string", lambda: lst_torch.logit_gap(10, 0.1, device=3.5), TypeError, ["device"]),
    # item 5: results too large to allocate say how large (K <= 2**53 is valid)
    ("optimal_logits K = 2**40", lambda: lstheory.optimal_logits(2**40, 0.1), ValueError,
     ["num_classes=1099511627776", "8 TiB", "logit_gap"]),
    ("torch optimal_logits K = 2**40", lambda: lst_torch.optimal_logits(2**40, 0.1), MemoryError,
     ["num_classes=1099511627776", "8 TiB"]),
    ("smoothed_target_vector K = 2**40", lambda: smoothed_target_vector(2**40, 0.1), ValueError,
     ["num_classes=1099511627776", "8 TiB"]),
    # item 5: a tensor eps that requires grad: refused everywhere (no gradient flows to eps)
    ("requires-grad eps, closed form", lambda: lstheory.logit_gap(10, torch.tensor(0.1, requires_grad=True)),
     TypeError, ["eps", "requires grad", "detach"]),
    ("requires-grad eps, torch optimum", lambda: lst_torch.logit_gap(10, torch.tensor(0.1, requires_grad=True)),
     TypeError, ["eps", "requires grad"]),
    ("requires-grad alpha, torch optimum",
     lambda: lst_torch.optimal_logits(3, 0.1, alpha=torch.tensor(1.0, requires_grad=True)), TypeError,
     ["alpha", "requires grad"]),
    ("requires-grad eps, loss", loss(eps=torch.tensor(0.1, requires_grad=True)), TypeError, ["eps", "requires grad"]),
    ("requires-grad eps, coefficients",
     lambda: lst_torch.smoothing_coefficients(10, torch.tensor(0.1, requires_grad=True)), TypeError,
     ["eps", "requires grad"]),
    # item 5: convert_eps prints enough digits to tell eps from the bound
    ("convert_eps one ulp above (K-1)/K",
     lambda: lstheory.convert_eps(10, 0.9000000000000001, src="off_target", dst="uniform"), ValueError,
     ["eps=0.9000000000000001", "= 1.0000000000000002 > 1", "(K-1)/K = 0.9"]),
    ("convert_eps with a float32 tensor eps",
     lambda: lstheory.convert_eps(2, torch.tensor(0.6), src="off_target", dst="uniform"), ValueError,
     ["eps=0.6000000238418579", "(K-1)/K = 0.5"]),
    # the solver
    ("solver max_iter -1", lambda: lst_torch.solve_optimal_logits(torch.ones(1, 2), max_iter=-1), ValueError,
     ["max_iter", ">= 0"]),
    ("solver max_iter float", lambda: lst_torch.solve_optimal_logits(torch.ones(1, 2), max_iter=5.0), TypeError,
     ["max_iter", "integer"]),
    ("solver tol nan", lambda: lst_torch.solve_optimal_logits(torch.ones(1, 2), tol=NAN), ValueError, ["tol"]),
    ("solver start with an overflowing spread",
     lambda: lst_torch.solve_optimal_logits(torch.ones(1, 2, dtype=torch.float64),
                                            initial_logits=torch.tensor([[-1.7e308, 1.7e308]], dtype=torch.float64)),
     ValueError, ["initial_logits", "spread"]),
    ("solver integer start", lambda: lst_torch.solve_optimal_logits(torch.ones(1, 2), initial_logits=torch.ones(1, 2).long()),
     TypeError, ["initial_logits", "floating"]),
    # the loss
    ("reduction as an array", loss(reduction=np.array(["mean"])), ValueError, ["reduction"]),
    ("uint64 target beyond int64", loss(target=torch.tensor([2**63 + 5, 1], dtype=torch.uint64)), ValueError,
     ["target", "9223372036854775813"]),
    # labels in the closed forms: an integer, a 0-d integer array or tensor
    ("label float", lambda: lstheory.optimal_logits(3, 0.1, label=1.0), TypeError, ["label", "integer"]),
    ("label 2**70", lambda: lstheory.optimal_logits(3, 0.1, label=2**70), ValueError, ["label", "1180591620717411303424"]),
]


@pytest.mark.timeout(60)  # a bad input must not hang either
@pytest.mark.parametrize("call, error, words", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_raises_a_named_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, (ValueError, TypeError)), f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# ------------------------------------------------------------------ consistent reading of K and eps


def test_zero_d_integer_tensor_is_a_class_count_everywhere():
    """A 0-d integer tensor K is read like the int it holds, by every function that takes K."""
    k, expected = torch.tensor(10), 10
    for function in (lstheory.logit_gap, lstheory.min_loss, lstheory.smoothed_target):
        assert np.array_equal(function(k, 0.1), function(expected, 0.1))
    assert np.array_equal(lstheory.optimal_logits(k, 0.1, label=torch.tensor(3)), lstheory.optimal_logits(10, 0.1, label=3))
    assert lst_torch.smoothing_coefficients(k, 0.1) == lst_torch.smoothing_coefficients(expected, 0.1)
    assert torch.equal(lst_torch.logit_gap(k, 0.1), lst_torch.logit_gap(expected, 0.1))
    assert torch.equal(lst_torch.optimal_logits(k, 0.1), lst_torch.optimal_logits(expected, 0.1))
    assert np.array_equal(smoothed_target_vector(k, 0.1), smoothed_target_vector(expected, 0.1))


def test_float32_eps_is_used_as_given():
    """torch.tensor(0.1) is 0.10000000149011612: every layer uses that number, not 0.1."""
    eps32 = torch.tensor(0.1)
    given = float(eps32)
    assert given != 0.1
    assert lstheory.logit_gap(10, eps32) == lstheory.logit_gap(10, given) != lstheory.logit_gap(10, 0.1)
    assert lst_torch.smoothing_coefficients(10, eps32) == lst_torch.smoothing_coefficients(10, given)
    logits, target = torch.randn(4, 10, dtype=torch.float64), torch.arange(4)
    assert torch.equal(lst_torch.label_smoothed_cross_entropy(logits, target, eps32),
                       lst_torch.label_smoothed_cross_entropy(logits, target, given))


def test_negative_zero_eps_gives_positive_zero_mass():
    """Item 6: smoothed_target(K, -0.0) returned p_other = -0.0."""
    for convention in ("off_target", "uniform"):
        _, p_other = lstheory.smoothed_target(10, -0.0, convention=convention)
        assert p_other == 0 and math.copysign(1.0, p_other) == 1.0
    assert math.copysign(1.0, float(lstheory.convert_eps(10, -0.0, src="off_target", dst="uniform"))) == 1.0


# ------------------------------------------------------------------ `lstheory table`


@pytest.mark.parametrize(
    "args, words",
    [
        (["--eps", "1e-400"], ["--eps", "1e-400", "5e-324"]),
        (["--eps", "nan"], ["--eps", "eps", "nan"]),
        (["--eps", "inf"], ["--eps", "eps"]),
        (["--eps", "1e400"], ["--eps", "eps"]),
        (["--eps", "-0.5"], ["--eps", "eps", "-0.5"]),
        (["--eps", "0.1,x"], ["--eps", "comma-separated numbers"]),
        (["--eps", ","], ["at least one"]),
        (["--classes", "1"], ["--classes", "num_classes", "got 1"]),
        (["--classes", "9007199254740993"], ["--classes", "2**53"]),
        (["--classes", "10.5"], ["--classes", "integers"]),
        (["--classes", "1" + "0" * 400], ["--classes", "an integer of 401 digits"]),
        (["--convention", "pytorch"], ["--convention", "pytorch", "use 'uniform'"]),
    ],
)
def test_table_rejects_bad_values_in_one_line(args, words, capsys):
    try:
        status = main(["table", *args])
    except SystemExit as exit:  # argparse's usage errors
        status = exit.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


# ------------------------------------------------------------------ every argument of every public function

JUNK = {
    "None": None,
    "str": "x",
    "bytes": b"x",
    "bool": True,
    "complex": 1j,
    "nan": NAN,
    "inf": INF,
    "-inf": -INF,
    "-1": -1,
    "2**70": 2**70,
    "-2**70": -(2**70),
    "ragged": [[1, 2], [3]],
    "empty list": [],
    "float array": np.array([0.1, 0.2]),
    "int matrix": np.array([[2, 3]]),
    "timedelta64": np.timedelta64(1, "D"),
    "datetime64": np.datetime64("2020-01-01"),
    "object": object(),
    "dict": {},
    "requires-grad tensor": torch.tensor(0.1, requires_grad=True),
    "float tensor": torch.tensor([1.0, 2.0]),
    "0-d int tensor": torch.tensor(10),
    "complex tensor": torch.tensor(1j),
    "Fraction": Fraction(1, 10),
    "Decimal": Decimal("0.1"),
}

# Each public function with valid arguments; the sweep replaces one at a time.  Flags that any
# truthy value sets, by Python convention (polish, progress, finite_optimum), and free-text
# labels (description) are left out.
PUBLIC_CALLS = {
    "smoothed_target": (lstheory.smoothed_target, dict(num_classes=10, eps=0.1, convention="uniform")),
    "logit_gap": (lstheory.logit_gap, dict(num_classes=10, eps=0.1, convention="uniform")),
    "min_loss": (lstheory.min_loss, dict(num_classes=10, eps=0.1, convention="uniform")),
    "optimal_logits": (lstheory.optimal_logits, dict(num_classes=4, eps=0.1, label=1, alpha=0.5, convention="uniform")),
    "convert_eps": (lstheory.convert_eps, dict(num_classes=10, eps=0.1, src="uniform", dst="off_target")),
    "optimal_logits_for_target": (lstheory.optimal_logits_for_target, dict(p=[0.5, 0.25, 0.25], alpha=0.0)),
    "binary_optimal_logit": (lstheory.binary_optimal_logit, dict(eps=0.1)),
    "binary_smoothed_probability": (lstheory.binary_smoothed_probability, dict(eta=0.7, eps=0.1)),
    "binary_unsmoothed_probability": (lstheory.binary_unsmoothed_probability, dict(p=0.7, eps=0.1)),
    "torch.label_smoothed_cross_entropy": (
        lst_torch.label_smoothed_cross_entropy,
        dict(logits=torch.zeros(2, 3), target=torch.tensor([0, 1]), eps=0.1, convention="uniform",
             weight=torch.ones(3), ignore_index=-100, reduction="mean"),
    ),
    "torch.smoothing_coefficients": (lst_torch.smoothing_coefficients, dict(num_classes=10, eps=0.1, convention="uniform")),
    "torch.logit_gap": (lst_torch.logit_gap, dict(num_classes=10, eps=0.1, convention="uniform", dtype=torch.float64,
                                                  device="cpu")),
    "torch.optimal_logits": (lst_torch.optimal_logits, dict(num_classes=4, eps=0.1, label=1, alpha=0.0,
                                                            convention="uniform", dtype=torch.float64, device="cpu")),
    "torch.solve_optimal_logits": (lst_torch.solve_optimal_logits, dict(target_probs=torch.tensor([[0.5, 0.5]]),
                                                                        max_iter=50, tol=1e-6,
                                                                        initial_logits=torch.zeros(1, 2))),
    "strategies.num_classes": (lst.num_classes, dict(min_value=2, max_value=10)),
    "strategies.conventions": (lst.conventions, dict(allowed=("uniform",))),
    "strategies.eps_values": (lst.eps_values, dict(min_value=0.0, max_value=1.0)),
    "strategies.smoothing_setups": (lst.smoothing_setups, dict(min_classes=2, max_classes=10, conventions=("uniform",),
                                                               min_eps=0.0, max_eps=1.0)),
    "strategies.logits": (lst.logits, dict(num_classes=3, batch_size=2, max_abs=5.0, dtype=np.float64)),
    "strategies.labels": (lst.labels, dict(num_classes=3, batch_size=2, ignore_index=-100)),
    "strategies.logits_and_labels": (lst.logits_and_labels, dict(num_classes=3, batch_size=2, max_abs=5.0,
                                                                 dtype=np.float64, ignore_index=-100)),
    "strategies.smoothing_cases": (lst.smoothing_cases, dict(min_classes=2, max_classes=10, conventions=("uniform",),
                                                             batch_size=2, max_abs=5.0, dtype=np.float64)),
    "numeric.minimize_cross_entropy": (minimize_cross_entropy, dict(target=[0.5, 0.25, 0.25], label=0, seed=0,
                                                                    start_scale=1.0, tol=1e-12, max_iter=100)),
    "numeric.minimize_smoothed": (minimize_smoothed, dict(num_classes=3, eps=0.1, convention="uniform", label=0, seed=0)),
    "numeric.smoothed_target_vector": (smoothed_target_vector, dict(num_classes=3, eps=0.1, label=0,
                                                                    convention="uniform")),
    "numeric.sweep": (sweep, dict(configurations=[(3, 0.1)], convention="uniform", seed=0, progress=False)),
    "optimum": (lstheory.optimum, dict(num_classes=10, eps=0.1, convention="uniform")),
    "neural_collapse_optimum": (lstheory.neural_collapse_optimum, dict(
        num_classes=4, eps=0.1, samples_per_class=2, classifier_decay=1e-3, feature_decay=1e-3, convention="uniform")),
    "torch.vocab_parallel_label_smoothed_cross_entropy": (lst_torch.vocab_parallel_label_smoothed_cross_entropy, dict(
        local_logits=torch.zeros(2, 3), target=torch.tensor([0, 1]), eps=0.1, vocab_start=0, num_classes=3, group=None,
        convention="uniform", class_weight=torch.ones(3), ignore_index=-100, reduction="mean")),
    "torch.vocab_shard_bounds": (lst_torch.vocab_shard_bounds, dict(num_classes=10, world_size=3)),
    "torch.linear_label_smoothed_cross_entropy": (lst_torch.linear_label_smoothed_cross_entropy, dict(
        hidden=torch.zeros(2, 4), classifier=torch.zeros(3, 4), target=torch.tensor([0, 1]), eps=0.1,
        bias=torch.zeros(3), convention="uniform", class_weight=torch.ones(3), ignore_index=-100, reduction="mean",
        chunk_size=2)),
    "numeric.minimize_unconstrained_features": (minimize_unconstrained_features, dict(
        num_classes=3, eps=0.1, samples_per_class=2, classifier_decay=1e-2, feature_decay=1e-2, convention="uniform",
        feature_dim=3, seed=0, start_scale=1.0, max_iter=200)),
}

SWEEP_CASES = [
    (name, argument, junk)
    for name, (_, valid) in PUBLIC_CALLS.items()
    for argument in valid
    if argument not in ("progress",)
    for junk in JUNK
]


def test_the_sweep_covers_every_public_function():
    exported = {f"{prefix}{name}" for module, prefix in ((lstheory, ""), (lst_torch, "torch."), (lst, "strategies."))
                for name in module.__all__ if inspect.isfunction(getattr(module, name))}
    exported |= {f"numeric.{name}" for name in lstheory.numeric.__all__ if inspect.isfunction(getattr(lstheory.numeric, name))}
    assert exported == set(PUBLIC_CALLS)
    for name, (function, valid) in PUBLIC_CALLS.items():
        parameters = inspect.signature(function).parameters
        left_out = {p for p in parameters if p not in valid and parameters[p].kind is not inspect.Parameter.VAR_KEYWORD}
        assert left_out <= {"polish", "finite_optimum", "description"}, (name, left_out)


SWEEP_SETTINGS = fuzz_settings(3.0)  # 300 of the ~2500 cases by default, nearly all of them in the slow profile


@pytest.mark.timeout(60 + SWEEP_SETTINGS.max_examples, method="thread")  # a second per call at most: only a hang exceeds it
@SWEEP_SETTINGS
@given(st.sampled_from(SWEEP_CASES), st.data())
def test_junk_in_any_argument_is_refused_by_name_or_accepted(case, data):
    name, argument, junk = case
    function, valid = PUBLIC_CALLS[name]
    arguments = dict(valid, **{argument: JUNK[junk]})
    try:
        result = function(**arguments)
        if name.startswith("strategies."):
            data.draw(result)  # a strategy that was built must also draw without a raw error
    except (ValueError, TypeError) as error:
        assert argument in str(error), f"{type(error).__name__} does not name {argument!r}: {error}"
