r"""Published results around label smoothing, derived exactly (papers cited below by arXiv id and section).

Each function returns a :class:`Derivation` whose steps are proven exactly.
Concrete ``K`` (default 3) is used where a statement involves a full logit
vector; symbolic ``K`` where the structure allows (the smearing matrix's
``J^2 = K J`` algebra, Müller's equivalent smoothing, binary smoothing).

References
----------
- Szegedy et al. 2016, arXiv 1512.00567, sec. 7.
- Pereyra et al. 2017, arXiv 1701.06548, sec. 3 (confidence penalty, sec. 3.2's sign).
- Müller, Kornblith, Hinton 2019, arXiv 1906.02629 (equivalent smoothing of a teacher).
- Meister, Salesky, Cotterell 2020, arXiv 2005.00820 (generalised entropy regularisation).
- Lukasik et al. 2020, arXiv 2003.02819 (smoothing as smearing; loss correction).
- Yuan et al. 2020, arXiv 1909.11723 (knowledge distillation as label smoothing).
- Yamasaki and Tanaka 2023, arXiv 2305.08501; Keras ``BinaryCrossentropy`` (binary smoothing).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Notation, Step
from lstheory.symbolic.general import cross_entropy, logit_symbols, normalised_target, softmax
from lstheory.symbolic.smoothing import EPS, K, gap_closed_form, target

_N = sympy.Symbol("n", integer=True, nonnegative=True)
_T = sympy.Symbol("t", positive=True)
_INTERIOR = {EPS: 1 / (1 + _T)}


def _force_logs(expression: sympy.Basic) -> sympy.Basic:
    # Valid: every logarithm below has a positive argument (probabilities, exponentials, K).
    return sympy.expand_log(expression, force=True)


def _entropy(q: list[sympy.Expr]) -> sympy.Expr:
    return -sum(qi * sympy.log(qi) for qi in q)


def _kl(p: list[sympy.Expr], q: list[sympy.Expr]) -> sympy.Expr:
    return sum(pi * sympy.log(pi / qi) for pi, qi in zip(p, q))


@lru_cache(maxsize=None)
def szegedy_decomposition(num_classes: int = 3) -> Derivation:
    """``H(p_LS, q) = (1-eps) H(e_y, q) + eps H(u, q)`` and ``H(u, q) = KL(u || q) + log K``."""
    k = num_classes
    z = logit_symbols(k)
    q = softmax(z)
    one_hot = [1] + [0] * (k - 1)
    uniform = [sympy.Rational(1, k)] * k
    p_true, p_other = target("uniform", EPS, k)
    smoothed = [p_true] + [p_other] * (k - 1)
    steps = (
        Step(f"K = {k}: the uniform-convention target is (1-eps) e_y + eps u", sympy.Matrix(smoothed),
             sympy.Matrix([(1 - EPS) * o + EPS * u for o, u in zip(one_hot, uniform)])),
        Step("so, cross-entropy being linear in the target, H(p_LS, q) = (1-eps) H(e_y, q) + eps H(u, q)",
             cross_entropy(smoothed, z), (1 - EPS) * cross_entropy(one_hot, z) + EPS * cross_entropy(uniform, z)),
        Step("and H(u, q) = KL(u || q) + log K", cross_entropy(uniform, z), _kl(uniform, q) + sympy.log(k),
             prepare=_force_logs),
    )
    return Derivation(f"Szegedy et al.: the smoothed loss decomposes (K = {k})", steps,
                      "H(p_LS, q) = (1-eps) H(e_y, q) + eps (KL(u || q) + log K).")


@lru_cache(maxsize=None)
def pereyra_confidence_penalty(num_classes: int = 3) -> Derivation:
    """The confidence penalty's gradient and stationarity; sec. 3.2's sign corrected."""
    k = num_classes
    z = logit_symbols(k)
    q = softmax(z)
    beta = sympy.Symbol("beta", positive=True)
    p = normalised_target(k)
    uniform = [sympy.Rational(1, k)] * k
    entropy = _entropy(q)
    one_hot = [1] + [0] * (k - 1)
    p_true, p_other = target("uniform", EPS, k)
    smoothed = [p_true] + [p_other] * (k - 1)
    penalised = cross_entropy(p, z) - beta * entropy
    at_one = {zi: (1 if i == 0 else 0) for i, zi in enumerate(z)}
    steps = (
        Step("The entropy's gradient: dH(q)/dz_i = q_i (-log q_i - H(q))",
             sympy.Matrix([sympy.diff(entropy, zi) for zi in z]),
             sympy.Matrix([qi * (-sympy.log(qi) - entropy) for qi in q]), prepare=_force_logs, name="dH(q)/dz"),
        Step("Stationarity of CE - beta H(q): q_i - p_i + beta q_i (log q_i + H(q)) = 0 for every i "
             "(no closed-form solution in general; solved numerically)",
             sympy.Matrix([sympy.diff(penalised, zi) for zi in z]),
             sympy.Matrix([qi - pi + beta * qi * (sympy.log(qi) + entropy) for qi, pi in zip(q, p)]),
             prepare=_force_logs, name="d(CE - beta H(q))/dz"),
        Step("KL(q || u) = log K - H(q): the confidence penalty is a reversed-KL regulariser",
             _kl(q, uniform), sympy.log(k) - entropy, prepare=_force_logs),
        Step("Label smoothing adds +KL(u || q): H(p_LS, q) = (1-eps) [H(e_y, q) + eps/(1-eps) KL(u || q)] + eps log K",
             cross_entropy(smoothed, z),
             (1 - EPS) * (cross_entropy(one_hot, z) + EPS / (1 - EPS) * _kl(uniform, q)) + EPS * sympy.log(k),
             prepare=_force_logs, name="H(p_LS, q)"),
        Step("Sec. 3.2's printed 'CE - KL(u || q)' is not that objective up to constants: their difference "
             "still depends on the logits (eps = 1/10, logits (1, 0, ...) vs all zero)",
             ((cross_entropy(one_hot, z) - _kl(uniform, q)) - (cross_entropy(one_hot, z) + EPS / (1 - EPS) * _kl(uniform, q)))
             .subs(EPS, sympy.Rational(1, 10)).subs(at_one)
             - ((cross_entropy(one_hot, z) - _kl(uniform, q)) - (cross_entropy(one_hot, z) + EPS / (1 - EPS) * _kl(uniform, q)))
             .subs(EPS, sympy.Rational(1, 10)).subs({zi: 0 for zi in z}),
             relation="!="),
    )
    return Derivation(f"Pereyra et al.: the confidence penalty and label smoothing (K = {k})", steps,
                      "CE - beta H(q) penalises confidence through KL(q || u); smoothing adds +KL(u || q).")


@lru_cache(maxsize=None)
def meister_skew_jensen(num_classes: int = 3) -> Derivation:
    """The skew-Jensen family's limits: a -> 1 gives KL(u || p), a -> 0 gives KL(p || u)."""
    k = num_classes
    a = sympy.Symbol("a", positive=True)
    p = normalised_target(k)
    uniform = [sympy.Rational(1, k)] * k

    def f(x):
        return sum(xi * sympy.log(xi) for xi in x)

    mixture = [a * pi + (1 - a) * ui for pi, ui in zip(p, uniform)]
    family = (a * f(p) + (1 - a) * f(uniform) - f(mixture)) / (a * (1 - a))
    x = sympy.Symbol("x", positive=True)
    sparse = _kl(uniform, [x] + p[1:-1] + [1 - x - sum(p[1:-1])])
    steps = (
        Step("a -> 1: J_a tends to KL(u || p), label smoothing's regulariser",
             sympy.limit(family, a, 1), _kl(uniform, p), prepare=_force_logs, name="lim_(a -> 1) J_a"),
        Step("a -> 0: J_a tends to KL(p || u), the confidence penalty's", sympy.limit(family, a, 0), _kl(p, uniform),
             prepare=_force_logs, name="lim_(a -> 0) J_a"),
        Step("Label smoothing forbids sparse outputs: KL(u || p) -> +oo as any p_i -> 0 "
             "(shown as exp(-KL(u || p)) -> 0)",
             sympy.limit(sympy.exp(-sympy.expand_log(sparse, force=True)), x, 0, "+"), sympy.S.Zero),
    )
    return Derivation(f"Meister et al.: the skew-Jensen family and its limits (K = {k})", steps,
                      "J_a = [a F(p) + (1-a) F(u) - F(a p + (1-a) u)] / (a (1-a)), F(x) = sum x log x.")


@lru_cache(maxsize=None)
def lukasik_smearing() -> Derivation:
    """``M = (1-alpha) I + (alpha/K) J`` and its inverse, for symbolic K (``J^2 = K J``)."""
    alpha = sympy.Symbol("alpha", positive=True)
    # (a I + b J)(c I + d J) = ac I + (ad + bc + bdK) J, since J^2 = K J.
    a, b = 1 - alpha, alpha / K
    c, d = 1 / (1 - alpha), -alpha / ((1 - alpha) * K)
    k3 = 3
    m3 = (1 - alpha) * sympy.eye(k3) + alpha / k3 * sympy.ones(k3, k3)
    m3_inverse = sympy.eye(k3) / (1 - alpha) - alpha / ((1 - alpha) * k3) * sympy.ones(k3, k3)
    interior = {alpha: 1 / (1 + _T)}
    steps = (
        Step("With J the all-ones matrix, J^2 = K J (K = 3 shown)", sympy.ones(k3, k3) ** 2, k3 * sympy.ones(k3, k3)),
        Step("so M M^-1 has identity coefficient ac = 1", a * c, sympy.S.One),
        Step("and J coefficient ad + bc + bdK = 0, for every K: M^-1 = I/(1-alpha) - alpha/((1-alpha) K) J",
             a * d + b * c + b * d * K, sympy.S.Zero),
        Step("Check on the full matrices, K = 3", m3 * m3_inverse, sympy.eye(k3), name="M M^-1"),
        Step("The smearing matrix adds the average-loss term with a positive weight (0 < alpha < 1) ...",
             b.subs(interior).subs(K, _N + 1), relation=">0"),
        Step("... and the loss correction subtracts it: opposite signs", d.subs(interior).subs(K, _N + 1), relation="<0"),
    )
    return Derivation("Lukasik et al.: smoothing as a smearing matrix and its inverse", steps,
                      "M = (1-alpha) I + (alpha/K) J; M^-1 = I/(1-alpha) - alpha/((1-alpha) K) J.",
                      notation=(Notation(_T, (1 - alpha) / alpha, "the proofs write alpha = 1/(1 + t) with t > 0, so "
                                         "that SymPy sees 0 < alpha < 1 (shown here as alpha)"),
                                Notation(_N, K - 1, "the proofs write K = n + 1 with an integer n >= 0, so that "
                                         "SymPy sees K >= 1 (shown here as K)")))


@lru_cache(maxsize=None)
def yuan_distillation(num_classes: int = 3) -> Derivation:
    """At temperature 1, KD is cross-entropy against ``(1-alpha) e_y + alpha p_teacher``."""
    k = num_classes
    z = logit_symbols(k)
    alpha = sympy.Symbol("alpha", positive=True)
    teacher = normalised_target(k, "t")
    one_hot = [1] + [0] * (k - 1)
    mixed = [(1 - alpha) * o + alpha * t for o, t in zip(one_hot, teacher)]
    uniform = [sympy.Rational(1, k)] * k
    p_true, p_other = target("uniform", alpha, k)
    steps = (
        Step("(1-alpha) H(e_y, q) + alpha H(p_teacher, q) = H((1-alpha) e_y + alpha p_teacher, q)",
             (1 - alpha) * cross_entropy(one_hot, z) + alpha * cross_entropy(teacher, z), cross_entropy(mixed, z)),
        Step("With a uniform teacher the mixed target is the uniform-convention smoothed target with eps = alpha",
             sympy.Matrix([(1 - alpha) * o + alpha * u for o, u in zip(one_hot, uniform)]),
             sympy.Matrix([p_true] + [p_other] * (k - 1))),
    )
    return Derivation(f"Yuan et al.: knowledge distillation as label smoothing (K = {k})", steps,
                      "Label smoothing is knowledge distillation from a uniform teacher.")


@lru_cache(maxsize=None)
def muller_equivalent_smoothing() -> Derivation:
    """A teacher at the (uniform-convention) smoothing optimum has equivalent smoothing gamma = alpha."""
    alpha = sympy.Symbol("alpha", positive=True)
    gap = gap_closed_form("uniform", alpha)
    # The teacher's softmax at its optimal logits (gap on the label, 0 elsewhere): the label's probability.
    confidence = sympy.exp(gap) / (sympy.exp(gap) + K - 1)
    off_label_mass = 1 - confidence
    steps = (
        Step("At the optimal logits of an LS teacher (uniform convention, gap log(1 + K(1-alpha)/alpha)) its "
             "softmax puts 1 - (K-1) alpha/K on the label, so its off-label mass is (K-1) alpha/K",
             off_label_mass, (K - 1) * alpha / K),
        Step("and the equivalent smoothing gamma = (off-label mass) K/(K-1) equals alpha", off_label_mass * K / (K - 1),
             alpha),
    )
    return Derivation("Müller et al.: the equivalent smoothing of a teacher at the optimum", steps,
                      "gamma = E[sum_k (1 - y_k) p_k^t K/(K-1)] = alpha for an LS teacher at its optimum (T = 1).")


@lru_cache(maxsize=None)
def temperature_scaling(num_classes: int = 3) -> Derivation:
    """The optimum of ``H(p, softmax(z / T))`` is ``T (log p + alpha)``; confidence at the optimum is p."""
    k = num_classes
    z = logit_symbols(k)
    temperature = sympy.Symbol("T", positive=True)
    alpha = sympy.Symbol("alpha", real=True)
    p = normalised_target(k)
    loss = cross_entropy(p, [zi / temperature for zi in z])
    optimum = {zi: temperature * (sympy.log(pi) + alpha) for zi, pi in zip(z, p)}
    steps = (
        Step("The gradient of H(p, softmax(z/T)) vanishes at z = T (log p + alpha): the optimum scales with T",
             sympy.Matrix([sympy.diff(loss, zi) for zi in z]).subs(optimum), sympy.zeros(k, 1),
             name="dH(p, softmax(z/T))/dz at z = T (log p + alpha)"),
        Step("and the tempered prediction there is the target itself (calibration at the optimum)",
             sympy.Matrix(softmax([zi / temperature for zi in z])).subs(optimum), sympy.Matrix(p),
             name="softmax(z/T) at z = T (log p + alpha)"),
    )
    return Derivation(f"Temperature: the optimum under temperature T is T times the optimum (K = {k})", steps)


@lru_cache(maxsize=None)
def binary_smoothing() -> Derivation:
    """Sigmoid cross-entropy against ``y(1-eps) + eps/2``: optimum, K = 2 equivalence, population minimiser."""
    z = sympy.Symbol("z", real=True)
    eta = sympy.Symbol("eta", positive=True)
    sigma = 1 / (1 + sympy.exp(-z))
    t = sympy.Symbol("t_y", positive=True)
    loss_for_target = -t * sympy.log(sigma) - (1 - t) * sympy.log(1 - sigma)  # sigmoid cross-entropy, target t
    positive_target = 1 - EPS / 2  # y = 1
    loss = loss_for_target.subs(t, positive_target)
    expected_loss = eta * loss + (1 - eta) * loss_for_target.subs(t, EPS / 2)
    optimum = sympy.log((2 - EPS) / EPS)
    population_target = (1 - EPS) * eta + EPS / 2  # E_y[y (1-eps) + eps/2], y ~ Bernoulli(eta)
    steps = (
        Step("For y = 1 the smoothed target is 1 - eps/2; d/dz of the sigmoid cross-entropy is sigma(z) - (1 - eps/2)",
             sympy.diff(loss, z), sigma - positive_target, name="dL/dz"),
        Step("It vanishes at z* = log((2-eps)/eps)", (sigma - positive_target).subs(z, optimum), sympy.S.Zero),
        Step("The loss is strictly convex: d2/dz2 = sigma (1 - sigma) > 0", sympy.diff(loss, z, 2), relation=">0",
             name="d2L/dz2"),
        Step("z* equals the K = 2 uniform-convention softmax gap log(1 + K(1-eps)/eps)",
             sympy.exp(optimum), sympy.exp(gap_closed_form("uniform", EPS, 2))),
        Step("Population: with y ~ Bernoulli(eta) the expected loss eta L(z; 1 - eps/2) + (1 - eta) L(z; eps/2) "
             "has slope sigma(z) - ((1-eps) eta + eps/2)",
             sympy.diff(expected_loss, z), sigma - population_target, name="d E[L]/dz"),
        Step("which vanishes where sigma(z) = (1-eps) eta + eps/2: the population minimiser, squeezed toward 1/2",
             sympy.diff(expected_loss, z).subs(z, sympy.log(population_target / (1 - population_target))),
             sympy.S.Zero, name="d E[L]/dz at sigma(z) = (1-eps) eta + eps/2"),
        Step("and its inverse eta = (p - eps/2)/(1-eps) recovers eta", (population_target - EPS / 2) / (1 - EPS), eta),
    )
    return Derivation("Binary (sigmoid) smoothing", steps,
                      "target y(1-eps) + eps/2; optimal logit +-log((2-eps)/eps), the K = 2 uniform softmax gap.")


@lru_cache(maxsize=None)
def prior_smoothing(num_classes: int = 3) -> Derivation:
    """Smoothing toward a prior ``pi`` and PyTorch's class-weighted smoothing as a case of it."""
    k = num_classes
    prior = normalised_target(k, "pi")
    z = logit_symbols(k)
    smoothed = [(1 - EPS) * (1 if i == 0 else 0) + EPS * pi for i, pi in enumerate(prior)]
    optimum = {zi: sympy.log(ti) for zi, ti in zip(z, smoothed)}
    w = list(sympy.symbols(f"w_1:{k + 1}", positive=True))
    p_true, p_other = target("uniform", EPS, k)
    implied = [w[0] * p_true] + [wi * p_other for wi in w[1:]]  # PyTorch weight=w, label 0
    total = sum(w)
    eps_prime = (EPS * total / k) / (w[0] * (1 - EPS) + EPS * total / k)
    as_prior = [(1 - eps_prime) * (1 if i == 0 else 0) + eps_prime * wi / total for i, wi in enumerate(w)]
    scale = sum(implied)
    steps = (
        Step("Smoothing toward a prior pi, target (1-eps) e_y + eps pi, is a distribution", sum(smoothed), sympy.S.One),
        Step("and its optimum is log of that target (the general optimum's stationarity)",
             sympy.Matrix([sympy.diff(cross_entropy(smoothed, z), zi) for zi in z]).subs(optimum), sympy.zeros(k, 1),
             name="dL/dz at z = log((1-eps) e_y + eps pi)"),
        Step("PyTorch's class-weighted smoothing implies the target proportional to (w_y (1-eps+eps/K), w_i eps/K): "
             "normalised, it is prior smoothing with pi = w / sum(w) and eps' = (eps W/K) / (w_y (1-eps) + eps W/K)",
             sympy.Matrix([t / scale for t in implied]), sympy.Matrix(as_prior),
             name="(w_y (1-eps+eps/K), w_i eps/K), normalised"),
        Step("so its optimal gap is the uniform gap shifted by log(w_y / w_i)",
             implied[0] / implied[1], sympy.exp(gap_closed_form("uniform", EPS, k)) * w[0] / w[1]),
    )
    return Derivation(f"Smoothing toward a prior, and PyTorch's class weights (K = {k})", steps)


__all__ = [
    "binary_smoothing",
    "lukasik_smearing",
    "meister_skew_jensen",
    "muller_equivalent_smoothing",
    "pereyra_confidence_penalty",
    "prior_smoothing",
    "szegedy_decomposition",
    "temperature_scaling",
    "yuan_distillation",
]
