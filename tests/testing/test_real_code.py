"""The checker on the kinds of code real label-smoothing losses are (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstheory.testing import assert_loss_matches_theory, infer_smoothing

import real_code_losses as real


# -- item 1 and 3: the KL form --------------------------------------------------------------------
def test_kl_form_is_named_and_passes_when_its_targets_match():
    report = infer_smoothing(real.kl_smoothed(0.1), 10, eps=0.1, ignore_index=None)
    assert report.is_cross_entropy and report.form == "kl_divergence"
    assert report.convention == "off_target"
    assert "a KL divergence: cross-entropy minus the target's entropy" in str(report)
    assert_loss_matches_theory(real.kl_smoothed(0.1), 10, 0.1, convention="off_target", ignore_index=None)


def test_kl_offset_is_minus_the_entropy_of_the_target():
    report = infer_smoothing(real.kl_smoothed(0.1), 10, ignore_index=None)
    row = report.target_row(3)
    entropy = -float(np.sum(row * np.log(row)))
    assert report.offset[3] == pytest.approx(-entropy, abs=1e-12)


# -- item 2: padding inside the vocabulary, both semantics -------------------------------------------
def test_padding_class_without_smoothing_mass_annotated_transformer():
    loss = real.kl_smoothed(0.1, pad=0)
    report = infer_smoothing(loss, 10, eps=0.1, ignore_index=0)
    assert report.padding_classes == (0,) and report.unsmoothed_classes == (0,)
    assert report.ignore_behaviour == "ignored"
    assert report.smoothing_classes == 9 and report.eps_off_target == pytest.approx(0.1, abs=1e-12)
    assert_loss_matches_theory(loss, 10, 0.1, ignore_index=0, smooth_padding_class=False)
    with pytest.raises(AssertionError, match="receives no smoothing mass"):
        assert_loss_matches_theory(loss, 10, 0.1, ignore_index=0, smooth_padding_class=True)


def test_padding_class_with_smoothing_mass_fairseq_and_pytorch():
    for loss, convention in ((real.fairseq_padding(0.1, pad=1), "off_target"),
                             (lambda z, y: F.cross_entropy(z, y, ignore_index=1, label_smoothing=0.1), "uniform")):
        report = assert_loss_matches_theory(loss, 10, 0.1, convention=convention, ignore_index=1)
        assert report.padding_classes == (1,) and report.unsmoothed_classes == ()
        with pytest.raises(AssertionError, match="receives smoothing mass like any other class"):
            assert_loss_matches_theory(loss, 10, 0.1, convention=convention, ignore_index=1, smooth_padding_class=False)


def test_zero_loss_label_is_found_without_ignore_index():
    loss = lambda z, y: F.cross_entropy(z, y, ignore_index=0, label_smoothing=0.1)  # noqa: E731
    report = infer_smoothing(loss, 10, eps=0.1, ignore_index=None)
    assert report.padding_classes == (0,) and report.is_cross_entropy
    assert any("a batch of only padding" in note for note in report.notes) or any("behaves as padding" in n for n in report.notes)


def test_opennmt_default_ignore_index_zeroes_class_k_minus_100():
    with pytest.raises(AssertionError, match=r"class 100 receives no target mass"):
        assert_loss_matches_theory(real.opennmt_default_ignore(0.1, pad=1), 200, 0.1, ignore_index=1,
                                   smooth_padding_class=False)


# -- item 4: float32 constants ----------------------------------------------------------------------
def test_float32_constants_are_recognised_and_match_within_float32_rounding():
    report = infer_smoothing(real.float32_constants(0.1), 10, eps=0.1)
    assert report.constants_dtype == "float32" and report.dtype == "float64"
    assert report.convention == "uniform"
    assert abs(report.eps_uniform - 0.1) > 1e-10  # the float32 eps, not 0.1
    assert "target constants are float32 numbers" in str(report)
    assert_loss_matches_theory(real.float32_constants(0.1), 10, 0.1, convention="uniform")


# -- item 4: approximate cross-entropies ---------------------------------------------------------------
def test_log_of_softmax_plus_delta_is_an_approximate_cross_entropy_and_wrong_eps_still_fail():
    loss = real.log_softmax_plus_delta(0.1)
    report = infer_smoothing(loss, 10, eps=0.1)
    assert report.is_cross_entropy and report.convention == "uniform" and report.form == "cross_entropy"
    assert report.approximation > 0 and report.eps_error >= 2 * report.approximation
    assert any(note.startswith("an approximate cross-entropy") for note in report.notes), str(report)
    assert abs(report.eps_uniform - 0.1) <= report.eps_error
    assert_loss_matches_theory(loss, 10, 0.1, convention="uniform")
    with pytest.raises(AssertionError, match="which is eps=0.09 in off_target terms"):
        assert_loss_matches_theory(loss, 10, 0.1, convention="off_target")
    with pytest.raises(AssertionError, match=r"not eps=0\.2 \(uniform\)"):
        assert_loss_matches_theory(loss, 10, 0.2, convention="uniform")


def test_an_approximation_too_coarse_for_the_smallest_target_entry_is_none():
    """At K = 1000 the probabilities reach 1e-6: delta = 1e-8 moves gradients by more than half of eps/K = 1e-4."""
    report = infer_smoothing(real.log_softmax_plus_delta(0.1), 1000, eps=0.1)
    assert not report.is_cross_entropy
    assert any("so it is no approximate cross-entropy either" in f for f in report.findings), str(report)


def test_a_shift_inside_exp_cancels_and_a_clamp_that_does_not_bite_is_exact():
    for loss in (real.softmax_of_shifted_exp(0.1), real.clamped_probability(0.1, 1e-7)):
        report = assert_loss_matches_theory(loss, 10, 0.1, convention="uniform", ignore_index=None)
        assert report.approximation == 0 and not report.notes


def test_a_clamp_that_cuts_gradients_is_named_with_its_size():
    """With softmax below 1e-3 at many probes, the clamp removes whole gradient entries: no approximation."""
    report = infer_smoothing(real.clamped_probability(0.1, 1e-3), 10, eps=0.1, ignore_index=None)
    assert not report.is_cross_entropy
    assert any("not less than half its smallest target entry" in f for f in report.findings), str(report)


# -- item 5: never a confident wrong verdict --------------------------------------------------------
BROKEN = {
    "linear": (real.log_prob_loss_given_logits, "linear in the logits"),
    "negated": (real.negated, "negated cross-entropy"),
    "dropout": (real.dropout_logits, "nondeterministic"),
}


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_losses_are_no_cross_entropy_with_the_cause(name, num_classes):
    factory, cause = BROKEN[name]
    report = infer_smoothing(factory(0.1), num_classes, eps=0.1)
    assert not report.is_cross_entropy, str(report)
    assert any(cause in finding for finding in report.findings), str(report)
    with pytest.raises(AssertionError, match=cause):
        assert_loss_matches_theory(factory(0.1), num_classes, 0.1, convention="uniform")


@pytest.mark.parametrize("num_classes", [10, 100])
def test_one_broken_label_is_named(num_classes):
    report = infer_smoothing(real.one_label_broken(0.1), num_classes, eps=0.1)
    assert not report.is_cross_entropy
    assert any("labels 6 (1 of" in finding for finding in report.findings), str(report)


def test_sum_of_logits_is_no_cross_entropy():
    report = infer_smoothing(lambda z, y: z.sum(), 10)
    assert not report.is_cross_entropy and any("linear" in f for f in report.findings)


SEEDS = [0] + [pytest.param(seed, marks=pytest.mark.slow) for seed in range(1, 10)]


@pytest.mark.parametrize("seed", SEEDS)
def test_verdicts_are_the_same_for_every_seed(seed):
    """Acceptance 4 at K = 100: one label broken, linear, -CE, dropout fail with their cause; correct losses pass.

    Seed 0 runs by default, seeds 1-9 with ``-m slow``.
    """
    k = 100
    report = infer_smoothing(real.one_label_broken(0.1), k, seed=seed)
    assert not report.is_cross_entropy and any("labels 6 (1 of" in f for f in report.findings), (seed, str(report))
    for name, (factory, cause) in BROKEN.items():
        report = infer_smoothing(factory(0.1), k, seed=seed)
        assert not report.is_cross_entropy and any(cause in f for f in report.findings), (name, seed, str(report))
    correct = [
        (lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1), "uniform", "cross_entropy", 0.1, None),
        (real.kl_smoothed(0.1), "off_target", "kl_divergence", 0.1, None),
        (real.fairseq_padding(0.1, pad=1), "off_target", "cross_entropy", 0.1, 1),
    ]
    for loss, convention, form, eps, pad in correct:
        report = infer_smoothing(loss, k, eps=eps, seed=seed, ignore_index=pad)
        assert report.is_cross_entropy and report.convention == convention and report.form == form, (seed, str(report))
        found = report.eps_uniform if convention == "uniform" else report.eps_off_target
        assert abs(found - eps) < 1e-13


# -- item 6: never a crash ----------------------------------------------------------------------------
def test_a_loss_raising_mid_probe_is_a_finding():
    def loss(logits, labels):
        if (labels == 3).any():
            raise RuntimeError("label 3 unsupported")
        return F.cross_entropy(logits, labels, label_smoothing=0.1)

    report = infer_smoothing(loss, 8, ignore_index=None)
    assert not report.is_cross_entropy
    assert any("label 3" in f and "RuntimeError" in f for f in report.findings)


def test_a_constant_loss_does_not_crash():
    report = infer_smoothing(lambda z, y: torch.zeros((), dtype=z.dtype) + 0 * z.sum(), 5, ignore_index=None)
    assert not report.is_cross_entropy


# -- item 7: adapters -----------------------------------------------------------------------------------
def test_log_prob_inputs():
    loss = lambda logp, y: F.nll_loss(logp, y) * 0.9 - 0.1 * logp.mean(-1).mean()  # noqa: E731
    report = infer_smoothing(loss, 10, eps=0.1, inputs="log_probs")
    assert report.is_cross_entropy and report.convention == "uniform"


def test_one_hot_targets_and_target_first():
    def keras_like(y_true, y_pred):
        k = y_pred.shape[-1]
        smoothed = y_true * 0.9 + 0.1 / k
        return -(smoothed * torch.log_softmax(y_pred, -1)).sum(-1)

    report = infer_smoothing(keras_like, 10, eps=0.1, targets="one_hot", argument_order="target_first")
    assert report.is_cross_entropy and report.convention == "uniform" and "per sample" in report.reduction_detail


@pytest.mark.parametrize("layout", ["NTK", "NKT"])
def test_sequence_layouts(layout):
    def sequence_loss(logits, labels):
        if layout == "NTK":
            logits = logits.movedim(-1, 1)
        return F.cross_entropy(logits, labels, label_smoothing=0.1)

    report = infer_smoothing(sequence_loss, 10, eps=0.1, layout=layout)
    assert report.is_cross_entropy and report.convention == "uniform"
    assert "mean over B, mean over T" in report.reduction_detail


def test_a_sequence_loss_summing_over_time_says_so_per_axis():
    def summed_over_t(logits, labels):  # (B, K, T): per token, summed over T, averaged over B
        per_token = F.cross_entropy(logits, labels, label_smoothing=0.1, reduction="none")
        return per_token.sum(-1).mean()

    report = infer_smoothing(summed_over_t, 10, eps=0.1, layout="NKT", ignore_index=None)
    assert report.reduction_detail == "mean over B, sum over T"
    assert report.convention == "uniform"


def test_numpy_values_only_loss():
    def numpy_loss(logits, labels):
        k = logits.shape[-1]
        target = np.full(logits.shape, 0.1 / k)
        target[np.arange(len(labels)), labels] += 0.9
        shifted = logits - logits.max(-1, keepdims=True)
        logq = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        return float(-(target * logq).sum(-1).mean())

    report = assert_loss_matches_theory(numpy_loss, 12, 0.1, convention="uniform", ignore_index=None)
    assert not report.autograd and report.backend == "numpy"


# -- bad checker arguments (issue 11, items 5 and 6) ---------------------------------------------------------
GOOD = lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1)  # noqa: E731


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(num_classes=2**40), ValueError, "too large for the checker"),
        (dict(num_classes=1), ValueError, "num_classes"),
        (dict(num_classes=np.array([10, 20])), TypeError, "single integer"),
        (dict(num_classes=5, seed=-1), ValueError, "seed must be a non-negative integer"),
        (dict(num_classes=5, seed=1.5), TypeError, "seed"),
        (dict(num_classes=5, ignore_index=2**70), ValueError, "int64"),
        (dict(num_classes=5, ignore_index="pad"), TypeError, "ignore_index"),
        (dict(num_classes=5, eps=float("nan")), ValueError, "eps"),
        (dict(num_classes=5, inputs="probs"), ValueError, "inputs"),
        (dict(num_classes=5, targets=3), TypeError, "targets"),
        (dict(num_classes=5, argument_order="y_first"), ValueError, "argument_order"),
        (dict(num_classes=5, layout="TNK"), ValueError, "layout"),
        (dict(num_classes=True), TypeError, "num_classes must be an integer .* got True"),
        (dict(num_classes=2.5), TypeError, "num_classes must be an integer"),
        (dict(num_classes=5, eps=[0.1]), TypeError, r"eps must be a single real number .* got \[0.1\]"),
        (dict(num_classes=5, eps=1.5), ValueError, "0 <= eps <= 1; got 1.5"),
        (dict(num_classes=5, ignore_index=True), TypeError, "ignore_index must be an integer label"),
        (dict(num_classes=5, seed="0"), TypeError, "seed must be a non-negative integer; got '0'"),
        (dict(loss_fn=3, num_classes=5), TypeError, "loss_fn must be a callable"),
    ],
)
def test_bad_checker_arguments(kwargs, error, word):
    """Each bad argument: a ValueError or TypeError naming it, the value and the valid range (no raw error)."""
    kwargs = dict(kwargs)
    loss = kwargs.pop("loss_fn", GOOD)
    with pytest.raises(error, match=word):
        infer_smoothing(loss, **kwargs)


def test_a_0d_torch_integer_is_a_class_count_like_for_the_closed_forms():
    from lstheory import logit_gap

    logit_gap(torch.tensor(10), 0.1)
    assert infer_smoothing(GOOD, torch.tensor(10), eps=0.1).num_classes == 10


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(smooth_padding_class="yes"), TypeError, "smooth_padding_class must be True or False; got 'yes'"),
        (dict(rtol=-1), ValueError, r"rtol must be a real number with 0 <= rtol < 1, or None; got -1"),
        (dict(rtol=float("nan")), ValueError, "rtol .* got nan"),
        (dict(rtol="a"), TypeError, "rtol .* got 'a'"),
        (dict(rtol=[1e-3]), TypeError, "rtol"),
        (dict(convention="pytorch"), ValueError, "convention must be one of 'off_target', 'uniform'"),
        (dict(eps=None), TypeError, "eps must be a real number"),
        (dict(eps=[0.1, 0.2]), TypeError, "eps must be a single real number"),
    ],
)
def test_bad_assert_arguments(kwargs, error, word):
    kwargs = dict(kwargs)
    eps = kwargs.pop("eps", 0.1)
    with pytest.raises(error, match=word):
        assert_loss_matches_theory(GOOD, 5, eps, **kwargs)
