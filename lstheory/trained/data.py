"""scikit-learn's digits, split once: a balanced training set, a validation set, a test set."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

TRAIN_PER_CLASS = 100
"""Training samples per class: balanced, as the unconstrained features model assumes (``n = 100``)."""
VALIDATION_PER_CLASS = 30
"""Held out per class to fit temperature scaling; the remaining 497 images are the test set."""
SPLIT_SEED = 0
NUM_CLASSES = 10
INSTALL_HINT = "the trained level needs scikit-learn (its bundled digits data set): pip install 'lstheory[trained]'"


def scikit_learn_available() -> bool:
    """Whether scikit-learn can be imported (the trained level needs it)."""
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class DigitsSplit:
    """Float64 images scaled to ``[0, 1]`` (``(n, 64)``) and int64 labels, as torch tensors."""

    train_x: Any
    train_y: Any
    validation_x: Any
    validation_y: Any
    test_x: Any
    test_y: Any


@lru_cache(maxsize=None)
def load_digits_split(seed: int = SPLIT_SEED) -> DigitsSplit:
    """The digits split: per class, a seeded permutation gives 100 training, 30 validation, the rest test images.

    Raises ``ImportError`` naming the extra when scikit-learn is missing.

    Examples
    --------
    >>> split = load_digits_split()  # doctest: +SKIP
    >>> tuple(split.train_x.shape), tuple(split.test_x.shape)  # doctest: +SKIP
    ((1000, 64), (497, 64))
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    import torch

    digits = load_digits()
    images, labels = digits.data / 16.0, digits.target
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for label in range(NUM_CLASSES):
        order = rng.permutation(np.flatnonzero(labels == label))
        cut = TRAIN_PER_CLASS + VALIDATION_PER_CLASS
        for part, chosen in zip(parts, (order[:TRAIN_PER_CLASS], order[TRAIN_PER_CLASS:cut], order[cut:])):
            part.extend(chosen.tolist())

    def tensors(indices):
        return torch.tensor(images[indices], dtype=torch.float64), torch.tensor(labels[indices], dtype=torch.int64)

    return DigitsSplit(*tensors(parts[0]), *tensors(parts[1]), *tensors(parts[2]))
