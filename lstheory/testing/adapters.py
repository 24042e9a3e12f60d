"""The call adapter: call a user's loss on float64 probe logits, whatever its signature.

Every probe of the checker is a batch of logits ``z`` of shape ``(N, K)``
(float64, on a grid exact in every float dtype) with integer labels ``(N,)``.
:class:`CallOptions` says how the loss wants them:

* ``inputs``: ``"logits"`` (default) or ``"log_probs"`` (the loss is given
  ``log_softmax(z)``; autograd still reaches ``z``);
* ``targets``: ``"index"`` (integer labels) or ``"one_hot"`` (float rows;
  a padding label becomes a row of zeros);
* ``argument_order``: ``"logits_first"`` (``loss(logits, labels)``, PyTorch)
  or ``"target_first"`` (``loss(y_true, y_pred)``, Keras);
* ``layout``: ``"NK"``, ``"NTK"`` (sequences ``(B, T, K)``, labels ``(B, T)``)
  or ``"NKT"`` (``(B, K, T)``, PyTorch's class axis 1).

:meth:`LossAdapter.detect` finds out, by trying, whether the loss takes torch
tensors or NumPy arrays (JAX and Keras callables take NumPy arrays and return
their own arrays, converted back through NumPy), in float64 or only float32,
whether autograd reaches through it, and whether it returns a scalar or one
value per sample (then reduced here by a mean over the non-padding samples).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

__all__ = ["CallOptions", "Evaluation", "LossAdapter", "LossCallError", "PRECISION_LEVELS", "callable_name"]

INPUTS = ("logits", "log_probs")
TARGETS = ("index", "one_hot")
ARGUMENT_ORDERS = ("logits_first", "target_first")
LAYOUTS = ("NK", "NTK", "NKT")

PRECISION_LEVELS: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
}
"""Machine epsilon of the dtypes a loss may compute in."""

# Order of the attempts: the most informative first (float64 with autograd).
_ATTEMPTS: tuple[tuple[str, str, bool], ...] = (
    ("torch", "float64", True),
    ("torch", "float64", False),
    ("torch", "float32", True),
    ("torch", "float32", False),
    ("numpy", "float64", False),
    ("numpy", "float32", False),
)


class LossCallError(ValueError):
    """The loss raised, or returned something that is not a finite scalar (or one value per sample)."""


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


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise (TypeError if not isinstance(value, str) else ValueError)(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
    return value


@dataclass(frozen=True)
class CallOptions:
    """How the loss under test is called (see the module docstring)."""

    inputs: str = "logits"
    targets: str = "index"
    argument_order: str = "logits_first"
    layout: str = "NK"

    def __post_init__(self) -> None:
        _choice(self.inputs, "inputs", INPUTS)
        _choice(self.targets, "targets", TARGETS)
        _choice(self.argument_order, "argument_order", ARGUMENT_ORDERS)
        _choice(self.layout, "layout", LAYOUTS)

    def describe(self) -> str:
        """The non-default options in words (empty for ``loss(logits (N, K), labels (N,))``)."""
        parts = []
        if self.inputs == "log_probs":
            parts.append("given log-probabilities")
        if self.targets == "one_hot":
            parts.append("one-hot targets")
        if self.argument_order == "target_first":
            parts.append("called as loss(targets, logits)")
        if self.layout != "NK":
            parts.append({"NTK": "logits (B, T, K)", "NKT": "logits (B, K, T)"}[self.layout])
        return ", ".join(parts)


@dataclass
class Evaluation:
    """One call's result: the (reduced) value, per-sample values if the loss gave them, the gradient."""

    value: float
    per_sample: np.ndarray | None = None
    gradient: np.ndarray | None = None


@dataclass
class LossAdapter:
    """A loss callable together with the way it must be called.

    Attributes
    ----------
    loss_fn : callable
        The user's loss.
    num_classes : int
        ``K``.
    options : CallOptions
        Signature options.
    backend : {"torch", "numpy"}
        What the loss accepts.
    input_dtype : {"float64", "float32"}
        The dtype of the logits it is given.
    output_dtype : str or None
        The dtype of its result (``None`` for a Python float or an unknown dtype).
    autograd : bool
        Whether ``torch.autograd`` reaches the logits through the loss.
    per_sample_output : bool
        Whether it returns one value per sample (reduced here by a mean).
    ignore_index : int or None
        Samples with this label are left out of the mean of per-sample outputs.
    calls : int
        Number of calls made so far.
    """

    loss_fn: Callable[..., Any]
    num_classes: int
    options: CallOptions = field(default_factory=CallOptions)
    backend: str = "torch"
    input_dtype: str = "float64"
    output_dtype: str | None = None
    autograd: bool = False
    per_sample_output: bool = False
    ignore_index: int | None = None
    calls: int = 0

    @classmethod
    def detect(cls, loss_fn: Callable[..., Any], num_classes: int, options: CallOptions | None = None) -> "LossAdapter":
        """Find how ``loss_fn`` can be called; raise ``TypeError`` naming the errors if no way works."""
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be a callable loss_fn(logits, labels); got {loss_fn!r}")
        options = options or CallOptions()
        probe = np.stack([np.linspace(-1.0, 1.0, num_classes), np.linspace(0.5, -0.5, num_classes)])
        labels = np.array([0, 1])
        errors: list[str] = []
        for backend, dtype, autograd in _ATTEMPTS:
            adapter = cls(loss_fn, num_classes, options, backend, dtype, None, autograd)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out, result = adapter._call(probe, labels, want_grad=autograd)
            except Exception as error:  # any failure means: try the next way
                errors.append(f"{type(error).__name__}: {error}")
                continue
            if autograd and result.gradient is None:
                continue  # it ran, but autograd does not reach: the no-grad attempt follows
            if backend == "torch" and not _is_tensor(out) and _numpy_works(adapter, probe, labels):
                continue  # a NumPy (or JAX) loss that happens to accept tensors: call it the NumPy way
            adapter.output_dtype = _dtype_name(out)
            adapter.per_sample_output = _size(out) == len(labels) and _size(out) > 1
            adapter.calls = 0
            return adapter
        unique = list(dict.fromkeys(errors))
        detail = "; ".join(unique[:3]) if unique else "no attempt could run"
        shape = _shape_in_words(options, num_classes)
        raise TypeError(
            f"loss_fn ({callable_name(loss_fn)}) could not be called as "
            f"{'loss_fn(targets, logits)' if options.argument_order == 'target_first' else 'loss_fn(logits, labels)'}"
            f" -> finite scalar (or one value per sample), with logits {shape} as a float64 or float32 torch "
            f"tensor or NumPy array and {options.targets} targets; errors: {detail}"
        )

    def with_input_dtype(self, dtype: str) -> "LossAdapter":
        """The same loss called with logits of another dtype (it must accept them)."""
        return replace(self, input_dtype=dtype, calls=0)

    @property
    def precision(self) -> float:
        """Machine epsilon of the coarser of the input and output dtypes."""
        levels = [PRECISION_LEVELS[self.input_dtype]]
        if self.output_dtype is not None:
            levels.append(PRECISION_LEVELS[self.output_dtype])
        return max(levels)

    def evaluate(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        *,
        grad: bool = False,
        arrangement: tuple[int, int] | None = None,
        finite: bool = True,
    ) -> Evaluation:
        """The loss at ``logits`` ``(N, K)`` with ``labels`` ``(N,)``; its gradient if asked and available.

        ``arrangement = (B, T)`` lays the ``N = B T`` samples out as sequences
        (layouts ``NTK``/``NKT``; default ``(N, 1)``).  Raises
        :class:`LossCallError` when the loss raises, or (with ``finite``)
        returns a non-finite value; the message names the labels and the shape.
        """
        try:
            _, result = self._call(logits, np.asarray(labels), want_grad=grad and self.autograd, arrangement=arrangement)
        except LossCallError:
            raise
        except Exception as error:
            raise LossCallError(
                f"loss_fn raised {type(error).__name__}: {error} (logits of shape {self._shape(logits, arrangement)}, "
                f"labels {_labels_in_words(labels)})"
            ) from error
        if finite and not np.isfinite(result.value):
            raise LossCallError(
                f"loss_fn returned a non-finite value {result.value!r} (logits of shape "
                f"{self._shape(logits, arrangement)}, labels {_labels_in_words(labels)})"
            )
        return result

    # -- the call itself --------------------------------------------------------
    def _shape(self, logits: np.ndarray, arrangement: tuple[int, int] | None) -> tuple[int, ...]:
        n, k = np.shape(logits)
        b, t = arrangement or (n, 1)
        return {"NK": (n, k), "NTK": (b, t, k), "NKT": (b, k, t)}[self.options.layout]

    def _call(self, logits: np.ndarray, labels: np.ndarray, *, want_grad: bool, arrangement=None):
        self.calls += 1
        labels = np.asarray(labels, dtype=np.int64)
        if self.backend == "torch":
            return self._call_torch(logits, labels, want_grad, arrangement)
        x = np.asarray(logits, dtype=self.input_dtype)
        if self.options.inputs == "log_probs":
            x = _numpy_log_softmax(np.asarray(logits, dtype=np.float64)).astype(self.input_dtype)
        y = self._targets(labels, x.dtype)
        x, y = self._lay_out(x, y, arrangement, np)
        out = self.loss_fn(y, x) if self.options.argument_order == "target_first" else self.loss_fn(x, y)
        return out, Evaluation(self._reduce(_to_numpy(out), labels))

    def _call_torch(self, logits: np.ndarray, labels: np.ndarray, want_grad: bool, arrangement):
        import torch

        z = torch.from_numpy(np.ascontiguousarray(logits, dtype=self.input_dtype))
        with torch.enable_grad() if want_grad else torch.no_grad():
            if want_grad:
                z.requires_grad_(True)
            x = torch.log_softmax(z, dim=-1) if self.options.inputs == "log_probs" else z
            y = torch.from_numpy(self._targets(labels, np.dtype(self.input_dtype)))
            x, y = self._lay_out(x, y, arrangement, torch)
            out = self.loss_fn(y, x) if self.options.argument_order == "target_first" else self.loss_fn(x, y)
            values = _to_numpy(out)
            result = Evaluation(self._reduce(values, labels))
            if want_grad and isinstance(out, torch.Tensor) and out.requires_grad:
                reduced = out.reshape(()) if values.size == 1 else _torch_mean_kept(out.reshape(-1), self._kept(labels))
                (g,) = torch.autograd.grad(reduced, z, allow_unused=True)
                result.gradient = np.zeros(np.shape(logits)) if g is None else g.detach().double().numpy()
        if values.size > 1:
            result.per_sample = values.reshape(-1)
        return out, result

    def _targets(self, labels: np.ndarray, dtype) -> np.ndarray:
        if self.options.targets == "index":
            return labels
        rows = np.zeros((len(labels), self.num_classes), dtype=dtype)
        inside = (labels >= 0) & (labels < self.num_classes) & self._kept(labels)
        rows[np.flatnonzero(inside), labels[inside]] = 1
        return rows

    def _lay_out(self, x, y, arrangement, lib):
        n = x.shape[0]
        b, t = arrangement or (n, 1)
        if self.options.layout == "NK":
            return x, y
        x = x.reshape(b, t, self.num_classes)
        y = y.reshape((b, t) + tuple(y.shape[1:]))
        if self.options.layout == "NKT":
            x = lib.moveaxis(x, -1, 1) if lib is np else x.movedim(-1, 1)
            if y.ndim == 3:  # one-hot targets follow the class axis
                y = lib.moveaxis(y, -1, 1) if lib is np else y.movedim(-1, 1)
        return x, y

    def _kept(self, labels: np.ndarray) -> np.ndarray:
        if self.ignore_index is None:
            return np.ones(len(labels), dtype=bool)
        return labels != self.ignore_index

    def _reduce(self, values: np.ndarray, labels: np.ndarray) -> float:
        if values.size == 1:
            return float(values.reshape(()))
        if values.size != len(labels):
            raise LossCallError(
                f"loss_fn must return a scalar or one value per sample ({len(labels)}); got a result of "
                f"shape {values.shape}"
            )
        kept = self._kept(labels)
        return float(np.mean(values.reshape(-1)[kept])) if kept.any() else float("nan")


def _torch_mean_kept(values, kept: np.ndarray):
    import torch

    mask = torch.from_numpy(kept)
    return values[mask].mean() if kept.any() else values.sum() * float("nan")


def _numpy_works(adapter: "LossAdapter", probe: np.ndarray, labels: np.ndarray) -> bool:
    try:
        replace(adapter, backend="numpy", autograd=False)._call(probe, labels, want_grad=False)
    except Exception:
        return False
    return True


def _numpy_log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _is_tensor(out: Any) -> bool:
    import torch

    return isinstance(out, torch.Tensor)


def _to_numpy(out: Any) -> np.ndarray:
    if hasattr(out, "detach"):
        out = out.detach().cpu().double().numpy()
    return np.asarray(out, dtype=np.float64)


def _size(out: Any) -> int:
    return int(np.size(_to_numpy(out)))


def _dtype_name(value: Any) -> str | None:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    name = str(dtype).replace("torch.", "")
    return name if name in PRECISION_LEVELS else None


def _labels_in_words(labels: Any) -> str:
    labels = np.asarray(labels).reshape(-1)
    if labels.size <= 8:
        return str(labels.tolist())
    return f"{labels[:4].tolist()[:-1]}... ({labels.size} labels)".replace("]...", ", ...]")


def _shape_in_words(options: CallOptions, k: int) -> str:
    return {"NK": f"of shape (2, {k})", "NTK": f"of shape (2, 1, {k})", "NKT": f"of shape (2, {k}, 1)"}[options.layout]
