"""Probe logits: random, on a grid exact in every float dtype, and cheap to evaluate the model at.

Every probe logit is a multiple of ``GRID = 2**-6`` in ``[-4, 4)``: at most
8 significant bits, so bfloat16, float16, float32 and float64 all hold it
exactly, and the number a loss sees is the number the model is evaluated at.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GRID", "LOGIT_RANGE", "lse", "softmax", "random_logits", "nonzero_logits"]

GRID = 2.0**-6
LOGIT_RANGE = 4.0
_STEPS = int(LOGIT_RANGE / GRID)


def lse(z: np.ndarray) -> np.ndarray:
    """``log sum_c exp(z_c)`` over the last axis, stable."""
    top = np.max(z, axis=-1, keepdims=True)
    return (top + np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True)))[..., 0]


def softmax(z: np.ndarray) -> np.ndarray:
    """``softmax(z)`` over the last axis."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def random_logits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform random multiples of ``GRID`` in ``[-4, 4)`` (float64, exact in bfloat16)."""
    return rng.integers(-_STEPS, _STEPS, size=shape).astype(np.float64) * GRID


def nonzero_logits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Like :func:`random_logits` but never 0, so that every class's target shows in ``t . z``."""
    steps = rng.integers(1, _STEPS, size=shape) * rng.choice([-1, 1], size=shape)
    return steps.astype(np.float64) * GRID
