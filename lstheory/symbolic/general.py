r"""The optimum of cross-entropy against any full-support target, derived exactly.

For concrete ``K`` the logits ``z_1..z_K`` and the target ``p_1..p_K`` are
SymPy symbols (``p_K = 1 - p_1 - ... - p_{K-1}``, so the target is
normalised); for symbolic ``K`` the proofs go through indexed sums and
through the two-level structure of a smoothed target.

Results, in order: ``L(z) = -sum_i p_i log softmax(z)_i`` has gradient
``softmax(z) - p``; it vanishes exactly at ``z = log p + alpha``; the Hessian
is ``diag(q) - q q^T`` with ``v^T H v = sum_i q_i (v_i - m)^2`` (a variance,
so positive semi-definite, zero only along the all-ones vector): the loss is
convex, strictly so across the shift, and the minimiser is unique up to
``alpha``; the minimum value is the entropy ``H(p)`` and
``L(z) - H(p) = KL(p || softmax(z))`` (Gibbs' inequality).

Reference: Cover and Thomas, "Elements of Information Theory", 2nd ed.,
Thm. 2.6.3; the Hessian of log-sum-exp: Boyd and Vandenberghe, "Convex
Optimization", sec. 3.1.5.
"""

from __future__ import annotations

from functools import lru_cache

import sympy
from sympy.simplify.simplify import factor_sum

from lstheory.symbolic.derivation import Derivation, Notation, Step, listed

AT_LEAST_TWO_CLASSES = "the proofs write K = n + 2 with an integer n >= 0, so that SymPy sees K >= 2 (shown here as K)"
INTERIOR_EPS = ("the proofs write eps = 1/(1 + t) with t > 0, so that SymPy sees 0 < eps < 1 "
                "(shown here as eps)")


def _force_expand_log(expression: sympy.Basic) -> sympy.Basic:
    # Valid here: every logarithm's argument is a positive quantity
    # (exponentials, sums of exponentials, positive target masses).
    return sympy.expand_log(expression, force=True)


def logit_symbols(num_classes: int) -> list[sympy.Symbol]:
    """Real logits ``z_1..z_K``."""
    return list(sympy.symbols(f"z_1:{num_classes + 1}", real=True))


def normalised_target(num_classes: int, name: str = "p") -> list[sympy.Expr]:
    """Positive symbols ``p_1..p_{K-1}`` and ``p_K = 1 - sum`` (a distribution)."""
    free = list(sympy.symbols(f"{name}_1:{num_classes}", positive=True))
    return free + [1 - sum(free)]


def softmax(logits: list[sympy.Expr]) -> list[sympy.Expr]:
    total = sum(sympy.exp(z) for z in logits)
    return [sympy.exp(z) / total for z in logits]


def cross_entropy(target: list[sympy.Expr], logits: list[sympy.Expr]) -> sympy.Expr:
    """``-sum_i p_i log softmax(z)_i`` written literally."""
    return -sum(p * sympy.log(q) for p, q in zip(target, softmax(logits)))


@lru_cache(maxsize=None)
def general_optimum(num_classes: int) -> Derivation:
    """The gradient, stationary points, Hessian and minimum for a concrete ``K``."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes}")
    k = num_classes
    z = logit_symbols(k)
    p = normalised_target(k)
    alpha = sympy.Symbol("alpha", real=True)
    q = softmax(z)
    lse = sympy.log(sum(sympy.exp(zi) for zi in z))
    loss = cross_entropy(p, z)
    gradient = sympy.Matrix([sympy.diff(loss, zi) for zi in z])
    optimum = {zi: sympy.log(pi) + alpha for zi, pi in zip(z, p)}
    # The Hessian is the Jacobian of the gradient, proven above to be softmax(z) - p.
    hessian = sympy.Matrix(q).jacobian(z)
    q_vec = sympy.Matrix(q)
    ones = sympy.ones(k, 1)

    # Abstract softmax values (a distribution) for the polynomial identities.
    r = normalised_target(k, "q")
    r_vec = sympy.Matrix(r)
    v = sympy.Matrix(sympy.symbols(f"v_1:{k + 1}", real=True))
    h_abstract = sympy.diag(*r) - r_vec * r_vec.T
    mean = sum(ri * vi for ri, vi in zip(r, v))
    entropy = -sum(pi * sympy.log(pi) for pi in p)
    kl = sum(pi * sympy.log(pi / qi) for pi, qi in zip(p, q))

    steps = (
        Step(
            "Cross-entropy is log-sum-exp minus the target-weighted logits "
            "(the target sums to 1; exp(z_i) and their sum are positive, so the logs expand)",
            loss,
            lse - sum(pi * zi for pi, zi in zip(p, z)),
            prepare=_force_expand_log,
            name="L(z)",
        ),
        Step("Its gradient in the logits is softmax(z) - p", gradient, q_vec - sympy.Matrix(p), name="dL/dz"),
        Step(
            "Stationarity: the gradient vanishes at z = log p + alpha, for every real alpha",
            gradient.subs(optimum),
            sympy.zeros(k, 1),
            name="dL/dz at z = log p + alpha",
        ),
        Step(
            "Every logit vector satisfies z_i = log softmax(z)_i + log sum_j exp(z_j), so "
            "softmax(z) = p forces z = log p + alpha with alpha = log sum_j exp(z_j)",
            sympy.Matrix(z),
            sympy.Matrix([sympy.log(qi) + lse for qi in q]),
            prepare=_force_expand_log,
        ),
        Step(
            "The Hessian, the Jacobian of the gradient softmax(z) - p, is diag(q) - q q^T with q = softmax(z)",
            hessian, sympy.diag(*q) - q_vec * q_vec.T, name="H = d(softmax(z) - p)/dz"),
        Step("The all-ones vector spans a null direction: H 1 = 0", h_abstract * ones, sympy.zeros(k, 1)),
        Step(
            "The quadratic form is a variance: v^T H v = sum_i q_i (v_i - m)^2 with m = sum_j q_j v_j; "
            "so H is positive semi-definite, and v^T H v = 0 only if every v_i = m (all q_i > 0): "
            "the null space is exactly span{1} and the minimiser is unique up to alpha",
            (v.T * h_abstract * v)[0, 0],
            sum(ri * (vi - mean) ** 2 for ri, vi in zip(r, v)),
            name="v^T H v",
        ),
        Step(
            "The minimum value is the entropy of the target: L(log p + alpha) = -sum_i p_i log p_i",
            loss.subs(optimum),
            entropy,
            prepare=_force_expand_log,
            name="L(log p + alpha)",
        ),
        Step(
            "Gibbs: L(z) - H(p) = KL(p || softmax(z)) >= 0, zero only at softmax(z) = p; "
            "with convexity, the stationary points are exactly the global minimisers",
            loss - entropy,
            kl,
            prepare=_force_expand_log,
            name="L(z) - H(p)",
        ),
    )
    return Derivation(
        title=f"General optimum of cross-entropy, K = {k}",
        steps=steps,
        summary=(
            "For any target p with full support, argmin_z H(p, softmax(z)) = {log p + alpha 1}, "
            "and the minimum value is H(p)."
        ),
        notation=(Notation(mean, sympy.Symbol("m"), "m = " + listed("q_{i} v_{i}", k)),),
    )


def _factor_then_expand_log(expression: sympy.Basic) -> sympy.Basic:
    """Bring each logarithm's argument over one denominator, then expand the logs.

    Valid when every argument is positive, as for probabilities and counts here.
    """
    combined = expression.replace(
        lambda e: isinstance(e, sympy.log), lambda e: sympy.log(sympy.factor(sympy.together(e.args[0])))
    )
    return sympy.expand_log(combined, force=True)


def _expand_sums(expression: sympy.Basic) -> sympy.Basic:
    """Linearity of summation: split sums of terms and pull out factors free of the index."""
    expanded = sympy.expand(expression)
    return expanded.replace(lambda e: isinstance(e, sympy.Sum), lambda e: factor_sum(sympy.expand(e)))


def _reduce_double_sums(expression: sympy.Basic) -> sympy.Basic:
    """Evaluate ``sum_i sum_j`` terms: the sifting property of the Kronecker delta
    (``sum_j delta_ij f_j = f_i`` for ``i`` inside the range) and linearity for
    the rest; bound indices are then renamed to one name (``j`` -> ``i``)."""
    result = sympy.S.Zero
    for term in sympy.Add.make_args(sympy.expand(expression)):
        if not (isinstance(term, sympy.Sum) and len(term.limits) == 2):
            result += term
            continue
        (inner, lo_in, hi_in), (outer, lo_out, hi_out) = term.limits
        body = term.function
        if body.has(sympy.KroneckerDelta):
            sifted = body.subs(inner, outer).replace(sympy.KroneckerDelta, lambda *_: sympy.S.One)
            result += sympy.Sum(sifted, (outer, lo_out, hi_out))
        else:
            result += factor_sum(sympy.Sum(factor_sum(sympy.Sum(body, (inner, lo_in, hi_in))), (outer, lo_out, hi_out)))
    indices = {s for s in result.free_symbols | {i for e in result.atoms(sympy.Sum) for i, *_ in e.limits}}
    names = sorted((s for s in indices if s.name in ("i", "j")), key=lambda s: s.name)
    return result.xreplace({names[1]: names[0]}) if len(names) == 2 else result


@lru_cache(maxsize=None)
def general_optimum_symbolic_k() -> Derivation:
    """The same structure for a symbolic number of classes ``K``."""
    i, j = sympy.symbols("i j", integer=True, positive=True)
    k = sympy.Symbol("K", integer=True, positive=True)
    n = sympy.Symbol("n", integer=True, nonnegative=True)
    q = sympy.IndexedBase("q")
    v = sympy.IndexedBase("v")
    mu = sympy.Symbol("m", real=True)
    sum_q = sympy.Sum(q[i], (i, 1, k))
    sum_qv = sympy.Sum(q[i] * v[i], (i, 1, k))
    sum_qv2 = sympy.Sum(q[i] * v[i] ** 2, (i, 1, k))
    variance = sympy.Sum(sympy.expand(q[i] * (v[i] - mu) ** 2), (i, 1, k))
    quadratic_form = sympy.Sum(
        v[i] * (q[i] * sympy.KroneckerDelta(i, j) - q[i] * q[j]) * v[j], (j, 1, k), (i, 1, k)
    )

    def expand_with_normalised_q(expression: sympy.Basic) -> sympy.Basic:
        return _expand_sums(expression).subs(sum_q, 1).subs(mu, sum_qv)

    # Two-level logits (a + g on the label, a elsewhere) against a two-level target:
    # p_y on the label and c / (K - 1) on each other class, c = 1 - p_y.  Both p_y and
    # c are positive symbols, so every logarithm below expands legitimately; the
    # normalisation c = 1 - p_y is applied after the expansion.
    g, a = sympy.symbols("g a", real=True)
    p_true, c = sympy.symbols("p_y c", positive=True)

    def expand_then_normalise(expression: sympy.Basic) -> sympy.Basic:
        return _factor_then_expand_log(expression).subs(c, 1 - p_true)

    denominator = sympy.exp(a + g) + (k - 1) * sympy.exp(a)
    two_level_loss = -p_true * sympy.log(sympy.exp(a + g) / denominator) - c * sympy.log(
        sympy.exp(a) / denominator
    )
    reduced = -p_true * g + sympy.log(sympy.exp(g) + k - 1)
    slope = sympy.diff(reduced, g)
    optimal_gap = sympy.log((k - 1) * p_true / c)
    curvature = sympy.diff(reduced, g, 2)
    confidence = sympy.exp(g) / (sympy.exp(g) + k - 1)
    two_level_entropy = -p_true * sympy.log(p_true) - c * sympy.log(c / (k - 1))

    steps = (
        Step(
            "For every K, with sum_i q_i = 1 and m = sum_i q_i v_i, linearity of summation gives "
            "sum_i q_i (v_i - m)^2 = sum_i q_i v_i^2 - (sum_i q_i v_i)^2",
            variance,
            sum_qv2 - sum_qv**2,
            prepare=expand_with_normalised_q,
        ),
        Step(
            "and the Hessian's quadratic form sum_ij v_i (q_i delta_ij - q_i q_j) v_j is that same "
            "expression: v^T H v is a q-weighted variance of v, so H is positive semi-definite with "
            "null space span{1} for every K",
            quadratic_form,
            sum_qv2 - sum_qv**2,
            prepare=_reduce_double_sums,
        ),
        Step(
            "A smoothed target is two-level (p_y on the label, c/(K - 1) elsewhere, c = 1 - p_y); on two-level "
            "logits (a + g, a, ..., a) the loss depends on the gap g alone: L = -p_y g + log(e^g + K - 1)",
            two_level_loss,
            reduced,
            prepare=expand_then_normalise,
            name="L(a + g, a, ..., a)",
        ),
        Step("Its slope is dL/dg = -p_y + e^g / (e^g + K - 1)", slope, -p_true + confidence),
        Step(
            "The slope vanishes at g* = log((K - 1) p_y / c) = log(p_y / p_other), c = 1 - p_y the mass off the label",
            slope.subs(g, optimal_gap),
            sympy.S.Zero,
            prepare=expand_then_normalise,
        ),
        Step(
            "Strict convexity in g (write K = n + 2, n >= 0): d2L/dg2 = (K - 1) e^g / (e^g + K - 1)^2 > 0, "
            "so g* is the unique optimal gap for every K",
            curvature.subs(k, n + 2),
            relation=">0",
        ),
        Step(
            "At g* the predicted confidence equals the target's true-class mass",
            confidence.subs(g, optimal_gap),
            p_true,
            prepare=expand_then_normalise,
        ),
        Step(
            "The minimum value is the entropy of the two-level target",
            reduced.subs(g, optimal_gap),
            two_level_entropy,
            prepare=expand_then_normalise,
        ),
    )
    return Derivation(
        title="General optimum for symbolic K",
        steps=steps,
        summary=(
            "The Hessian's variance form holds for every K; for smoothed (two-level) targets the loss "
            "reduces to one strictly convex function of the gap, solved in closed form."
        ),
        notation=(Notation(n, k - 2, AT_LEAST_TWO_CLASSES),),
    )
