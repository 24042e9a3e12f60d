r"""The two vocabulary-parallel losses the ``tensor_parallel`` claims compare, as the checker calls them.

Both take ``(local_logits, target, group, vocab_start)``, the calling
convention of :func:`lstheory.testing.assert_vocab_parallel_loss_matches_theory`,
with the rest bound by ``functools.partial``:

* :func:`exact_loss` -- :func:`lstheory.torch.vocab_parallel_label_smoothed_cross_entropy`;
* :func:`megatron_style_loss` -- the smoothing path of Megatron-LM's
  ``vocab_parallel_cross_entropy`` (``megatron/core/tensor_parallel/cross_entropy.py``
  in NVIDIA/Megatron-LM), re-implemented here from its description, not
  copied: each rank takes the global maximum and the global sum of
  exponentials by all-reduces, but then smooths with its **shard's**
  vocabulary size ``K_r`` and the mean of ``log(softmax)`` over its own columns::

      s_r    = eps K_r / (K_r - 1)
      loss_r = (1 - s_r) (lse - z_y) - s_r mean_{c in shard r} log q_c
      grad_r = q_c - (1 - s_r) [c == y] - s_r / K_r        (its own columns)

  so each rank reports a different loss, the implied smoothing grows to
  ``eps K_r/(K_r - 1)``, the gathered gradient of a row no longer sums to 0,
  and ``log(softmax)`` is ``-inf`` once a logit gap passes about 104 in float32.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from lstheory.torch.vocab_parallel import vocab_parallel_label_smoothed_cross_entropy

__all__ = ["exact_loss", "megatron_style_loss"]


def exact_loss(
    local_logits: torch.Tensor, target: torch.Tensor, group: Any, vocab_start: int, *, num_classes: int, eps: float,
    convention: str = "off_target", class_weight: torch.Tensor | None = None, ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """lstheory's exact loss in the checker's calling convention (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)
    >>> print(f"{exact_loss(z, torch.tensor([2]), None, 0, num_classes=3, eps=0.1).item():.6f}")
    0.557606
    """
    return vocab_parallel_label_smoothed_cross_entropy(
        local_logits, target, eps, vocab_start=vocab_start, num_classes=num_classes, group=group,
        convention=convention, class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)


def _all_reduce(tensor: torch.Tensor, op: Any, group: Any) -> torch.Tensor:
    if group is not None or (dist.is_available() and dist.is_initialized()):
        dist.all_reduce(tensor, op=op, group=group)
    return tensor


class _MegatronStyleCrossEntropy(torch.autograd.Function):
    """Per-token loss of the shard-size smoothing (module docstring); three all-reduces as the source does."""

    @staticmethod
    def forward(ctx, logits, target, eps, vocab_start, group, compute_dtype):
        z = logits.detach().to(compute_dtype)
        local_classes = z.shape[-1]
        row_max = _all_reduce(z.amax(-1), dist.ReduceOp.MAX, group)
        z = z - row_max.unsqueeze(-1)
        in_shard = (target >= vocab_start) & (target < vocab_start + local_classes)
        local_target = torch.where(in_shard, target - vocab_start, torch.zeros_like(target))
        predicted = z.gather(-1, local_target.unsqueeze(-1)).squeeze(-1) * in_shard
        exp = z.exp()
        sum_exp = exp.sum(-1)
        _all_reduce(predicted, dist.ReduceOp.SUM, group)
        _all_reduce(sum_exp, dist.ReduceOp.SUM, group)
        loss = sum_exp.log() - predicted
        softmax = exp / sum_exp.unsqueeze(-1)
        smoothing = eps * local_classes / (local_classes - 1) if eps > 0 else 0.0
        if eps > 0:
            loss = (1.0 - smoothing) * loss - smoothing * softmax.log().mean(-1)
        ctx.save_for_backward(softmax, in_shard, local_target)
        ctx.smoothing, ctx.input_dtype = smoothing, logits.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        softmax, in_shard, local_target = ctx.saved_tensors
        smoothing = ctx.smoothing
        grad = softmax.clone()
        true_class = torch.zeros_like(grad).scatter_(-1, local_target.unsqueeze(-1), in_shard.unsqueeze(-1).to(grad.dtype))
        grad -= (1.0 - smoothing) * true_class + smoothing / grad.shape[-1]
        grad *= grad_loss.unsqueeze(-1).to(grad.dtype)
        return grad.to(ctx.input_dtype), None, None, None, None, None


def megatron_style_loss(
    local_logits: torch.Tensor, target: torch.Tensor, group: Any, vocab_start: int, *, eps: float,
    compute_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Mean over tokens of the Megatron-LM-style vocabulary-parallel loss (module docstring).

    ``compute_dtype`` float32 as Megatron-LM (it casts the logits to float); float64 isolates
    the smoothing error from rounding.  ``target`` holds global class ids, ``local_logits``
    this rank's columns ``[vocab_start, vocab_start + K_r)``, ``K_r >= 2``.

    Examples
    --------
    With one shard it is the off_target loss (here 0.557606, as :func:`exact_loss`):

    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)
    >>> loss = megatron_style_loss(z, torch.tensor([2]), None, 0, eps=0.1, compute_dtype=torch.float64)
    >>> print(f"{loss.item():.6f}")
    0.557606
    """
    return _MegatronStyleCrossEntropy.apply(local_logits, target, float(eps), int(vocab_start), group,
                                            compute_dtype).mean()
