r"""Vocabulary-parallel cross-entropy, exactly: the shard decomposition, and what Megatron-LM's smoothing computes.

:func:`vocab_parallel_decomposition` proves that the label-smoothed
cross-entropy over all ``K`` classes equals the combination of per-shard sums
that :func:`lstheory.torch.vocab_parallel_label_smoothed_cross_entropy`
all-reduces, for every way of splitting ``K = 5`` classes over 1, 2 or 3
ranks, with class weights and symbolic target masses, and that each rank's
gradient needs only the reduced sums.  :func:`megatron_shard_smoothing` proves
what Megatron-LM's smoothing path computes instead (``K = 4`` over two ranks):
each rank's loss is the cross-entropy against a target that smooths over its
own shard only, which equals the off_target loss with one rank and differs
between ranks and from the theory with two.

Symbols: logits ``z_c`` and the shift ``m`` real, weights ``w_c`` positive,
``lse = log sum_c exp(z_c)``, ``p_true`` and ``b`` the target masses of the
true class and of each other class (``p_true = a + b``), ``epsilon > 0``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step

_NUM_CLASSES = 5
_LABEL = 1
_LAYOUTS = {1: ((0, 5),), 2: ((0, 2), (2, 5)), 3: ((0, 1), (1, 3), (3, 5))}

_Z = sympy.symbols(f"z0:{_NUM_CLASSES}", real=True)
_W = sympy.symbols(f"w0:{_NUM_CLASSES}", positive=True)
_M = sympy.Symbol("m", real=True)
_LSE = sympy.Symbol("lse", real=True)
_P_TRUE, _B, _A = sympy.symbols("p_true b a", real=True)
_EPS = sympy.Symbol("epsilon", positive=True)


def _expand_exponentials(expression: sympy.Basic) -> sympy.Basic:
    # exp(z - m) = exp(z) exp(-m): an identity of exp, valid for all real z and m.
    return sympy.expand(expression, power_exp=True)


def _split_log(expression: sympy.Basic) -> sympy.Basic:
    # log(exp(-m) X) = -m + log X: valid because X, a sum of exponentials of reals, is positive.
    return sympy.expand_log(sympy.factor_terms(_expand_exponentials(expression)), force=True)


def _dense_loss(weights, p_true, b, label, num_classes, lse):
    """``-sum_c t_c log q_c`` with ``t_c = w_c (p_true if c = y else b)`` and ``log q_c = z_c - lse``."""
    target = [weights[c] * (p_true if c == label else b) for c in range(num_classes)]
    return -sum(target[c] * (_Z[c] - lse) for c in range(num_classes)), target


def _shard_sums(layout, label):
    """Per shard: ``S_r = sum exp(z - m)``, ``D_r = sum_{c != y} w_c (z_c - m)``, ``U_r = z_y - m`` or 0."""
    sums = []
    for start, stop in layout:
        columns = range(start, stop)
        exponentials = sum(sympy.exp(_Z[c] - _M) for c in columns)
        smoothing = sum(_W[c] * (_Z[c] - _M) for c in columns if c != label)
        true_logit = _Z[label] - _M if label in columns else sympy.S.Zero
        sums.append((exponentials, smoothing, true_logit))
    return sums


def _decomposed_loss(layout, log_total):
    """``p_true w_y (log S - U) + b (W_y log S - D)`` from the shard sums, ``log S`` given."""
    sums = _shard_sums(layout, _LABEL)
    smoothing, true_logit = sum(s[1] for s in sums), sum(s[2] for s in sums)
    others = sum(_W[c] for c in range(_NUM_CLASSES) if c != _LABEL)
    return _P_TRUE * _W[_LABEL] * (log_total - true_logit) + _B * (others * log_total - smoothing)


@lru_cache(maxsize=None)
def vocab_parallel_decomposition() -> Derivation:
    """The exact decomposition of vocabulary-parallel label-smoothed cross-entropy (K = 5 over 1, 2, 3 ranks)."""
    lse = sympy.log(sum(sympy.exp(z) for z in _Z))
    dense, target = _dense_loss(_W, _P_TRUE, _B, _LABEL, _NUM_CLASSES, _LSE)
    layout3 = _LAYOUTS[3]
    total3 = sum(s[0] for s in _shard_sums(layout3, _LABEL))
    steps = [Step(
        "All-reduce MAX, then SUM: for any shift m (the global row maximum), m + log(sum over ranks of "
        "S_r) is the log-sum-exp over all classes, S_r = sum of exp(z_c - m) over rank r's columns (shards "
        "(0), (1, 2), (3, 4)); the logarithm splits because S_r, a sum of exponentials, is positive",
        _M + sympy.log(total3), lse, prepare=_split_log)]
    for world_size, layout in _LAYOUTS.items():
        shards = ", ".join(str(tuple(range(a, b))) for a, b in layout)
        steps.append(Step(
            f"World size {world_size}, shards {shards}: with log S = lse - m (step 1), the all-reduced sums "
            "S, D = sum of w_c (z_c - m) over c != y and U = z_y - m (0 on ranks without the label y = 1) give "
            "p_true w_y (log S - U) + b (W_y log S - D) = the dense -sum_c t_c log q_c, t_c = w_c (p_true or b)",
            _decomposed_loss(layout, _LSE - _M), dense))
    steps.append(Step(
        "Without class weights (w = 1, W_y = K - 1) and with p_true = a + b this is the form "
        "a (lse - z_y) + K b (lse - mean of z)",
        _dense_loss((1,) * _NUM_CLASSES, _A + _B, _B, _LABEL, _NUM_CLASSES, _LSE)[0],
        _A * (_LSE - _Z[_LABEL]) + _NUM_CLASSES * _B * (_LSE - sum(_Z) / _NUM_CLASSES)))
    total_mass = sum(target)
    full_dense = dense.subs(_LSE, lse)
    for c in (0, _LABEL, 4):
        steps.append(Step(
            f"Backward needs no communication: the derivative for class {c} is T exp(z_c - m) / S - t_c, "
            "T = sum of t_c: each rank computes its own columns from the reduced m and S",
            sympy.diff(full_dense, _Z[c]), total_mass * sympy.exp(_Z[c] - _M) / total3 - target[c],
            prepare=_expand_exponentials))
    return Derivation(
        "Vocabulary-parallel label-smoothed cross-entropy: the exact decomposition",
        tuple(steps),
        summary="One all-reduce MAX and one all-reduce SUM of three numbers per row give the loss over the global "
                "vocabulary, the same for every split of the classes; the gradient is local.")


def _megatron_rank_loss(layout, rank, label, lse):
    """The source's rank-r loss: (1 - s_r)(lse - z_y) - s_r mean over the shard of log q, s_r = eps K_r/(K_r - 1)."""
    start, stop = layout[rank]
    size = stop - start
    smoothing = _EPS * size / (size - 1)
    mean_log_q = sum(_Z[c] - lse for c in range(start, stop)) / size
    return (1 - smoothing) * (lse - _Z[label]) - smoothing * mean_log_q


def _shard_local_target(layout, rank, label, num_classes):
    """Rank r's implied target: (1 - eps) or 1 - eps K_r/(K_r - 1) on y, eps/(K_r - 1) on its other classes, 0 elsewhere."""
    start, stop = layout[rank]
    size = stop - start
    target = [sympy.S.Zero] * num_classes
    for c in range(start, stop):
        target[c] = _EPS / (size - 1)
    if start <= label < stop:
        target[label] = 1 - _EPS
    else:
        target[label] = 1 - _EPS * size / (size - 1)
    return target


@lru_cache(maxsize=None)
def megatron_shard_smoothing() -> Derivation:
    """What Megatron-LM's vocab-parallel smoothing computes (K = 4 over two ranks of 2 classes, label y = 0)."""
    num_classes, label, layout = 4, 0, ((0, 2), (2, 4))

    def cross_entropy(target):
        return sum(target[c] * (_LSE - _Z[c]) for c in range(num_classes))

    targets = [_shard_local_target(layout, r, label, num_classes) for r in range(2)]
    theory = [1 - _EPS if c == label else _EPS / (num_classes - 1) for c in range(num_classes)]
    q = [sympy.exp(_Z[c]) / sum(sympy.exp(z) for z in _Z[:num_classes]) for c in range(num_classes)]
    gradient_sum = sum(q[c] - targets[0 if c < 2 else 1][c] for c in range(num_classes))
    steps = (
        Step("Rank 0 (holds y = 0, K_0 = 2) reports the cross-entropy against a target with 1 - eps on y and "
             "eps/(K_0 - 1) on its own other class, nothing on rank 1's classes",
             _megatron_rank_loss(layout, 0, label, _LSE), cross_entropy(targets[0])),
        Step("Rank 1 (without y, K_1 = 2) reports the cross-entropy against 1 - eps K_1/(K_1 - 1) on y and "
             "eps/(K_1 - 1) on each of its own classes",
             _megatron_rank_loss(layout, 1, label, _LSE), cross_entropy(targets[1])),
        Step("With one rank (K_r = K) it is the off_target loss (1 - eps)(lse - z_y) + eps/(K-1) sum_{c != y} "
             "(lse - z_c): the error does not show at world size 1",
             _megatron_rank_loss(((0, 4),), 0, label, _LSE), cross_entropy(theory)),
        Step("At world size 2 rank 0 puts no smoothing mass on class 2 (rank 1's), where the theory puts "
             "eps/(K-1): theory minus rank 0's target there is positive",
             theory[2] - targets[0][2], relation=">0"),
        Step("and the two ranks train towards different targets: rank 1's mass on class 2 minus rank 0's is positive",
             targets[1][2] - targets[0][2], relation=">0"),
        Step("The gathered gradient of a row (each rank's softmax minus its own target on its columns) sums to "
             "-eps K_1/(K_1 - 1) = -2 eps, not 0: it is not the gradient of one cross-entropy",
             gradient_sum, -2 * _EPS),
    )
    return Derivation(
        "Megatron-LM's vocabulary-parallel smoothing: a different target on every rank",
        steps,
        summary="Smoothing with the shard's vocabulary size K_r and the mean of log q over the shard makes each "
                "rank's loss the cross-entropy against its own shard-local target.")
