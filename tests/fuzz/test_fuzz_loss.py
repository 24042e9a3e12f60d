"""Differential fuzzing of ``label_smoothed_cross_entropy``: against a float64 reference and PyTorch.

Drawn: shapes ``(N, K)``, ``(N, K, d1, d2)`` and ``(K,)``, ``N = 0`` included; logits in
float16/bfloat16/float32/float64 at scales 1 to ``1e30`` with ``+-inf``, NaN, classes masked
with ``-inf`` and rows all ``-inf``, contiguous or not; class-index targets in
uint8/int8/int16/int32/int64 (labels above 127 and 255 too) with ``ignore_index`` inside and
outside ``[0, K)``, or class-probability targets; class weights with zeros; eps 0, subnormal,
tiny, ordinary, at off_target's uniform point, next to 1, and 1; both conventions; every
reduction.

* Against the float64 reference (``reference_loss.py``, both conventions): every value, NaN and
  inf at the same places, finite values within the error bound of a correct implementation.
* Against ``F.cross_entropy(label_smoothing=eps)`` (uniform): equal within PyTorch's own
  rounding, except where lstheory is the mathematically right one on purpose; each such case is
  a named predicate below, decided from the inputs, and lstheory's value there is the reference's
  (checked by the first test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import event, given
from hypothesis import strategies as st

from lstheory.torch import label_smoothed_cross_entropy

from budget import fuzz_settings
from reference_loss import reference_loss

INF, NAN = math.inf, math.nan
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
HALF = (torch.float16, torch.bfloat16)
VALUE_SETTINGS, GRADIENT_SETTINGS = fuzz_settings(2.0), fuzz_settings(0.6)


@dataclass
class LossCase:
    logits: torch.Tensor
    target: torch.Tensor
    eps: float
    convention: str
    weight: torch.Tensor | None
    ignore_index: int
    reduction: str
    scale: float

    @property
    def probability_target(self) -> bool:
        return self.target.is_floating_point()

    @property
    def num_classes(self) -> int:
        return self.logits.shape[0 if self.logits.dim() == 1 else 1]

    def call(self) -> torch.Tensor:
        return label_smoothed_cross_entropy(
            self.logits, self.target, self.eps, convention=self.convention, weight=self.weight,
            ignore_index=self.ignore_index, reduction=self.reduction,
        )

    def nkd(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(N, K, D)`` and target ``(N, D)`` or ``(N, K, D)``, for the reference."""
        z = self.logits
        if z.dim() == 1:
            z, target = z.view(1, -1, 1), self.target.reshape(1, -1, 1) if self.probability_target else self.target.reshape(1, 1)
            return z, target
        n, k, d = z.shape[0], z.shape[1], math.prod(z.shape[2:])
        z = z.reshape(n, k, d)
        target = self.target.reshape(n, k, d) if self.probability_target else self.target.reshape(n, d)
        return z, target

    def per_position_shape(self) -> tuple[int, ...]:
        return () if self.logits.dim() == 1 else (self.logits.shape[0],) + tuple(self.logits.shape[2:])


# ------------------------------------------------------------------------------ strategies


def _logits(draw, shape, dtype, finite: bool) -> tuple[torch.Tensor, float]:
    scale = draw(st.sampled_from([1.0, 30.0] if finite else [1.0, 30.0, 1e4, 1e30]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    z = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    if finite:
        return z.to(dtype), scale
    class_dim = 0 if len(shape) == 1 else 1
    for c in draw(st.lists(st.integers(0, shape[class_dim] - 1), max_size=2)):  # masked classes
        z.select(class_dim, c).fill_(-INF)
    flat = z.view(-1)
    if flat.numel():
        for index, value in draw(st.lists(st.tuples(st.integers(0, flat.numel() - 1), st.sampled_from([-INF, INF, NAN, -INF])), max_size=2)):
            flat[index] = value
    if len(shape) > 1 and shape[0] and draw(st.booleans()):  # an all -inf row (one sample, every position)
        z[draw(st.integers(0, shape[0] - 1))] = -INF
    return z.to(dtype), scale


def _non_contiguous(tensor: torch.Tensor) -> torch.Tensor:
    """The same values in a non-contiguous layout (every other element of a wider buffer)."""
    wide = torch.zeros(tensor.shape + (2,), dtype=tensor.dtype)
    wide[..., 0] = tensor
    view = wide[..., 0]
    assert tensor.numel() <= 1 or not view.is_contiguous()
    return view


def _index_target(draw, shape, num_classes, dtype):
    largest = min(num_classes - 1, torch.iinfo(dtype).max)
    inside = draw(st.integers(0, num_classes - 1))
    candidates = [-100, -1, inside, num_classes + 3, 255]
    ignore_index = draw(st.sampled_from(candidates))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    target = torch.randint(0, largest + 1, shape, generator=generator)
    representable = torch.iinfo(dtype).min <= ignore_index <= torch.iinfo(dtype).max
    if representable and target.numel():
        ignored = torch.rand(shape, generator=generator) < draw(st.sampled_from([0.0, 0.3, 1.0]))
        target = torch.where(ignored, ignore_index, target)
    wrapped = ignore_index % 256  # what ignore_index becomes if compared in uint8
    if dtype == torch.uint8 and not representable and wrapped < num_classes and target.numel():
        target.view(-1)[0] = wrapped  # a real class that a uint8 comparison would mistake for padding
    return target.to(dtype), ignore_index


@st.composite
def loss_cases(draw, conventions=("off_target", "uniform"), dtypes=FLOAT_DTYPES, finite=False) -> LossCase:
    """A drawn call; ``finite`` keeps the logits finite and within 30 (for gradients)."""
    dtype = draw(st.sampled_from(dtypes))
    num_classes = draw(st.one_of(st.integers(2, 7), st.sampled_from([130, 260])))
    layout = draw(st.sampled_from(["NK", "NKdd", "K"]))
    n = draw(st.integers(0, 4))
    shape = {"NK": (n, num_classes), "NKdd": (n, num_classes, draw(st.integers(1, 3)), draw(st.integers(1, 3))),
             "K": (num_classes,)}[layout]
    logits, scale = _logits(draw, shape, dtype, finite)
    per_position = () if layout == "K" else (shape[0],) + shape[2:]
    if draw(st.booleans()):  # class indices
        index_dtype = draw(st.one_of(st.just(torch.uint8), st.sampled_from(INDEX_DTYPES)))  # uint8 half the time
        target, ignore_index = _index_target(draw, per_position, num_classes, index_dtype)
    else:  # class probabilities p_c in {0, 1/64, ..., 1}: exact in every dtype
        generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
        target, ignore_index = (torch.randint(0, 65, shape, generator=generator) / 64).to(dtype), -100
    weight = None
    if draw(st.booleans()):
        generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
        choices = torch.tensor([0.0, 0.5, 1.0, 2.0, 0.125], dtype=dtype)
        weight = choices[torch.randint(0, 5, (num_classes,), generator=generator)]
        weight[draw(st.integers(0, num_classes - 1))] = 0.0  # at least one class without weight
    eps = draw(st.one_of(
        st.just(0.0),
        st.sampled_from([5e-324, 1e-310, 1e-45, 1e-8, 0.1, 0.5, (num_classes - 1) / num_classes, 0.97,
                         1 - 2.0**-53, 1.0]),
        st.floats(0.0, 1.0),
    ))
    if draw(st.booleans()):
        logits = _non_contiguous(logits)
        if target.dim():
            target = _non_contiguous(target)
    return LossCase(logits, target, eps, draw(st.sampled_from(conventions)), weight, ignore_index,
                    draw(st.sampled_from(["mean", "sum", "none"])), scale)


# ------------------------------------------------------------------------------ comparison


def _unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, bound: torch.Tensor, what: str) -> None:
    """``actual`` (in its dtype) is ``expected`` (float64) rounded, within ``bound`` before the rounding.

    NaN at the same places; infinities at the same places with the same sign, except where the
    exact value lies within the bound of the dtype's overflow threshold.
    """
    dtype = actual.dtype
    finfo = torch.finfo(dtype)
    a, e, bound = actual.detach().double().reshape(expected.shape), expected, bound.reshape(expected.shape)
    assert torch.equal(torch.isnan(a), torch.isnan(e)), f"{what}: NaN at different places\nours {a}\nref  {e}"
    rounded = e.to(dtype).double()
    defined = ~torch.isnan(e)
    near_overflow = e.abs() + bound >= finfo.max * (1 - 4 * _unit_roundoff(dtype))
    inf_differs = defined & (torch.isinf(a) != torch.isinf(rounded)) & ~near_overflow
    assert not inf_differs.any(), f"{what}: infinities at different places\nours {a}\nref  {e}"
    both_inf = torch.isinf(a) & torch.isinf(rounded)
    assert torch.equal(torch.sign(a[both_inf]), torch.sign(rounded[both_inf])), f"{what}: infinities of other sign"
    finite = defined & torch.isfinite(a) & torch.isfinite(e)
    allowed = bound + _unit_roundoff(dtype) * e.abs() + finfo.tiny * finfo.eps
    error = (a - e).abs()
    bad = finite & (error > allowed)
    assert not bad.any(), (
        f"{what}: |ours - reference| {error[bad].tolist()} > allowed {allowed[bad].tolist()}\nours {a}\nref  {e}"
    )


def _reference(case: LossCase):
    z, target = case.nkd()
    acc = torch.float32 if case.logits.dtype in HALF else case.logits.dtype
    return reference_loss(
        z, target, case.eps, convention=case.convention, weight=case.weight, ignore_index=case.ignore_index,
        probability_target=case.probability_target, accumulation=acc,
    )


# ------------------------------------------------------------------------------ against the reference


# half a second per example at most: only a hang exceeds it (then the run ends, every stack printed)
@pytest.mark.timeout(60 + VALUE_SETTINGS.max_examples // 2, method="thread")
@VALUE_SETTINGS
@given(loss_cases())
def test_loss_matches_the_float64_reference(case):
    event(f"{case.logits.dtype}, {'probability' if case.probability_target else case.target.dtype} target")
    ours = case.call()
    assert ours.dtype == case.logits.dtype and tuple(ours.shape) == (
        case.per_position_shape() if case.reduction == "none" else ()
    )
    value, bound = _reference(case).reduced(case.reduction)
    assert_matches(ours, value.reshape(ours.shape) if ours.dim() else value, bound.reshape(value.shape), "vs reference")


@pytest.mark.timeout(60 + GRADIENT_SETTINGS.max_examples // 2, method="thread")
@GRADIENT_SETTINGS
@given(loss_cases(dtypes=(torch.float32, torch.float64), finite=True), st.integers(0, 2**32 - 1))
def test_gradient_matches_the_float64_reference(case, seed):
    """Finite logits: the gradient is the reference's autograd gradient (within its error bound)."""
    logits = case.logits.detach().clone().requires_grad_()
    ours = label_smoothed_cross_entropy(logits, case.target, case.eps, convention=case.convention, weight=case.weight,
                                        ignore_index=case.ignore_index, reduction=case.reduction)
    upstream = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed), dtype=ours.dtype)
    (ours_grad,) = torch.autograd.grad(ours, logits, upstream, allow_unused=True)
    z64 = case.logits.detach().double().requires_grad_()
    reference_case = LossCase(z64, case.target, case.eps, case.convention, case.weight, case.ignore_index,
                              case.reduction, case.scale)
    reference = _reference(reference_case)
    value, _ = reference.reduced(case.reduction)
    if not torch.isfinite(value).all():
        return  # a NaN mean (no kept weight): PyTorch's convention, tested above
    (expected,) = torch.autograd.grad(value, z64, upstream.double().reshape(value.shape), allow_unused=True)
    expected = torch.zeros_like(z64) if expected is None else expected
    u = _unit_roundoff(case.logits.dtype)
    scale = float(upstream.abs().max()) if upstream.numel() else 0.0
    weights = 1.0 if case.weight is None else float(case.weight.abs().max())
    denominator = abs(reference.denominator) if case.reduction == "mean" else 1.0
    allowed = 16 * (case.num_classes + 1) * u * scale * max(weights, 1.0) * 2 / min(denominator, 1.0)
    error = (ours_grad.double() - expected).abs().max().item() if expected.numel() else 0.0
    assert error <= allowed, f"gradient differs by {error:.3e} > {allowed:.3e}"


# ------------------------------------------------------------------------------ against PyTorch


def _log_q_is_minus_inf(case: LossCase) -> torch.Tensor:
    z, _ = case.nkd()
    return z == -INF


def zero_target_mass_times_minus_inf(case: LossCase) -> torch.Tensor:
    """PyTorch multiplies a zero coefficient by ``log q_c = -inf``: ``0 * inf = NaN``; lstheory adds 0 (or +inf).

    The zero coefficient is a zero class weight (at the true class, or at any class once eps > 0),
    ``1 - eps = 0`` on the nll term (lstheory keeps the true class's mass ``1/K`` there), or
    ``eps / K`` that rounds to 0 in PyTorch's arithmetic though ``eps > 0`` (lstheory's mass
    stays positive: ``+inf``).  For probability targets: a computed ``(1 - eps) p_c + eps / K``
    of 0.  Returned per position, ``(N, D)``.
    """
    z, target = case.nkd()
    minus_inf = z == -INF
    k = case.num_classes
    w = (torch.ones(k) if case.weight is None else case.weight.double()).view(1, -1, 1)
    opmath = torch.float64 if case.logits.dtype == torch.float64 else torch.float32
    smoothing_underflows = case.eps > 0 and float(torch.tensor(case.eps / k, dtype=opmath)) == 0
    if case.probability_target:
        coefficient = w * (target.to(opmath) * (1 - case.eps) + torch.tensor(case.eps / k, dtype=opmath)).double()
        return (minus_inf & (coefficient == 0)).any(1)
    y = target.long().clamp(0, k - 1)  # ignored positions are 0 in both: their class does not matter
    at_y = torch.arange(k).view(1, -1, 1) == y.unsqueeze(1)
    nll_zero = at_y & minus_inf & ((w == 0) | (case.eps == 1.0))
    smooth_zero = minus_inf & ((w == 0) | smoothing_underflows) if case.eps > 0 else torch.zeros_like(minus_inf)
    return (nll_zero | smooth_zero).any(1)


def uint8_label_equal_to_wrapped_ignore_index(case: LossCase) -> torch.Tensor:
    """PyTorch's smoothing term compares a uint8 target with ignore_index in uint8 (-100 becomes 156).

    It drops the smoothing term of a sample whose label is ``ignore_index mod 256`` while its nll
    term keeps it (issue 11, item 1): lstheory compares in int64 and keeps both.
    """
    z, target = case.nkd()
    if case.probability_target or not _pytorch_takes_uint8(case) or 0 <= case.ignore_index < 256:
        return torch.zeros((z.shape[0], z.shape[2]), dtype=torch.bool)
    return target.long() == case.ignore_index % 256


def half_precision_sum_overflows(case: LossCase) -> torch.Tensor:
    """PyTorch keeps ``log q`` in half precision and its sums overflow there: inf, or NaN once times 0.

    Its nll term ``w_y |log q_y|``, its smoothing sum ``sum_c w_c |log q_c|`` or, for a reduced
    loss, the sum of those over the positions exceeds the largest half-precision number (65504 in
    float16) although the loss, accumulated in float32 by lstheory, may not.  Per position,
    ``(N, D)``, or one flag for a reduced loss; never for float32/float64.
    """
    z, _ = case.nkd()
    if case.logits.dtype not in HALF:
        flags = torch.zeros((z.shape[0], z.shape[2]), dtype=torch.bool)
        return flags if case.reduction == "none" else flags.any()
    largest = torch.finfo(case.logits.dtype).max
    w = (torch.ones(case.num_classes) if case.weight is None else case.weight.double()).view(1, -1, 1)
    magnitude = (w * -torch.log_softmax(z.double(), 1)).nan_to_num(nan=0.0, posinf=math.inf)
    per_position = magnitude.sum(1)
    flags = (per_position > largest) | (magnitude > largest).any(1)
    return flags if case.reduction == "none" else flags.any() | (per_position.sum() > largest)


def _pytorch_takes_uint8(case: LossCase) -> bool:
    """PyTorch takes uint8 class indices for (N, K) logits without class weights (else int64 only)."""
    return case.target.dtype == torch.uint8 and case.logits.dim() == 2 and case.weight is None


def _pytorch(case: LossCase) -> torch.Tensor:
    target = case.target
    if not case.probability_target and not (target.dtype == torch.int64 or _pytorch_takes_uint8(case)):
        target = target.long()
    return F.cross_entropy(case.logits, target, weight=case.weight, ignore_index=case.ignore_index,
                           reduction=case.reduction, label_smoothing=case.eps)


@pytest.mark.timeout(60 + VALUE_SETTINGS.max_examples // 2, method="thread")
@VALUE_SETTINGS
@given(loss_cases(conventions=("uniform",)))
def test_uniform_loss_matches_pytorch_except_where_lstheory_is_right_on_purpose(case):
    ours, theirs = case.call(), _pytorch(case)
    shape = case.per_position_shape()
    deliberate = {
        "zero target mass times -inf": zero_target_mass_times_minus_inf(case),
        "uint8 label equal to the wrapped ignore_index": uint8_label_equal_to_wrapped_ignore_index(case),
    }
    if case.reduction != "none":  # a total inherits the disagreement of any of its positions
        deliberate = {name: mask.any().reshape(()) for name, mask in deliberate.items()}
    else:
        deliberate = {name: mask.reshape(shape) for name, mask in deliberate.items()}
    deliberate["PyTorch's half-precision sums overflow"] = half_precision_sum_overflows(case).reshape(ours.shape)
    excused = torch.zeros(ours.shape, dtype=torch.bool)
    for name, mask in deliberate.items():
        if mask.any():
            event(f"lstheory differs from PyTorch on purpose: {name}")
        excused |= mask
    a, b = ours.double(), theirs.double()
    dtype = case.logits.dtype
    if dtype in HALF:  # PyTorch rounds each log q to half precision: good to a few of its units
        rtol = 16 * _unit_roundoff(dtype)
    else:
        rtol = 8 * (case.num_classes + 1) * _unit_roundoff(dtype) * (1 + math.log(case.num_classes))
    compared = ~excused
    assert torch.equal(torch.isnan(a[compared]), torch.isnan(b[compared])), f"NaN differs\nours {a}\ntorch {b}"
    assert torch.equal(torch.isinf(a[compared]), torch.isinf(b[compared])), f"inf differs\nours {a}\ntorch {b}"
    finite = compared & torch.isfinite(a) & torch.isfinite(b)
    error = (a - b).abs()
    magnitude = torch.maximum(a.abs(), b.abs())
    tiny = torch.finfo(dtype).tiny
    bad = finite & (error > rtol * magnitude + case.scale * rtol * 8 + tiny)
    assert not bad.any(), f"ours {a[bad].tolist()} vs PyTorch {b[bad].tolist()} (rtol {rtol:.2e})"
