"""Argument checking shared by every public function.

Every error names the argument, the value given and the valid range, so that a
bad call never turns into a silent NaN further down.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from typing import Any

import numpy as np

CONVENTIONS: tuple[str, ...] = ("off_target", "uniform")
"""The two label-smoothing conventions, in the order the docs list them."""

MAX_NUM_CLASSES = 2**53
"""Largest class count handled exactly: every integer up to it is a float64."""


class ResultTooLargeError(ValueError, MemoryError):
    """A valid request whose result cannot be allocated; the message says how many bytes it needs.

    Both a :class:`ValueError` (the argument is the cause) and a :class:`MemoryError` (what
    code that catches allocation failures expects).
    """


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return f"array of dtype {value.dtype} and shape {value.shape}"
    if _is_tensor(value):
        return f"tensor of dtype {value.dtype} and shape {tuple(value.shape)} on {value.device}"
    return f"{reprlib.repr(value)} ({type(value).__name__})"


def _is_tensor(value: Any) -> bool:
    """A torch tensor, recognised without importing torch (the closed forms must not need it)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "requires_grad")


def is_integer_scalar(value: Any) -> bool:
    """A Python or NumPy integer; not a bool, not a ``timedelta64`` (which NumPy files under integers)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_, np.timedelta64))


def is_real_scalar(value: Any) -> bool:
    """A Python or NumPy real number (``Fraction`` included); not a bool, not a ``timedelta64``."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_, np.timedelta64))


def _from_tensor(value: Any, name: str) -> Any:
    """A torch tensor becomes a NumPy array holding its exact values; one that requires grad is refused.

    lstheory's closed forms are constants of ``eps`` and ``K``, not differentiable functions: a
    tensor that requires grad would lose its graph silently, so it is an error.
    """
    if not _is_tensor(value):
        return value
    if value.requires_grad:
        raise TypeError(
            f"{name} is a tensor that requires grad ({_describe(value)}); lstheory does not "
            f"differentiate with respect to {name}: pass {name}.detach() (or a Python number)"
        )
    tensor = value.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.double()  # exact: every float dtype embeds in float64 (numpy has no bfloat16)
    return tensor.numpy()


def as_array(value: Any, name: str, valid: str) -> np.ndarray:
    """``np.asarray(value)`` for a number, a tensor or a (nested) sequence; a ragged list is an error."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be {valid}; got {_describe(value)}")
    value = _from_tensor(value, name)
    try:
        return np.asarray(value)
    except (ValueError, TypeError, RuntimeError, OverflowError) as error:  # ragged lists and similar
        raise TypeError(
            f"{name} must be {valid} (or a rectangular array of them); got {_describe(value)}"
        ) from error


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


def describe_integer(value: int) -> str:
    """An integer as typed, or its size when it is too long to print."""
    return repr(value) if abs(value) < 10**40 else f"an integer of {len(str(abs(value)))} digits"


def _as_single_number(value: Any, name: str, valid: str, is_scalar, kinds: str, convert):
    """``convert(value)`` for a scalar passing ``is_scalar`` or a 0-d array or tensor of a dtype in ``kinds``."""
    if is_scalar(value):
        return convert(value)
    if isinstance(value, np.ndarray) or _is_tensor(value):
        array = as_array(value, name, valid)
        if array.ndim == 0 and array.dtype.kind in kinds:
            return convert(array)
    raise TypeError(f"{name} must be {valid}; got {_describe(value)}")


def as_integer(value: Any, name: str, valid: str) -> int:
    """A single integer: a Python or NumPy integer, or a 0-d integer array or tensor."""
    return _as_single_number(value, name, valid, is_integer_scalar, "iu", int)


def as_real(value: Any, name: str, valid: str) -> float:
    """A single real number as a float: a Python or NumPy real, or a 0-d real array or tensor."""
    return _as_single_number(value, name, valid, is_real_scalar, "iuf", float)


def as_num_classes(num_classes: Any, name: str = "num_classes") -> np.ndarray:
    """Validate a class count (scalar or integer array) and return it as float64.

    Valid: integers (Python or NumPy, not bool; integer arrays and tensors) with
    ``2 <= K <= 2**53``.
    """
    valid = f"an integer with 2 <= {name} <= 2**53"
    if is_integer_scalar(num_classes):
        value = int(num_classes)
        if not 2 <= value <= MAX_NUM_CLASSES:
            raise ValueError(f"{name} must be {valid}; got {describe_integer(value)}")
        return np.asarray(float(value))
    if isinstance(num_classes, (bool, np.bool_)):
        raise TypeError(f"{name} must be {valid}; got {num_classes!r} (bool)")
    array = as_array(num_classes, name, valid)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(num_classes)}")
    bad = (array < 2) | (array > MAX_NUM_CLASSES)
    if np.any(bad):
        raise ValueError(f"{name} must be {valid}; got {array[bad].flat[0].item()!r} in {_describe(array)}")
    return array.astype(np.float64)


def as_eps(eps: Any, name: str = "eps") -> np.ndarray:
    """Validate a smoothing strength (scalar or real array) in ``[0, 1]``; return float64.

    A tensor is read exactly (a float32 ``0.1`` stays ``0.10000000149011612``); ``-0.0``
    becomes ``+0.0``.
    """
    valid = f"a real number with 0 <= {name} <= 1"
    if isinstance(eps, (bool, np.bool_)):
        raise TypeError(f"{name} must be {valid}; got {eps!r} (bool)")
    if is_integer_scalar(eps) and not 0 <= int(eps) <= 1:
        raise ValueError(f"{name} must be {valid}; got {describe_integer(int(eps))}")
    array = as_array(eps, name, valid)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(eps)}")
    array = array.astype(np.float64)
    bad = ~((array >= 0.0) & (array <= 1.0))  # NaN fails both comparisons
    if np.any(bad):
        shown = array[bad].flat[0].item() if array.ndim else array.item()
        where = f" in {_describe(np.asarray(array))}" if array.ndim else ""
        raise ValueError(f"{name} must be {valid}; got {shown!r}{where}")
    array += 0.0  # -0.0 + 0.0 = +0.0: no negative zero reaches a result
    return array


def as_finite_real(value: Any, name: str) -> np.ndarray:
    """Validate a finite real scalar or array (e.g. the gauge ``alpha``)."""
    valid = "a finite real number"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {valid}; got {_describe(value)}")
    array = as_array(value, name, valid)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {valid} (or an array of them); got {_describe(value)}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        shown = array[~np.isfinite(array)].flat[0].item()
        raise ValueError(f"{name} must be {valid} (or an array of them); got {shown!r}")
    return array


def check_label(label: Any, num_classes: int, name: str = "label") -> int:
    """Validate a class index ``0 <= label < num_classes`` (an integer, or a 0-d integer array or tensor)."""
    value = as_integer(label, name, f"an integer with 0 <= {name} < {num_classes}")
    if not 0 <= value < num_classes:
        raise ValueError(f"{name} must satisfy 0 <= {name} < num_classes={num_classes}; got {describe_integer(value)}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int:
    """Validate a random seed: an integer ``>= 0`` (what ``numpy.random.default_rng`` accepts)."""
    value = as_integer(seed, name, "an integer >= 0")
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {describe_integer(value)}")
    return value


def _format_bytes(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.4g} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def check_size(num_elements: int, cause: str, hint: str = "") -> None:
    """Refuse a float64 result of ``num_elements`` larger than the machine's physical memory.

    :class:`ResultTooLargeError` names ``cause`` and the bytes needed (an over-committing OS
    would otherwise grant the allocation and then run out while filling it).
    """
    nbytes = num_elements * 8
    memory = _physical_memory()
    if memory is not None and nbytes > memory:
        raise ResultTooLargeError(
            f"{cause}: it would need {_format_bytes(nbytes)} of float64 values; this machine has "
            f"{_format_bytes(memory)} of memory{hint}"
        )


def allocate(shape: tuple[int, ...], cause: str, hint: str = "") -> np.ndarray:
    """An empty float64 array, or :class:`ResultTooLargeError` naming ``cause`` and the bytes needed."""
    check_size(math.prod(shape), f"{cause} (a float64 array of shape {shape})", hint)
    try:
        return np.empty(shape, dtype=np.float64)
    except MemoryError:
        nbytes = _format_bytes(math.prod(shape) * 8)
        raise ResultTooLargeError(f"{cause}: a float64 array of shape {shape} would need {nbytes}{hint}") from None


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


def as_positive_integer(value: Any, name: str) -> int:
    """Validate a single integer ``>= 1`` (Python or NumPy, or a 0-d integer array or tensor; not bool)."""
    number = as_integer(value, name, "a single integer >= 1")
    if number < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {describe_integer(number)}")
    return number


def as_positive_finite(value: Any, name: str) -> float:
    """Validate a single finite real number ``> 0`` (e.g. a weight decay)."""
    valid = "a single finite real number > 0"
    number = as_real(value, name, valid)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be {valid}; got {number!r}")
    return number
