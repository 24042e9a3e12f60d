r"""Assert that a tensor-parallel (vocabulary-parallel) loss is label-smoothed cross-entropy at every world size.

:func:`assert_vocab_parallel_loss_matches_theory` runs a user's
``loss_fn(local_logits, target, group, vocab_start)`` on local ``gloo``
process groups of several world sizes (:mod:`lstheory.testing.process_groups`:
one set of processes for all of them, always cleaned up), gathers each rank's
value and gradient, and requires, at every world size:

(a) the same loss on every rank;
(b) the dense theory's loss, :func:`lstheory.torch.label_smoothed_cross_entropy`
    of the gathered logits (so the same loss at every world size);
(c) where autograd reaches, the same implied target: from the gathered
    gradient ``g`` of a mean over ``N`` rows, ``t = softmax(z) - N g`` must be the
    smoothed target of :func:`lstheory.closed_form.smoothed_target`.

A failure raises ``AssertionError`` with every finding and the likely cause in
words; the common error of the field (smoothing with the shard's vocabulary
size, as Megatron-LM's ``vocab_parallel_cross_entropy`` does) is recognised by
:func:`shard_size_smoothing_losses`.
"""

from __future__ import annotations

import numbers
import pickle
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.special

from lstheory._validation import as_eps, as_num_classes, check_convention
from lstheory.closed_form import smoothed_target

__all__ = [
    "LossProbe",
    "VocabParallelReport",
    "assert_vocab_parallel_loss_matches_theory",
    "frequency_ordered_logits",
    "gathered",
    "run_vocab_parallel_losses",
    "shard_size_smoothing_losses",
]

LOGIT_GAP = 120.0
"""The gap of the 'large logit gaps' probe: float32 ``softmax`` underflows to 0 past about 104."""

_DTYPES = ("float64", "float32", "bfloat16", "float16")
_PRECISION = {"float64": 2.0**-52, "float32": 2.0**-23, "bfloat16": 2.0**-7, "float16": 2.0**-10}
_OTHER = {"off_target": "uniform", "uniform": "off_target"}
_SHARD_CAUSE = "the loss changes with the world size: smoothing uses the shard's vocabulary size"


def shard_size_smoothing_losses(
    logits: np.ndarray, target: np.ndarray, eps: float, shard_bounds: Sequence[tuple[int, int]], *,
    convention: str = "off_target",
) -> np.ndarray:
    r"""Each rank's mean loss when it smooths with its **shard's** vocabulary size (the field's common error).

    Rank ``r`` with classes ``[s_r, e_r)``, ``K_r = e_r - s_r``, reports::

        loss_r = mean_n [ a(K_r) (-log q_{n,y_n}) + b(K_r) sum_{c in [s_r, e_r)} (-log q_{n,c}) ]

    with ``q`` the softmax over all ``K`` classes and ``(a, b)`` the smoothing coefficients of
    ``convention`` for ``K_r`` classes.  In the off_target convention this is Megatron-LM's
    ``vocab_parallel_cross_entropy(label_smoothing=eps)`` (``megatron/core/tensor_parallel/
    cross_entropy.py``: ``(1 - s) nll - s mean_shard(log q)``, ``s = eps K_r/(K_r - 1)``): its
    implied target puts the smoothing mass ``eps/(K_r-1)`` only on the classes of the rank's
    own shard, so the loss differs from rank to rank and with the world size; with one shard
    it is the exact off_target loss.

    Parameters
    ----------
    logits : array ``(N, K)``, float64
    target : array ``(N,)`` of class indices in ``[0, K)``
    eps : float in ``[0, 1]``
    shard_bounds : sequence of ``(start, stop)``
        The ranks' shards, each with ``K_r >= 2``.
    convention : {"off_target", "uniform"}

    Returns
    -------
    ndarray ``(W,)``: the loss each rank reports.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0, -1.0, 0.5]]); y = np.array([0])
    >>> shard_size_smoothing_losses(z, y, 0.1, [(0, 4)]).round(4)       # one shard: the exact loss
    array([0.559])
    >>> shard_size_smoothing_losses(z, y, 0.1, [(0, 2), (2, 4)]).round(4)  # two ranks disagree
    array([0.5423, 0.7923])
    """
    logits, target = np.asarray(logits, dtype=np.float64), np.asarray(target)
    rows = np.arange(len(target))
    surprisal = -scipy.special.log_softmax(logits, axis=1)
    losses = []
    for start, stop in shard_bounds:
        p_true, p_other = (float(v) for v in smoothed_target(stop - start, eps, convention=convention))
        per_row = (p_true - p_other) * surprisal[rows, target] + p_other * surprisal[:, start:stop].sum(axis=1)
        losses.append(per_row.mean())
    return np.array(losses)


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class LossProbe:
    """One probe of a vocabulary-parallel loss: full logits ``(N, K)`` (float64) and labels ``(N,)``.

    Each rank receives its columns of ``logits`` (converted to the run's dtype) and all of
    ``target`` (int64); rows whose label is ``ignore_index`` are padding.
    """

    name: str
    logits: np.ndarray
    target: np.ndarray
    ignore_index: int | None = None

    @property
    def kept(self) -> np.ndarray:
        return np.ones(len(self.target), bool) if self.ignore_index is None else self.target != self.ignore_index


def frequency_ordered_logits(num_rows: int, num_classes: int, seed: int | np.random.Generator = 0):
    """Logits ``(N, K)`` falling like a frequency-ordered vocabulary's, and labels ``(N,)`` drawn like its tokens.

    ``z_c = -log(1 + c) + noise`` (standard deviation 0.5) and labels log-uniform over the
    token ids, as a language model sees them (most tokens frequent, a long tail).

    Examples
    --------
    >>> z, y = frequency_ordered_logits(2, 5, seed=0)
    >>> z.shape, y.dtype.name
    ((2, 5), 'int64')
    """
    rng = np.random.default_rng(seed)
    logits = -np.log1p(np.arange(num_classes)) + rng.normal(0.0, 0.5, (num_rows, num_classes))
    target = np.minimum(num_classes - 1, np.floor(num_classes ** rng.uniform(0, 1, num_rows)) - 1).astype(np.int64)
    return logits, target


def _representable(logits: np.ndarray, dtype: str) -> np.ndarray:
    import torch

    coarsest = "float32" if dtype == "float64" else dtype  # a float64 loss may still compute in float32
    return torch.from_numpy(logits).to(getattr(torch, coarsest)).double().numpy()


def _probes(num_classes: int, num_rows: int, seed: int, ignore_index: int | None, dtype: str) -> list[LossProbe]:
    rng = np.random.default_rng(seed)
    spread = rng.permutation(np.linspace(0, num_classes - 1, num_rows).round().astype(np.int64))
    falling, zipf_like = frequency_ordered_logits(num_rows, num_classes, rng)
    gaps = rng.normal(0, 1, (num_rows, num_classes))
    gaps[np.arange(num_rows), np.where(np.arange(num_rows) % 2 == 0, spread, rng.permutation(spread))] += LOGIT_GAP
    probes = [
        LossProbe("random logits", rng.normal(0, 2, (num_rows, num_classes)), spread),
        LossProbe("frequency-ordered vocabulary", falling, zipf_like),
        LossProbe(f"logit gaps of {LOGIT_GAP:g}", gaps, spread),
    ]
    if ignore_index is not None:
        padded = rng.permutation(spread)
        padded[rng.permutation(num_rows)[: num_rows // 4]] = ignore_index
        probes.append(LossProbe("padded rows (ignore_index)", rng.normal(0, 2, (num_rows, num_classes)), padded, ignore_index))
    return [LossProbe(p.name, _representable(p.logits, dtype), p.target, p.ignore_index) for p in probes]


# --------------------------------------------------------------------------- in each rank


def _call_loss(loss_fn, logits, target, group, vocab_start):
    """``(value, local gradient or None, output dtype name)`` of one call; a contract breach raises."""
    import torch

    out = loss_fn(logits, target, group, vocab_start)
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar (the loss reduced over the rows); got shape {tuple(out.shape)}")
        dtype = str(out.dtype).replace("torch.", "")
        value = float(out.detach().double().reshape(()))
        grad = None
        if out.requires_grad:
            (grad,) = torch.autograd.grad(out.reshape(()), logits, allow_unused=True)
            grad = np.zeros(tuple(logits.shape)) if grad is None else grad.detach().double().numpy().copy()
        return value, grad, dtype
    if isinstance(out, numbers.Real):
        return float(out), None, None
    raise TypeError(f"loss_fn must return a scalar tensor or number; got {type(out).__name__}")


def _evaluate_on_every_layout(context, loss_fns, probes, layouts, dtype):
    """Rank worker: ``{loss name: {world size: [(value, local grad, dtype) per probe]}}`` where this rank takes part."""
    import torch
    import torch.distributed as dist

    groups = {w: dist.new_group(list(range(w))) for w in layouts}  # every rank creates every group, in order
    results = {name: {} for name in loss_fns}
    for w, bounds in layouts.items():
        if context.rank >= w:
            continue
        start, stop = bounds[context.rank]
        for name, loss_fn in loss_fns.items():
            results[name][w] = []
            for probe in probes:
                context.report_progress(f"loss_fn at world size {w}, probe '{probe.name}' (vocab_start={start})")
                local = torch.from_numpy(np.ascontiguousarray(probe.logits[:, start:stop])).to(getattr(torch, dtype))
                results[name][w].append(_call_loss(loss_fn, local.requires_grad_(True), torch.from_numpy(probe.target),
                                                   groups[w], start))
    return results


def run_vocab_parallel_losses(
    loss_fns: Mapping[str, Callable[..., Any]],
    probes: Sequence[LossProbe],
    layouts: Mapping[int, Sequence[tuple[int, int]]],
    *,
    dtype: str = "float64",
    timeout: float = 120.0,
) -> dict[str, dict[int, list[list[tuple[float, np.ndarray | None, str | None]]]]]:
    """Call each ``loss_fn(local_logits, target, group, vocab_start)`` on every rank of every layout.

    All layouts run in one set of ``max(layouts)`` processes (:func:`run_in_process_group`):
    for world size ``W`` the ranks ``0..W-1`` form a group and rank ``r`` holds the columns
    ``layouts[W][r]`` (contiguous, in order, tiling ``[0, K)``).

    Returns
    -------
    ``runs[name][W][probe index][rank] = (value, local gradient or None, result dtype)``.

    Raises
    ------
    ProcessGroupError
        A loss raised or hung on some rank (named, with the call: world size, probe).
    """
    from lstheory.testing.process_groups import run_in_process_group

    layouts = {int(w): tuple(tuple(b) for b in bounds) for w, bounds in layouts.items()}
    per_rank = run_in_process_group(_evaluate_on_every_layout, max(layouts), timeout=timeout,
                                    args=(dict(loss_fns), list(probes), layouts, dtype))
    return {name: {w: [[per_rank[r][name][w][i] for r in range(w)] for i in range(len(probes))] for w in layouts}
            for name in loss_fns}


def gathered(runs_at_world_size: list[tuple[float, np.ndarray | None, str | None]]) -> np.ndarray | None:
    """The full gradient ``(N, K)`` of one probe from its ranks' local gradients (None without autograd)."""
    grads = [run[1] for run in runs_at_world_size]
    return None if any(g is None for g in grads) else np.concatenate(grads, axis=-1)


# --------------------------------------------------------------------------- theory and findings


@dataclass
class _Theory:
    """The dense theory at one probe: value, softmax ``q``, target ``t`` (0 on ignored rows), gradient scale."""

    value: float
    other_convention_value: float
    q: np.ndarray
    t: np.ndarray
    scale: float  # N kept rows for a mean, 1 for a sum


def _theory(probe: LossProbe, eps: float, convention: str, reduction: str) -> _Theory:
    import torch

    from lstheory.torch import label_smoothed_cross_entropy

    z, y = torch.from_numpy(probe.logits), torch.from_numpy(probe.target)
    ignore = -100 if probe.ignore_index is None else probe.ignore_index
    values = [float(label_smoothed_cross_entropy(z, y, eps, convention=c, ignore_index=ignore, reduction=reduction))
              for c in (convention, _OTHER[convention])]
    num_classes = probe.logits.shape[1]
    p_true, p_other = (float(v) for v in smoothed_target(num_classes, eps, convention=convention))
    kept = probe.kept
    t = np.full(probe.logits.shape, p_other) * kept[:, None]
    t[np.flatnonzero(kept), probe.target[kept]] = p_true
    scale = float(kept.sum()) if reduction == "mean" else 1.0
    return _Theory(values[0], values[1], scipy.special.softmax(probe.logits, axis=1), t, scale)


@dataclass
class _Findings:
    """What the comparison found, one list per kind; ``causes`` in words."""

    nonfinite: list[str] = field(default_factory=list)
    ranks_disagree: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.nonfinite + self.ranks_disagree + self.values + self.targets


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), np.finfo(float).tiny)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _implied_target(theory: _Theory, grad: np.ndarray) -> np.ndarray:
    return theory.q - theory.scale * grad


def _target_error(theory: _Theory, implied: np.ndarray, kept: np.ndarray) -> float:
    """Worst ``|t_implied - t| / (q + t)`` over kept rows: relative to the entries' own scale."""
    scale = theory.q[kept] + theory.t[kept]
    return float(np.max(np.abs(implied[kept] - theory.t[kept]) / np.maximum(scale, np.finfo(float).tiny)))


def _describe_target(implied: np.ndarray, theory: _Theory, probe: LossProbe) -> str:
    kept = np.flatnonzero(probe.kept)
    true = implied[kept, probe.target[kept]]
    others = implied[kept].copy()
    others[np.arange(len(kept)), probe.target[kept]] = np.nan
    t_true, t_other = theory.t[kept[0], probe.target[kept[0]]], theory.t[kept[0], (probe.target[kept[0]] + 1) % implied.shape[1]]
    return (f"true class {_fmt(np.mean(true))} (theory {_fmt(t_true)}), other classes {_fmt(np.nanmin(others))} to "
            f"{_fmt(np.nanmax(others))} (theory {_fmt(t_other)}), total mass per row {_fmt(np.mean(implied[kept].sum(1)))} "
            "(theory 1)")


def _compare_one(where, runs, theory, probe, rtol, findings):
    """Compare one probe at one world size; returns ``(value error, target error or None)``."""
    values = [run[0] for run in runs]
    shown = ", ".join(f"rank {r} {_fmt(v)}" for r, v in enumerate(values))
    if not np.all(np.isfinite(values)):
        findings.nonfinite.append(f"{where}: {shown} (theory {_fmt(theory.value)})")
        return float("inf"), None
    if max(values) - min(values) > rtol * abs(theory.value):
        findings.ranks_disagree.append(f"{where}: {shown} (theory {_fmt(theory.value)})")
    value_error = max(_relative(v, theory.value) for v in values)
    if value_error > rtol and max(values) - min(values) <= rtol * abs(theory.value):
        findings.values.append(f"{where}: {_fmt(values[0])} on every rank (theory {_fmt(theory.value)})")
    gradient = gathered(runs)
    if gradient is None:
        return value_error, None
    implied = _implied_target(theory, gradient)
    target_error = _target_error(theory, implied, probe.kept)
    if target_error > rtol:
        findings.targets.append(f"{where}: implied target (from the gathered gradient): "
                                + _describe_target(implied, theory, probe))
    return value_error, target_error


def _world_size_changes(results, probes, theories, rtol) -> list[str]:
    """Probes whose loss differs between world sizes: 'probe: v (at 1), v0/v1 (at 2), ...'."""
    lines = []
    for i, probe in enumerate(probes):
        per_size = {w: [run[0] for run in runs[i]] for w, runs in results.items()}
        finite = [v for values in per_size.values() for v in values if np.isfinite(v)]
        if finite and max(finite) - min(finite) > rtol * abs(theories[i].value):
            shown = ", ".join("/".join(_fmt(v) for v in values) + f" (world size {w})" for w, values in per_size.items())
            lines.append(f"probe '{probe.name}': {shown}; theory {_fmt(theories[i].value)}")
    return lines


def _shard_size_cause(results, probes, eps, num_classes, rtol, convention) -> str | None:
    """The Megatron-LM error, recognised: every rank's loss equals its shard-size smoothing loss."""
    from lstheory.torch.vocab_parallel import vocab_shard_bounds

    for candidate in (convention, _OTHER[convention]):
        compared, matched, example = 0, True, ""
        for w, runs in results.items():
            bounds = vocab_shard_bounds(num_classes, w)
            if w < 2 or min(stop - start for start, stop in bounds) < 2:
                continue
            for i, probe in enumerate(probes):
                values = np.array([run[0] for run in runs[i]])
                if probe.ignore_index is not None or not np.all(np.isfinite(values)):
                    continue
                expected = shard_size_smoothing_losses(probe.logits, probe.target, eps, bounds, convention=candidate)
                compared += 1
                matched &= bool(np.all(np.abs(values - expected) <= rtol * np.abs(expected)))
                example = example or (f"at world size {w}, probe '{probe.name}', the ranks report "
                                      f"{'/'.join(map(_fmt, values))}, exactly the shard-size formula's "
                                      f"{'/'.join(map(_fmt, expected))}")
        if compared and matched:
            sizes = "eps K_r/(K_r - 1)" if candidate == "off_target" else "eps (in the uniform convention)"
            return (f"{_SHARD_CAUSE}: each rank smooths with its shard's K_r classes instead of K={num_classes} "
                    f"(smoothing {sizes}, spread over the shard's own classes only, as Megatron-LM's "
                    f"vocab_parallel_cross_entropy does; claim tensor_parallel.megatron_label_smoothing): {example}")
    return None


def _causes(findings, results, probes, theories, eps, num_classes, convention, rtol) -> list[str]:
    causes = []
    shard = _shard_size_cause(results, probes, eps, num_classes, rtol, convention)
    if shard:
        causes.append(shard)
    finite = [(runs[i][r][0], theories[i]) for runs in results.values() for i in range(len(probes))
              for r in range(len(runs[i])) if np.isfinite(runs[i][r][0])]
    if finite and all(_relative(v, th.other_convention_value) <= rtol for v, th in finite):
        causes.append(f"this loss smooths with eps={eps:g} in the {_OTHER[convention]} convention, not {convention} "
                      f"(pass convention={_OTHER[convention]!r}, or convert eps with lstheory.convert_eps)")
    if any(f"probe 'logit gaps of {LOGIT_GAP:g}'" in line for line in findings.nonfinite):
        causes.append(f"log(softmax) underflows: at a logit gap of {LOGIT_GAP:g} softmax rounds to 0 in float32 (past a gap of "
                      "about 104; 745 in float64) and its log is -inf; compute log q = z - m - log(sum exp(z - m))")
    if findings.ranks_disagree and not shard:
        causes.append("the ranks report different losses: part of the loss is reduced over the local shard only "
                      "(a missing all-reduce), or the ranks compute different things")
    if findings.targets and not (findings.values or findings.ranks_disagree or findings.nonfinite):
        causes.append("the values are right but the gradients are not: backward does not match forward "
                      "(e.g. it ignores the smoothing, or the true class held by another rank)")
    return causes


def _failure_message(name, num_classes, eps, convention, world_sizes, findings, changes, causes) -> str:
    def listed(lines: list[str], limit: int = 4) -> list[str]:
        shown = [f"  - {line}" for line in lines[:limit]]
        return shown + ([f"  - ... and {len(lines) - limit} more"] if len(lines) > limit else [])

    lines = [f"loss_fn ({name}) is not the vocabulary-parallel label-smoothed cross-entropy (K={num_classes}, "
             f"eps={eps:g}, {convention}) at every world size in {tuple(world_sizes)}:"]
    for title, items in (("non-finite losses", findings.nonfinite), ("the ranks disagree", findings.ranks_disagree),
                         ("the loss changes with the world size", changes), ("wrong loss", findings.values),
                         ("wrong implied target", findings.targets)):
        if items:
            lines += [f"{title}:"] + listed(items)
    lines += ["likely causes:"] + [f"  - {cause}" for cause in causes] if causes else []
    return "\n".join(lines)


# --------------------------------------------------------------------------- public


@dataclass(frozen=True)
class VocabParallelReport:
    """What :func:`assert_vocab_parallel_loss_matches_theory` measured (returned when the check passes).

    ``values[w][probe]`` holds each rank's loss at world size ``w``; ``theory[probe]`` the
    dense loss; ``max_value_error`` the worst relative difference of a rank's loss from it;
    ``max_target_error`` the worst ``|t_implied - t| / (q + t)`` of the implied targets
    (None without autograd); ``rtol`` the tolerance applied; ``seconds`` the wall time.
    """

    num_classes: int
    eps: float
    convention: str
    world_sizes: tuple[int, ...]
    values: dict[int, dict[str, tuple[float, ...]]]
    theory: dict[str, float]
    max_value_error: float
    max_target_error: float | None
    loss_dtype: str | None
    rtol: float
    seconds: float

    def __str__(self) -> str:
        targets = ("not checked (no autograd through loss_fn)" if self.max_target_error is None
                   else f"{self.max_target_error:.2g}")
        return (f"vocabulary-parallel loss matches label-smoothed cross-entropy (K={self.num_classes}, "
                f"eps={self.eps:g}, {self.convention}) at world sizes {self.world_sizes}: worst relative "
                f"loss error {self.max_value_error:.2g}, worst implied-target error {targets} "
                f"(rtol {self.rtol:.2g}, loss dtype {self.loss_dtype}, {self.seconds:.1f} s)")


def _check_importable(loss_fn: Any) -> None:
    """``loss_fn`` runs in new processes: it must pickle, and by reference to a module they can import."""
    hint = ("define it at the top level of an importable module (functools.partial of such a function is fine), "
            "not as a lambda or closure, nor in an interactive session or notebook")
    try:
        pickle.dumps(loss_fn)
    except Exception as error:
        raise TypeError(f"loss_fn must be picklable: it runs in new processes; {hint}; "
                        f"{type(error).__name__}: {error}") from None
    function = getattr(loss_fn, "func", loss_fn)  # functools.partial
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    if module is not None and module.__name__ == "__main__" and getattr(module, "__file__", None) is None:
        raise TypeError(f"loss_fn is defined in an interactive session, which the new processes cannot import; {hint}")


def _check_arguments(loss_fn, num_classes, eps, convention, world_sizes, reduction, ignore_index, dtype, rtol, num_rows):
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(local_logits, target, group, vocab_start); got {loss_fn!r}")
    _check_importable(loss_fn)
    num_classes = int(as_num_classes(num_classes))
    if isinstance(num_rows, bool) or not isinstance(num_rows, numbers.Integral) or not 4 <= num_rows <= 4096:
        raise ValueError(f"num_rows must be an integer in [4, 4096]; got {num_rows!r}")
    if num_rows * num_classes > 2**24:
        raise ValueError(f"num_rows * num_classes must be at most 2**24 (each probe holds N x K float64 logits, "
                         f"128 MiB at most); got {num_rows} x {num_classes}")
    sizes = tuple(world_sizes) if isinstance(world_sizes, (tuple, list)) else None
    if (not sizes or len(set(sizes)) != len(sizes)
            or any(isinstance(w, bool) or not isinstance(w, numbers.Integral) or not 1 <= w <= min(64, num_classes)
                   for w in sizes)):
        raise ValueError(f"world_sizes must be a non-empty sequence of distinct integers in [1, min(64, num_classes="
                         f"{num_classes})]; got {world_sizes!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum' (what loss_fn returns); got {reduction!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral)
                                     or 0 <= ignore_index < num_classes):
        raise ValueError(f"ignore_index must be None or an integer outside [0, {num_classes}); got {ignore_index!r}")
    dtype = str(dtype).replace("torch.", "")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES} (the dtype of the logits passed); got {dtype!r}")
    if rtol is not None and (isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0 < rtol < 1):
        raise ValueError(f"rtol must be None or a number in (0, 1); got {rtol!r}")
    return num_classes, float(as_eps(eps)), check_convention(convention), sizes, dtype


def _default_rtol(dtype: str, loss_dtypes: set) -> float:
    """1e-10 for float64 losses; 200 ulps of float32 (2.4e-5); 4 ulps of a half-precision result."""
    precision = max(_PRECISION.get(name, _PRECISION["float64"]) for name in {dtype} | loss_dtypes)
    if precision <= _PRECISION["float64"]:
        return 1e-10
    return 200 * precision if precision <= _PRECISION["float32"] else 4 * precision


def _run(loss_fn, probes, world_sizes, num_classes, dtype, timeout):
    """``{world size: [per probe: [per rank: (value, grad, dtype)]]}``, or AssertionError naming the rank."""
    from lstheory.testing.process_groups import ProcessGroupError
    from lstheory.torch.vocab_parallel import vocab_shard_bounds

    layouts = {w: vocab_shard_bounds(num_classes, w) for w in world_sizes}
    try:
        return run_vocab_parallel_losses({"loss_fn": loss_fn}, probes, layouts, dtype=dtype, timeout=timeout)["loss_fn"]
    except ProcessGroupError as error:
        first = error.failures[0]
        if first.stage.startswith("loading the worker"):
            raise TypeError(f"loss_fn could not be loaded in the new processes ({first.error}): define it at the top "
                            "level of an importable module") from None
        if not first.stage.startswith("loss_fn at"):
            raise RuntimeError(f"could not run the check (not loss_fn's fault): {error}") from None
        happened = {"raised": f"raised {first.error}", "died": f"died ({first.error})", "no result": "exited",
                    "stopped": f"did not return within {timeout:g} s" + (f" (at {first.error})" if first.error else "")
                    }[first.kind]
        others = "; ".join(f.describe() for f in error.failures[1:])
        raise AssertionError(f"loss_fn {happened} on rank {first.rank} ({first.stage})"
                             + (f"; {others}" if others else "") + (f"\n\n{first.traceback}" if first.traceback else "")) from None


def assert_vocab_parallel_loss_matches_theory(
    loss_fn: Callable[..., Any],
    num_classes: int,
    eps: float,
    *,
    convention: str = "off_target",
    world_sizes: Sequence[int] = (1, 2, 4),
    reduction: str = "mean",
    ignore_index: int | None = None,
    dtype: str = "float64",
    rtol: float | None = None,
    num_rows: int = 16,
    seed: int = 0,
    timeout: float = 120.0,
) -> VocabParallelReport:
    r"""Assert that a tensor-parallel loss is label-smoothed cross-entropy over the global vocabulary at every world size.

    For each world size ``W`` in ``world_sizes`` the ``K`` classes are split into balanced
    contiguous shards (:func:`lstheory.torch.vocab_shard_bounds`; equal when ``W`` divides
    ``K``) and every rank ``r < W`` of a local ``gloo`` group calls
    ``loss_fn(local_logits, target, group, vocab_start)`` on probe logits: random ones, a
    frequency-ordered vocabulary (logits falling like ``-log(1 + id)``, as a language model's)
    and rows with a logit gap of 120 (optionally rows padded with ``ignore_index``).  The
    check passes when, at every world size, (a) every rank returns the same loss, (b) equal to
    :func:`lstheory.torch.label_smoothed_cross_entropy` of the full logits, and (c) where
    autograd reaches, the gathered gradient ``g`` implies the smoothed target
    ``t = softmax(z) - N g`` (``N`` kept rows; ``t = softmax(z) - g`` for a sum) of
    :func:`lstheory.closed_form.smoothed_target`.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(local_logits, target, group, vocab_start) -> scalar`` with ``local_logits``
        of shape ``(N, K_r)`` (this rank's columns ``[vocab_start, vocab_start + K_r)``, with
        ``requires_grad``), ``target`` int64 of shape ``(N,)`` (the same on every rank),
        ``group`` the ``torch.distributed`` process group of the tensor-parallel ranks.  Defined
        at the top level of an importable module (it is pickled into the processes).
    num_classes : int
        ``K``, ``2 <= K <= 2**21``; choose one divisible by every world size if ``loss_fn``
        needs equal shards.
    eps : float
        The smoothing ``loss_fn`` should apply, ``0 <= eps <= 1``, in ``convention``.
    convention : {"off_target", "uniform"}
        ``"uniform"`` for PyTorch-style ``label_smoothing``; Megatron-LM's is off_target.
    world_sizes : sequence of int
        Default ``(1, 2, 4)``; all run in one set of ``max(world_sizes)`` processes.
    reduction : {"mean", "sum"}
        What ``loss_fn`` returns over the rows (mean: over the non-ignored rows).
    ignore_index : int, optional
        If given (e.g. ``-100``), a probe with a quarter of its rows padded with it is added.
    dtype : {"float64", "float32", "bfloat16", "float16"}
        The dtype of the logits passed; their values are exactly representable in float32.
    rtol : float, optional
        Tolerance of every comparison; default from the coarser of ``dtype`` and the loss's
        result dtype: ``1e-10`` (float64), ``2.4e-5`` (float32), 4 ulps for half precision.
    num_rows : int
        Rows per probe (default 16; ``num_rows * K <= 2**24``).
    seed : int
        Seed of the probe logits.
    timeout : float
        Seconds for the whole run, process start-up included (default 120); every
        collective times out after it too.  A hung or failed rank is killed and reported.

    Returns
    -------
    VocabParallelReport

    Raises
    ------
    AssertionError
        With every finding (non-finite losses, ranks that disagree, losses that change with
        the world size, wrong implied targets) and the likely causes, or naming the rank and
        the call where ``loss_fn`` raised or hung.
    TypeError, ValueError
        Bad arguments (an unpicklable ``loss_fn`` included).

    Examples
    --------
    lstheory's own loss passes; a transcription of Megatron-LM's smoothing path fails, and
    the message names the cause:

    >>> from functools import partial
    >>> from lstheory.claims.tensor_parallel_losses import exact_loss, megatron_style_loss
    >>> report = assert_vocab_parallel_loss_matches_theory(
    ...     partial(exact_loss, num_classes=12, eps=0.1), 12, 0.1, world_sizes=(1, 2))
    >>> report.max_value_error < 1e-12
    True
    >>> try:
    ...     assert_vocab_parallel_loss_matches_theory(partial(megatron_style_loss, eps=0.1), 12, 0.1, world_sizes=(1, 2))
    ... except AssertionError as error:
    ...     print(str(error).split("likely causes:")[1].split(":")[0].strip(" -\n"))
    the loss changes with the world size
    """
    start = time.perf_counter()
    num_classes, eps, convention, world_sizes, dtype = _check_arguments(
        loss_fn, num_classes, eps, convention, world_sizes, reduction, ignore_index, dtype, rtol, num_rows)
    probes = _probes(num_classes, int(num_rows), seed, ignore_index, dtype)
    theories = [_theory(probe, eps, convention, reduction) for probe in probes]
    results = _run(loss_fn, probes, world_sizes, num_classes, dtype, float(timeout))
    loss_dtypes = {run[2] for runs in results.values() for per_probe in runs for run in per_probe if run[2]}
    tolerance = float(rtol) if rtol is not None else _default_rtol(dtype, loss_dtypes)

    findings, value_errors, target_errors = _Findings(), [0.0], []
    for w, runs in results.items():
        for i, probe in enumerate(probes):
            value_error, target_error = _compare_one(f"world size {w}, probe '{probe.name}'", runs[i], theories[i],
                                                     probe, tolerance, findings)
            value_errors.append(value_error)
            target_errors += [] if target_error is None else [target_error]
    changes = _world_size_changes(results, probes, theories, tolerance)
    if findings.all() or changes:
        causes = _causes(findings, results, probes, theories, eps, num_classes, convention, tolerance)
        name = getattr(loss_fn, "__qualname__", None) or getattr(getattr(loss_fn, "func", None), "__qualname__", type(loss_fn).__name__)
        raise AssertionError(_failure_message(name, num_classes, eps, convention, world_sizes, findings, changes, causes))
    values = {w: {p.name: tuple(run[0] for run in runs[i]) for i, p in enumerate(probes)} for w, runs in results.items()}
    return VocabParallelReport(
        num_classes, eps, convention, world_sizes, values, {p.name: th.value for p, th in zip(probes, theories)},
        max(value_errors), max(target_errors) if target_errors and len(target_errors) == len(value_errors) - 1 else None,
        "/".join(sorted(loss_dtypes)) or None, tolerance, time.perf_counter() - start)
