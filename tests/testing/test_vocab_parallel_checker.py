"""assert_vocab_parallel_loss_matches_theory: the exact loss passes, Megatron-LM's smoothing fails with its cause named.

The losses under test are defined here at the top level, so that the checker's processes
can load them; every test also checks that no process is left behind.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import pytest
import torch
import torch.distributed as dist

from lstheory.claims.tensor_parallel_losses import exact_loss, megatron_style_loss
from lstheory.testing import assert_vocab_parallel_loss_matches_theory
from lstheory.testing.vocab_parallel import shard_size_smoothing_losses

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_process_left_behind")]

SHARD_CAUSE = "the loss changes with the world size: smoothing uses the shard's vocabulary size"


def local_only_loss(local_logits, target, group, vocab_start):
    """A common mistake: cross-entropy of each rank's own columns, without any all-reduce."""
    in_shard = (target >= vocab_start) & (target < vocab_start + local_logits.shape[-1])
    local_target = torch.where(in_shard, target - vocab_start, torch.zeros_like(target))
    return torch.nn.functional.cross_entropy(local_logits, local_target, label_smoothing=0.1)


def raises_on_rank_one(local_logits, target, group, vocab_start):
    if dist.get_rank(group) == 1:
        raise ValueError("deliberate failure in the user's loss")
    return exact_loss(local_logits, target, group, vocab_start, num_classes=12, eps=0.1)


def hangs_on_rank_one(local_logits, target, group, vocab_start):
    if dist.get_rank(group) == 1:
        while True:
            time.sleep(0.05)
    return exact_loss(local_logits, target, group, vocab_start, num_classes=12, eps=0.1)


def returns_per_row(local_logits, target, group, vocab_start):
    return exact_loss(local_logits, target, group, vocab_start, num_classes=12, eps=0.1, reduction="none")


def returns_a_float(local_logits, target, group, vocab_start):
    return float(exact_loss(local_logits, target, group, vocab_start, num_classes=12, eps=0.1))


def float32_loss(local_logits, target, group, vocab_start):
    return exact_loss(local_logits.float(), target, group, vocab_start, num_classes=1000, eps=0.1, convention="uniform")


def test_the_exact_loss_passes_at_world_sizes_1_to_4_with_uneven_shards():
    for convention in ("off_target", "uniform"):
        report = assert_vocab_parallel_loss_matches_theory(
            partial(exact_loss, num_classes=1001, eps=0.1, convention=convention), 1001, 0.1, convention=convention,
            world_sizes=(1, 2, 3, 4), ignore_index=-100)
        assert report.max_value_error <= 1e-12 and report.max_target_error <= 1e-12, report
        assert report.rtol == 1e-10 and report.loss_dtype == "float64"
        assert set(report.values) == {1, 2, 3, 4} and all(len(v) == w for w, per in report.values.items()
                                                            for v in per.values())
        print(report)


def test_a_megatron_style_loss_fails_and_the_cause_is_named():
    with pytest.raises(AssertionError) as raised:
        assert_vocab_parallel_loss_matches_theory(partial(megatron_style_loss, eps=0.1), 1000, 0.1)
    message = str(raised.value)
    causes = message.split("likely causes:")[1]
    assert causes.strip().startswith(f"- {SHARD_CAUSE}")
    assert "the ranks disagree" in message and "wrong implied target" in message
    assert "log(softmax) underflows" in causes  # float32, as Megatron-LM computes, at a logit gap of 120


def test_the_shard_size_cause_is_not_claimed_for_other_errors():
    with pytest.raises(AssertionError) as raised:
        assert_vocab_parallel_loss_matches_theory(local_only_loss, 12, 0.1, convention="uniform", world_sizes=(1, 2))
    message = str(raised.value)
    assert SHARD_CAUSE not in message
    assert "a missing all-reduce" in message


def test_a_convention_mix_up_is_named():
    loss = partial(exact_loss, num_classes=12, eps=0.1, convention="uniform")
    with pytest.raises(AssertionError, match="smooths with eps=0.1 in the uniform convention, not off_target"):
        assert_vocab_parallel_loss_matches_theory(loss, 12, 0.1, world_sizes=(1, 2))


def test_an_exception_in_the_loss_names_the_rank_and_the_call():
    with pytest.raises(AssertionError) as raised:
        assert_vocab_parallel_loss_matches_theory(raises_on_rank_one, 12, 0.1, world_sizes=(2,))
    message = str(raised.value)
    assert message.startswith("loss_fn raised ValueError: deliberate failure in the user's loss on rank 1 (loss_fn at "
                              "world size 2, probe 'random logits' (vocab_start=6))")


def test_a_hanging_loss_is_stopped_and_reported():
    start = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        assert_vocab_parallel_loss_matches_theory(hangs_on_rank_one, 12, 0.1, world_sizes=(2,), timeout=4)
    assert time.monotonic() - start < 20
    message = str(raised.value)
    assert message.startswith("loss_fn did not return within 4 s (at File ")
    assert "in hangs_on_rank_one" in message.split("\n")[0].split("; rank 0")[0]
    assert "on rank 1 (loss_fn at world size 2, probe 'random logits' (vocab_start=6))" in message
    assert "rank 0 was stopped while still running at File" in message and "distributed" in message


def test_the_loss_must_return_a_scalar():
    with pytest.raises(AssertionError, match=r"must return a scalar .* got shape \(16,\)"):
        assert_vocab_parallel_loss_matches_theory(returns_per_row, 12, 0.1, world_sizes=(1,))


def test_a_loss_without_autograd_is_checked_by_value():
    report = assert_vocab_parallel_loss_matches_theory(returns_a_float, 12, 0.1, world_sizes=(1, 2))
    assert report.max_target_error is None and "not checked" in str(report)


def test_a_float32_loss_passes_with_the_float32_tolerance():
    report = assert_vocab_parallel_loss_matches_theory(float32_loss, 1000, 0.1, convention="uniform", world_sizes=(1, 2))
    assert report.loss_dtype == "float32" and report.rtol == pytest.approx(200 * 2.0**-23)
    assert report.max_value_error < 1e-6 and report.max_target_error < 1e-5


def test_a_loss_from_an_interactive_session_is_refused_with_the_fix(monkeypatch):
    import sys
    import types

    session = types.ModuleType("__main__")  # an interactive __main__ has no __file__
    monkeypatch.setitem(sys.modules, "__main__", session)
    exec("def my_loss(local_logits, target, group, vocab_start):\n    return local_logits.sum()", session.__dict__)
    with pytest.raises(TypeError, match="interactive session"):
        assert_vocab_parallel_loss_matches_theory(session.my_loss, 12, 0.1)


def test_shard_size_formula_is_the_exact_loss_on_one_shard_only():
    from lstheory.torch import label_smoothed_cross_entropy

    rng = np.random.default_rng(0)
    z, y = rng.normal(0, 2, (8, 10)), rng.integers(0, 10, 8)
    exact = float(label_smoothed_cross_entropy(torch.from_numpy(z), torch.from_numpy(y), 0.1))
    assert shard_size_smoothing_losses(z, y, 0.1, [(0, 10)])[0] == pytest.approx(exact, rel=1e-14)
    two = shard_size_smoothing_losses(z, y, 0.1, [(0, 5), (5, 10)])
    assert abs(two[0] - two[1]) > 1e-3 and np.all(np.abs(two - exact) > 1e-4)


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        (dict(loss_fn=lambda z, y, g, s: z.sum()), TypeError, "must be picklable"),
        (dict(loss_fn=42), TypeError, "callable"),
        (dict(num_classes=1), ValueError, "num_classes"),
        (dict(world_sizes=(1, 1)), ValueError, "distinct"),
        (dict(world_sizes=(13,)), ValueError, "world_sizes"),
        (dict(world_sizes=2), ValueError, "world_sizes"),
        (dict(reduction="none"), ValueError, "reduction"),
        (dict(ignore_index=3), ValueError, "ignore_index"),
        (dict(dtype="int8"), ValueError, "dtype"),
        (dict(rtol=0), ValueError, "rtol"),
        (dict(num_classes=2**20 + 1), ValueError, "num_rows * num_classes must be at most 2**24"),
        (dict(eps=2), ValueError, "eps"),
        (dict(convention="pytorch"), ValueError, "convention"),
    ],
)
def test_bad_arguments_are_refused_before_any_process_starts(arguments, error, words):
    call = dict(loss_fn=partial(exact_loss, num_classes=12, eps=0.1), num_classes=12, eps=0.1)
    call.update(arguments)
    with pytest.raises(error) as raised:
        assert_vocab_parallel_loss_matches_theory(call.pop("loss_fn"), call.pop("num_classes"), call.pop("eps"), **call)
    assert words in str(raised.value)
