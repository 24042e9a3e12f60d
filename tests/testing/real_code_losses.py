"""Label-smoothing losses of the kinds real code has, written here from each project's documented behaviour.

Nothing is copied: each function restates a formula.

* KL form (the Annotated Transformer, OpenNMT-py, ESPnet, Flax's WMT example):
  ``KL(t || softmax(z)) = CE(t, z) + sum t log t``, with the padding class
  given no mass and padded samples masked (Annotated Transformer, OpenNMT-py:
  ``eps / (K - 2)`` on every class but the label and the padding class).
* fairseq (``padding_idx``): the padding class keeps its smoothing mass like
  any other class; padded samples contribute 0; the sum is divided by the
  number of non-padding tokens.
* OpenNMT-py's default ``ignore_index=-100``: zeroing ``one_hot[ignore_index]``
  with a negative index zeroes class ``K - 100``.
* timm's ``mixup_target``: targets built as float32 constants
  ``off = eps / K``, ``on = 1 - eps + off``, used inside a float64 loss.
* broken losses: a log-prob loss fed raw logits (linear), ``-CE``, dropout on
  the logits, temperature on one label only.
* approximate cross-entropies: ``log(softmax(z) + delta)`` (common in home-made
  losses), a softmax from ``exp(z + 1e-12)``, a clamped probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_smoothed(eps: float, pad: int | None = None):
    """KL divergence to a smoothed target; with ``pad``: no mass on the padding class, padded rows masked."""

    def loss(logits, labels):
        k = logits.shape[-1]
        others = k - 1 if pad is None else k - 2
        target = torch.full_like(logits, eps / others)
        target.scatter_(1, labels.clamp(min=0)[:, None], 1 - eps)
        if pad is not None:
            target[:, pad] = 0.0
            keep = labels != pad
        else:
            keep = torch.ones_like(labels, dtype=torch.bool)
        per_sample = F.kl_div(F.log_softmax(logits, -1), target, reduction="none").sum(-1)
        return per_sample[keep].sum() / keep.sum()

    loss.__qualname__ = f"kl_smoothed(eps={eps}, pad={pad})"
    return loss


def fairseq_padding(eps: float, pad: int):
    """fairseq: eps/(K-1) off target (off_target), padding class smoothed, padded tokens out of sum and count."""

    def loss(logits, labels):
        lprobs = F.log_softmax(logits, -1)
        k = logits.shape[-1]
        nll = -lprobs.gather(1, labels[:, None])[:, 0]
        smooth = -lprobs.sum(-1)
        each = eps / (k - 1)
        per_sample = (1 - eps - each) * nll + each * smooth
        keep = labels != pad
        return per_sample.masked_fill(~keep, 0.0).sum() / keep.sum()

    loss.__qualname__ = f"fairseq_padding(eps={eps}, pad={pad})"
    return loss


def opennmt_default_ignore(eps: float, pad: int):
    """OpenNMT-py's smoothed target with the default ignore_index=-100: class K-100 is zeroed too."""

    def loss(logits, labels):
        k = logits.shape[-1]
        target = torch.full_like(logits, eps / (k - 2))
        target[:, pad] = 0.0
        target[:, -100] = 0.0  # one_hot[ignore_index] = 0 with ignore_index = -100
        target.scatter_(1, labels[:, None], 1 - eps)
        keep = labels != pad
        per_sample = F.kl_div(F.log_softmax(logits, -1), target, reduction="none").sum(-1)
        return per_sample[keep].sum() / keep.sum()

    return loss


def float32_constants(eps: float):
    """timm-style mixup_target: float32 on/off values, a float64 loss."""

    def loss(logits, labels):
        k = logits.shape[-1]
        off = eps / k
        target = torch.full((len(labels), k), off, dtype=torch.float32)
        target.scatter_(1, labels[:, None], 1 - eps + off)
        return torch.sum(-target.to(logits.dtype) * F.log_softmax(logits, -1), -1).mean()

    return loss


def log_prob_loss_given_logits(eps: float):
    """A loss written for log-probabilities, called with raw logits: linear in z."""

    def loss(logits, labels):
        k = logits.shape[-1]
        target = torch.full_like(logits, eps / k)
        target.scatter_(1, labels[:, None], 1 - eps + eps / k)
        return -(target * logits).sum(-1).mean()

    return loss


def negated(eps: float):
    def loss(logits, labels):
        return -F.cross_entropy(logits, labels, label_smoothing=eps)

    return loss


def dropout_logits(eps: float, p: float = 0.001):
    def loss(logits, labels):
        return F.cross_entropy(F.dropout(logits, p=p, training=True), labels, label_smoothing=eps)

    return loss


def one_label_broken(eps: float, label: int = 6, temperature: float = 1.05):
    """Temperature applied to the logits of samples of one label only."""

    def loss(logits, labels):
        scale = torch.where(labels == label, 1.0 / temperature, 1.0).to(logits.dtype)
        return F.cross_entropy(logits * scale[:, None], labels, label_smoothing=eps)

    return loss


def _uniform_target(logits, labels, eps):
    k = logits.shape[-1]
    target = torch.full_like(logits, eps / k)
    return target.scatter_(1, labels[:, None], 1 - eps + eps / k)


def log_softmax_plus_delta(eps: float, delta: float = 1e-8):
    """``-sum t log(softmax(z) + delta)``: off the cross-entropy by about ``t . delta / q``."""

    def loss(logits, labels):
        return -(_uniform_target(logits, labels, eps) * torch.log(torch.softmax(logits, -1) + delta)).sum(-1).mean()

    loss.__qualname__ = f"log_softmax_plus_delta(eps={eps}, delta={delta})"
    return loss


def softmax_of_shifted_exp(eps: float, shift: float = 1e-12):
    """The softmax written out as ``exp(z + shift) / sum exp(z + shift)``: the shift cancels."""

    def loss(logits, labels):
        e = torch.exp(logits + shift)
        return -(_uniform_target(logits, labels, eps) * torch.log(e / e.sum(-1, keepdim=True))).sum(-1).mean()

    return loss


def clamped_probability(eps: float, floor: float):
    """``-sum t log(max(softmax(z), floor))``: no gradient for a class whose probability is below ``floor``."""

    def loss(logits, labels):
        return -(_uniform_target(logits, labels, eps) * torch.log(torch.softmax(logits, -1).clamp(min=floor))).sum(-1).mean()

    return loss
