"""Deliberately broken label-smoothing losses, each a bug users have shipped.

Every factory takes ``eps`` (meant in the uniform convention, like PyTorch's
``label_smoothing``) and returns ``loss(logits, labels)``; each is caught by
:func:`lstheory.testing.assert_loss_matches_theory` through a real property of
its behaviour, not by recognising its code.  ``CAUSES`` maps each to the phrase
the failure message must contain.
"""

from __future__ import annotations

import torch.nn.functional as F


def _named(name: str, loss):
    loss.__qualname__ = name
    return loss


def mass_not_divided_by_k(eps: float):
    """``(1 - eps) * nll + eps * sum_c(-log q_c)``: the smoothing term lacks its ``/ K``."""

    def loss(logits, labels):
        logp = F.log_softmax(logits, dim=-1)
        nll = -logp.gather(1, labels[:, None])[:, 0]
        return ((1 - eps) * nll - eps * logp.sum(-1)).mean()

    return _named("mass_not_divided_by_k", loss)


def smoothing_applied_twice(eps: float):
    """Targets smoothed by the data pipeline, then smoothed again by the loss."""

    def loss(logits, labels):
        k = logits.shape[-1]
        soft = F.one_hot(labels, k).to(logits.dtype) * (1 - eps) + eps / k
        return F.cross_entropy(logits, soft, label_smoothing=eps)

    return _named("smoothing_applied_twice", loss)


def wrong_sign(eps: float):
    """``(1 - eps) * nll - (eps / K) * sum_c(-log q_c)``: the smoothing term is subtracted."""

    def loss(logits, labels):
        logp = F.log_softmax(logits, dim=-1)
        nll = -logp.gather(1, labels[:, None])[:, 0]
        return ((1 - eps) * nll + eps * logp.mean(-1)).mean()

    return _named("wrong_sign", loss)


def padding_counted_in_mean(eps: float, ignore_index: int = -100):
    """Like HuggingFace's ``LabelSmoother``, but dividing by N instead of the non-padded count."""

    def loss(logits, labels):
        logp = F.log_softmax(logits, dim=-1)
        padding = labels.eq(ignore_index)
        safe = labels.clamp(min=0)
        nll = (-logp.gather(1, safe[:, None])[:, 0]).masked_fill(padding, 0.0)
        smooth = (-logp.mean(-1)).masked_fill(padding, 0.0)
        return ((1 - eps) * nll + eps * smooth).sum() / labels.numel()

    return _named("padding_counted_in_mean", loss)


def mixed_conventions(eps: float):
    """``one_hot * (1 - eps) + (1 - one_hot) * eps / K``: off_target's label mass, uniform's elsewhere."""

    def loss(logits, labels):
        k = logits.shape[-1]
        one_hot = F.one_hot(labels, k).to(logits.dtype)
        target = one_hot * (1 - eps) + (1 - one_hot) * eps / k
        return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return _named("mixed_conventions", loss)


def focal(eps: float, gamma: float = 2.0):
    """Focal loss on smoothed targets: ``-sum_c t_c (1 - q_c)^gamma log q_c`` (Lin et al. 2017)."""

    def loss(logits, labels):
        k = logits.shape[-1]
        target = F.one_hot(labels, k).to(logits.dtype) * (1 - eps) + eps / k
        logp = F.log_softmax(logits, dim=-1)
        return -(target * (1 - logp.exp()) ** gamma * logp).sum(-1).mean()

    return _named("focal", loss)


def batch_label_histogram(eps: float):
    """Smoothing towards the batch's label frequencies instead of the uniform distribution."""

    def loss(logits, labels):
        k = logits.shape[-1]
        one_hot = F.one_hot(labels, k).to(logits.dtype)
        prior = one_hot.mean(0, keepdim=True)
        target = one_hot * (1 - eps) + eps * prior
        return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return _named("batch_label_histogram", loss)


BROKEN = {
    "mass_not_divided_by_k": mass_not_divided_by_k,
    "smoothing_applied_twice": smoothing_applied_twice,
    "wrong_sign": wrong_sign,
    "padding_counted_in_mean": padding_counted_in_mean,
    "mixed_conventions": mixed_conventions,
    "focal": focal,
    "batch_label_histogram": batch_label_histogram,
}

CAUSES = {
    "mass_not_divided_by_k": "the smoothing mass was not divided by K",
    "smoothing_applied_twice": "the smoothing was applied twice",
    "wrong_sign": "the smoothing term enters with the wrong sign",
    "padding_counted_in_mean": "padding counted in the mean",
    "mixed_conventions": "the two conventions are mixed",
    "focal": "not a cross-entropy against a fixed target",
    "batch_label_histogram": "the loss depends on other samples of the batch",
}
"""Name -> phrase the AssertionError must contain."""

__all__ = ["BROKEN", "CAUSES", *BROKEN]
