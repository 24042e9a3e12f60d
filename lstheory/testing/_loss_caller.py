"""Call a user's loss on float64 logits, whatever framework and dtype it works in.

A loss under test is any callable ``loss_fn(logits, labels) -> scalar`` with
``logits`` of shape ``(N, K)`` and integer ``labels`` of shape ``(N,)``.
:class:`LossCaller` finds out, by trying, whether it takes torch tensors or
NumPy arrays, in float64 or only float32, and whether autograd reaches
through it; afterwards every probe goes through :meth:`LossCaller.evaluate`,
which takes float64 logits that are exactly representable in the loss's
input dtype (see :meth:`LossCaller.representable`), so the number the loss
sees is the number the theory is evaluated at.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# Order of the attempts: the most informative first (float64 with autograd).
_ATTEMPTS: tuple[tuple[str, str, bool], ...] = (
    ("torch", "float64", True),
    ("torch", "float64", False),
    ("torch", "float32", True),
    ("torch", "float32", False),
    ("numpy", "float64", False),
    ("numpy", "float32", False),
)

# Machine epsilon of the dtypes a loss may compute in.
PRECISION_LEVELS: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
}


class LossCallError(ValueError):
    """The loss raised, or returned something that is not a finite scalar."""


def callable_name(loss_fn: Any) -> str:
    """A short readable name for a loss callable (for reports and messages)."""
    for attribute in ("__qualname__", "__name__"):
        name = getattr(loss_fn, attribute, None)
        if isinstance(name, str):
            return name
    func = getattr(loss_fn, "func", None)  # functools.partial
    if func is not None:
        return f"partial({callable_name(func)})"
    return type(loss_fn).__name__


def _dtype_name(value: Any) -> str | None:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    name = str(dtype).replace("torch.", "")
    return name if name in PRECISION_LEVELS else None


@dataclass
class LossCaller:
    """A loss callable together with the way it must be called.

    Attributes
    ----------
    loss_fn : callable
        The user's ``loss_fn(logits, labels)``.
    num_classes : int
        ``K``; logits passed are ``(N, K)``.
    backend : {"torch", "numpy"}
        What the loss accepts.
    input_dtype : {"float64", "float32"}
        The dtype of the logits it is given.
    output_dtype : str or None
        The dtype of its result (``None`` for a Python float).
    autograd : bool
        Whether ``torch.autograd`` reaches the logits through the loss.
    calls : int
        Number of calls made so far (for tests of the probing cost).
    """

    loss_fn: Callable[..., Any]
    num_classes: int
    backend: str = "torch"
    input_dtype: str = "float64"
    output_dtype: str | None = None
    autograd: bool = False
    calls: int = 0

    @classmethod
    def detect(cls, loss_fn: Callable[..., Any], num_classes: int) -> "LossCaller":
        """Find how ``loss_fn`` can be called; raise ``TypeError`` if no way works."""
        if not callable(loss_fn):
            raise TypeError(
                f"loss_fn must be a callable loss_fn(logits, labels) -> scalar; got {loss_fn!r}"
            )
        probe = np.stack([np.linspace(-1.0, 1.0, num_classes), np.linspace(0.5, -0.5, num_classes)])
        labels = np.array([0, 1])
        errors: list[str] = []
        for backend, dtype, autograd in _ATTEMPTS:
            if backend == "torch" and not _torch_available():
                continue
            caller = cls(loss_fn, num_classes, backend, dtype, None, autograd)
            try:
                with warnings.catch_warnings():
                    # e.g. "converting a tensor with requires_grad=True to a scalar": our probe's doing
                    warnings.simplefilter("ignore")
                    value, grad, out_dtype = caller._call(probe, labels, want_grad=autograd)
            except Exception as error:  # any failure means: try the next way
                errors.append(f"{backend} {dtype}: {type(error).__name__}: {error}")
                continue
            if autograd and grad is None:
                continue  # it ran, but autograd does not reach: the no-grad attempt follows
            if backend == "torch" and not _returns_tensor(loss_fn, probe, num_classes, dtype):
                # A NumPy loss that happens to accept tensors: call it the NumPy way.
                numpy_caller = cls(loss_fn, num_classes, "numpy", dtype)
                try:
                    _, _, numpy_dtype = numpy_caller._call(probe, labels, want_grad=False)
                except Exception:
                    pass
                else:
                    caller, out_dtype = numpy_caller, numpy_dtype
            caller.output_dtype = out_dtype
            caller.calls = 0
            return caller
        unique = list(dict.fromkeys(error.split(": ", 1)[1] for error in errors))  # keeps order
        detail = "; ".join(unique[:3]) if unique else "no attempt could run"
        raise TypeError(
            f"loss_fn ({callable_name(loss_fn)}) could not be called as loss_fn(logits, labels) -> "
            f"finite scalar, with logits of shape (2, {num_classes}) as a float64 or float32 torch "
            f"tensor or NumPy array and integer labels of shape (2,); errors: {detail}"
        )

    @property
    def precision(self) -> float:
        """Machine epsilon of the coarser of the input and output dtypes."""
        levels = [PRECISION_LEVELS[self.input_dtype]]
        if self.output_dtype is not None:
            levels.append(PRECISION_LEVELS[self.output_dtype])
        return max(levels)

    def representable(self, logits: np.ndarray) -> np.ndarray:
        """``logits`` rounded to the loss's input dtype, returned as float64."""
        return np.asarray(logits, dtype=np.float64).astype(self.input_dtype).astype(np.float64)

    def evaluate(self, logits: np.ndarray, labels: Any, *, grad: bool = False) -> tuple[float, np.ndarray | None]:
        """The loss at ``logits`` (float64, ``(N, K)``) and, if asked and available, its gradient.

        Raises :class:`LossCallError` when the loss raises or returns a
        non-finite or non-scalar value.
        """
        try:
            value, gradient, _ = self._call(logits, np.asarray(labels), want_grad=grad and self.autograd)
        except LossCallError:
            raise
        except Exception as error:
            raise LossCallError(
                f"loss_fn raised {type(error).__name__}: {error} (logits of shape "
                f"{np.shape(logits)}, labels {np.asarray(labels).tolist()})"
            ) from error
        return value, gradient

    def _call(self, logits: np.ndarray, labels: np.ndarray, *, want_grad: bool):
        self.calls += 1
        labels = np.asarray(labels, dtype=np.int64)
        if self.backend == "torch":
            import torch

            z = torch.from_numpy(np.ascontiguousarray(logits, dtype=self.input_dtype))
            y = torch.from_numpy(labels)
            if want_grad:
                z.requires_grad_(True)
                out = self.loss_fn(z, y)
            else:
                with torch.no_grad():
                    out = self.loss_fn(z, y)
        else:
            out = self.loss_fn(np.asarray(logits, dtype=self.input_dtype), labels)
        value = _as_scalar(out)
        gradient = None
        if want_grad:
            import torch

            if isinstance(out, torch.Tensor) and out.requires_grad:
                (g,) = torch.autograd.grad(out.reshape(()), z, allow_unused=True)
                gradient = np.zeros(logits.shape) if g is None else g.detach().double().numpy().copy()
        return value, gradient, _dtype_name(out)


def _returns_tensor(loss_fn: Callable[..., Any], probe: np.ndarray, num_classes: int, dtype: str) -> bool:
    import torch

    with torch.no_grad():
        out = loss_fn(torch.from_numpy(probe.astype(dtype)), torch.arange(len(probe)) % num_classes)
    return isinstance(out, torch.Tensor)


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return True


def _as_scalar(out: Any) -> float:
    size = getattr(out, "numel", None)
    count = size() if callable(size) else np.size(out)
    if count != 1:
        raise LossCallError(
            f"loss_fn must return a scalar (reduce over the batch); got a result of shape {tuple(np.shape(out))}"
        )
    if hasattr(out, "detach"):
        out = out.detach().double().reshape(()).item()
    value = float(np.asarray(out, dtype=np.float64).reshape(()))
    if not np.isfinite(value):
        raise LossCallError(f"loss_fn returned a non-finite value {value!r}")
    return value
