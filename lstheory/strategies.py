"""Hypothesis strategies for property tests of label-smoothing losses.

Draw the setting (``num_classes``, ``eps``, ``convention``), logits and labels
for your own property tests::

    from hypothesis import given, settings
    from lstheory import strategies as lst

    @settings(max_examples=25, deadline=None)
    @given(lst.smoothing_setups(max_classes=20, conventions=("uniform",)))
    def test_my_loss(setup):
        assert_loss_matches_theory(make_my_loss(setup.eps), setup.num_classes,
                                   setup.eps, convention=setup.convention)

Every strategy returns NumPy values (``float64`` logits of shape ``(N, K)``,
``int64`` labels of shape ``(N,)``); convert with ``torch.from_numpy``.
Requires the ``hypothesis`` package (a test dependency of lstheory).

Examples
--------
>>> from hypothesis import given, settings
>>> @settings(max_examples=20, deadline=None, database=None)
... @given(smoothing_setups(max_classes=10))
... def check(setup):
...     assert 2 <= setup.num_classes <= 10 and 0 < setup.eps < 1
>>> check()
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - hypothesis is a test dependency
    raise ImportError(
        "lstheory.strategies needs the 'hypothesis' package: pip install hypothesis"
    ) from error

from lstheory._validation import CONVENTIONS, as_integer, as_real, check_convention, is_integer_scalar

__all__ = [
    "SmoothingSetup",
    "conventions",
    "eps_values",
    "labels",
    "logits",
    "logits_and_labels",
    "num_classes",
    "smoothing_cases",
    "smoothing_setups",
]


MAX_ARRAY_SIZE = 10**6
"""The largest ``N`` or ``K`` of a drawn array: Hypothesis draws it element by element."""


class SmoothingSetup(NamedTuple):
    """One label-smoothing setting: ``K``, ``eps`` and the convention ``eps`` is meant in."""

    num_classes: int
    eps: float
    convention: str


def _check_range(
    names: tuple[str, str], low: object, high: object, floor: float, ceiling: float, *, integer: bool
) -> tuple:
    """``floor <= low <= high <= ceiling``, each bound named as the caller's parameter; the bounds as numbers."""
    valid = f"{'an integer' if integer else 'a real number'} in [{floor}, {ceiling}]"
    read = as_integer if integer else as_real
    low, high = (read(value, name, valid) for name, value in zip(names, (low, high)))
    if not floor <= low <= high <= ceiling:
        raise ValueError(
            f"need {floor} <= {names[0]} <= {names[1]} <= {ceiling}; got {names[0]}={low!r}, {names[1]}={high!r}"
        )
    return low, high


def num_classes(min_value: int = 2, max_value: int = 100) -> st.SearchStrategy[int]:
    """Class counts ``K`` with ``2 <= min_value <= K <= max_value``."""
    low, high = _check_range(("min_value", "max_value"), min_value, max_value, 2, 2**53, integer=True)
    return st.integers(min_value=low, max_value=high)


def _check_conventions(allowed: object, name: str) -> tuple[str, ...]:
    """A non-empty sequence of convention names (a lone string is refused, not read letter by letter)."""
    example = f"e.g. {name}=('uniform',)"
    if isinstance(allowed, (str, bytes)):
        raise TypeError(
            f"{name} must be a sequence of convention names ({example}), not a single string; got {allowed!r}"
        )
    try:
        names = tuple(allowed)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of convention names ({example}); got {allowed!r}") from None
    if not names:
        raise ValueError(f"{name} must name at least one convention of {CONVENTIONS}; got {allowed!r}")
    return tuple(check_convention(c, name) for c in names)


def conventions(allowed: Sequence[str] = CONVENTIONS) -> st.SearchStrategy[str]:
    """One of ``allowed`` (default: both of :data:`lstheory.CONVENTIONS`); a sequence, e.g. ``("uniform",)``."""
    return st.sampled_from(_check_conventions(allowed, "allowed"))


def eps_values(
    min_value: float = 0.0, max_value: float = 1.0, *, finite_optimum: bool = True
) -> st.SearchStrategy[float]:
    """Smoothing strengths ``eps`` in ``[min_value, max_value]`` (within ``[0, 1]``).

    With ``finite_optimum`` (the default) the endpoints ``0`` and ``1`` are
    excluded, so that the optimal logits are finite in both conventions
    (``eps = 0`` is unsmoothed; off_target ``eps = 1`` puts no mass on the label).
    """
    min_value, max_value = _check_range(("min_value", "max_value"), min_value, max_value, 0.0, 1.0, integer=False)
    return st.floats(
        min_value=min_value,
        max_value=max_value,
        exclude_min=bool(finite_optimum) and min_value == 0.0,
        exclude_max=bool(finite_optimum) and max_value == 1.0,
        allow_nan=False,
        allow_subnormal=False,
    )


def smoothing_setups(
    min_classes: int = 2,
    max_classes: int = 100,
    *,
    conventions: Sequence[str] = CONVENTIONS,
    min_eps: float = 0.0,
    max_eps: float = 1.0,
    finite_optimum: bool = True,
) -> st.SearchStrategy[SmoothingSetup]:
    """:class:`SmoothingSetup` ``(num_classes, eps, convention)`` tuples.

    ``conventions`` restricts the convention (``("uniform",)`` for a loss in
    PyTorch's terms); ``min_eps``/``max_eps``/``finite_optimum`` are as in
    :func:`eps_values`.
    """
    _check_range(("min_classes", "max_classes"), min_classes, max_classes, 2, 2**53, integer=True)
    _check_range(("min_eps", "max_eps"), min_eps, max_eps, 0.0, 1.0, integer=False)
    return st.builds(
        SmoothingSetup,
        num_classes(min_classes, max_classes),
        eps_values(min_eps, max_eps, finite_optimum=finite_optimum),
        st.sampled_from(_check_conventions(conventions, "conventions")),
    )


def logits(
    num_classes: int | st.SearchStrategy[int],
    batch_size: int | st.SearchStrategy[int] = st.integers(1, 8),
    *,
    max_abs: float = 30.0,
    dtype: type = np.float64,
) -> st.SearchStrategy[np.ndarray]:
    """Finite logits of shape ``(N, K)`` with entries in ``[-max_abs, max_abs]``.

    ``dtype`` is ``np.float64`` or ``np.float32`` (the values are exact in it).
    """
    max_abs = as_real(max_abs, "max_abs", "a positive number (finite)")
    if not 0 < max_abs < math.inf:
        raise ValueError(f"max_abs must be a positive number (finite); got {max_abs!r}")
    try:
        width = {np.dtype(np.float64): 64, np.dtype(np.float32): 32}.get(np.dtype(dtype))
    except TypeError:  # not a dtype at all
        width = None
    if width is None:
        raise ValueError(f"dtype must be np.float64 or np.float32; got {dtype!r}")
    if not isinstance(num_classes, st.SearchStrategy):
        _check_integer("num_classes", num_classes, 2, MAX_ARRAY_SIZE)
    if not isinstance(batch_size, st.SearchStrategy):
        _check_integer("batch_size", batch_size, 0, MAX_ARRAY_SIZE)
    k = num_classes if isinstance(num_classes, st.SearchStrategy) else st.just(int(num_classes))
    n = batch_size if isinstance(batch_size, st.SearchStrategy) else st.just(int(batch_size))
    elements = st.floats(-max_abs, max_abs, width=width, allow_nan=False, allow_subnormal=False)
    return st.tuples(n, k).flatmap(lambda shape: hnp.arrays(dtype, shape, elements=elements))


def labels(
    num_classes: int,
    batch_size: int,
    *,
    ignore_index: int | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Integer labels of shape ``(N,)`` in ``[0, K)``.

    With ``ignore_index`` (an integer outside ``[0, K)``, e.g. ``-100``), some
    entries (never all) are that padding label; so ``batch_size`` must then be
    at least 1.
    """
    _check_integer("num_classes", num_classes, 2, 2**53)
    _check_integer("batch_size", batch_size, 0, MAX_ARRAY_SIZE)
    _check_ignore_index(ignore_index, num_classes)
    valid = st.integers(0, num_classes - 1)
    if ignore_index is None:
        return hnp.arrays(np.int64, batch_size, elements=valid)
    if batch_size == 0:
        raise ValueError(
            f"labels with ignore_index={ignore_index} need batch_size >= 1 (some label must not be "
            f"padding); got batch_size=0 (pass ignore_index=None for empty batches)"
        )
    padded = st.one_of(valid, st.just(ignore_index))
    return hnp.arrays(np.int64, batch_size, elements=padded).filter(lambda y: np.any(y != ignore_index))


def _check_integer(name: str, value: object, minimum: int, maximum: int) -> None:
    if not is_integer_scalar(value) or not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer >= {minimum} (and <= {maximum}); got {value!r}")


def _check_ignore_index(ignore_index: object, num_classes: int | None) -> None:
    """``None``, or an int64 integer that is not a class index (outside ``[0, num_classes)``)."""
    if ignore_index is None:
        return
    if not is_integer_scalar(ignore_index) or not -(2**63) <= ignore_index < 2**63:
        raise ValueError(
            f"ignore_index must be an integer label outside [0, K) in the int64 range (labels are int64), "
            f"or None; got {ignore_index!r}"
        )
    if num_classes is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index must lie outside the class indices [0, {num_classes}) (e.g. -100), or padding "
            f"would be indistinguishable from a real label; got {ignore_index}"
        )


def logits_and_labels(
    num_classes: int | st.SearchStrategy[int],
    batch_size: int | st.SearchStrategy[int] = st.integers(1, 8),
    *,
    max_abs: float = 30.0,
    dtype: type = np.float64,
    ignore_index: int | None = None,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """A batch ``(logits (N, K), labels (N,))`` with matching ``N`` and ``K``.

    With ``ignore_index`` some labels (never all) are padding, so the batch
    holds at least one sample: a fixed ``batch_size`` must then be at least 1,
    and a drawn one is drawn from its values of at least 1.
    """
    fixed_k = None if isinstance(num_classes, st.SearchStrategy) else num_classes
    if fixed_k is not None:
        _check_integer("num_classes", fixed_k, 2, MAX_ARRAY_SIZE)
    _check_ignore_index(ignore_index, fixed_k)
    if ignore_index is not None:
        if isinstance(batch_size, st.SearchStrategy):
            batch_size = batch_size.filter(lambda n: n >= 1)
        elif not is_integer_scalar(batch_size) or batch_size < 1:
            raise ValueError(
                f"logits_and_labels with ignore_index={ignore_index} needs batch_size >= 1 (some label must "
                f"not be padding); got batch_size={batch_size!r}"
            )

    @st.composite
    def batch(draw):
        z = draw(logits(num_classes, batch_size, max_abs=max_abs, dtype=dtype))
        n, k = z.shape
        return z, draw(labels(k, n, ignore_index=ignore_index))

    return batch()


def smoothing_cases(
    min_classes: int = 2,
    max_classes: int = 100,
    *,
    conventions: Sequence[str] = CONVENTIONS,
    batch_size: int | st.SearchStrategy[int] = st.integers(1, 8),
    max_abs: float = 30.0,
    dtype: type = np.float64,
) -> st.SearchStrategy[tuple[SmoothingSetup, np.ndarray, np.ndarray]]:
    """``(setup, logits, labels)``: a :class:`SmoothingSetup` and a batch with its ``K``."""
    setups = smoothing_setups(min_classes, max_classes, conventions=conventions)
    logits(2, batch_size, max_abs=max_abs, dtype=dtype)  # checks the batch arguments now, not at draw time

    @st.composite
    def case(draw):
        setup = draw(setups)
        z, y = draw(logits_and_labels(setup.num_classes, batch_size, max_abs=max_abs, dtype=dtype))
        return setup, z, y

    return case()
