"""The smoothing term of a linear head: its derivation is proven, can fail, and its claim checks can fail."""

from __future__ import annotations

import dataclasses

import pytest
import sympy

import lstheory.torch.linear_loss as linear_loss
from lstheory.claims import get_claim
from lstheory.claims.linear_head import _NumpyHead, _coefficients
from lstheory.claims.registry import CheckContext
from lstheory.symbolic import linear_head_smoothing
from lstheory.symbolic.linear_head import _BETA, _C, _H, _J, _OMEGA, _W, H, K, merge_finite_sums


@pytest.mark.parametrize("sizes", [(2, 1, 1), (4, 1, 2)])  # (3, 2, 2) and (2, 3, 3): the claim below
def test_every_step_is_proven(sizes):
    derivation = linear_head_smoothing(*sizes)
    unproven = [step.statement for step, ok in derivation.check() if not ok]
    assert not unproven


def _broken(step, **change):
    return dataclasses.replace(step, **change)


def test_the_steps_fail_when_their_statement_is_wrong():
    steps = linear_head_smoothing().steps
    b = sympy.Symbol("b", real=True)
    # the class sum without the bias's class sum; the exchange of sums over a bound that depends on the index
    assert not _broken(steps[0], rhs=steps[0].rhs - sympy.Sum(_OMEGA[_C] * _BETA[_C], (_C, 1, K))).check()
    varying = sympy.Sum(sympy.Sum(_W[_C, _J] * _H[_J], (_J, 1, _C)), (_C, 1, K))
    assert not _broken(steps[0], lhs=varying, rhs=sympy.Sum(_W[_C, _J] * _H[_J], (_C, 1, K), (_J, 1, H))).check()
    # the logit gradient without the smoothing term; the classifier gradient without its rank-one part
    assert not _broken(steps[4], rhs=steps[4].rhs + b * sympy.Matrix(steps[4].rhs.shape[0], 1, lambda *_: 1)).check()
    assert not _broken(steps[5], rhs=steps[5].rhs.applyfunc(lambda entry: entry.subs(b, 0))).check()  # not rank one
    classifier_sum = steps[8].rhs
    rank_one = -b * sympy.ones(*classifier_sum.shape)  # any change of the rank-one part must be caught
    assert not _broken(steps[8], rhs=classifier_sum + rank_one).check()
    for index in (9, 10):  # the feature and bias gradients without their smoothing part
        assert not _broken(steps[index], rhs=steps[index].rhs + b * sympy.ones(*steps[index].rhs.shape)).check()


def test_merge_finite_sums_rewrites_only_what_it_may():
    nested = sympy.Sum(_OMEGA[_C] * sympy.Sum(_W[_C, _J] * _H[_J], (_J, 1, H)), (_C, 1, K))
    assert merge_finite_sums(nested) == sympy.Sum(_OMEGA[_C] * _W[_C, _J] * _H[_J], (_C, 1, K), (_J, 1, H))
    varying = sympy.Sum(_OMEGA[_C] * sympy.Sum(_W[_C, _J], (_J, 1, _C)), (_C, 1, K))
    assert merge_finite_sums(varying).has(sympy.Sum(_W[_C, _J], (_J, 1, _C)))  # bound depends on c: left nested


def test_the_claim_passes_at_every_level():
    claim = get_claim("fused_linear.smoothing_sum")
    assert set(claim.checks) == {"symbolic", "scipy", "torch"}
    for level, check in claim.checks.items():
        result = check(CheckContext())
        assert result.passed, (level, result.detail)


def test_the_scipy_check_sees_a_missing_rank_one_term():
    head = _NumpyHead(0)
    a, b = _coefficients(7, 0.3, "uniform")
    stated = head.stated_gradient(head.parameters, a, b)
    without_smoothing = head.stated_gradient(head.parameters, a, 0.0)  # the rank-one parts drop with b
    import scipy.optimize

    numeric = scipy.optimize.approx_fprime(head.parameters, head.weighted_loss, 1e-7, a, b)
    assert abs(numeric - stated).max() <= 1e-6 * abs(stated).max()
    assert abs(numeric - without_smoothing).max() > 1e-3 * abs(stated).max()


def test_the_torch_check_fails_for_a_fused_loss_without_the_rank_one_term(monkeypatch):
    original = linear_loss._Gradients.finish

    def finish_without_rank_one(self, problem, dtype):
        settings = dataclasses.replace(problem.settings, b=0.0)
        monkeypatch.setattr(problem, "settings", settings)
        return original(self, problem, dtype)

    monkeypatch.setattr(linear_loss._Gradients, "finish", finish_without_rank_one)
    result = get_claim("fused_linear.smoothing_sum").checks["torch"](CheckContext())
    assert not result.passed and result.max_error > 1e-3
