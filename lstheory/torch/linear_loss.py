r"""Fused linear layer + label-smoothed cross-entropy that never holds the ``(N, K)`` logits.

The loss of :func:`lstheory.torch.label_smoothed_cross_entropy` applied to
``z = F.linear(h, W, b)``, computed over chunks of ``c`` rows: the logits of
one chunk, ``(c, K)``, are the only large temporary.  Per row ``n`` (class
weights ``w``, all 1 without them; ``(a, b)`` from
:func:`~lstheory.torch.loss.smoothing_coefficients`)::

    loss_n = a w_y (lse_n - z_ny) + b sum_c w_c (lse_n - z_nc)
           = T_n lse_n - a w_y z_ny - b (h_n . sum_c w_c W_c + sum_c w_c b_c)
    T_n    = a w_y + b sum_c w_c,       lse_n = log sum_c exp z_nc

The smoothing term needs only the weighted class sums ``sum_c w_c W_c`` (``H``
numbers) and ``sum_c w_c b_c``, computed once; its gradient is rank one::

    dloss/dW = sum_n g_n (T_n q_n - a w_y e_y) h_n^T  -  b w (sum_n g_n h_n)^T
    dloss/dh_n = g_n (T_n q_n - a w_y e_y) W          -  b g_n sum_c w_c W_c
    dloss/db = sum_n g_n (T_n q_n - a w_y e_y)        -  b w sum_n g_n

(``q_n = softmax(z_n)``, ``g_n`` the upstream gradient of row ``n``).  The
identity and the rank-one gradient are the registered claim
``fused_linear.smoothing_sum`` (:mod:`lstheory.claims.linear_head`).

Gradients are computed during the forward pass for the reductions ``"mean"``
and ``"sum"`` (the upstream gradient is then one number, applied in
backward): three matrix products per chunk, the minimum, as in the eager
composite, and the only memory kept for backward is the gradients, which
must be returned anyway.  Recomputing the logits in backward instead would
keep only ``O(N)`` numbers but cost a fourth product (a third more time:
the products dominate).  For ``"none"`` each row's upstream gradient is
known only in backward, so there backward does recompute each chunk's
logits; so does a second backward (``retain_graph=True``).  Double backward
(``create_graph=True``) differentiates the eager composite (``O(N K)``).

Rows whose target is ``ignore_index`` are left out of every product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lstheory._validation import check_convention, is_integer_scalar
from lstheory.torch.loss import (
    _accumulation_dtype,
    _check_eps,
    _check_ignore_index,
    _check_index_range,
    _check_reduction,
    label_smoothed_cross_entropy,
    smoothing_coefficients,
)

__all__ = ["CHUNK_MEMORY_FRACTION", "MIN_CHUNK_BYTES", "default_chunk_size", "linear_label_smoothed_cross_entropy"]

CHUNK_MEMORY_FRACTION = 0.375
"""The chunk's temporaries are at most this fraction of the classifier's gradient (``K H`` accumulators)."""

MIN_CHUNK_BYTES = 4 * 2**20
"""A chunk may always use this much (small heads: a few rows per chunk would waste the matrix products)."""


def default_chunk_size(num_classes: int, hidden_size: int, dtype: torch.dtype = torch.float32, *,
                       probability_target: bool = False) -> int:
    r"""Rows per chunk: the chunk's temporaries within :data:`CHUNK_MEMORY_FRACTION` of the classifier's gradient.

    Formula, with ``s`` the bytes of the accumulation dtype (float32 for half
    inputs) and ``u`` the bytes each logit of the chunk takes (``s``; plus
    the input's itemsize for half inputs, whose products run in that dtype;
    plus ``s`` for probability targets, weighted chunk by chunk)::

        target = max(CHUNK_MEMORY_FRACTION * K * H * s, MIN_CHUNK_BYTES)
        rows   = max(1, floor(target / (K * u)))

    so that in float32 ``rows = 3 H / 8`` (``K`` cancels) unless the head is
    tiny.  The peak extra memory of forward + backward is then the gradients
    ``(K + N) H s`` plus at most ``3/8`` of ``K H s``: within ``1.375`` times
    the gradients any method must return.  The fraction trades memory for
    time: with two threads the products of a chunk lose efficiency as the
    chunk shrinks (at ``(N, H, K) = (2048, 512, 32000)`` on a busy 2-core
    machine, 128-row chunks took 3.3 s of CPU time against 2.6 s for 512-row
    ones; with one thread both took 2.3 s).

    Parameters
    ----------
    num_classes : int
        ``K >= 1``, the rows of the classifier.
    hidden_size : int
        ``H >= 1``, its columns.
    dtype : torch.dtype
        The inputs' floating dtype.
    probability_target : bool
        Whether the targets are class probabilities.

    Returns
    -------
    int, at least 1.

    Examples
    --------
    >>> default_chunk_size(32000, 512), default_chunk_size(128256, 1024), default_chunk_size(1000, 64)
    (192, 384, 1048)
    >>> default_chunk_size(128256, 4096, torch.bfloat16)
    1024
    """
    accumulate, itemsize = _itemsize(_accumulation_dtype(dtype)), _itemsize(dtype)
    per_logit = accumulate + (itemsize if itemsize != accumulate else 0) + (accumulate if probability_target else 0)
    target = max(CHUNK_MEMORY_FRACTION * num_classes * hidden_size * accumulate, MIN_CHUNK_BYTES)
    return max(1, int(target // (num_classes * per_logit)))


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


# --------------------------------------------------------------------------- checks


def _check_hidden(hidden: Any) -> torch.Tensor:
    if not isinstance(hidden, torch.Tensor):
        raise TypeError(f"hidden must be a torch.Tensor of shape (N, H) or (B, T, H); got {type(hidden).__name__}")
    if not hidden.is_floating_point():
        raise TypeError(f"hidden must have a floating dtype (float16, bfloat16, float32 or float64); got {hidden.dtype}")
    if hidden.dim() < 2:
        raise ValueError(f"hidden must have shape (N, H) or (B, T, H) (at least 2 dimensions); got {tuple(hidden.shape)}")
    return hidden


def _check_classifier(classifier: Any, bias: Any, hidden: torch.Tensor) -> int:
    """``K``, after checking ``classifier (K, H)`` and ``bias (K,)`` against ``hidden``."""
    hidden_size = hidden.shape[-1]
    if not isinstance(classifier, torch.Tensor):
        raise TypeError(f"classifier must be a torch.Tensor of shape (K, {hidden_size}); got {type(classifier).__name__}")
    if classifier.dim() != 2 or classifier.shape[1] != hidden_size or classifier.shape[0] < 2:
        raise ValueError(
            f"classifier must have shape (K, H) = (K, {hidden_size}) with K >= 2 classes (H = hidden.shape[-1]); "
            f"got {tuple(classifier.shape)}"
        )
    num_classes = classifier.shape[0]
    for name, tensor, shape in (("classifier", classifier, None), ("bias", bias, (num_classes,))):
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be None or a torch.Tensor of shape {shape}; got {type(tensor).__name__}")
        if shape is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, one entry per class; got {tuple(tensor.shape)}")
        if tensor.dtype != hidden.dtype:
            raise TypeError(f"{name} must have the dtype of hidden ({hidden.dtype}), as in F.linear; got {tensor.dtype}")
        if tensor.device != hidden.device:
            raise ValueError(f"{name} must be on the device of hidden ({hidden.device}); got {tensor.device}")
    return num_classes


def _check_target(target: Any, hidden: torch.Tensor, num_classes: int, ignore_index: int) -> tuple[torch.Tensor, bool]:
    """``target`` as ``(N,)`` int64 class indices or ``(N, K)`` probabilities, and which of the two."""
    batch = tuple(hidden.shape[:-1])
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices or class probabilities; got {type(target).__name__}")
    if target.device != hidden.device:
        raise ValueError(f"target must be on the device of hidden ({hidden.device}); got {target.device}")
    if target.is_floating_point():
        if tuple(target.shape) != batch + (num_classes,):
            raise ValueError(f"target with class probabilities must have shape {batch + (num_classes,)} "
                             f"(hidden's batch shape, then K); got {tuple(target.shape)}")
        if target.requires_grad:
            raise ValueError("target probabilities that require grad are not supported (no gradient is returned "
                             "for them): detach them, or use label_smoothed_cross_entropy on F.linear(...)")
        if ignore_index >= 0:
            raise ValueError(f"ignore_index must be negative (the default -100) with class-probability targets, as in "
                             f"PyTorch; got ignore_index={ignore_index}")
        return target.reshape(-1, num_classes), True
    if target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices or floating class probabilities; got dtype {target.dtype}")
    if tuple(target.shape) != batch:
        raise ValueError(f"target with class indices must have shape {batch} (hidden's shape without H); "
                         f"got {tuple(target.shape)}")
    indices = target.long()  # compared in int64: uint8 or int8 indices do not wrap
    _check_index_range(indices, num_classes, ignore_index)
    return indices.reshape(-1), False


def _check_class_weight(class_weight: Any, num_classes: int, hidden: torch.Tensor) -> torch.Tensor | None:
    if class_weight is None:
        return None
    if not isinstance(class_weight, torch.Tensor):
        raise TypeError(f"class_weight must be None or a torch.Tensor of shape ({num_classes},); "
                        f"got {type(class_weight).__name__}")
    if not class_weight.is_floating_point():
        raise TypeError(f"class_weight must have a floating dtype; got {class_weight.dtype}")
    if tuple(class_weight.shape) != (num_classes,):
        raise ValueError(f"class_weight must have shape ({num_classes},), one weight per class; "
                         f"got {tuple(class_weight.shape)}")
    if class_weight.device != hidden.device:
        raise ValueError(f"class_weight must be on the device of hidden ({hidden.device}); got {class_weight.device}")
    if class_weight.requires_grad:
        raise ValueError("class_weight must not require grad: the fused loss returns no gradient for it "
                         "(detach it, or use label_smoothed_cross_entropy on F.linear(...))")
    return class_weight


def _check_chunk_size(chunk_size: Any, num_classes: int, hidden: torch.Tensor, probability_target: bool) -> int:
    if chunk_size is None:
        return default_chunk_size(num_classes, hidden.shape[-1], hidden.dtype, probability_target=probability_target)
    if not is_integer_scalar(chunk_size) or chunk_size < 1:
        raise ValueError(f"chunk_size must be None (automatic) or a positive integer (rows per chunk); got {chunk_size!r}")
    return int(chunk_size)


# --------------------------------------------------------------------------- the problem


@dataclass(frozen=True)
class _Settings:
    """Everything about a call that is not a tensor."""

    eps: float
    convention: str
    a: float
    b: float
    ignore_index: int
    reduction: str
    chunk_size: int
    probability_target: bool
    gradients_in_forward: bool


class _Problem:
    """The kept rows and the per-call constants of the loss, in the accumulation dtype.

    ``rows`` indexes the kept rows of ``hidden`` (``None``: all rows); every
    per-row tensor here is over the kept rows only.
    """

    def __init__(self, hidden, classifier, bias, target, class_weight, settings: _Settings):
        self.hidden, self.classifier, self.bias, self.settings = hidden, classifier, bias, settings
        self.acc = _accumulation_dtype(hidden.dtype)
        self.num_rows, self.num_classes = hidden.shape[0], classifier.shape[0]
        self.weight = None if class_weight is None else class_weight.detach().to(self.acc)
        a, b = settings.a, settings.b
        if settings.probability_target:
            self.rows, self.target = None, target
            self.true_weight = None
        else:
            kept = target != settings.ignore_index
            self.rows = None if bool(kept.all()) else kept.nonzero().squeeze(1)
            self.target = target if self.rows is None else target[self.rows]
            self.true_weight = None if self.weight is None else self.weight[self.target]  # w_y
        self.weight_total = float(self.num_classes) if self.weight is None else self.weight.sum()
        self.num_kept = self.num_rows if self.rows is None else self.rows.numel()
        self.class_sum_classifier = _weighted_class_sum(classifier, self.weight, self.acc)  # sum_c w_c W_c
        self.class_sum_bias = None if bias is None else (  # sum_c w_c b_c
            bias.to(self.acc).sum() if self.weight is None else torch.dot(self.weight, bias.to(self.acc)))
        if not settings.probability_target:
            true_mass = a if self.true_weight is None else a * self.true_weight
            self.total_mass = true_mass + b * self.weight_total  # T_n
            self.true_mass = true_mass  # a w_y

    def mean_denominator(self) -> torch.Tensor:
        """``sum_n w_{y_n}`` over kept rows (their count without weights; ``N`` for probabilities); NaN for 0."""
        device = self.hidden.device
        if self.true_weight is None:
            denominator = torch.tensor(float(self.num_kept), dtype=self.acc, device=device)
        else:
            denominator = self.true_weight.sum()
        return torch.where(denominator == 0, torch.full_like(denominator, math.nan), denominator)

    def chunks(self):
        """Slices of the kept rows, ``chunk_size`` at a time, and the matching rows of ``hidden``."""
        size = self.settings.chunk_size
        for start in range(0, self.num_kept, size):
            kept = slice(start, min(start + size, self.num_kept))
            yield kept, (kept if self.rows is None else self.rows[kept])

    def scatter_rows(self, values: torch.Tensor) -> torch.Tensor:
        """Per-kept-row values to all ``N`` rows (0 at ignored rows)."""
        if self.rows is None:
            return values
        full = torch.zeros(self.num_rows, dtype=values.dtype, device=values.device)
        return full.index_copy_(0, self.rows, values)


def _weighted_class_sum(classifier: torch.Tensor, weight: torch.Tensor | None, acc: torch.dtype) -> torch.Tensor:
    """``sum_c w_c W_c`` (``H``) in ``acc``, converting at most a few MiB of the classifier at a time."""
    num_classes, hidden_size = classifier.shape
    block = max(1, MIN_CHUNK_BYTES // (hidden_size * 4))
    total = torch.zeros(hidden_size, dtype=acc, device=classifier.device)
    for start in range(0, num_classes, block):
        rows = classifier[start:start + block].detach().to(acc)
        total += rows.sum(0) if weight is None else torch.mv(rows.t(), weight[start:start + block])
    return total


# --------------------------------------------------------------------------- chunks


class _ChunkBuffers:
    """Scratch reused by every chunk, each a ``(n, K)`` view of a contiguous class-major ``(K, n)`` block:
    the logits (accumulation dtype); for half inputs a copy in the input dtype (the products run in it);
    for probability targets the weighted targets.

    Class-major blocks make ``z^T = W h^T`` and ``dW += dz^T h`` products of contiguous operands; with
    128-row chunks at ``(N, H, K) = (2048, 512, 32000)`` forward + backward took 9% less CPU time than
    with row-major ``z = h W^T`` (one thread), as little as with 512-row chunks.
    """

    def __init__(self, problem: _Problem):
        rows = min(problem.settings.chunk_size, problem.num_kept)
        self.num_classes, device = problem.num_classes, problem.hidden.device
        numel = rows * problem.num_classes
        self.storage = torch.empty(numel, dtype=problem.acc, device=device)
        low = problem.hidden.dtype != problem.acc
        self.low_storage = torch.empty(numel, dtype=problem.hidden.dtype, device=device) if low else None
        probability = problem.settings.probability_target
        self.target_storage = torch.empty(numel, dtype=problem.acc, device=device) if probability else None

    def view(self, storage: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The first ``n K`` entries as a class-major block, seen as ``(n, K)``."""
        return None if storage is None else storage[: n * self.num_classes].view(self.num_classes, n).t()


def _chunk_logits(problem: _Problem, rows, buffers: _ChunkBuffers) -> tuple[torch.Tensor, torch.Tensor]:
    """``z = h W^T + b`` of the chunk's rows in the accumulation dtype, and those rows of ``h`` in it."""
    h = problem.hidden[rows].detach()
    n = h.shape[0]
    z = buffers.view(buffers.storage, n)
    product = z if buffers.low_storage is None else buffers.view(buffers.low_storage, n)
    classifier = problem.classifier.detach()
    if problem.bias is None:
        torch.mm(classifier, h.t(), out=product.t())
    else:
        torch.addmm(problem.bias.detach().unsqueeze(1), classifier, h.t(), out=product.t())
    if buffers.low_storage is not None:
        z.copy_(product)
    return z, h.to(problem.acc)


def _weighted_targets(problem: _Problem, kept: slice, buffers: _ChunkBuffers) -> torch.Tensor:
    """``w_c p_c`` of the chunk's probability targets, in the target buffer."""
    weighted = buffers.view(buffers.target_storage, kept.stop - kept.start).copy_(problem.target[kept])
    return weighted if problem.weight is None else weighted.mul_(problem.weight)


def _chunk_loss(problem: _Problem, kept: slice, z: torch.Tensor, h: torch.Tensor, buffers: _ChunkBuffers):
    """Per-row loss of the chunk and ``(T_n, sum_c exp(z_nc - max_n))``; leaves ``exp(z - max)`` in ``z``.

    Index targets: ``a w_y (lse - z_y) + b (W lse - sum_c w_c z_c)`` with ``W = sum_c w_c``; probability
    targets: ``a (P lse - sum_c w_c p_c z_c) + b (...)`` with ``P = sum_c w_c p_c``.  The class sum of
    ``w_c z_c`` comes from ``h . sum_c w_c W_c + sum_c w_c b_c`` (no pass over the chunk).
    """
    a, b = problem.settings.a, problem.settings.b
    if problem.settings.probability_target:
        weighted = _weighted_targets(problem, kept, buffers)
        true_mass = weighted.sum(1) * a
        true_logit = weighted.mul_(z).sum(1) * a  # a sum_c w_c p_c z_c (the buffer is refilled for the gradient)
        total_mass = true_mass + b * problem.weight_total
    else:
        y = problem.target[kept].unsqueeze(1)
        true_mass = problem.true_mass if problem.true_weight is None else problem.true_mass[kept]
        true_logit = z.gather(1, y).view(-1) * true_mass
        total_mass = problem.total_mass if problem.true_weight is None else problem.total_mass[kept]
    peak = z.amax(1, keepdim=True)
    z.sub_(peak).exp_()
    sums = z.sum(1)
    lse = peak.view(-1) + sums.log()
    loss = true_mass * lse - true_logit
    if b != 0.0:
        class_sum = h @ problem.class_sum_classifier  # sum_c w_c z_c, without the bias
        if problem.class_sum_bias is not None:
            class_sum = class_sum + problem.class_sum_bias
        loss = loss + b * (problem.weight_total * lse - class_sum)
    return loss, total_mass, sums


class _Gradients:
    """Accumulators of the wanted gradients (``None`` where not wanted), in the accumulation dtype
    except ``hidden``'s, whose rows are each written once."""

    def __init__(self, problem: _Problem, wanted: tuple[bool, bool, bool]):
        acc, device = problem.acc, problem.hidden.device
        num_classes, hidden_size = problem.classifier.shape
        want_hidden, want_classifier, want_bias = wanted
        self.hidden = torch.zeros_like(problem.hidden) if want_hidden else None
        self.classifier = torch.zeros(num_classes, hidden_size, dtype=acc, device=device) if want_classifier else None
        self.bias = torch.zeros(num_classes, dtype=acc, device=device) if want_bias else None
        self.upstream_hidden = torch.zeros(hidden_size, dtype=acc, device=device)  # sum_n g_n h_n
        self.upstream_total = torch.zeros((), dtype=acc, device=device)  # sum_n g_n

    def add_chunk(self, problem: _Problem, kept, rows, z, h, upstream, total_mass, sums, buffers) -> None:
        """Add the chunk's gradients; ``z`` holds ``exp(z - max)`` on entry and the dense part of dloss/dz after."""
        a, b = problem.settings.a, problem.settings.b
        z.mul_((upstream * total_mass / sums).unsqueeze(1))  # g T q
        if problem.settings.probability_target:
            z.addcmul_(_weighted_targets(problem, kept, buffers), upstream.unsqueeze(1), value=-a)  # - g a w_c p_c
        else:
            true_mass = problem.true_mass if problem.true_weight is None else problem.true_mass[kept]
            z.scatter_add_(1, problem.target[kept].unsqueeze(1), (upstream * -true_mass).unsqueeze(1))  # - g a w_y
        if self.hidden is not None:
            classifier = problem.classifier.detach()
            low = z if buffers.low_storage is None else buffers.view(buffers.low_storage, z.shape[0]).copy_(z)
            grad_rows = torch.mm(low, classifier).to(problem.acc)
            if b != 0.0:  # the smoothing term's part: - b g_n sum_c w_c W_c
                grad_rows.addr_(upstream, problem.class_sum_classifier, alpha=-b)
            self.hidden[rows] = grad_rows.to(self.hidden.dtype)
        if self.classifier is not None:
            self.classifier.addmm_(z.t(), h)
            self.upstream_hidden.addmv_(h.t(), upstream)
        if self.bias is not None:
            self.bias += z.sum(0)
        self.upstream_total += upstream.sum()

    def finish(self, problem: _Problem, dtype: torch.dtype) -> tuple:
        """Add the smoothing term's rank-one parts and cast to the inputs' dtype."""
        b, weight = problem.settings.b, problem.weight
        classifier, bias = self.classifier, self.bias
        if classifier is not None and b != 0.0:  # - b w (sum_n g_n h_n)^T
            if weight is None:
                classifier.sub_(self.upstream_hidden, alpha=b)
            else:
                classifier.addr_(weight, self.upstream_hidden, alpha=-b)
        if bias is not None and b != 0.0:  # - b w sum_n g_n
            bias.sub_(self.upstream_total * b if weight is None else weight * (self.upstream_total * b))
        return (self.hidden, None if classifier is None else classifier.to(dtype), None if bias is None else bias.to(dtype))


def _loss_and_gradients(problem: _Problem, upstream: torch.Tensor | None, wanted: tuple[bool, bool, bool]):
    """Per-kept-row losses and, when ``upstream`` (0-d or one per kept row) is given, the wanted gradients."""
    gradients = _Gradients(problem, wanted) if upstream is not None and any(wanted) else None
    losses = _chunk_loop(problem, upstream, gradients)  # its chunk buffers are freed before the casts
    grads = (None, None, None) if gradients is None else gradients.finish(problem, problem.hidden.dtype)
    return losses, grads


def _chunk_loop(problem: _Problem, upstream: torch.Tensor | None, gradients: _Gradients | None) -> torch.Tensor:
    buffers = _ChunkBuffers(problem)
    losses = torch.empty(problem.num_kept, dtype=problem.acc, device=problem.hidden.device)
    for kept, rows in problem.chunks():
        z, h = _chunk_logits(problem, rows, buffers)
        losses[kept], total_mass, sums = _chunk_loss(problem, kept, z, h, buffers)
        if gradients is not None:
            g = upstream[kept] if upstream.dim() else upstream.expand(z.shape[0])
            gradients.add_chunk(problem, kept, rows, z, h, g, total_mass, sums, buffers)
    return losses


# --------------------------------------------------------------------------- autograd


class _FusedLinearLabelSmoothedCrossEntropy(torch.autograd.Function):
    """Loss of ``F.linear(hidden, classifier, bias)`` under label-smoothed cross-entropy, chunk by chunk.

    Inputs: ``hidden (N, H)``, ``classifier (K, H)``, ``bias (K,)`` or None, ``target`` (``(N,)`` int64
    or ``(N, K)`` probabilities), ``class_weight (K,)`` or None, :class:`_Settings`.  Output in the
    accumulation dtype: ``(N,)`` for ``reduction="none"``, else a scalar.
    """

    @staticmethod
    def forward(ctx, hidden, classifier, bias, target, class_weight, settings):
        problem = _Problem(hidden, classifier, bias, target, class_weight, settings)
        ctx.save_for_backward(hidden, classifier, bias, target, class_weight)
        ctx.settings, ctx.precomputed = settings, None
        if settings.reduction == "none":
            return problem.scatter_rows(_loss_and_gradients(problem, None, (False,) * 3)[0])
        denominator = problem.mean_denominator() if settings.reduction == "mean" else None
        wanted = tuple(ctx.needs_input_grad[:3]) if settings.gradients_in_forward else (False,) * 3
        scale = torch.ones((), dtype=problem.acc, device=hidden.device) if denominator is None else 1 / denominator
        losses, grads = _loss_and_gradients(problem, scale, wanted)
        ctx.precomputed = grads if any(wanted) else None
        total = losses.sum()
        return total if denominator is None else total / denominator

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():  # create_graph=True
            return (*_differentiable_backward(ctx, grad_output), None, None, None)
        grads, ctx.precomputed = ctx.precomputed, None
        with torch.no_grad():
            if grads is None:  # reduction "none", or a second backward: recompute the chunks
                grads = _recomputed_gradients(ctx, grad_output)
            elif bool(grad_output != 1):
                for grad in grads:
                    if grad is not None:
                        grad.mul_(grad_output.to(grad.dtype))
        return (*grads, None, None, None)


def _recomputed_gradients(ctx, grad_output: torch.Tensor) -> tuple:
    hidden, classifier, bias, target, class_weight = ctx.saved_tensors
    settings = ctx.settings
    problem = _Problem(hidden, classifier, bias, target, class_weight, settings)
    upstream = grad_output.to(problem.acc)
    if settings.reduction == "none":
        upstream = upstream if problem.rows is None else upstream[problem.rows]
    elif settings.reduction == "mean":
        upstream = upstream / problem.mean_denominator()
    return _loss_and_gradients(problem, upstream, tuple(ctx.needs_input_grad[:3]))[1]


def _differentiable_backward(ctx, grad_output: torch.Tensor) -> tuple:
    """Backward under ``create_graph=True``: autograd through the eager composite (``O(N K)`` memory)."""
    hidden, classifier, bias, target, class_weight = ctx.saved_tensors
    settings = ctx.settings
    logits = torch.nn.functional.linear(hidden, classifier, bias)
    loss = label_smoothed_cross_entropy(logits, target, settings.eps, convention=settings.convention,
                                        weight=class_weight, ignore_index=settings.ignore_index,
                                        reduction=settings.reduction)
    inputs = (hidden, classifier, bias)
    wanted = [i for i, need in enumerate(ctx.needs_input_grad[:3]) if need]
    grads = torch.autograd.grad(loss, [inputs[i] for i in wanted], grad_output.to(loss.dtype),
                                create_graph=True, allow_unused=True)
    result = [None, None, None]
    for i, grad in zip(wanted, grads):
        result[i] = grad
    return tuple(result)


# --------------------------------------------------------------------------- public


def linear_label_smoothed_cross_entropy(
    hidden: torch.Tensor,
    classifier: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    *,
    bias: torch.Tensor | None = None,
    convention: str = "off_target",
    class_weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Label-smoothed cross-entropy of a linear head, never holding the ``(N, K)`` logits.

    Formula: the loss of :func:`lstheory.torch.label_smoothed_cross_entropy`
    on the logits ``z = F.linear(hidden, classifier, bias)``; per row ``n``::

        loss_n = a w_{y_n} (lse_n - z_{n,y_n}) + b sum_c w_c (lse_n - z_{n,c})
        z_{n,c} = h_n . W_c + b_c,    lse_n = log sum_c exp z_{n,c}
        uniform:    a = 1 - eps,             b = eps / K
        off_target: a = 1 - eps - eps/(K-1), b = eps / (K-1)

    with ``sum_c w_c z_{n,c} = h_n . (sum_c w_c W_c) + sum_c w_c b_c``, so the
    smoothing term costs ``H`` numbers per row and its gradient is rank one
    (claim ``fused_linear.smoothing_sum``).  Probability targets ``p`` use
    ``t_c = w_c (a p_c + b)`` as in :func:`label_smoothed_cross_entropy`.

    Parameters
    ----------
    hidden : Tensor of shape ``(N, H)`` or ``(B, T, H)`` (any leading shape)
        The features ``h``; float16, bfloat16, float32 or float64.
    classifier : Tensor of shape ``(K, H)``
        The weight ``W`` of the head (``nn.Linear(H, K).weight``), ``K >= 2``; the dtype and device of ``hidden``.
    target : Tensor
        Class indices of any integer dtype, shape ``hidden.shape[:-1]``, each
        in ``[0, K-1]`` or ``ignore_index``; or class probabilities (floating,
        shape ``hidden.shape[:-1] + (K,)``, not requiring grad).
    eps : float
        Smoothing strength, ``0 <= eps <= 1``.
    bias : Tensor of shape ``(K,)``, optional
        The head's bias ``b``.
    convention : {"off_target", "uniform"}
        ``"uniform"`` equals ``F.cross_entropy(F.linear(hidden, classifier, bias), target,
        label_smoothing=eps)``; ``"off_target"`` equals fairseq's form.
    class_weight : Tensor of shape ``(K,)``, optional
        Class weights ``w``, as ``weight=`` of ``F.cross_entropy`` (no gradient is returned for them).
    ignore_index : int
        Rows with this target add nothing (nor to the mean's denominator) and are skipped by every
        matrix product.  Must be negative for probability targets.
    reduction : {"mean", "sum", "none"}
        As in :func:`label_smoothed_cross_entropy` (``"mean"`` divides by ``sum_n w_{y_n}`` over kept
        rows; NaN when that is 0).
    chunk_size : int, optional
        Rows per chunk; default :func:`default_chunk_size` (``3 H / 8`` rows in float32).

    Returns
    -------
    Tensor in the dtype of ``hidden``: a scalar, or ``hidden.shape[:-1]`` for ``reduction="none"``.

    Notes
    -----
    * Memory beyond the inputs (forward + backward): the gradients any method returns
      (``K H + N H`` numbers, plus ``K`` with a bias), one chunk of logits (``chunk_size x K``), and
      ``O(N + K + H)``.  The eager composite holds about three ``N x K`` tensors.
    * Time: for ``"mean"`` and ``"sum"`` the gradients are computed in forward (three matrix products
      of ``N K H`` each, as eager) whenever grad mode is on and an input requires grad; evaluate under
      ``torch.no_grad()`` to skip them.  ``"none"`` recomputes the logits in backward (four products),
      so that each row's upstream gradient is applied exactly.
    * float16/bfloat16: the products run in the input dtype (logits rounded as ``F.linear``'s), the
      softmax, the losses and the classifier's and bias's gradients accumulate in float32 (a float32
      ``(K, H)`` accumulator, cast at the end), the result is cast back.
    * Double backward (``create_graph=True``) differentiates the eager composite, in ``O(N K)`` memory.

    Accuracy: in float64 equal to the eager composites (``F.cross_entropy`` for uniform, fairseq's
    form for off_target) to about ``1e-14`` relative in value and gradients (tested at ``1e-10``);
    float32 as accurate as the eager composite's (the same products, a float32 softmax).

    References: Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform); He et al. 2019,
    arXiv 1812.01187, sec. 5.2 (off_target); Wijmans et al. 2024, "Cut Your Losses in Large-Vocabulary
    Language Models", arXiv 2411.09009 (the memory of the logits; no label smoothing there).

    Examples
    --------
    >>> import torch
    >>> generator = torch.Generator().manual_seed(0)
    >>> hidden = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    >>> classifier = torch.randn(10, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    >>> target = torch.tensor([1, 7, 3, -100, 0, 9])
    >>> loss = linear_label_smoothed_cross_entropy(hidden, classifier, target, 0.1, convention="uniform",
    ...                                            chunk_size=4)
    >>> logits = torch.nn.functional.linear(hidden, classifier)
    >>> eager = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1)
    >>> print(f"{loss.item():.6f} {eager.item():.6f}")
    3.140277 3.140277
    >>> loss.backward()
    >>> eager_grad, = torch.autograd.grad(eager, classifier)
    >>> bool(torch.allclose(classifier.grad, eager_grad, rtol=1e-12, atol=0))
    True
    """
    hidden = _check_hidden(hidden)
    num_classes = _check_classifier(classifier, bias, hidden)
    eps_value = _check_eps(eps)
    convention = check_convention(convention)
    reduction = _check_reduction(reduction)
    ignore_index = _check_ignore_index(ignore_index)
    target_rows, probability_target = _check_target(target, hidden, num_classes, ignore_index)
    class_weight = _check_class_weight(class_weight, num_classes, hidden)
    chunk_size = _check_chunk_size(chunk_size, num_classes, hidden, probability_target)
    a, b = smoothing_coefficients(num_classes, eps_value, convention)
    differentiable = [t for t in (hidden, classifier, bias) if t is not None]
    gradients_in_forward = torch.is_grad_enabled() and any(t.requires_grad for t in differentiable)
    settings = _Settings(eps_value, convention, a, b, ignore_index, reduction, chunk_size, probability_target,
                         gradients_in_forward)
    batch_shape = hidden.shape[:-1]
    hidden_rows = hidden.reshape(math.prod(batch_shape), hidden.shape[-1])
    result = _FusedLinearLabelSmoothedCrossEntropy.apply(hidden_rows, classifier, bias, target_rows, class_weight,
                                                         settings)
    if reduction == "none":
        result = result.reshape(batch_shape)
    return result.to(hidden.dtype)
