"""The tensor_parallel claims: registered with their sources, proven, checked under gloo; the proofs can fail."""

from __future__ import annotations

import pytest

from lstheory.claims import CheckContext, get_claim
from lstheory.symbolic import tensor_parallel as derivations
from lstheory.symbolic.derivation import Step

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_process_left_behind")]


def test_the_claims_name_their_sources_and_statuses():
    exact = get_claim("tensor_parallel.exact_decomposition")
    megatron = get_claim("tensor_parallel.megatron_label_smoothing")
    assert exact.status == "verified" and megatron.status == "refuted"
    assert "megatron/core/tensor_parallel/cross_entropy.py" in megatron.source
    for number in ("#737", "#7464", "#7452", "#5522", "#7466", "#394"):
        assert number in megatron.source
    assert set(exact.checks) == set(megatron.checks) == {"symbolic", "scipy", "torch"}


@pytest.mark.parametrize("claim_id", ["tensor_parallel.exact_decomposition", "tensor_parallel.megatron_label_smoothing"])
def test_the_torch_level_checks_run_both_losses_under_gloo_and_pass(claim_id):
    result = get_claim(claim_id).checks["torch"](CheckContext())
    assert result.passed, result.detail
    assert "gloo" in result.detail


def test_the_decomposition_proof_fails_for_megatron_style_smoothing():
    """The same exact route that proves the decomposition refuses Megatron-LM's rank-0 loss at world size 2."""
    layout, label = ((0, 2), (2, 4)), 0
    megatron_rank_0 = derivations._megatron_rank_loss(layout, 0, label, derivations._LSE)
    off_target = derivations._megatron_rank_loss(((0, 4),), 0, label, derivations._LSE)  # = the dense loss (step 3)
    assert not Step("Megatron's rank 0 at world size 2 is the dense loss", megatron_rank_0, off_target).check()
    assert derivations.megatron_shard_smoothing().proven() and derivations.vocab_parallel_decomposition().proven()
