"""Argument checking shared by every public function.

Every error names the argument, the value given and the valid range, so that a
bad call never turns into a silent NaN further down.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

CONVENTIONS: tuple[str, ...] = ("off_target", "uniform")
"""The two label-smoothing conventions, in the order the docs list them."""

MAX_NUM_CLASSES = 2**53
"""Largest class count handled exactly: every integer up to it is a float64."""


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return f"array of dtype {value.dtype} and shape {value.shape}"
    return f"{value!r} ({type(value).__name__})"


_UNIFORM = "use 'uniform' (true class 1 - eps + eps/K, every other class eps/K)"
_OFF_TARGET = "use 'off_target' (true class 1 - eps, every other class eps/(K-1))"
_FAIRSEQ = (
    "fairseq's label_smoothed_cross_entropy depends on the version: up to v0.10.2 it is 'uniform' "
    "(eps_i = eps/K); from commit 791ab7c (PR #3182, February 2021; releases v0.12.0 and later) it is "
    "'off_target' (eps_i = eps/(K-1))"
)
FRAMEWORK_CONVENTIONS: dict[str, str] = {
    **dict.fromkeys(("pytorch", "torch"), f"PyTorch's cross_entropy(label_smoothing=eps) is uniform: {_UNIFORM}"),
    **dict.fromkeys(("keras", "tensorflow", "tf", "tfkeras"),
                    f"Keras' CategoricalCrossentropy(label_smoothing=eps) is uniform: {_UNIFORM}"),
    "optax": f"optax.smooth_labels is uniform: {_UNIFORM}",
    "timm": f"timm's LabelSmoothingCrossEntropy is uniform: {_UNIFORM}",
    **dict.fromkeys(("huggingface", "hf", "transformers"),
                    f"HuggingFace's Trainer (label_smoothing_factor, LabelSmoother) is uniform: {_UNIFORM}"),
    "fairseq": _FAIRSEQ,
    **dict.fromkeys(("megatron", "megatronlm", "megatroncore"),
                    "Megatron-LM's vocab-parallel cross-entropy rescales eps by K/(K-1), which is off_target: "
                    f"{_OFF_TARGET}; K is the vocabulary size one tensor-parallel rank sees"),
}
"""Framework names a user may pass as a convention (lower-case, letters and digits only): what to use instead."""


def check_convention(convention: Any, name: str = "convention") -> str:
    """Return ``convention`` if it names a known convention, else raise."""
    if not isinstance(convention, str):
        raise TypeError(
            f"{name} must be a string, one of {', '.join(map(repr, CONVENTIONS))}; "
            f"got {_describe(convention)}"
        )
    if convention not in CONVENTIONS:
        framework = FRAMEWORK_CONVENTIONS.get("".join(ch for ch in convention.lower() if ch.isalnum()))
        hint = f"; that is a framework, not a convention: {framework}" if framework else ""
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, CONVENTIONS))}; got {convention!r}{hint}"
        )
    return convention


def as_num_classes(num_classes: Any, name: str = "num_classes") -> np.ndarray:
    """Validate a class count (scalar or integer array) and return it as float64.

    Valid: integers (Python or NumPy, not bool) with ``2 <= K <= 2**53``.
    """
    valid = f"an integer with 2 <= {name} <= 2**53"
    if isinstance(num_classes, (bool, np.bool_)):
        raise TypeError(f"{name} must be {valid}; got {num_classes!r} (bool)")
    if isinstance(num_classes, numbers.Integral):
        value = int(num_classes)
        if not 2 <= value <= MAX_NUM_CLASSES:
            raise ValueError(f"{name} must be {valid}; got {value}")
        return np.asarray(float(value))
    array = np.asarray(num_classes) if not isinstance(num_classes, str) else None
    if array is None or array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(num_classes)}")
    bad = (array < 2) | (array > MAX_NUM_CLASSES)
    if np.any(bad):
        raise ValueError(f"{name} must be {valid}; got {array[bad].flat[0].item()!r} in {_describe(array)}")
    return array.astype(np.float64)


def as_eps(eps: Any, name: str = "eps") -> np.ndarray:
    """Validate a smoothing strength (scalar or real array) in ``[0, 1]``; return float64."""
    valid = f"a real number with 0 <= {name} <= 1"
    if isinstance(eps, (bool, np.bool_)):
        raise TypeError(f"{name} must be {valid}; got {eps!r} (bool)")
    if isinstance(eps, str) or eps is None:
        raise TypeError(f"{name} must be {valid}; got {_describe(eps)}")
    if isinstance(eps, numbers.Integral) and not 0 <= int(eps) <= 1:
        shown = repr(int(eps)) if abs(int(eps)) < 10**20 else f"an integer of {len(str(abs(int(eps))))} digits"
        raise ValueError(f"{name} must be {valid}; got {shown}")
    try:
        array = np.asarray(eps)
    except Exception as error:  # ragged lists and similar
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(eps)}") from error
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(eps)}")
    array = array.astype(np.float64)
    bad = ~((array >= 0.0) & (array <= 1.0))  # NaN fails both comparisons
    if np.any(bad):
        shown = array[bad].flat[0].item() if array.ndim else array.item()
        where = f" in {_describe(np.asarray(eps))}" if array.ndim else ""
        raise ValueError(f"{name} must be {valid}; got {shown!r}{where}")
    return array


def as_finite_real(value: Any, name: str) -> np.ndarray:
    """Validate a finite real scalar or array (e.g. the gauge ``alpha``)."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str) or value is None:
        raise TypeError(f"{name} must be a finite real number; got {_describe(value)}")
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a finite real number; got {_describe(value)}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return array


def check_label(label: Any, num_classes: int, name: str = "label") -> int:
    """Validate a class index ``0 <= label < num_classes``."""
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, numbers.Integral):
        raise TypeError(f"{name} must be an integer with 0 <= {name} < {num_classes}; got {_describe(label)}")
    if not 0 <= int(label) < num_classes:
        raise ValueError(f"{name} must satisfy 0 <= {name} < num_classes={num_classes}; got {int(label)}")
    return int(label)


def broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast named arrays; a mismatch names every argument and its shape."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} with shape {np.shape(a)}" for name, a in arrays.items())
        raise ValueError(f"arguments do not broadcast together: {shapes}") from None


def scalar_or_array(result: np.ndarray, *inputs: np.ndarray) -> np.ndarray | np.float64:
    """Return a NumPy scalar when every input was 0-d, like a ufunc."""
    if all(np.ndim(x) == 0 for x in inputs):
        return result[()]
    return result
