r"""The label-smoothing optimum as torch tensors, from the accurate closed forms.

Nothing is derived here: the values come from :mod:`lstheory.closed_form`
(computed in NumPy float64 to a few ulps) and are rounded once to the
requested dtype on the requested device.  The results carry no autograd
graph, and an ``eps`` (or ``alpha``) tensor that requires grad is refused
rather than silently detached, as by the closed forms and the loss.  A
``device`` this torch build cannot use (``"cuda"`` on a CPU-only build) is a
``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lstheory import closed_form

__all__ = ["optimal_logits", "logit_gap"]


def _check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` on which this torch build can allocate, else a ValueError/TypeError."""
    if not isinstance(device, (str, torch.device)) or isinstance(device, bool):
        raise TypeError(f"device must be a torch.device or a string such as 'cpu' or 'cuda:0'; got {device!r}")
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as error:  # e.g. 'cuda' on a CPU-only build
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"device={str(device)!r} is not available in this torch build ({detail}); "
            f"torch.cuda.is_available() is {torch.cuda.is_available()}: use device='cpu'"
        ) from None
    return device


def _result_dtype_and_device(eps: Any, dtype: torch.dtype | None, device: Any) -> tuple[torch.dtype, torch.device]:
    if dtype is None:
        dtype = eps.dtype if isinstance(eps, torch.Tensor) and eps.is_floating_point() else torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype (e.g. torch.float64); got {dtype!r}")
    if device is None:
        device = eps.device if isinstance(eps, torch.Tensor) else torch.device("cpu")
    return dtype, _check_device(device)


def _to_tensor(values: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float64)
    # float64 -> float32/float16 rounds once; bfloat16 goes through float32 (torch has
    # no direct double -> bfloat16 cast), which can round twice.
    return torch.from_numpy(np.array(array, copy=True)).to(device=device, dtype=dtype)


def logit_gap(
    num_classes: int,
    eps: Any,
    *,
    convention: str = "off_target",
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> torch.Tensor:
    r"""The optimal logit gap ``z_y - z_i`` as a tensor of the shape of ``eps``.

    Formula (see :func:`lstheory.closed_form.logit_gap`)::

        off_target: log((K - 1)(1 - eps) / eps)
        uniform:    log(1 + K (1 - eps) / eps)

    Parameters
    ----------
    num_classes : int or integer array/tensor
        ``K``, ``2 <= K <= 2**53``; broadcasts against ``eps``.
    eps : float, array or Tensor of shape ``S``
        Smoothing strength in ``[0, 1]``, read exactly; a tensor that requires
        grad is refused (``TypeError``), as by the closed forms.
    convention : {"off_target", "uniform"}
    dtype : torch.dtype, optional
        Default: ``eps.dtype`` for a floating tensor, else torch's default dtype.
    device : torch.device or str, optional
        Default: ``eps.device`` for a tensor, else the CPU.  Must be usable
        by this torch build (``ValueError`` otherwise).

    Returns
    -------
    Tensor of the broadcast shape of ``num_classes`` and ``eps``.

    Accuracy: the float64 value is within 2 ulp of the exact gap; other
    dtypes add one rounding.

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2; Szegedy et al.
    2016, arXiv 1512.00567, sec. 7.

    Examples
    --------
    >>> import torch
    >>> gap = logit_gap(10, torch.tensor([0.1, 0.5], dtype=torch.float64))
    >>> print([round(v, 4) for v in gap.tolist()])
    [4.3944, 2.1972]
    """
    dtype, device = _result_dtype_and_device(eps, dtype, device)
    values = closed_form.logit_gap(num_classes, eps, convention=convention)
    return _to_tensor(values, dtype, device)


def optimal_logits(
    num_classes: int,
    eps: Any,
    *,
    label: int = 0,
    alpha: Any = 0.0,
    convention: str = "off_target",
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> torch.Tensor:
    r"""Logits that minimise label-smoothed cross-entropy, for a tensor of ``eps``.

    Formula (see :func:`lstheory.closed_form.optimal_logits`)::

        z_i     = alpha          for i != label
        z_label = alpha + gap,   gap = logit_gap(K, eps, convention)

    Parameters
    ----------
    num_classes : int
        ``K``, ``2 <= K <= 2**53``; the length of the last axis.
    eps : float, array or Tensor of shape ``S``
        Smoothing strength in ``[0, 1]``.  A tensor is read exactly (every
        float dtype embeds in float64); one that requires grad is refused
        (``TypeError``): the optimum is not differentiated with respect to eps.
    label : int
        The true class, ``0 <= label < K``.
    alpha : float, array or Tensor broadcastable with ``eps``
        The free shift (finite).
    convention : {"off_target", "uniform"}
        ``"off_target"``: target ``(1 - eps, eps/(K-1))``; ``"uniform"``:
        ``(1 - eps + eps/K, eps/K)`` (PyTorch's ``label_smoothing``).
    dtype : torch.dtype, optional
        Default: ``eps.dtype`` for a floating tensor, else torch's default dtype.
    device : torch.device or str, optional
        Default: ``eps.device`` for a tensor, else the CPU.  Must be usable
        by this torch build (``ValueError`` otherwise).

    Returns
    -------
    Tensor of shape ``broadcast(S, alpha.shape) + (num_classes,)``.

    Accuracy: computed in float64 by :func:`lstheory.closed_form.optimal_logits`
    (the label entry is ``alpha + gap`` rounded once, the gap within 2 ulp),
    then rounded to ``dtype``.

    References: He et al. 2019, arXiv 1812.01187, sec. 5.2.

    Examples
    --------
    >>> import torch
    >>> z = optimal_logits(3, torch.tensor([0.1, 0.5], dtype=torch.float64), label=1)
    >>> z.shape
    torch.Size([2, 3])
    >>> print([[round(v, 4) for v in row] for row in z.tolist()])
    [[0.0, 2.8904, 0.0], [0.0, 0.6931, 0.0]]
    """
    dtype, device = _result_dtype_and_device(eps, dtype, device)
    values = closed_form.optimal_logits(num_classes, eps, label=label, alpha=alpha, convention=convention)
    return _to_tensor(values, dtype, device)
