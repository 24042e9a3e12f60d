"""Torch level of the neural-collapse claims: gradient descent on the full unconstrained features model.

Every configuration (smoothing, convention, decays) of one shape (``K``, ``n``,
``d``) is stacked on a batch axis and descended together with autograd's
gradient (heavy-ball momentum, a fixed step), on the verification device.  The
objective is written here from its definition, independently of the closed form
and of the SciPy layer's hand-written gradient.

torch is imported only inside these functions, so the registry loads without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lstheory.closed_form import smoothed_target


@dataclass(frozen=True)
class UfmConfiguration:
    """One unconstrained-features problem: smoothing and the two decays."""

    eps: float
    convention: str
    classifier_decay: float
    feature_decay: float


@dataclass(frozen=True)
class DescentResult:
    """Per configuration: mean confidence, objective, largest gradient entry, mean row norm of ``W``, mean ``||h_i||``."""

    confidences: np.ndarray
    objectives: np.ndarray
    gradient_max: np.ndarray
    classifier_norms: np.ndarray
    feature_norms: np.ndarray


def descend_unconstrained_features(
    configurations: Sequence[UfmConfiguration],
    *,
    num_classes: int,
    samples_per_class: int,
    device: str = "cpu",
    seed: int = 0,
    steps: int = 3000,
    learning_rate: float = 0.5,
    momentum: float = 0.9,
) -> DescentResult:
    """Gradient descent (autograd, heavy-ball momentum) on ``B`` stacked problems at once.

    The tensors are tiny, so on the CPU the descent runs on one thread (restored afterwards): thread hand-offs
    would cost more than the arithmetic.
    """
    import torch

    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        return _descend(configurations, num_classes, samples_per_class, device, seed, steps, learning_rate, momentum)
    finally:
        torch.set_num_threads(threads)


def _descend(configurations, k, n, device, seed, steps, learning_rate, momentum) -> DescentResult:
    import torch

    batch = len(configurations)
    count = n * k
    options = dict(dtype=torch.float64, device=device)
    labels = torch.arange(k, device=device).repeat_interleave(n)
    masses = [smoothed_target(k, c.eps, convention=c.convention) for c in configurations]
    targets = torch.tensor([[float(other)] * k for _, other in masses], **options)[:, None, :].repeat(1, count, 1)
    targets[:, torch.arange(count), labels] = torch.tensor([float(true) for true, _ in masses], **options)[:, None]
    decay_w = torch.tensor([c.classifier_decay for c in configurations], **options)
    decay_h = torch.tensor([c.feature_decay for c in configurations], **options)
    generator = torch.Generator().manual_seed(seed)
    classifier = torch.randn(batch, k, k, generator=generator, dtype=torch.float64).to(device).requires_grad_()
    features = torch.randn(batch, k, count, generator=generator, dtype=torch.float64).to(device).requires_grad_()
    bias = torch.zeros(batch, k, **options).requires_grad_()
    parameters = [classifier, features, bias]
    optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum)

    def objective() -> torch.Tensor:
        logits = torch.bmm(classifier, features).transpose(1, 2) + bias[:, None, :]
        data = -(targets * torch.log_softmax(logits, dim=2)).sum(dim=2).mean(dim=1)
        return data + decay_w / 2 * classifier.pow(2).sum(dim=(1, 2)) + decay_h / 2 * features.pow(2).sum(dim=(1, 2))

    for _ in range(steps):
        optimizer.zero_grad()
        objective().sum().backward()
        optimizer.step()
    optimizer.zero_grad()
    values = objective()
    values.sum().backward()
    with torch.no_grad():
        logits = torch.bmm(classifier, features).transpose(1, 2) + bias[:, None, :]
        confidence = torch.softmax(logits, dim=2)[:, torch.arange(count), labels].mean(dim=1)
        gradient_max = torch.stack([p.grad.abs().flatten(1).max(dim=1).values for p in parameters]).max(dim=0).values
        norms = (classifier.norm(dim=2).mean(dim=1), features.norm(dim=1).mean(dim=1))
    return DescentResult(*(t.detach().cpu().numpy() for t in (confidence, values, gradient_max, *norms)))
