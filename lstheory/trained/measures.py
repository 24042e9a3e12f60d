r"""What the trained claims measure: gaps, calibration, temperature scaling, cluster spread.

Every function takes torch tensors (float64 logits or features, int64 labels)
and returns plain Python numbers or dicts (JSON-ready).
"""

from __future__ import annotations

import math

import numpy as np

CALIBRATION_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Müller et al. 2019, Table 3; Guo et al. 2017)."""


def mean_logit_gap(logits, labels) -> float:
    """Mean over samples of ``z_y - mean_{i != y} z_i``."""
    k = logits.shape[1]
    true_logit = logits.gather(1, labels[:, None])[:, 0]
    return float(((k * true_logit - logits.sum(dim=1)) / (k - 1)).mean())


def reliability_diagram(logits, labels, bins: int = CALIBRATION_BINS) -> dict:
    r"""Per confidence bin ``(b/B, (b+1)/B]``: the count, the accuracy and the mean confidence of its samples.

    The confidence is ``max_k softmax(z)_k``; a sample is correct when that class is its label.
    Empty bins have ``accuracy`` and ``confidence`` ``None``.
    """
    import torch

    probabilities = torch.softmax(logits, dim=1)
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    index = torch.clamp(torch.ceil(confidence * bins).long() - 1, 0, bins - 1)
    counts, accuracies, confidences = [], [], []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        counts.append(count)
        accuracies.append(float(correct[members].mean()) if count else None)
        confidences.append(float(confidence[members].mean()) if count else None)
    return {"bins": bins, "counts": counts, "accuracy": accuracies, "confidence": confidences,
            "overall_accuracy": float(correct.mean()), "mean_confidence": float(confidence.mean())}


def expected_calibration_error(logits, labels, bins: int = CALIBRATION_BINS) -> float:
    r"""``ECE = sum_b (n_b / N) |accuracy_b - confidence_b|`` over equal-width confidence bins.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    >>> labels = torch.tensor([0, 1, 1, 0])
    >>> # all four in the bin (1/2, 1]: accuracy 3/4, mean confidence (3 sigmoid(2) + sigmoid(3))/4 = 0.8987
    >>> print(f"{expected_calibration_error(logits, labels, bins=2):.4f}")
    0.1487
    """
    diagram = reliability_diagram(logits, labels, bins)
    total = sum(diagram["counts"])
    return float(sum(n / total * abs(a - c) for n, a, c in zip(diagram["counts"], diagram["accuracy"], diagram["confidence"])
                     if n))


def fit_temperature(logits, labels) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``softmax(z / T)`` (SciPy, ``log T`` in [-3, 3])."""
    import scipy.optimize
    import torch

    def negative_log_likelihood(log_temperature: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / math.exp(log_temperature), labels))

    result = scipy.optimize.minimize_scalar(negative_log_likelihood, bounds=(-3.0, 3.0), method="bounded",
                                            options={"xatol": 1e-8})
    return float(math.exp(result.x))


def spread_ratio(features, labels) -> float:
    r"""Within-class over between-class spread: ``sum_i ||f_i - mu_{y_i}||^2 / sum_i ||mu_{y_i} - mu||^2``.

    Small when the classes form tight, well-separated clusters (Müller et al. 2019, sec. 2, Fig. 1).
    """
    features = features.detach()
    overall = features.mean(dim=0)
    within, between = 0.0, 0.0
    for label in labels.unique():
        members = features[labels == label]
        centre = members.mean(dim=0)
        within += float(((members - centre) ** 2).sum())
        between += members.shape[0] * float(((centre - overall) ** 2).sum())
    return within / between


def accuracy(logits, labels) -> float:
    return float((logits.argmax(dim=1) == labels).double().mean())


def mean_true_class_confidence(logits, labels) -> tuple[float, float]:
    """Mean and standard deviation over samples of ``softmax(z)_y``."""
    import torch

    confidence = torch.softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    return float(confidence.mean()), float(confidence.std())


def mean_and_spread(values) -> dict:
    """``{"mean", "min", "max"}`` of a list of floats (the per-seed figures)."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max())}
