"""Every symbolic step is proven exactly, and the proof machinery can fail."""

from __future__ import annotations

import pytest
import sympy

from lstheory.symbolic import (
    Derivation,
    Step,
    convention_closed_form,
    conversion,
    gap_closed_form,
    general_optimum,
    general_optimum_symbolic_k,
    min_loss_closed_form,
    seed_loss_rewrite,
    seed_one_hot,
    seed_optimal_logits,
    target,
)
from lstheory.symbolic.smoothing import EPS, K


def _assert_proven(derivation: Derivation):
    unproven = [step.statement for step, ok in derivation.check() if not ok]
    assert not unproven, f"{derivation.title}: not proven: {unproven}"


@pytest.mark.parametrize("num_classes", [2, 3, 4, 5, 6])
def test_general_optimum_for_concrete_k(num_classes):
    derivation = general_optimum(num_classes)
    assert len(derivation.steps) == 9
    _assert_proven(derivation)


def test_general_optimum_for_symbolic_k():
    _assert_proven(general_optimum_symbolic_k())


@pytest.mark.parametrize("convention", ["off_target", "uniform"])
def test_convention_closed_forms(convention):
    _assert_proven(convention_closed_form(convention))


def test_conversion_and_seed_derivations():
    for derivation in (conversion(), seed_optimal_logits(), seed_loss_rewrite(3), seed_loss_rewrite(4), seed_one_hot()):
        _assert_proven(derivation)


def test_wrong_statements_are_not_proven():
    # The checks can fail: a wrong closed form, a wrong sign and a false counterexample.
    p_true, p_other = target("off_target")
    wrong_ratio = Step("wrong: the seed's printed alpha-in-log form at alpha = 1", p_true / p_other,
                       (K - 1) * (1 - EPS) / (EPS + 1))
    assert not wrong_ratio.check()
    uniform_as_off = Step("wrong: uniform gap equals off_target gap at equal eps",
                          sympy.exp(gap_closed_form("uniform")), sympy.exp(gap_closed_form("off_target")))
    assert not uniform_as_off.check()
    wrong_sign = Step("wrong sign", -sympy.exp(sympy.Symbol("x", real=True)), relation=">0")
    assert not wrong_sign.check()
    not_a_counterexample = Step("0 != 0", sympy.log(sympy.Integer(4)) - 2 * sympy.log(2), relation="!=")
    assert not not_a_counterexample.check()


def test_gibbs_step_would_fail_for_an_unnormalised_target():
    # Step 8 of the general derivation uses sum(p) = 1; with a free last mass it must fail.
    z = sympy.symbols("z_1:3", real=True)
    p = sympy.symbols("p_1:3", positive=True)
    from lstheory.symbolic.general import cross_entropy

    optimum = {zi: sympy.log(pi) for zi, pi in zip(z, p)}
    step = Step("unnormalised", cross_entropy(list(p), list(z)).subs(optimum), -sum(pi * sympy.log(pi) for pi in p),
                prepare=lambda e: sympy.expand_log(e, force=True))
    assert not step.check()


def test_min_loss_closed_form_reduces_to_known_values():
    assert sympy.simplify(min_loss_closed_form("uniform").subs(EPS, 1) - sympy.log(K)) == 0
    # off_target at eps = 1 has 0 log 0 in it: take the limit, for a concrete K.
    limit = sympy.limit(min_loss_closed_form("off_target", num_classes=10), EPS, 1, "-")
    assert sympy.simplify(limit - sympy.log(9)) == 0


def test_derivation_renders_text_latex_and_markdown():
    derivation = convention_closed_form("off_target")
    text = derivation.text(results=[True] * len(derivation.steps))
    assert derivation.title in text and "[proven]" in text and "LaTeX:" not in text
    assert "LaTeX:" in derivation.text(with_latex=True) and r"\log" in derivation.text(with_latex=True)
    assert '<math display="block">' in derivation.markdown() and "$$" not in derivation.markdown()
    assert all(step.latex() for step in derivation.steps)


def _all_derivations():
    from lstheory.docgen.pages import DERIVATIONS

    return [make() for make in DERIVATIONS]


def test_printed_formulas_are_short_and_never_trivial():
    for derivation in _all_derivations():
        rules = derivation.display_rules()
        for number, step in enumerate(derivation.steps, start=1):
            formula = step.formula(rules)
            where = f"{derivation.title}, step {number}: {formula}"
            if step.relation == "==" and formula and not step.name:
                left, right = formula.split(" = ", 1) if formula.count(" = ") == 1 else (formula, "")
                assert left != right, where
            assert formula.strip() not in ("1 = 1", "0 = 0"), where


def test_every_printed_symbol_is_explained():
    # A symbol in a printed formula is explained when the statement, the summary or the notation
    # names it (its base name: "z" for z_1, "eps" for epsilon): no unexplained helper such as t or n.
    import re

    from lstheory.symbolic.derivation import plain

    for derivation in _all_derivations():
        words = " ".join([derivation.title, derivation.summary, derivation.notation_text()]
                         + [step.statement for step in derivation.steps])
        known = set(re.findall(r"[A-Za-z]+", words)) | {"e", "exp", "log", "sum", "delta", "S", "q"}
        rules = derivation.display_rules()
        for step in derivation.steps:
            for side in step.sides(rules):
                if side is None:
                    continue
                for name in re.findall(r"[A-Za-z]+", plain(side)):
                    assert name in known, f"{derivation.title}: '{name}' in {plain(side)} is not explained"


def test_display_rules_do_not_change_what_is_proven():
    # The notation is for printing only: the steps hold the full expressions and still prove.
    derivation = general_optimum(3)
    assert "q_1" in derivation.steps[1].formula(derivation.display_rules())
    assert "q_1" not in str(derivation.steps[1].rhs)
    _assert_proven(derivation)
