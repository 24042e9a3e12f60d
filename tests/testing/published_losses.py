"""Label-smoothing losses of published frameworks, rewritten from their formulas.

Each function is written for these tests from the formula recorded in
``shared/reference/conventions.md`` (not copied from the framework's source),
and takes ``(logits, labels)``: logits ``(N, K)``, integer labels ``(N,)``.
PyTorch's built-in is called directly.  JAX and TensorFlow are not
dependencies, so optax and Keras are written in NumPy (float64 and float32),
which also exercises :func:`lstheory.testing.infer_smoothing` without autograd.

Conventions: fairseq (since PR #3182) is ``off_target``; every other one is
``uniform``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F


def torch_builtin(eps: float, weight: torch.Tensor | None = None):
    """``torch.nn.functional.cross_entropy(logits, labels, weight=weight, label_smoothing=eps)``.

    Uniform convention; with ``weight`` the target becomes
    ``∝ (w_y (1 - eps + eps/K), w_i eps/K)`` and the mean divides by
    ``sum_n w_{y_n}`` (PyTorch #104776).
    """

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        w = None if weight is None else weight.to(logits.dtype)
        return F.cross_entropy(logits, labels, weight=w, label_smoothing=eps)

    loss.__qualname__ = f"torch_builtin(eps={eps}{', weight' if weight is not None else ''})"
    return loss


def fairseq_label_smoothed_nll_loss(lprobs: torch.Tensor, target: torch.Tensor, epsilon: float):
    """fairseq's ``label_smoothed_nll_loss`` (after PR #3182), summed over tokens.

    ``eps_i = epsilon / (K - 1)``;
    ``loss = (1 - epsilon - eps_i) * nll + eps_i * smooth`` with
    ``nll = -lprobs[target]`` and ``smooth = -sum_c lprobs_c``: the true class
    gets ``1 - epsilon``, every other class ``epsilon / (K - 1)`` (off_target).
    Returns ``(loss, nll_loss)``, both summed.
    """
    nll = -lprobs.gather(dim=-1, index=target.unsqueeze(-1)).squeeze(-1)
    smooth = -lprobs.sum(dim=-1)
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll + eps_i * smooth
    return loss.sum(), nll.sum()


def fairseq(eps: float):
    """fairseq's criterion: the summed loss divided by the number of tokens (its sample size)."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total, _ = fairseq_label_smoothed_nll_loss(F.log_softmax(logits, dim=-1), labels, eps)
        return total / labels.numel()

    loss.__qualname__ = f"fairseq(eps={eps})"
    return loss


class TimmLabelSmoothingCrossEntropy(torch.nn.Module):
    """timm's ``LabelSmoothingCrossEntropy(smoothing)``.

    ``loss = (1 - smoothing) * nll + smoothing * mean_c(-log q_c)``, averaged
    over the batch: uniform convention.
    """

    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        self.smoothing = smoothing
        self.confidence = 1.0 - smoothing

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logprobs = F.log_softmax(x, dim=-1)
        nll = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
        smooth = -logprobs.mean(dim=-1)
        return (self.confidence * nll + self.smoothing * smooth).mean()


class HuggingFaceLabelSmoother:
    """HuggingFace ``transformers`` ``LabelSmoother(epsilon, ignore_index=-100)``.

    ``nll`` summed over non-padded tokens / ``num_active``; ``smoothed`` is the
    sum over classes of ``-log q`` (in float32 at least) summed over non-padded
    tokens / ``(num_active * K)``; ``loss = (1 - eps) nll + eps smoothed``:
    uniform convention, padding excluded from both terms and the denominator.
    """

    def __init__(self, epsilon: float = 0.1, ignore_index: int = -100):
        self.epsilon = epsilon
        self.ignore_index = ignore_index

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_probs = -F.log_softmax(logits, dim=-1)
        labels = labels.unsqueeze(-1)
        padding_mask = labels.eq(self.ignore_index)
        safe_labels = torch.clamp(labels, min=0)
        nll = log_probs.gather(dim=-1, index=safe_labels)
        sum_dtype = torch.promote_types(log_probs.dtype, torch.float32)
        smoothed = log_probs.sum(dim=-1, keepdim=True, dtype=sum_dtype)
        nll = nll.masked_fill(padding_mask, 0.0)
        smoothed = smoothed.masked_fill(padding_mask, 0.0)
        num_active = padding_mask.numel() - padding_mask.long().sum()
        nll = nll.sum() / num_active
        smoothed = smoothed.sum() / (num_active * log_probs.shape[-1])
        return (1 - self.epsilon) * nll + self.epsilon * smoothed


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def keras_categorical_crossentropy(y_true: np.ndarray, y_pred: np.ndarray, *, label_smoothing: float = 0.0):
    """Keras ``categorical_crossentropy(y_true, y_pred, from_logits=True, label_smoothing=ls)``, per sample.

    ``y_true * (1 - ls) + ls / num_classes``, then ``-sum y_true log_softmax(y_pred)``.
    Computes in the dtype of ``y_pred`` (Keras' default is float32).
    """
    k = y_pred.shape[-1]
    y_true = y_true.astype(y_pred.dtype)
    y_true = y_true * (1 - label_smoothing) + label_smoothing / k
    return -np.sum(y_true * _log_softmax(y_pred), axis=-1)


def keras(eps: float, dtype=np.float32):
    """``keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=eps)`` on one-hot labels.

    The loss object's default reduction averages over the batch.
    """

    def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=dtype)
        one_hot = np.eye(logits.shape[-1], dtype=dtype)[np.asarray(labels)]
        per_sample = keras_categorical_crossentropy(one_hot, logits, label_smoothing=dtype(eps))
        return np.mean(per_sample, dtype=dtype)

    loss.__qualname__ = f"keras(eps={eps}, {np.dtype(dtype).name})"
    return loss


def optax_smooth_labels(labels: np.ndarray, alpha: float) -> np.ndarray:
    """optax ``smooth_labels``: ``(1 - alpha) * labels + alpha / num_categories``."""
    return (1.0 - alpha) * labels + alpha / labels.shape[-1]


def optax_softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """optax ``softmax_cross_entropy``: ``-sum(labels * log_softmax(logits), axis=-1)``, per sample."""
    return -np.sum(labels * _log_softmax(logits), axis=-1)


def optax(eps: float):
    """``softmax_cross_entropy(logits, smooth_labels(one_hot(labels), eps)).mean()`` in float64 NumPy."""

    def loss(logits: np.ndarray, labels: np.ndarray) -> float:
        logits = np.asarray(logits, dtype=np.float64)
        one_hot = np.eye(logits.shape[-1])[np.asarray(labels)]
        return float(np.mean(optax_softmax_cross_entropy(logits, optax_smooth_labels(one_hot, eps))))

    loss.__qualname__ = f"optax(eps={eps})"
    return loss


PUBLISHED = {
    "torch_builtin": (torch_builtin, "uniform"),
    "fairseq": (fairseq, "off_target"),
    "timm": (TimmLabelSmoothingCrossEntropy, "uniform"),
    "huggingface": (lambda eps: HuggingFaceLabelSmoother(eps), "uniform"),
    "keras_float32": (functools.partial(keras, dtype=np.float32), "uniform"),
    "keras_float64": (functools.partial(keras, dtype=np.float64), "uniform"),
    "optax": (optax, "uniform"),
}
"""Name -> (factory taking eps, convention)."""
