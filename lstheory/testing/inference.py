r"""Infer the target distribution that any loss callable implies.

The idea
--------
Cross-entropy of one sample against a fixed (unnormalised) target ``t`` is
linear in ``t``::

    L(z, y) = -sum_c t_c log softmax(z)_c = m lse(z) - sum_c t_c z_c,
    m = sum_c t_c (the target's mass),   lse(z) = log sum_c exp(z_c),
    dL/dz = m softmax(z) - t.

So the loss's values (and its gradient, where autograd reaches) at a few
well-chosen logits are linear equations in ``(m, t)``: at ``z = 0``,
``L = m log K``; at ``z = +-e_c``, ``L = m lse(+-e_c) -+ t_c``; with autograd,
``t = m softmax(z) - dL/dz`` at any ``z``.  Two independent recoveries
(``+e_c`` and ``-e_c`` probes, or the gradient at ``z = 0`` and at a random
``z``) give the target and an estimate of its error.

The inferred model is then *confirmed* where it was not fitted:

* at random logits for every label (values, and gradients with autograd);
* along very short lines of logits, whose erratic part estimates the
  precision the loss really computes in (a float32 loss returning a Python
  float is recognised as float32);
* on batches: a batch holding one sample twice, two-sample batches (which
  reveal a class-weighted mean, as PyTorch's ``weight=`` gives) and random
  batches must be the mean, weighted mean or sum of the samples' own losses;
* with padded labels (``ignore_index``): padded samples must enter neither the
  sum nor the mean's denominator, and their logits must not matter.

A loss coarser than float32 (float16, bfloat16, or noisy values) is recovered
once more, by least squares over many random logits, twice independently: the
errors the report states (``target_error``, ``eps_error``) are the two
recoveries' disagreement, not a multiple of the precision.

A loss that is not a cross-entropy against a fixed target (focal loss, a
margin, a batch-dependent target) fails one of these, and the report says
which.

Reference: the decomposition ``CE = H(p) + KL(p || q)`` and its minimiser,
Cover and Thomas, "Elements of Information Theory", 2nd ed., Thm. 2.6.3.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lstheory._validation import CONVENTIONS, as_eps, as_num_classes
from lstheory.closed_form import convert_eps, logit_gap
from lstheory.testing._loss_caller import PRECISION_LEVELS, LossCallError, LossCaller, callable_name

__all__ = ["SmoothingReport", "WeightedSmoothing", "infer_smoothing"]

# Logits used for validation are multiples of this grid and at most _LOGIT_RANGE
# in size (plus short lines of grid steps), so that they are exact in float32.
_GRID = 2.0**-12
_LOGIT_RANGE = 4.0
_FINE_GRID = 2.0**-20
_MAX_VALIDATED_LABELS = 64
# Precision levels coarser than float32 (half precision, or a noisy loss): the
# targets are then recovered by averaging many probes (see _Prober.recover_averaged).
_FINE_PRECISION = PRECISION_LEVELS["float32"]
_AVERAGED_PROBES = 8  # per label and half, with autograd (K equations each)
_AVERAGED_GRID = 2.0**-6  # probe logits on this grid in [-2, 2]: exact in bfloat16 and float16
_MAX_AVERAGED_VALUES_ONLY = 64  # values only, the averaged recovery costs 4K(K+1) calls
_LEVEL_NAMES = {value: name for name, value in PRECISION_LEVELS.items()}

IGNORE_BEHAVIOURS = (
    "ignored",
    "counted in the mean",
    "padded logits change the loss",
    "not ignored",
    "not accepted",
    "not probed",
)
"""Outcomes of the padding probe, see :attr:`SmoothingReport.ignore_behaviour`."""


@dataclass(frozen=True)
class WeightedSmoothing:
    """A target of the form ``p_i ∝ w_i s_i``: class weights times a label smoothing.

    This is what ``torch.nn.functional.cross_entropy(weight=w,
    label_smoothing=eps)`` implies (PyTorch issue #104776): the optimal gap is
    ``logit_gap(K, eps, convention="uniform") + log(w_y / w_i)``.

    Attributes
    ----------
    weights : ndarray of shape ``(K,)``
        Relative class weights, scaled so that ``weights[0] == 1``.
    eps_off_target, eps_uniform : float or None
        The smoothing ``s`` after dividing out the weights, in each convention.
    """

    weights: np.ndarray
    eps_off_target: float | None
    eps_uniform: float | None


@dataclass(frozen=True, eq=False)
class SmoothingReport:
    """What a loss callable does, inferred from its behaviour by :func:`infer_smoothing`.

    Attributes
    ----------
    name : str
        The callable's name.
    num_classes : int
        ``K``.
    targets : ndarray of shape ``(K, K)``
        Row ``y``: the normalised target distribution the loss implies when the
        label is ``y`` (``t / m``).
    mass : ndarray of shape ``(K,)``
        Row sums ``m`` of the unnormalised targets (1 for a proper loss; 1.6 means
        the loss is 1.6 times a cross-entropy, e.g. a smoothing term not divided by K).
    is_cross_entropy : bool
        Whether the loss is, within its precision, ``m * CE(targets[y])`` per
        sample, consistently reduced over a batch (mean, class-weighted mean or sum).
    per_sample_cross_entropy : bool
        The first half of that: the loss of a single sample is a cross-entropy
        against a fixed target (values and, with autograd, gradients).
    residual : float
        Largest relative deviation of the loss from that cross-entropy at
        validation logits (values, gradients and batches).
    tolerance : float
        The relative deviation allowed, from the estimated precision.
    eps_off_target, eps_uniform : float or None
        The smoothing in each convention's terms when every row of ``targets`` is
        one value on the label and one value elsewhere (the same for every
        label), else ``None``.
    eps : float or None
        The intended eps passed to :func:`infer_smoothing`.
    convention : str or None
        With ``eps`` given, the convention in which the loss's smoothing equals
        ``eps`` within ``target_error`` (the closer one if a coarse precision
        admits both; ``"off_target"`` at ``eps = 0``, where both are exact);
        ``None`` otherwise.
    backend, dtype : str
        How the loss was called (``"torch"``/``"numpy"``; ``"float64"``/``"float32"``).
    precision : float
        Estimated machine epsilon of the loss's arithmetic.
    autograd : bool
        Whether the gradient was read through autograd.
    target_error : float
        Estimated absolute error of each entry of ``targets`` (and of ``mass``).
        For a loss coarser than float32 (half precision, or noisy values) it is
        measured: the disagreement of two independent recoveries, each averaged
        over many random probes.
    eps_error : float
        Estimated absolute error of ``eps_off_target`` (the mean of the
        diagonal of ``targets``, more accurate than one entry) and of the mean
        of ``mass``; what
        ``convention`` and :func:`~lstheory.testing.assert_loss_matches_theory`
        allow, four times over.  Defaults to ``target_error``.
    reduction : {"mean", "weighted mean", "sum"} or None
        How the loss reduces a batch; ``None`` if it is none of these.
    sample_weights : ndarray of shape ``(K,)`` or None
        For ``"weighted mean"``: each label's weight in the mean, ``[0] == 1``
        (PyTorch divides by the sum of ``w_{y_n}``).
    ignore_index : int or None
        The padding label probed.
    ignore_behaviour : str
        One of :data:`IGNORE_BEHAVIOURS`: ``"ignored"`` (padded samples enter
        neither the loss nor the mean's denominator), ``"counted in the mean"``,
        ``"padded logits change the loss"``, ``"not ignored"`` (some other value),
        ``"not accepted"`` (the loss raised or returned a non-finite value) or
        ``"not probed"``.
    ignore_detail : str
        The padding probe's outcome in words (values included).
    weighted_smoothing : WeightedSmoothing or None
        When the targets are class weights times a label smoothing (and not a
        plain smoothing).
    findings : tuple of str
        Why the loss is not a cross-entropy, or what is wrong with its batch
        handling, in words.
    """

    name: str
    num_classes: int
    targets: np.ndarray
    mass: np.ndarray
    is_cross_entropy: bool
    per_sample_cross_entropy: bool
    residual: float
    tolerance: float
    eps_off_target: float | None
    eps_uniform: float | None
    eps: float | None
    convention: str | None
    backend: str
    dtype: str
    precision: float
    autograd: bool
    target_error: float
    reduction: str | None
    sample_weights: np.ndarray | None
    ignore_index: int | None
    ignore_behaviour: str
    ignore_detail: str = ""
    weighted_smoothing: WeightedSmoothing | None = None
    findings: tuple[str, ...] = field(default_factory=tuple)
    eps_error: float | None = None

    def __post_init__(self) -> None:
        if self.eps_error is None:
            object.__setattr__(self, "eps_error", self.target_error)

    @property
    def is_smoothing(self) -> bool:
        """Every row is one value on the label and one elsewhere (so both eps are known)."""
        return self.eps_off_target is not None

    @property
    def gaps(self) -> np.ndarray:
        """``(K, K)`` optimal logit gaps ``z_y - z_i = log(targets[y, y] / targets[y, i])``.

        Row ``y``, column ``i``; ``NaN`` where a target entry is not positive.
        """
        t = self.targets
        diagonal = np.diag(t)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            gaps = np.log(diagonal / t)
        gaps[~((t > 0) & (diagonal > 0))] = np.nan
        return gaps

    @property
    def logit_gap(self) -> float | None:
        """The single optimal gap when the loss is a label smoothing, else ``None``."""
        if not self.is_smoothing:
            return None
        return float(logit_gap(self.num_classes, self.eps_off_target))

    def __str__(self) -> str:
        k = self.num_classes
        level = _LEVEL_NAMES.get(self.precision, f"{self.precision:.1e}")
        noisy = f"; its values are noisy, about {level} precision" if level != self.dtype else ""
        lines = [
            f"lstheory report for {self.name} with K={k} "
            f"({self.backend} {self.dtype}, {'autograd' if self.autograd else 'values only'}{noisy})"
        ]
        verdict = "yes" if self.is_cross_entropy else "NO"
        lines.append(
            f"  cross-entropy against a fixed target: {verdict} "
            f"(residual {self.residual:.1e}, tolerance {self.tolerance:.1e})"
        )
        lines.extend(f"    - {finding}" for finding in self.findings)
        lines.append(f"  batch reduction: {self.reduction or 'inconsistent'}" + (
            f", label weights {_short(self.sample_weights)}" if self.reduction == "weighted mean" else ""
        ) + (f"; labels {self.ignore_index}: {self.ignore_behaviour}" if self.ignore_index is not None else ""))
        mass = _short(self.mass) if np.ptp(self.mass) > self.target_error else _fmt(self.mass[0])
        if self.is_smoothing:
            p_true = float(np.mean(np.diag(self.targets)))
            p_other = (1.0 - p_true) / (k - 1)
            lines.append(
                f"  target for label y: {_fmt(p_true)} on y, {_fmt(p_other)} on each other class "
                f"(unnormalised sum {mass})"
            )
            lines.append(f"  implied logit gap z_y - z_i: {_fmt(self.logit_gap)}")
            uniform = "none (off-target mass > (K-1)/K)" if self.eps_uniform is None else _fmt(self.eps_uniform)
            error = f", each ± {self.eps_error:.1g}" if self.precision > _FINE_PRECISION else ""
            lines.append(f"  eps: {_fmt(self.eps_off_target)} (off_target) = {uniform} (uniform){error}")
        else:
            lines.append(f"  target for label y: not one value on y and one elsewhere (unnormalised sums {mass})")
            for y in range(min(k, 3)):
                lines.append(f"    label {y}: {_short(self.targets[y])}")
            if k > 3:
                lines.append("    ...")
            finite = self.gaps[~np.eye(k, dtype=bool)]
            finite = finite[np.isfinite(finite)]
            if finite.size:
                lines.append(f"  implied logit gaps z_y - z_i: from {_fmt(finite.min())} to {_fmt(finite.max())}")
            lines.append("  eps: none (no single smoothing describes these targets)")
        if self.eps is not None:
            lines.append(f"  intended eps {_fmt(self.eps)}: {self._intended()}")
        lines.append(f"  equivalent to: {self._equivalent()}")
        return "\n".join(lines)

    def _intended(self) -> str:
        if self.convention:
            return f"matches the {self.convention} convention"
        if self.is_smoothing and np.ptp(self.mass) <= 2 * self.target_error:
            # The normalised smoothing may match though the loss is scaled (mass != 1).
            scaled = _matching_convention(self.eps_off_target, self.eps_uniform, self.eps, 4 * self.eps_error)
            if scaled is not None:
                return f"matches {scaled}, up to a scale factor {_fmt(np.mean(self.mass))}"
        return "matches neither convention"

    def _equivalent(self) -> str:
        if not self.is_cross_entropy:
            return "nothing lstheory can name (not a cross-entropy against a fixed target)"
        scale = "" if np.allclose(self.mass, 1.0, atol=4 * self.target_error + 1e-12) else "a scaled "
        if self.is_smoothing:
            text = f"{scale}label-smoothed cross-entropy with eps={_fmt(self.eps_off_target)} (off_target)"
            if self.eps_uniform is not None:
                text += f" = eps={_fmt(self.eps_uniform)} (uniform)"
                if not scale:
                    text += (
                        f", i.e. torch.nn.functional.cross_entropy(logits, labels, "
                        f"label_smoothing={_fmt(self.eps_uniform)})"
                    )
            return text
        if self.weighted_smoothing is not None:
            w = self.weighted_smoothing
            eps_text = _fmt(w.eps_uniform) + " (uniform)" if w.eps_uniform is not None else (
                _fmt(w.eps_off_target) + " (off_target)"
            )
            return (
                f"{scale}cross-entropy with class weights w ∝ {_short(w.weights)} and label smoothing "
                f"eps={eps_text}, like torch.nn.functional.cross_entropy(logits, labels, weight=w, "
                f"label_smoothing=eps): optimal gap logit_gap(K, eps) + log(w_y / w_i)"
            )
        return f"{scale}cross-entropy against the per-label targets in .targets (no single eps)"


def _fmt(value: float) -> str:
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.6g}" if 1e-4 <= abs(value) < 1e6 else f"{value:.4e}"


def _short(values: np.ndarray | None, limit: int = 6) -> str:
    if values is None:
        return "none"
    shown = ", ".join(_fmt(v) for v in np.asarray(values)[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _lse(z: np.ndarray) -> np.ndarray:
    top = np.max(z, axis=-1, keepdims=True)
    return (top + np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True)))[..., 0]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@dataclass
class _Model:
    """The per-sample cross-entropy model ``L(z, y) = m_y lse(z) - t_y . z``."""

    t: np.ndarray  # (K, K) unnormalised targets, row = label
    m: np.ndarray  # (K,) masses

    def value(self, z: np.ndarray, y: int) -> float:
        return float(self.m[y] * _lse(z) - self.t[y] @ z)

    def grad(self, z: np.ndarray, y: int) -> np.ndarray:
        return self.m[y] * _softmax(z) - self.t[y]

    def scale(self, z: np.ndarray, y: int) -> float:
        """Size of the terms whose rounding bounds the error of evaluating the loss."""
        return float(np.sum(np.abs(self.t[y]) * (abs(_lse(z)) + np.abs(z))) + abs(self.m[y]) * abs(_lse(z))) + 1e-300


class _Prober:
    """Runs every probe of :func:`infer_smoothing` against one loss."""

    def __init__(self, caller: LossCaller, num_classes: int, rng: np.random.Generator):
        self.caller = caller
        self.k = num_classes
        self.rng = rng
        self.findings: list[str] = []
        self.padding_detail = ""
        self.dtype_level = caller.precision  # the coarsest dtype the loss shows (set by estimate_precision)
        self.coarse: float | None = None  # the precision, when coarser than float32 (set by infer_smoothing)

    # -- single samples -------------------------------------------------
    def one(self, z: np.ndarray, y: int, grad: bool = False) -> tuple[float, np.ndarray | None]:
        value, gradient = self.caller.evaluate(z[None, :], np.array([y]), grad=grad)
        return value, None if gradient is None else gradient[0]

    def random_logits(self, n: int | None = None) -> np.ndarray:
        shape = (self.k,) if n is None else (n, self.k)
        z = self.rng.uniform(-_LOGIT_RANGE, _LOGIT_RANGE, size=shape)
        return np.round(z / _GRID) * _GRID

    def recover(self) -> tuple[_Model, float]:
        """The target of every label, twice independently; return the mean and the error."""
        k = self.k
        log_k = math.log(k)
        t1 = np.empty((k, k))
        t2 = np.empty((k, k))
        m = np.empty(k)
        zero = np.zeros(k)
        for y in range(k):
            if self.caller.autograd:
                value0, g0 = self.one(zero, y, grad=True)
                m[y] = value0 / log_k
                t1[y] = m[y] / k - g0
                z = self.random_logits()
                _, g = self.one(z, y, grad=True)
                t2[y] = m[y] * _softmax(z) - g
            else:
                value0, _ = self.one(zero, y)
                m[y] = value0 / log_k
                up = math.log(k - 1 + math.e)
                down = math.log(k - 1 + math.exp(-1.0))
                for c in range(k):
                    e_c = np.zeros(k)
                    e_c[c] = 1.0
                    t1[y, c] = m[y] * up - self.one(e_c, y)[0]
                    t2[y, c] = self.one(-e_c, y)[0] - m[y] * down
        t = 0.5 * (t1 + t2)
        scale = np.maximum(np.abs(m), 1e-300)[:, None]
        disagreement = float(np.max(np.abs(t1 - t2) / scale))
        return _Model(t, m), 2 * disagreement

    def recover_averaged(self) -> tuple[_Model, float, float] | None:
        """Recover every target twice, each time averaged over many random probes.

        For a loss whose values carry rounding noise of half precision (or any
        noise), the single probes of :meth:`recover` are too coarse, and its
        mass ``m`` (read off one value shared by both recoveries) can be off by
        a rounding error that their disagreement does not show.  Here each half
        solves ``g = m softmax(z) - t`` (autograd; ``m`` from how the gradient
        moves with ``softmax(z)``) or ``L = m lse(z) - t . z`` (values) in the
        least-squares sense over its own random logits, on a grid exact in
        half precision.  Returns the model (the mean of the halves), the error of
        each normalised target entry and the error of the mean of the diagonal
        (which eps is), both from the halves' disagreement; ``None`` when the
        values-only recovery would be too costly (``K`` above 64).
        """
        k = self.k
        autograd = self.caller.autograd
        if not autograd and k > _MAX_AVERAGED_VALUES_ONLY:
            return None
        # With autograd each probe gives K equations: fewer probes suffice for large K
        # (eps averages K labels), and keep the cost near 16 * 128 calls.
        probes = max(2, min(_AVERAGED_PROBES, (_AVERAGED_PROBES * 128) // k)) if autograd else 2 * (k + 1)
        halves = []
        for _ in range(2):
            t = np.empty((k, k))
            m = np.empty(k)
            for y in range(k):
                z = np.round(self.rng.uniform(-2.0, 2.0, size=(probes, k)) / _AVERAGED_GRID) * _AVERAGED_GRID
                if autograd:
                    g = np.stack([self.one(row, y, grad=True)[1] for row in z])
                    s = _softmax(z)
                    ds, dg = s - s.mean(axis=0), g - g.mean(axis=0)
                    m[y] = float(np.sum(ds * dg) / np.sum(ds * ds))
                    t[y] = m[y] * s.mean(axis=0) - g.mean(axis=0)
                else:
                    values = np.array([self.one(row, y)[0] for row in z])
                    design = np.hstack([_lse(z)[:, None], -z])
                    solution = np.linalg.lstsq(design, values, rcond=None)[0]
                    m[y], t[y] = solution[0], solution[1:]
            halves.append((t, m))
        (t1, m1), (t2, m2) = halves
        safe1 = np.where(np.abs(m1) > 1e-300, m1, 1.0)[:, None]
        safe2 = np.where(np.abs(m2) > 1e-300, m2, 1.0)[:, None]
        difference = t1 / safe1 - t2 / safe2
        target_error = max(float(np.max(np.abs(difference))), float(np.max(np.abs(m1 - m2))))
        # The mean of both halves' diagonals over K labels: the halves' difference has
        # twice the variance of one half, which has twice that of their mean.
        # The same for the mean mass, which the same error bounds.
        eps_sigma = float(
            max(np.sqrt(np.mean(np.diag(difference) ** 2)), np.sqrt(np.mean((m1 - m2) ** 2))) / (2 * math.sqrt(k))
        )
        return _Model(0.5 * (t1 + t2), 0.5 * (m1 + m2)), target_error, 3 * eps_sigma

    # -- precision --------------------------------------------------------
    def estimate_precision(self, model: _Model) -> float:
        """The finest precision level, at least the dtype's, that explains the loss's noise.

        Rounding noise is erratic on small scales while a systematic deviation
        from the model (a non-cross-entropy) is smooth: along a very short line
        of logits, ``L - model`` minus its best quartic fit is the noise.  This
        recognises a loss that computes in float32 but returns a float64 or a
        Python float.
        """
        base = self.caller.precision
        steps = np.arange(24.0)
        noise = 0.0
        returned = []
        for _ in range(2):
            y = int(self.rng.integers(self.k))
            start = self.random_logits()
            # Steps of a few 2**-20: exact in float32 next to |z| <= 4, and so short
            # that a smooth deviation is a polynomial of degree 4 to ~1e-20.
            direction = np.round(self.rng.standard_normal(self.k) * 4) * _FINE_GRID
            values = np.array([self.one(start + s * direction, y)[0] for s in steps])
            for _ in range(3):
                if len(np.unique(values)) >= len(steps) // 2:
                    break
                # The loss hardly moves: it rounds its logits far coarser than these steps
                # (it computes in half precision, whatever it returns).  Its noise shows
                # on a longer line (steps up to 2**-6 per unit, still exact in float32).
                direction = direction * 2.0**5
                values = np.array([self.one(start + s * direction, y)[0] for s in steps])
            returned.extend(values)
            points = [start + s * direction for s in steps]
            deviation = values - np.array([model.value(z, y) for z in points])
            scale = max(model.scale(z, y) for z in points)
            fit = np.polynomial.polynomial.polyfit(steps, deviation, 4)
            detrended = deviation - np.polynomial.polynomial.polyval(steps, fit)
            noise = max(noise, float(np.sqrt(np.mean(detrended**2))) / scale)
        # A loss that returns values all exact in a half precision rounds its result
        # to it (whatever dtype it returns): bfloat16 first, as float16 holds most of its values.
        for name, bits in (("bfloat16", 8), ("float16", 11)):
            if all(_fits_bits(value, bits, name) for value in returned):
                base = max(base, PRECISION_LEVELS[name])
                break
        self.dtype_level = base
        for level in sorted(PRECISION_LEVELS.values()):
            if level >= base and noise <= _tolerance(self.k, level) / 4:
                return level
        return base  # erratic beyond half precision: validation will say so

    # -- validation of the per-sample model --------------------------------
    def validate_samples(self, model: _Model) -> tuple[float, float]:
        """Largest relative deviation of values and of gradients at random logits."""
        labels = range(self.k)
        if self.k > _MAX_VALIDATED_LABELS:
            labels = self.rng.choice(self.k, size=_MAX_VALIDATED_LABELS, replace=False)
        value_residual = 0.0
        grad_residual = 0.0
        for y in labels:
            y = int(y)
            for _ in range(2):
                z = self.random_logits()
                value, gradient = self.one(z, y, grad=True)
                value_residual = max(value_residual, abs(value - model.value(z, y)) / model.scale(z, y))
                if gradient is not None:
                    size = abs(model.m[y]) + np.max(np.abs(model.t[y])) + 1e-300
                    grad_residual = max(grad_residual, float(np.max(np.abs(gradient - model.grad(z, y)))) / size)
        return value_residual, grad_residual

    def gradient_finding(self, grad_residual: float, tolerance: float, values_failed: bool) -> tuple[str, bool]:
        """Why the autograd gradient is not the inferred cross-entropy's; and whether it is detached.

        Blame detaching (or a custom backward) only when the loss's values alone
        are a cross-entropy: recover the target from values only and confirm it
        at random logits.
        """
        k = self.k
        differs = (
            f"differs from the gradient of the cross-entropy its values imply by up to {grad_residual:.2e} (relative)"
        )
        if k > _MAX_AVERAGED_VALUES_ONLY:  # a values-only recovery costs K(2K+1) calls
            return (
                f"the autograd gradient {differs}: part of the loss may be detached or have a custom "
                f"backward, or the loss is no cross-entropy"
            ), False
        values_only = LossCaller(
            self.caller.loss_fn, k, self.caller.backend, self.caller.input_dtype, self.caller.output_dtype, False
        )
        prober = _Prober(values_only, k, np.random.default_rng(int(self.rng.integers(2**32))))
        try:
            model, _ = prober.recover()
            residual, _ = prober.validate_samples(model)
        except LossCallError:
            residual = math.inf
        if residual <= tolerance:
            return (
                f"the loss's values are a cross-entropy against a fixed target (recovered from its values "
                f"alone, they fit to {residual:.1e}), but its autograd gradient {differs}: part of the loss "
                f"is detached or has a custom backward"
            ), True
        if values_failed:
            return f"nor is its autograd gradient a cross-entropy's: it {differs}", False
        return f"the autograd gradient {differs}, and its values alone are no cross-entropy either", False

    # -- batches ------------------------------------------------------------
    def batch(self, z: np.ndarray, labels: np.ndarray) -> float:
        return self.caller.evaluate(z, labels)[0]

    def reduction(self, model: _Model, tolerance: float) -> tuple[str | None, np.ndarray | None, float]:
        """Detect mean / weighted mean / sum; return it, the label weights and a residual."""
        k = self.k
        z = self.random_logits()
        y = int(self.rng.integers(k))
        single, _ = self.one(z, y)
        double = self.batch(np.stack([z, z]), np.array([y, y]))
        ratio = double / single if single != 0 else math.nan
        slack = 16 * tolerance * model.scale(z, y) / max(abs(single), 1e-300)
        if self.coarse is not None:  # the same sample twice: only the reduction's rounding differs
            slack = 4 * self.coarse
        if abs(ratio - 1) <= slack:
            kind = "mean"
        elif abs(ratio - 2) <= 2 * slack:
            kind = "sum"
        else:
            self.findings.append(
                f"the loss of a batch holding one sample twice is {ratio:.6g} times that sample's loss "
                "(1 for a mean, 2 for a sum): the loss depends on the batch size or on other samples "
                "of the batch"
            )
            return None, None, abs(ratio - 1)

        weights = np.ones(k)
        if kind == "mean":
            # Pair (z=0, label 0) with (z=-3 e_y, label y): a weighted mean gives
            # L = (a_0 l_a + a_y l_b) / (a_0 + a_y), so a_y / a_0 = (l_a - L) / (L - l_b).
            zero = np.zeros(k)
            l_a, _ = self.one(zero, 0)
            for label in range(1, k):
                z_b = np.zeros(k)
                z_b[label] = -3.0
                l_b, _ = self.one(z_b, label)
                pair = self.batch(np.stack([zero, z_b]), np.array([0, label]))
                with np.errstate(divide="ignore", invalid="ignore"):
                    weights[label] = (l_a - pair) / (pair - l_b)
            if not np.all(np.isfinite(weights) & (weights > 0)):
                self.findings.append(
                    "the loss of a two-sample batch does not lie between the two samples' own losses: "
                    "it is not a (weighted) mean over samples, so it depends on other samples of the batch"
                )
                return None, None, math.inf
            if np.max(np.abs(weights - 1)) > (256 * tolerance if self.coarse is None else 32 * self.coarse):
                kind = "weighted mean"

        residual = 0.0
        for n in (6, 3):
            z = self.random_logits(n)
            labels = self.rng.integers(k, size=n)
            batch_value = self.batch(z, labels)
            singles = np.array([self.one(z[i], int(labels[i]))[0] for i in range(n)])
            expected = _reduce(kind, singles, weights[labels])
            scale = max(model.scale(z[i], int(labels[i])) for i in range(n))
            deviation = abs(batch_value - expected) / scale
            if self.coarse is not None:
                # The batch and its samples see the same logits: they differ by the
                # reduction's rounding, a few units of the precision of the values
                # (deviation in units of that, times the tolerance, as above).
                rounding = 4 * self.coarse * self._batch_scale(singles, kind)
                deviation = abs(batch_value - expected) / rounding * tolerance
            residual = max(residual, deviation)
            if deviation > tolerance:
                how = "sum" if kind == "sum" else "mean"
                plain = _reduce(kind, singles, np.ones(n))
                self.findings.append(
                    f"the loss depends on other samples of the batch: for a batch of {n} samples it is "
                    f"{batch_value:.10g}, but the {how} of the same samples' individual losses is "
                    f"{plain:.10g}" + (" (nor is it a label-weighted mean)" if kind == "weighted mean" else "")
                )
                return None, None, residual
        return kind, (weights if kind == "weighted mean" else None), residual

    @staticmethod
    def _batch_scale(singles: np.ndarray, kind: str) -> float:
        """Size of a batch's loss, for the rounding of its reduction."""
        size = float(np.max(np.abs(singles))) + 1e-300
        return size * len(singles) if kind == "sum" else size

    def padding(self, kind: str, weights: np.ndarray, ignore_index: int, model: _Model, tolerance: float) -> str:
        """Probe a batch with padded labels; return an entry of IGNORE_BEHAVIOURS."""
        k = self.k
        labels = np.array([int(self.rng.integers(k)), ignore_index, int(self.rng.integers(k)), ignore_index,
                           int(self.rng.integers(k))])
        kept = labels != ignore_index
        z = self.random_logits(len(labels))
        try:
            padded = self.batch(z, labels)
        except LossCallError as error:
            self.padding_detail = f"labels {ignore_index} are not accepted ({error})"
            return "not accepted"
        other = z.copy()
        other[~kept] = self.random_logits(int((~kept).sum()))
        try:
            padded_other = self.batch(other, labels)
        except LossCallError:
            padded_other = math.nan
        singles = np.array([self.one(z[i], int(labels[i]))[0] for i in np.flatnonzero(kept)])
        expected = _reduce(kind, singles, weights[labels[kept]])
        counted = expected * kept.sum() / len(labels)
        scale = max(model.scale(z[i], int(labels[i])) for i in np.flatnonzero(kept))
        slack = 16 * tolerance * scale
        if self.coarse is not None:  # as in reduction(): the same logits, so only rounding differs
            slack = 4 * self.coarse * self._batch_scale(singles, kind)
        n, n_kept = len(labels), int(kept.sum())
        if abs(padded_other - padded) > slack:
            self.padding_detail = (
                f"changing the logits of the samples labelled {ignore_index} changes the loss from "
                f"{padded:.10g} to {padded_other:.10g}: padded samples still enter the loss "
                "(e.g. its smoothing term, cf. PyTorch #73205)"
            )
            return "padded logits change the loss"
        if abs(padded - expected) <= slack:
            self.padding_detail = f"samples labelled {ignore_index} are ignored"
            return "ignored"
        if kind != "sum" and abs(padded - counted) <= slack:
            self.padding_detail = (
                f"padding counted in the mean: with {n - n_kept} of {n} labels = {ignore_index}, the "
                f"loss is {padded:.10g} = (sum over the {n_kept} real samples) / {n}, but the mean over "
                f"the non-ignored samples is {expected:.10g}; divide by the number of non-ignored "
                f"samples, not by N"
            )
            return "counted in the mean"
        self.padding_detail = (
            f"samples labelled {ignore_index} are not ignored: the loss of a batch with {n - n_kept} "
            f"of {n} labels = {ignore_index} is {padded:.10g}, but the {kind} over the non-ignored "
            f"samples is {expected:.10g} (pass ignore_index=None if the loss does not take padded labels)"
        )
        return "not ignored"


def _fits_bits(value: float, bits: int, name: str) -> bool:
    """Whether ``value`` is exact in a binary format with ``bits`` significant bits (normal range)."""
    if value == 0 or not math.isfinite(value):
        return True
    mantissa, exponent = math.frexp(value)
    if name == "float16" and not -13 <= exponent <= 16:
        return False
    return float(mantissa * 2.0**bits).is_integer()


def _reduce(kind: str, values: np.ndarray, weights: np.ndarray) -> float:
    if kind == "sum":
        return float(np.sum(values))
    return float(np.sum(weights * values) / np.sum(weights))


def _tolerance(num_classes: int, precision: float) -> float:
    """Relative deviation allowed between a loss and its inferred cross-entropy.

    Evaluating a K-term cross-entropy and recovering its K target entries each
    cost a few ulps per term; the error of the model grows like
    ``sqrt(K) (1 + log K)`` times the precision (random-walk summation).
    Coarser than float32 that factor would allow anything (1.3 for bfloat16 at
    K = 10): there the model is averaged over many probes
    (:meth:`_Prober.recover_averaged`) and a half-precision cross-entropy
    deviates from it by well under one unit of its precision (relative to the
    size of its terms), so a few units are allowed.
    """
    fine = 16.0 * math.sqrt(num_classes) * (1.0 + math.log(num_classes))
    if precision > _FINE_PRECISION:  # (never below float32's, so that the levels stay ordered)
        return max(2.0 * math.sqrt(1.0 + math.log(num_classes)) * precision, fine * _FINE_PRECISION)
    return fine * precision


def _matching_convention(
    eps_off: float, eps_uniform: float | None, intended: float, atol: float
) -> str | None:
    """The convention whose eps is within ``atol`` of ``intended`` (the closer; off_target on a tie)."""
    found = {"off_target": eps_off, "uniform": eps_uniform}
    distance = {name: abs(found[name] - intended) for name in CONVENTIONS if found[name] is not None}
    matching = [name for name in distance if distance[name] <= atol]
    if not matching:
        return None
    return min(matching, key=lambda name: (distance[name], CONVENTIONS.index(name)))


def _two_valued(targets: np.ndarray, atol: float) -> bool:
    k = targets.shape[0]
    diagonal = np.diag(targets)
    off = targets[~np.eye(k, dtype=bool)]
    return bool(np.ptp(diagonal) <= 2 * atol and np.ptp(off) <= 2 * atol)


def _eps_pair(num_classes: int, off_target_mass: float, atol: float) -> tuple[float | None, float | None]:
    """Both conventions' eps for an off-target mass ``c``; ``None`` outside ``[0, 1]``."""
    c = off_target_mass
    if -atol <= c < 0:
        c = 0.0
    if 1 < c <= 1 + atol:
        c = 1.0
    if not 0 <= c <= 1:
        return None, None
    try:
        uniform = float(convert_eps(num_classes, c, src="off_target", dst="uniform"))
    except ValueError:  # c > (K-1)/K: no uniform equivalent, unless within the error
        uniform = 1.0 if c - (num_classes - 1) / num_classes <= atol else None
    return c, uniform


def _weighted_smoothing(targets: np.ndarray, atol: float) -> WeightedSmoothing | None:
    """Fit ``targets[y, i] ∝ w_i s_i(y)`` with ``s`` a label smoothing; ``None`` if it does not fit."""
    k = targets.shape[0]
    if k < 3 or np.any(targets <= 0):
        return None
    off = ~np.eye(k, dtype=bool)
    log_t = np.log(targets)
    # log t[y, i] = lam_i + beta_y on the off-diagonal: alternate the two row/column means.
    lam = np.zeros(k)
    beta = np.zeros(k)
    for _ in range(50):
        beta = np.array([np.mean(log_t[y, off[y]] - lam[off[y]]) for y in range(k)])
        lam = np.array([np.mean(log_t[off[:, i], i] - beta[off[:, i]]) for i in range(k)])
    misfit = np.max(np.abs((log_t - lam[None, :] - beta[:, None])[off]))
    if misfit > 4 * atol / np.min(targets):
        return None
    weights = np.exp(lam - lam[0])
    unweighted = targets / weights[None, :]
    unweighted /= unweighted.sum(axis=1, keepdims=True)
    if not _two_valued(unweighted, 4 * atol / np.min(targets)):
        return None
    eps_off, eps_uniform = _eps_pair(k, 1.0 - float(np.mean(np.diag(unweighted))), atol)
    if eps_off is None:
        return None
    return WeightedSmoothing(weights, eps_off, eps_uniform)


def infer_smoothing(
    loss_fn: Callable[..., Any],
    num_classes: int,
    *,
    eps: float | None = None,
    ignore_index: int | None = -100,
    seed: int = 0,
) -> SmoothingReport:
    r"""Infer the label-smoothing target a loss implies, from its values and gradients.

    For each label ``y`` the loss of one sample is modelled as a cross-entropy
    against an unknown fixed target ``t_y``::

        L(z, y) = -sum_c t_yc log softmax(z)_c = m_y lse(z) - t_y . z,   m_y = sum_c t_yc

    ``t_y`` is read off the loss at ``z = 0, +-e_c`` (``K(2K+1)`` calls), or
    from its autograd gradient ``m_y softmax(z) - t_y`` (``2K`` calls) when
    autograd reaches through it; the model is then confirmed at random logits,
    along short lines of logits (the precision estimate), and on batches
    (see the module docstring).
    Both conventions describe the same targets, so only an intended ``eps``
    can name the convention the loss "uses".

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(logits, labels) -> scalar`` with ``logits`` of shape ``(N, K)``
        and integer ``labels`` of shape ``(N,)``: a torch callable (float64 or
        float32; autograd optional) or a NumPy one.  A ``torch.nn.Module``
        instance works as is.
    num_classes : int
        ``K >= 2``.  Without autograd the probing costs ``O(K^2)`` calls, so
        keep ``K`` in the hundreds for NumPy losses.
    eps : float in ``[0, 1]``, optional
        The smoothing the loss is meant to apply; sets ``report.convention``.
    ignore_index : int or None
        Padding label to probe (``-100``, PyTorch's and HuggingFace's default);
        must not be a class index.  ``None`` skips the probe.
    seed : int
        Seed of the random validation logits (the report is deterministic).

    Returns
    -------
    SmoothingReport
        ``targets`` ``(K, K)``, ``mass`` ``(K,)``, ``is_cross_entropy``,
        ``eps_off_target``, ``eps_uniform``, ``convention``, ... ; ``str(report)``
        explains it in words.

    Accuracy: a float64 loss's eps is recovered to about ``1e-14``, a float32
    loss's to about ``1e-6`` (``report.target_error`` is the estimate).  A
    loss coarser than float32 (float16, bfloat16, or noisy values) is probed
    again at many random logits, twice independently, and its eps is known to
    ``report.eps_error``, measured from the two recoveries' disagreement (at
    least a quarter of its precision: ``0.002`` for bfloat16).

    References: PyTorch issues #148884 and #130342 (users who could not tell
    which convention a loss uses); Szegedy et al. 2016, arXiv 1512.00567, sec. 7.

    Examples
    --------
    >>> import torch
    >>> from lstheory.testing import infer_smoothing
    >>> def loss(logits, labels):
    ...     return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> report = infer_smoothing(loss, 10, eps=0.1)
    >>> report.is_cross_entropy, report.convention
    (True, 'uniform')
    >>> print(f"{report.eps_uniform:.6f} {report.eps_off_target:.6f} {report.logit_gap:.4f}")
    0.100000 0.090000 4.5109
    >>> report.reduction, report.ignore_behaviour
    ('mean', 'ignored')
    """
    k = int(as_num_classes(num_classes))
    if not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be a single integer with 2 <= num_classes <= 2**53; got {num_classes!r}")
    intended = None if eps is None else float(as_eps(eps))
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an integer label outside [0, {k}) or None; got {ignore_index!r}")
        if 0 <= int(ignore_index) < k:
            raise ValueError(
                f"ignore_index must lie outside the class indices [0, {k}) (e.g. -100) or be None; "
                f"got {ignore_index}"
            )
        ignore_index = int(ignore_index)

    caller = LossCaller.detect(loss_fn, k)
    prober = _Prober(caller, k, np.random.default_rng(seed))
    model, target_error = prober.recover()
    precision = prober.estimate_precision(model)
    eps_error = None
    averaged = prober.recover_averaged() if precision > _FINE_PRECISION else None
    if averaged is not None:
        model, target_error, eps_error = averaged
    value_residual, grad_residual = prober.validate_samples(model)
    if precision > _FINE_PRECISION and caller.precision < PRECISION_LEVELS["bfloat16"]:
        # The noise along the short lines shows a loss coarser than float32, but not
        # reliably which half precision: one that rounds its logits to bfloat16 looks
        # partly smooth along them.  Take the finer level that explains the deviation
        # of the averaged model at random logits.
        for level in sorted(v for v in PRECISION_LEVELS.values() if v >= precision):
            if max(value_residual, grad_residual) <= _tolerance(k, level):
                precision = level
                break
    tolerance = _tolerance(k, precision)
    prober.coarse = precision if precision > _FINE_PRECISION else None
    if averaged is not None:
        # Half precision or noise: every error is measured (the halves' disagreement),
        # with a floor for rounding that both halves share: the loss's own constants
        # (1 - eps, eps/K) rounded to its precision move each target entry, the mass
        # and so eps by up to about half a unit of it.  Four times the floor is one
        # unit: 0.0078 for bfloat16, still below the 0.01 between the two conventions'
        # eps for eps = 0.1 at K = 10.
        target_error = max(target_error, precision / 4)
        eps_error = max(eps_error, precision / 4)
    elif precision > _FINE_PRECISION:  # values only and K > 64: the single probes, measured
        target_error = max(target_error, precision)
    else:
        target_error = max(target_error, 8 * (1 + math.log(k)) * precision)
    if eps_error is None:
        eps_error = target_error

    gradient_finding, detached = (
        prober.gradient_finding(grad_residual, tolerance, value_residual > tolerance)
        if grad_residual > tolerance else (None, False)
    )
    if value_residual > tolerance and not detached:  # (detached: its values miss a target read off gradients)
        prober.findings.append(
            f"not a cross-entropy against a fixed target: at random logits the loss differs from the "
            f"cross-entropy against its inferred target by up to {value_residual:.2e} (relative), far "
            f"above its {_LEVEL_NAMES[precision] if precision <= prober.dtype_level else 'estimated'} precision "
            f"(tolerance {tolerance:.1e}); e.g. a focal loss, a margin, a clipped or temperature-scaled softmax"
        )
    if gradient_finding is not None:
        prober.findings.append(gradient_finding)
    per_sample_ok = value_residual <= tolerance and grad_residual <= tolerance

    reduction, sample_weights, batch_residual = prober.reduction(model, tolerance)
    ignore_behaviour = "not probed"
    if ignore_index is not None and reduction is not None:
        weights = sample_weights if sample_weights is not None else np.ones(k)
        ignore_behaviour = prober.padding(reduction, weights, ignore_index, model, tolerance)
        if ignore_behaviour not in ("ignored", "not accepted"):
            prober.findings.append(prober.padding_detail)

    m = model.m
    safe_m = np.where(np.abs(m) > 1e-300, m, 1.0)
    targets = model.t / safe_m[:, None]
    eps_off = eps_uniform = None
    weighted = None
    if per_sample_ok:
        if _two_valued(targets, 2 * target_error):
            eps_off, eps_uniform = _eps_pair(k, 1.0 - float(np.mean(np.diag(targets))), 2 * target_error)
        else:
            weighted = _weighted_smoothing(targets, 2 * target_error)

    convention = None
    if (
        intended is not None
        and eps_off is not None
        and np.allclose(m, 1.0, atol=4 * target_error)
        and abs(float(np.mean(m)) - 1.0) <= 4 * eps_error
    ):
        convention = _matching_convention(eps_off, eps_uniform, intended, 4 * eps_error)

    return SmoothingReport(
        name=callable_name(loss_fn),
        num_classes=k,
        targets=targets,
        mass=m.copy(),
        is_cross_entropy=per_sample_ok and reduction is not None,
        per_sample_cross_entropy=per_sample_ok,
        residual=max(value_residual, grad_residual, batch_residual),
        tolerance=tolerance,
        eps_off_target=eps_off,
        eps_uniform=eps_uniform,
        eps=intended,
        convention=convention,
        backend=caller.backend,
        # Coarser than float32, name a dtype only where the loss shows it (its result's
        # dtype, or results all exact in a half precision); else the noise is no dtype.
        dtype=_LEVEL_NAMES[precision if precision <= _FINE_PRECISION else prober.dtype_level],
        precision=precision,
        autograd=caller.autograd,
        target_error=target_error,
        eps_error=eps_error,
        reduction=reduction,
        sample_weights=sample_weights,
        ignore_index=ignore_index,
        ignore_behaviour=ignore_behaviour,
        ignore_detail=prober.padding_detail,
        weighted_smoothing=weighted,
        findings=tuple(prober.findings),
    )
