r"""Label-smoothed cross-entropy for PyTorch in both conventions, in O(N) extra memory.

The loss of one sample with logits ``z`` (``K`` classes), true class ``y`` and
class weights ``w`` is the cross-entropy against a weighted, smoothed target::

    loss = -sum_c t_c log q_c,     q = softmax(z),
    t_c  = w_c (a [c == y] + b)     (class-index targets)
    t_c  = w_c (a p_c + b)          (class-probability targets p)

with ``(a + b, b) = (p_true, p_other)`` of
:func:`lstheory.closed_form.smoothed_target`:

============== =========================== ================
convention     ``a``                       ``b``
============== =========================== ================
``uniform``    ``1 - eps``                 ``eps / K``
``off_target`` ``1 - eps - eps / (K-1)``   ``eps / (K-1)``
============== =========================== ================

This is ``a * nll + b * sum_c(-w_c log q_c)``: PyTorch's
``cross_entropy(label_smoothing=eps)`` (uniform) and fairseq's
``label_smoothed_nll_loss`` (off_target) term for term.

The memory-lean evaluation: the forward pass walks the logits in blocks of
rows (about 16 MiB on the CPU, half the L2 cache on CUDA), runs PyTorch's
``log_softmax`` kernel on each block into one reused scratch block and keeps
per row only ``log q_y`` and ``sum_c w_c log q_c``.  Nothing of size ``N K``
is saved: backward runs the ``softmax`` kernel straight into the gradient
tensor (in blocks on CUDA or where scratch space is needed, in one go
otherwise) and finishes it in place::

    dloss/dz_c = g (T q_c - t_c),   T = sum_c t_c,   g = upstream gradient.

Under ``create_graph=True`` (double backward) backward instead differentiates
a plain-autograd composite of the same loss (:func:`_composite_per_position`),
which costs ``O(N K)`` memory but is differentiable to any order.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from lstheory._validation import as_eps, as_integer, as_num_classes, check_convention, describe_integer
from lstheory.closed_form import smoothed_target

__all__ = ["label_smoothed_cross_entropy", "smoothing_coefficients"]

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")

_HALF_DTYPES = (torch.float16, torch.bfloat16)
_CPU_BLOCK_BYTES = 16 * 2**20  # a block and its scratch copy fit a 32 MiB L3; few blocks, few thread barriers
_CUDA_BLOCK_BYTES_FALLBACK = 16 * 2**20
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def smoothing_coefficients(num_classes: int, eps: float, convention: str = "off_target") -> tuple[float, float]:
    r"""The weights ``(a, b)`` of ``loss = a * nll + b * sum_c(-log q_c)``.

    Formula: ``b = p_other`` and ``a = p_true - p_other`` with ``(p_true, p_other)``
    from :func:`lstheory.closed_form.smoothed_target`::

        uniform:    a = 1 - eps,               b = eps / K
        off_target: a = 1 - eps - eps / (K-1),  b = eps / (K-1)

    Parameters
    ----------
    num_classes : int
        ``K``, ``2 <= K <= 2**53``.
    eps : float
        Smoothing strength, ``0 <= eps <= 1``.
    convention : {"off_target", "uniform"}
        See :func:`lstheory.closed_form.smoothed_target`.

    Returns
    -------
    (a, b) : tuple of Python floats
        ``a + K b = 1``; ``a`` is negative for off_target ``eps > (K-1)/K``.

    References: PyTorch ``aten/src/ATen/native/LossNLL.cpp`` (uniform);
    fairseq ``label_smoothed_nll_loss`` since PR #3182 (off_target).

    Examples
    --------
    >>> a, b = smoothing_coefficients(10, 0.1, "uniform")
    >>> print(f"{a:.4f} {b:.4f}")
    0.9000 0.0100
    >>> a, b = smoothing_coefficients(10, 0.1, "off_target")
    >>> print(f"{a:.6f} {b:.6f}")
    0.888889 0.011111
    """
    p_true, p_other = _smoothed_target_of_one_setting(num_classes, eps, convention)
    return p_true - p_other, p_other


def _smoothed_target_of_one_setting(num_classes: Any, eps: Any, convention: Any) -> tuple[float, float]:
    """``(p_true, p_other)`` of one ``(K, eps)``: each a single number (int-like K, real eps)."""
    k = as_num_classes(num_classes)
    if k.ndim:
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got an array of shape {k.shape}")
    p_true, p_other = smoothed_target(int(k), _check_eps(eps), convention=convention)
    return float(p_true), float(p_other)


class LossMasses(NamedTuple):
    """The target masses of a label-smoothed loss, as its kernels use them.

    ``p_true`` and ``p_other`` come from :func:`lstheory.closed_form.smoothed_target`,
    ``a = p_true - p_other`` and ``b = p_other`` are the weights of
    ``a * nll + b * sum_c(-log q_c)``.  A positive ``p_other`` (``eps > 0``) below the
    smallest positive number of the accumulation dtype is rounded up to that number, not
    down to 0 (a faithful rounding, off by less than one unit in its last place): so a class
    with positive target mass keeps it, and a ``-inf`` logit there gives ``+inf`` as
    documented, even for ``eps = 5e-324``.
    """

    a: float
    b: float
    p_true: float

    @classmethod
    def of(cls, num_classes: int, eps: float, convention: str, dtype: torch.dtype) -> "LossMasses":
        p_true, p_other = _smoothed_target_of_one_setting(num_classes, eps, convention)
        if eps > 0:
            finfo = torch.finfo(dtype)
            p_other = max(p_other, finfo.tiny * finfo.eps)  # the smallest subnormal of dtype
        return cls(p_true - p_other, p_other, p_true)


# --------------------------------------------------------------------------- checks


def _check_eps(eps: Any) -> float:
    """A single smoothing strength ``0 <= eps <= 1`` as a Python float: the value given, read exactly.

    A float32 ``torch.tensor(0.1)`` is ``0.10000000149011612``, and that is the eps used.
    A tensor that requires grad is refused, as by the closed forms: no gradient flows to eps.
    """
    value = as_eps(eps)
    if value.ndim != 0:
        raise TypeError(
            f"eps must be a single real number with 0 <= eps <= 1; got an array of shape {value.shape}"
        )
    return float(value)


def _check_logits(logits: Any) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor of shape (N, K) or (N, K, d1, ...); got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"logits must have a floating dtype (float16, bfloat16, float32 or float64); got {logits.dtype}"
        )
    if logits.dim() == 0:
        raise ValueError("logits must have shape (K,), (N, K) or (N, K, d1, ...); got a 0-d tensor")
    num_classes = logits.shape[0 if logits.dim() == 1 else 1]
    if num_classes < 2:
        raise ValueError(
            f"logits must have at least 2 classes (K = logits.shape[1] >= 2, or shape[0] if 1-d); "
            f"got shape {tuple(logits.shape)}"
        )
    return logits


def _is_probability_target(logits: torch.Tensor, target: Any) -> bool:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices or class probabilities; got {type(target).__name__}")
    if target.device != logits.device:
        raise ValueError(f"target must be on the device of logits ({logits.device}); got {target.device}")
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"target with class probabilities (floating dtype {target.dtype}) must have the shape of "
                f"logits {tuple(logits.shape)}; got {tuple(target.shape)}"
            )
        return True
    if target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices or floating class probabilities; got dtype {target.dtype}")
    expected = () if logits.dim() == 1 else tuple(logits.shape[:1]) + tuple(logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target with class indices (dtype {target.dtype}) must have shape {expected} for logits of "
            f"shape {tuple(logits.shape)} (the logits' shape without the class axis); got {tuple(target.shape)}"
        )
    return False


def _check_weight(weight: Any, logits: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be None or a 1-d torch.Tensor of {num_classes} class weights; got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise TypeError(f"weight must have a floating dtype; got {weight.dtype}")
    if tuple(weight.shape) != (num_classes,):
        raise ValueError(f"weight must have shape ({num_classes},), one weight per class; got {tuple(weight.shape)}")
    if weight.device != logits.device:
        raise ValueError(f"weight must be on the device of logits ({logits.device}); got {weight.device}")
    return weight


def _check_reduction(reduction: Any) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a ValueError naming it."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}")
    return reduction


def _check_ignore_index(ignore_index: Any) -> int:
    """``ignore_index`` as a Python int; it must fit int64, the dtype targets are compared in."""
    value = as_integer(ignore_index, "ignore_index", "an integer in the int64 range")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(
            f"ignore_index must fit in int64, the dtype class indices are compared in: an integer in "
            f"[-2**63, 2**63 - 1]; got {describe_integer(value)}"
        )
    return value


def _check_index_range(target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Class indices of any integer dtype as int64, each in ``[0, K)`` or equal to ``ignore_index``.

    The one place where index targets are read: everything downstream compares int64 values,
    so a uint8 target is never compared with ``ignore_index = -100`` in uint8 (where -100
    wraps to 156) nor an int8 one with ``K = 300``.  A uint64 value ``>= 2**63`` is out of range.
    """
    indices = target.long()
    if target.numel() == 0:
        return indices
    bad = ((indices < 0) | (indices >= num_classes)) & (indices != ignore_index)
    if not target.dtype.is_signed:
        bad |= indices < 0  # a uint64 >= 2**63 wrapped to a negative int64
    if bool(bad.any()):
        position = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
        value = int(indices[position])
        shown = f"{value + 2**64} (a uint64)" if value < 0 and not target.dtype.is_signed else str(value)
        raise ValueError(
            f"target must hold class indices in [0, {num_classes - 1}] (K = {num_classes}) or "
            f"ignore_index={ignore_index}; got {shown} at index {position}"
        )
    return indices


# --------------------------------------------------------------------------- blocks


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF_DTYPES else dtype


def _block_bytes(device: torch.device) -> int:
    """Target size of one block of logits: half the L2 cache on CUDA, a fixed size on the CPU."""
    if device.type == "cuda":
        try:
            l2 = int(torch.cuda.get_device_properties(device).L2_cache_size)
        except (AttributeError, RuntimeError):
            l2 = 0
        return max(l2 // 2, _CUDA_BLOCK_BYTES_FALLBACK)
    return _CPU_BLOCK_BYTES


def _backward_block_bytes(device: torch.device, needs_scratch: bool) -> int:
    """Backward's block size: on the CPU, without scratch tensors, the whole gradient at once.

    Then backward is two passes over the logits (``softmax`` into the gradient, one fused
    multiply-add) with two thread synchronisations instead of two per block: as fast on a quiet
    machine (the blocks bought little: the gradient is written to memory anyway) and much
    less slowed by a busy core.  Scratch tensors (half precision, probability targets, target
    or weight gradients) and CUDA (where the second pass then hits the L2 cache) keep blocks.
    """
    if needs_scratch or device.type == "cuda":
        return _block_bytes(device)
    return 2**62


def _blocks(num_rows: int, num_classes: int, num_positions: int, itemsize: int, block_bytes: int):
    """Yield ``(row slice, position slice)`` blocks of about ``block_bytes`` of ``(B, K, C)`` logits.

    Whole rows ``(K, D)`` are kept together (contiguous blocks) unless one row is over
    four times ``block_bytes``; then the positions of a row are split.
    """
    if num_rows == 0 or num_positions == 0:
        return
    row_bytes = num_classes * num_positions * itemsize
    if row_bytes <= 4 * block_bytes:
        rows_per_block = max(1, block_bytes // row_bytes)
        for n0 in range(0, num_rows, rows_per_block):
            yield slice(n0, min(n0 + rows_per_block, num_rows)), slice(0, num_positions)
    else:
        positions_per_block = max(1, block_bytes // (num_classes * itemsize))
        for n0 in range(num_rows):
            for d0 in range(0, num_positions, positions_per_block):
                yield slice(n0, n0 + 1), slice(d0, min(d0 + positions_per_block, num_positions))


class _Scratch:
    """One scratch allocation per role, reused by every block (its first block is the largest)."""

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype, self.device = dtype, device
        self.storage: dict[str, torch.Tensor] = {}

    def __call__(self, role: str, like: torch.Tensor) -> torch.Tensor:
        numel = like.numel()
        storage = self.storage.get(role)
        if storage is None or storage.numel() < numel:
            storage = torch.empty(numel, dtype=self.dtype, device=self.device)
            self.storage[role] = storage
        return storage[:numel].view(like.shape)


def _smoothed_target_block(target_block, masses, w_view, scratch) -> torch.Tensor:
    """``t_c = w_c (a p_c + b)`` of a block of probability targets, in a scratch tensor.

    With ``a < 0`` (off_target ``eps > (K-1)/K``) ``a p_c + b`` cancels (``p_c = 1`` and
    ``eps`` near 1 leave a tiny true-class mass that ``a + b`` rounds to 0); there it is
    formed as ``(1 - p_c) p_other + p_c p_true``, a sum of non-negative terms.
    """
    t = scratch("target", target_block)
    if masses.a < 0:
        t.copy_(target_block).neg_().add_(1.0).mul_(masses.b).add_(target_block, alpha=masses.p_true)
    else:
        t.copy_(target_block).mul_(masses.a).add_(masses.b)
    if w_view is not None:
        t.mul_(w_view)
    return t


def _sum_of_products(t: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``sum_c t_c log q_c`` over the class axis (kept), with ``0 * (-inf)`` counted as 0 (NaN kept)."""
    zero_times_inf = (t == 0) & (log_q == -math.inf)
    return torch.mul(t, log_q).masked_fill_(zero_times_inf, 0.0).sum(1, keepdim=True)


class _ForwardPass:
    """The forward block loop: ``log_softmax`` of each block into scratch, O(1) numbers kept per position.

    Every term is a non-negative mass times ``-log q_c``, so no infinities cancel: a ``-inf``
    logit of a class with positive mass gives ``+inf``; one with zero mass (zero weight,
    ``p_true = 0`` or ``p_other = 0``) adds 0, not ``0 * inf = NaN``; NaN (the softmax of a row
    with a NaN or ``+inf`` logit, or with every logit ``-inf``, is NaN) stays NaN.
    """

    def __init__(self, layout, z_all, w_acc, zero_weight, scratch):
        self.layout, self.z_all, self.w_acc, self.zero_weight, self.scratch = layout, z_all, w_acc, zero_weight, scratch
        self.w_view = None if w_acc is None else layout.class_vector(w_acc)
        self.acc, self.device = scratch.dtype, scratch.device

    def _log_q(self, index) -> torch.Tensor:
        z = self.z_all[index]
        return torch.log_softmax(z, 1, dtype=self.acc, out=self.scratch("log_q", z))

    def index_target_loss(self, y_all, masses, ignore_index, blocks) -> torch.Tensor:
        """``-p_true w_y log q_y - p_other sum_{c != y} w_c log q_c`` per position, 0 where ignored."""
        valid = y_all != ignore_index
        y_safe = torch.where(valid, y_all, torch.zeros_like(y_all))
        log_q_true = self.layout.empty_per_position(self.acc, self.device) if masses.p_true > 0 else None
        log_q_others = self.layout.empty_per_position(self.acc, self.device) if masses.b > 0 else None
        for index in blocks:
            log_q, y_block = self._log_q(index), y_safe[index]
            at_y = log_q.gather(1, y_block)
            if log_q_true is not None:
                log_q_true[index] = at_y
            if log_q_others is not None:
                # the true class enters with p_true, above: leave it out here (keeping a NaN)
                log_q.scatter_(1, y_block, torch.where(torch.isnan(at_y), at_y, torch.zeros_like(at_y)))
                log_q_others[index] = self._weighted_sum(log_q)
        loss = torch.zeros_like(valid, dtype=self.acc)
        if log_q_true is not None:
            true_term = log_q_true if self.w_acc is None else _mass_times_log_q(self.w_acc[y_safe], log_q_true)
            loss.sub_(true_term, alpha=masses.p_true)
        if log_q_others is not None:
            loss.sub_(log_q_others, alpha=masses.b)
        return torch.where(valid, loss, torch.zeros_like(loss))

    def _weighted_sum(self, log_q: torch.Tensor) -> torch.Tensor:
        """``sum_c w_c log q_c`` over the class axis (kept), a zero weight times ``-inf`` counted as 0."""
        if self.w_view is None:
            return log_q.sum(1, keepdim=True)
        if self.zero_weight is not None:
            log_q.masked_fill_(self.zero_weight & (log_q == -math.inf), 0.0)
        return torch.mul(log_q, self.w_view).sum(1, keepdim=True)

    def probability_target_loss(self, p_all, masses, blocks) -> tuple[torch.Tensor, torch.Tensor]:
        """``-sum_c t_c log q_c`` per position, and ``T = sum_c t_c`` (saved for backward)."""
        total = self.layout.empty_per_position(self.acc, self.device)
        cross = self.layout.empty_per_position(self.acc, self.device)
        for index in blocks:
            log_q = self._log_q(index)
            t = _smoothed_target_block(p_all[index], masses, self.w_view, self.scratch)
            total[index] = t.sum(1, keepdim=True)
            cross[index] = _sum_of_products(t, log_q)
        return cross.neg_(), total


# --------------------------------------------------------------------------- autograd


class _LabelSmoothedCrossEntropy(torch.autograd.Function):
    """Per-position loss ``-sum_c t_c log q_c`` of ``(N, K, D)`` logits, in O(N) memory.

    Inputs: ``logits (N, K, D)``; ``target`` of class indices ``(N, D)`` or
    probabilities ``(N, K, D)``; ``weight (K,)`` or None; the coefficients
    ``a, b``; ``ignore_index``; whether the target holds probabilities;
    whether some class weight is zero.  Output: ``loss (N, D)`` in the
    accumulation dtype (float32 for half inputs).

    Forward runs ``log_softmax`` block by block into one scratch block and
    keeps per position only ``log q_y`` and ``sum_c w_c log q_c``; backward
    runs ``softmax`` straight into the gradient (in blocks or whole, see
    :func:`_backward_block_bytes`) and finishes ``g (T q - t)`` in place.  Saved for backward: the inputs, and ``T`` (one
    number per position) for probability targets.

    Internally every per-position tensor has the shape ``(N, 1, D)``, and
    with ``D = 1`` everything is viewed as 2-d (``(N, K)`` and ``(N, 1)``)
    so that PyTorch's last-axis (log-)softmax kernels serve the blocks.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, masses, ignore_index, probability_target, has_zero_weight):
        num_rows, num_classes, num_positions = logits.shape
        acc = _accumulation_dtype(logits.dtype)
        layout = _Layout(num_rows, num_classes, num_positions)
        w_acc = None if weight is None else weight.detach().to(acc)
        zero_weight = layout.class_vector(w_acc == 0) if has_zero_weight else None
        pass_ = _ForwardPass(layout, layout.classes(logits), w_acc, zero_weight, _Scratch(acc, logits.device))
        blocks = layout.blocks(logits.element_size(), _block_bytes(logits.device))
        ctx.settings = (masses, ignore_index, probability_target)
        if probability_target:
            loss, total = pass_.probability_target_loss(layout.classes(target), masses, blocks)
            ctx.save_for_backward(logits, target, weight, total)
        else:
            loss = pass_.index_target_loss(layout.per_position(target), masses, ignore_index, blocks)
            ctx.save_for_backward(logits, target, weight)
        return layout.per_position_result(loss)

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():
            # create_graph=True: the autograd engine runs backward in grad mode only then
            return _differentiable_backward(ctx, grad_loss)
        with torch.no_grad():
            return _LabelSmoothedCrossEntropy._lean_backward(ctx, grad_loss)

    @staticmethod
    def _lean_backward(ctx, grad_loss):
        """The O(N)-memory backward (first order only)."""
        masses, ignore_index, probability_target = ctx.settings
        a, b = masses.a, masses.b
        if probability_target:
            logits, target, weight, total = ctx.saved_tensors
        else:
            (logits, target, weight), total = ctx.saved_tensors, None
        need_logits, need_target, need_weight = ctx.needs_input_grad[:3]
        num_rows, num_classes, num_positions = logits.shape
        acc = grad_loss.dtype
        device = logits.device
        layout = _Layout(num_rows, num_classes, num_positions)
        z_all = layout.classes(logits)
        w_acc = None if weight is None else weight.detach().to(acc)
        w_view = None if w_acc is None else layout.class_vector(w_acc)
        g = layout.per_position(grad_loss)
        if probability_target:
            p_all = layout.classes(target)
            scale = g * total  # g T
        else:
            y_all = layout.per_position(target)
            valid = y_all != ignore_index
            g = torch.where(valid, g, torch.zeros_like(g))
            y_safe = torch.where(valid, y_all, torch.zeros_like(y_all))
            if w_acc is None:
                scale = g * (a + b * num_classes)
                true_term = g * -a  # added at the true class
            else:
                w_y = w_acc[y_safe]
                scale = g * (a * w_y + b * w_acc.sum())
                true_term = g * w_y * -a
            smooth_term = g * -b  # added at every class (times w_c)
        grad_logits = torch.empty_like(logits) if need_logits else None
        grad_all = None if grad_logits is None else layout.classes(grad_logits)
        grad_target = torch.empty_like(target) if (need_target and probability_target) else None
        grad_target_all = None if grad_target is None else layout.classes(grad_target)
        grad_weight = torch.zeros(num_classes, dtype=acc, device=device) if need_weight else None
        direct = grad_logits is not None and grad_logits.dtype == acc
        scratch = _Scratch(acc, device)
        needs_scratch = not direct or probability_target or grad_target is not None or grad_weight is not None
        block_bytes = _backward_block_bytes(device, needs_scratch)
        for index in layout.blocks(logits.element_size(), block_bytes):
            z = z_all[index]
            g_block = g[index]
            t = _smoothed_target_block(p_all[index], masses, w_view, scratch) if probability_target else None
            if grad_all is not None:
                # dloss/dz_c = g (T q_c - t_c)
                out = grad_all[index] if direct else scratch("grad", z)
                torch.softmax(z, 1, dtype=acc, out=out)
                if probability_target:
                    out.mul_(scale[index]).addcmul_(g_block, t, value=-1.0)
                else:
                    if w_view is None:
                        torch.addcmul(smooth_term[index], out, scale[index], out=out)
                    else:
                        out.mul_(scale[index]).addcmul_(smooth_term[index], w_view)
                    if a != 0.0:
                        out.scatter_add_(1, y_safe[index], true_term[index])
                if not direct:
                    grad_all[index] = out
            if grad_target_all is None and grad_weight is None:
                continue
            log_q = torch.log_softmax(z, 1, dtype=acc, out=scratch("log_q", z))
            if grad_target_all is not None:
                # dloss/dp_c = -a w_c log q_c
                term = log_q * (g_block * -a)
                grad_target_all[index] = term if w_view is None else term * w_view
            if grad_weight is not None:
                # dloss/dw_c = -(t_c / w_c) log q_c, with 0 * (-inf) counted as 0
                if probability_target:
                    coef = scratch("coef", z).copy_(p_all[index]).mul_(a).add_(b).mul_(g_block)
                    grad_weight -= _masked_product(coef, log_q).sum(dim=layout.non_class_dims)
                else:
                    grad_weight -= _index_target_weight_gradient(log_q, g_block, y_safe[index], masses, layout)
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_logits, grad_target, grad_weight, None, None, None, None


def _index_target_weight_gradient(log_q, g_block, y_block, masses, layout) -> torch.Tensor:
    """``sum_n g_n (p_true [c == y_n] + p_other [c != y_n]) log q_{n,c}`` per class ``c`` (minus dloss/dw_c).

    Like the forward pass, the true class enters with ``p_true`` and every other class with
    ``p_other``, both ``>= 0``: no infinities cancel.  ``log_q`` (scratch) is overwritten.
    """
    at_y = log_q.gather(1, y_block)
    gradient = torch.zeros(log_q.shape[1], dtype=log_q.dtype, device=log_q.device)
    if masses.b > 0:
        log_q.scatter_(1, y_block, 0.0)
        gradient += _masked_product(g_block * masses.b, log_q).sum(dim=layout.non_class_dims)
    if masses.p_true > 0:
        term = _masked_product(g_block * masses.p_true, at_y)
        gradient.index_add_(0, y_block.reshape(-1), term.reshape(-1))
    return gradient


def _composite_per_position(logits, target, weight, masses, ignore_index, probability_target):
    """``-sum_c t_c log q_c`` of ``(N, K, D)`` logits in plain autograd ops, ``(N, D)``, O(N K) memory.

    The same loss as :class:`_LabelSmoothedCrossEntropy` (``0 * log q`` counted as 0, ignored
    positions 0, accumulation dtype), differentiable to any order; used for double backward.
    """
    acc = _accumulation_dtype(logits.dtype)
    num_classes = logits.shape[1]
    log_q = torch.log_softmax(logits, 1, dtype=acc)
    # unweighted target coefficients s_c (t_c = w_c s_c)
    if probability_target:
        p = target.to(acc)
        s = (1 - p) * masses.b + p * masses.p_true if masses.a < 0 else p * masses.a + masses.b
    else:
        valid = target != ignore_index
        y_safe = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(1)
        s = torch.full_like(log_q, masses.b).scatter_(1, y_safe, masses.p_true) * valid.unsqueeze(1).to(acc)
    # 0 * (-inf) counts as 0: replace the infinite factor (not the product), so that no
    # 0 * inf reaches the derivatives either; zero coefficients with finite log q keep their
    # derivatives (d/ds_c = log q_c, d/dw_c = s_c log q_c), as in the O(N) backward
    product = s * torch.where((s == 0) & torch.isinf(log_q), torch.zeros_like(log_q), log_q)
    if weight is not None:
        w = weight.to(acc).view(1, num_classes, 1)
        product = w * torch.where((w == 0) & torch.isinf(product), torch.zeros_like(product), product)
    return -product.sum(1)


def _differentiable_backward(ctx, grad_loss):
    """Backward under ``create_graph=True``: autograd through :func:`_composite_per_position`."""
    masses, ignore_index, probability_target = ctx.settings
    logits, target, weight = ctx.saved_tensors[:3]
    candidates = (logits, target, weight)
    wanted = [i for i, need in enumerate(ctx.needs_input_grad[:3]) if need]
    per_position = _composite_per_position(logits, target, weight, masses, ignore_index, probability_target)
    g = grad_loss
    if not probability_target:  # ignored positions get no gradient, even from a NaN upstream (0 / 0 mean)
        g = torch.where(target != ignore_index, g, torch.zeros_like(g))
    grads = torch.autograd.grad(
        per_position, [candidates[i] for i in wanted], g, create_graph=True, allow_unused=True
    )
    result = [None] * 7
    for i, grad in zip(wanted, grads):
        result[i] = grad
    return tuple(result)


class _Layout:
    """Views of ``(N, K, D)`` tensors for the block loop; 2-d when ``D = 1``.

    Class tensors are ``(N, K, D)`` (or ``(N, K)``), per-position tensors
    ``(N, 1, D)`` (or ``(N, 1)``); a block index selects rows (and positions).
    """

    def __init__(self, num_rows: int, num_classes: int, num_positions: int):
        self.num_rows, self.num_classes, self.num_positions = num_rows, num_classes, num_positions
        self.flat = num_positions == 1
        self.non_class_dims = (0,) if self.flat else (0, 2)

    def classes(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(self.num_rows, self.num_classes) if self.flat else x

    def per_position(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` to ``(N, 1, D)`` (or ``(N, 1)``)."""
        return x.view(self.num_rows, 1) if self.flat else x.unsqueeze(1)

    def per_position_result(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(self.num_rows, self.num_positions)

    def empty_per_position(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        shape = (self.num_rows, 1) if self.flat else (self.num_rows, 1, self.num_positions)
        return torch.empty(shape, dtype=dtype, device=device)

    def class_vector(self, w: torch.Tensor) -> torch.Tensor:
        return w.view(1, self.num_classes) if self.flat else w.view(1, self.num_classes, 1)

    def blocks(self, itemsize: int, block_bytes: int):
        for rows, cols in _blocks(self.num_rows, self.num_classes, self.num_positions, itemsize, block_bytes):
            yield (rows,) if self.flat else (rows, slice(None), cols)


def _masked_product(coefficient: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``coefficient * log_q`` with the product 0 where the coefficient is 0 (even if ``log_q = -inf``).

    For backward, where a zero coefficient is a zero mass or a zero upstream gradient.
    """
    product = coefficient * log_q
    return torch.where(coefficient == 0, torch.zeros_like(product), product)


def _mass_times_log_q(mass: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``mass * log_q`` with ``0 * (-inf)`` counted as 0; a NaN ``log_q`` (undefined softmax) stays NaN."""
    product = mass * log_q
    return torch.where((mass == 0) & (log_q == -math.inf), torch.zeros_like(product), product)


# --------------------------------------------------------------------------- public


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    *,
    convention: str = "off_target",
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Label-smoothed cross-entropy, in either convention, in O(N) memory beyond its inputs.

    Formula, per sample ``n`` (and spatial position)::

        loss_n = a * w_{y_n} * (-log q_{n, y_n}) + b * sum_c w_c (-log q_{n, c})
        q_n    = softmax(logits_n) over the class axis
        uniform:    a = 1 - eps,             b = eps / K
        off_target: a = 1 - eps - eps/(K-1), b = eps / (K-1)

    With ``w = 1`` this is the cross-entropy against the smoothed target
    ``(p_true, p_other)`` of :func:`lstheory.closed_form.smoothed_target`.
    Probability targets ``p`` use the target ``t_c = w_c (a p_c + b)``
    (PyTorch's ``p (1 - eps) + eps / K`` in the uniform convention).

    Class weights (index targets) follow PyTorch exactly: the smoothing term
    multiplies each class's log-probability by that class's own weight, so the
    implied per-sample target is proportional to ``(w_y (a + b), w_i b)``: the
    off-target mass is no longer uniform, and the optimal gap becomes
    ``logit_gap(K, eps, convention) + log(w_y / w_i)`` (PyTorch issue #104776).

    Reductions follow ``torch.nn.functional.cross_entropy``: ``"none"``
    returns ``loss_n`` (0 at ignored positions); ``"sum"`` their sum;
    ``"mean"`` divides the sum by ``sum_n w_{y_n}`` over non-ignored positions
    (their count without weights) for index targets and by the number of
    positions for probability targets.  Where that denominator is 0 the mean
    is NaN, like PyTorch: an empty or all-ignored batch gives NaN and a zero
    gradient; a batch whose kept positions all have zero target weight
    ``w_{y_n}`` gives NaN (not ``x / 0 = inf``) and a NaN gradient at the
    kept positions (0 at ignored ones), as PyTorch does.

    Parameters
    ----------
    logits : Tensor of shape ``(N, K)``, ``(N, K, d1, ..., dk)`` or ``(K,)``
        Unnormalised scores, class axis 1 (0 for a single sample); float16,
        bfloat16, float32 or float64; ``K >= 2``.  Entries are finite or
        ``-inf`` (a masked class).
    target : Tensor
        Class indices, any integer dtype (uint8 to int64, compared in int64:
        a uint8 ``156`` is class 156, never ``ignore_index=-100`` wrapped),
        shape ``(N, d1, ..., dk)`` (``()`` for one sample), each in
        ``[0, K-1]`` or equal to ``ignore_index``; or class probabilities,
        floating dtype, the shape of ``logits``.
    eps : float, or a 0-d array or tensor
        Smoothing strength, ``0 <= eps <= 1``, used as given (a float32
        ``torch.tensor(0.1)`` is ``0.10000000149011612``).  A tensor that
        requires grad is refused (``TypeError``), as by the closed forms: no
        gradient flows to eps.
    convention : {"off_target", "uniform"}
        ``"uniform"`` equals ``F.cross_entropy(..., label_smoothing=eps)`` in
        value and gradient; ``"off_target"`` equals fairseq's
        ``(1 - eps - eps/(K-1)) * nll + eps/(K-1) * sum_c(-log q_c)``.
    weight : Tensor of shape ``(K,)``, optional
        Class weights ``w``.  Differentiable here for both target kinds;
        PyTorch differentiates ``weight`` only for probability targets (its
        ``nll_loss`` raises for a weight that requires grad with index
        targets), so the index-target weight gradient has no built-in
        counterpart (tested against a plain-autograd formula).
    ignore_index : int
        Index-target value whose positions add nothing to the loss nor to the
        mean's denominator; in the int64 range.  Must be negative for
        probability targets (as in PyTorch).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor in the dtype of ``logits``: a scalar, or shape ``(N, d1, ..., dk)``
    for ``reduction="none"``.

    Notes
    -----
    * Memory: the autograd function saves its inputs (and, for probability
      targets, one number per position); forward walks the logits in
      blocks of about 16 MiB (CPU) or half the L2 cache (CUDA), and
      backward writes ``softmax`` straight into the one gradient tensor.
      Non-contiguous logits are copied once.
    * Double backward (``torch.autograd.grad(..., create_graph=True)``, e.g.
      a gradient penalty) is supported: backward then differentiates a
      plain-autograd composite of the same loss, which holds ``O(N K)``
      memory for that step; the result is the gradient of the gradient,
      equal to ``F.cross_entropy``'s (uniform).
    * float16/bfloat16 inputs are computed and reduced in float32; the result
      and the gradient are cast back to the input dtype.
    * Edge rules.  Index targets are evaluated as ``p_true w_y (-log q_y) +
      p_other sum_{c != y} w_c (-log q_c)``, two non-negative masses, so no
      infinities cancel (off_target ``eps > (K-1)/K``, where ``a < 0``, included):

      - a ``-inf`` logit of a class with positive target mass gives ``+inf``
        and a finite gradient (that class's ``q_c = 0``), for every
        ``eps > 0`` however small: a ``p_other`` below the smallest positive
        number of the accumulation dtype is rounded up to it, not down to 0
        (``eps = 5e-324`` gives ``+inf``);
      - a class with zero target mass (zero weight, the other classes at
        ``eps = 0``, the true class under ``off_target`` at ``eps = 1``)
        contributes ``0``, not ``0 * inf``: a finite value where PyTorch (or
        fairseq's formula) returns NaN;
      - a row whose softmax is undefined (a NaN or ``+inf`` logit, or every
        logit ``-inf``) gives NaN whatever the weights and eps (a zero-weight
        true class at ``eps = 0`` included), as in PyTorch;
      - ignored positions give 0.

      Probability targets follow the same rules with the masses ``t_c`` as
      computed (a zero ``t_c`` times ``-inf`` counts as 0; NaN stays NaN).

    Accuracy: in float64 equal to PyTorch's and fairseq's formulas to about
    ``1e-15`` relative (tested at ``1e-10``).  In float32 the per-row
    normalisers come from PyTorch's own (log_)softmax kernels, as in
    ``F.cross_entropy``: the loss is as accurate as the built-in's (about
    ``1e-7`` relative at ``K = 32000`` for ``(N, K)`` logits, ``1e-6`` for
    ``(N, K, d)``) and the gradient more accurate (no ``exp(log_softmax)``
    round trip).  Half-precision results are the float32 ones rounded.

    References: Szegedy et al. 2016, arXiv 1512.00567, sec. 7 (uniform); He
    et al. 2019, arXiv 1812.01187, sec. 5.2, and fairseq PR #3182
    (off_target); PyTorch ``aten/src/ATen/native/LossNLL.cpp``.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    >>> target = torch.tensor([0, 1])
    >>> loss = label_smoothed_cross_entropy(logits, target, 0.1, convention="uniform")
    >>> reference = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1)
    >>> print(f"{loss.item():.6f} {reference.item():.6f}")
    0.495495 0.495495
    >>> print(f"{label_smoothed_cross_entropy(logits, target, 0.1).item():.6f}")
    0.545495
    """
    logits = _check_logits(logits)
    eps_value = _check_eps(eps)
    convention = check_convention(convention)
    reduction = _check_reduction(reduction)
    ignore_index = _check_ignore_index(ignore_index)
    probability_target = _is_probability_target(logits, target)
    unbatched = logits.dim() == 1
    num_classes = int(logits.shape[0 if unbatched else 1])
    weight = _check_weight(weight, logits, num_classes)
    if probability_target and ignore_index >= 0:
        raise ValueError(
            f"ignore_index must be negative (the default -100) with class-probability targets, as in "
            f"PyTorch; got ignore_index={ignore_index}"
        )
    if not probability_target:
        target = _check_index_range(target, num_classes, ignore_index)
    masses = LossMasses.of(num_classes, eps_value, convention, _accumulation_dtype(logits.dtype))
    logits_nkd, target_nkd = _as_nkd(logits, target, probability_target)
    has_zero_weight = weight is not None and bool((weight == 0).any())
    per_position = _LabelSmoothedCrossEntropy.apply(
        logits_nkd, target_nkd, weight, masses, ignore_index, probability_target, has_zero_weight
    )
    if reduction == "none":
        shape = () if unbatched else tuple(logits.shape[:1]) + tuple(logits.shape[2:])
        return per_position.reshape(shape).to(logits.dtype)
    total = per_position.sum()
    if reduction == "sum":
        return total.to(logits.dtype)
    return (total / _mean_denominator(per_position, target_nkd, weight, ignore_index, probability_target)).to(
        logits.dtype
    )


def _as_nkd(logits: torch.Tensor, target: torch.Tensor, probability_target: bool):
    """Views of the logits as ``(N, K, D)`` (copied once if not contiguous) and the target as ``(N, K, D)`` or ``(N, D)``."""
    num_classes = logits.shape[0 if logits.dim() == 1 else 1]
    if logits.dim() == 1:
        num_rows, num_positions = 1, 1
    else:
        num_rows, num_positions = logits.shape[0], math.prod(logits.shape[2:])
    logits_nkd = logits.contiguous().view(num_rows, num_classes, num_positions)
    if probability_target:
        return logits_nkd, target.contiguous().view(num_rows, num_classes, num_positions)
    return logits_nkd, target.reshape(num_rows, num_positions)


def _mean_denominator(per_position, target_nkd, weight, ignore_index, probability_target) -> torch.Tensor:
    """The mean's denominator: positions (probability targets) or ``sum_n w_{y_n}`` over kept positions.

    A zero denominator gives NaN (PyTorch's 0 / 0 nll term), not total / 0 = inf; no host sync.
    """
    acc = per_position.dtype
    if probability_target:
        count = per_position.numel()
        return torch.tensor(count if count else math.nan, dtype=acc, device=per_position.device)
    valid = target_nkd != ignore_index
    if weight is None:
        denominator = valid.sum().to(acc)
    else:
        safe = torch.where(valid, target_nkd, torch.zeros_like(target_nkd))
        denominator = torch.where(valid, weight.to(acc)[safe], torch.zeros((), dtype=acc, device=per_position.device)).sum()
    return torch.where(denominator == 0, torch.full_like(denominator, math.nan), denominator)
