"""Stage "report": :class:`SmoothingReport`, what the checker found, as data and in words."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lstheory._validation import CONVENTIONS
from lstheory.closed_form import logit_gap
from lstheory.testing.adapters import PRECISION_LEVELS, CallOptions
from lstheory.testing.model import DENSE_TARGETS_LIMIT, TargetModel

__all__ = ["SmoothingReport", "WeightedSmoothing", "FORMS"]

FORMS = ("cross_entropy", "kl_divergence", "cross_entropy_plus_constant", "not_cross_entropy")
"""Values of :attr:`SmoothingReport.form`."""

_LEVEL_NAMES = {value: name for name, value in PRECISION_LEVELS.items()}
_FORM_WORDS = {
    "cross_entropy": "a cross-entropy",
    "kl_divergence": (
        "a KL divergence: cross-entropy minus the target's entropy; same gradient and minimiser as the "
        "cross-entropy against the same target"
    ),
    "cross_entropy_plus_constant": (
        "a cross-entropy plus a constant per label (same gradient and minimiser as the cross-entropy)"
    ),
    "not_cross_entropy": "not a cross-entropy against a fixed target",
}


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
    """What a loss callable does, inferred from its behaviour by :func:`~lstheory.testing.infer_smoothing`.

    Per label ``y`` the loss of one sample is ``L(z, y) = m_y lse(z) - t_y . z + c_y``.

    Attributes
    ----------
    name : str
        The callable's name.
    num_classes : int
        ``K``.
    mass : ndarray of shape ``(K,)``
        ``m_y``: 1 for a proper loss; 1.6 means the loss is 1.6 times a
        cross-entropy (e.g. a smoothing term not divided by K); 0 for padding.
    offset : ndarray of shape ``(K,)``
        ``c_y``: 0 for a cross-entropy, ``sum_i t_yi log t_yi`` for a KL divergence.
    form : str
        One of :data:`FORMS`: ``"cross_entropy"``, ``"kl_divergence"``,
        ``"cross_entropy_plus_constant"`` or ``"not_cross_entropy"``.
    is_cross_entropy : bool
        Whether the loss is, within its measured precision, a cross-entropy
        against a fixed target per sample (or the KL form, or a cross-entropy
        plus a constant: same gradient and minimiser), consistently reduced
        over a batch.
    per_sample_cross_entropy : bool
        The first half of that: each single sample is one.
    residual, tolerance : float
        Largest deviation of the loss from its model at validation logits, in
        units of the allowed error (``residual / tolerance <= 1`` passes); the
        allowed error is ``Z = 8`` standard deviations of the measured
        rounding noise and of the fit's error predicted from it.
    eps_off_target, eps_uniform : float or None
        The smoothing in each convention's terms, computed over the classes
        that receive smoothing mass, when every label's normalised target is
        one value on the label and one on each of those classes; else ``None``.
    eps : float or None
        The intended eps passed to :func:`~lstheory.testing.infer_smoothing`.
    convention : str or None
        With ``eps``, the convention in which the loss's smoothing equals it
        within ``eps_error``; ``None`` otherwise.
    padding_classes : tuple of int
        Labels the loss treats as padding: zero loss, and (with a mean) left
        out of the denominator.
    unsmoothed_classes : tuple of int
        Classes that receive no target mass from any other label (while others do).
    smoothing_classes : int
        ``K'``, the number of classes that receive smoothing mass (``K`` minus
        the unsmoothed classes); eps is in terms of ``K'``.
    backend, dtype : str
        How the loss was called; the precision it shows.
    precision : float
        Machine epsilon of the loss's arithmetic (measured: coarser when its values are noisy).
    constants_dtype : str
        The precision of the target's constants: ``"float32"`` for a float64
        loss whose targets are float32 numbers (e.g. ``.float()`` targets).
    autograd : bool
        Whether the gradient was read through autograd.
    target_error, eps_error, mass_error : float
        Standard error of each target entry, and the errors allowed on eps and
        on each label's mass (8 standard errors of the fit plus the rounding
        of the loss's constants).
    approximation : float
        0 for a cross-entropy within rounding; for an approximate one (e.g.
        ``log(softmax(z) + delta)``, see :attr:`notes`) its measured deviation
        from the cross-entropy as an error of each target entry (included in
        ``eps_error`` and ``mass_error``).
    reduction : str or None
        ``"mean"``, ``"weighted mean"``, ``"sum"`` or ``None`` (inconsistent).
    reduction_detail : str
        The reduction in words (per axis for sequences; per-sample outputs).
    sample_weights : ndarray of shape ``(K,)`` or None
        For a weighted mean, each label's weight (``[0] == 1``).
    ignore_index : int or None
        The padding label probed (any integer, also a class index).
    ignore_behaviour, ignore_detail : str
        The padding probe's outcome (an entry of
        :data:`~lstheory.testing.batching.IGNORE_BEHAVIOURS`) and in words.
    weighted_smoothing : WeightedSmoothing or None
        When the targets are class weights times a label smoothing.
    findings : tuple of str
        Why the loss is not a cross-entropy, or what is wrong with its batch or
        padding handling, in words (each a cause).
    notes : tuple of str
        What was found that is no failure (e.g. a batch of only padding gives NaN).
    coverage : str
        What was probed: labels fitted, labels validated and how.
    options : CallOptions
        How the loss was called.
    """

    name: str
    num_classes: int
    mass: np.ndarray
    offset: np.ndarray
    form: str
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
    eps_error: float
    mass_error: float
    approximation: float
    reduction: str | None
    sample_weights: np.ndarray | None
    ignore_index: int | None
    ignore_behaviour: str
    model: TargetModel = field(repr=False)
    ignore_detail: str = ""
    weighted_smoothing: WeightedSmoothing | None = None
    findings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    padding_classes: tuple[int, ...] = ()
    unsmoothed_classes: tuple[int, ...] = ()
    smoothing_classes: int = 0
    constants_dtype: str = "float64"
    reduction_detail: str = ""
    coverage: str = ""
    options: CallOptions = field(default_factory=CallOptions)

    # -- targets -------------------------------------------------------------
    def target_row(self, label: int) -> np.ndarray:
        """The normalised target ``t_y / m_y`` for ``label`` (zeros for padding), shape ``(K,)``."""
        row = self.model.row(int(label))
        m = float(self.mass[label])
        return row / m if abs(m) > 1e-300 else row * 0.0

    @property
    def targets(self) -> np.ndarray:
        """``(K, K)``: row ``y`` is :meth:`target_row` ``(y)``; only for ``K <= 4096`` (use ``target_row``)."""
        k = self.num_classes
        if k > DENSE_TARGETS_LIMIT:
            raise ValueError(
                f"report.targets would be a ({k}, {k}) array ({8 * k * k / 2**30:.0f} GiB); for K > "
                f"{DENSE_TARGETS_LIMIT} read rows with report.target_row(y)"
            )
        if self.model.dense is not None:
            m = np.where(np.abs(self.mass) > 1e-300, self.mass, 1.0)
            rows = self.model.dense / m[:, None]
            rows[list(self.model.padding)] = 0.0
            return rows
        return np.stack([self.target_row(y) for y in range(k)])

    @property
    def is_smoothing(self) -> bool:
        """Every label's target is one value on it and one on each smoothed class (so both eps are known)."""
        return self.eps_off_target is not None

    @property
    def gaps(self) -> np.ndarray:
        """``(K, K)`` optimal logit gaps ``log(targets[y, y] / targets[y, i])``; ``NaN`` where not positive."""
        t = self.targets
        diagonal = np.diag(t)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            gaps = np.log(diagonal / t)
        gaps[~((t > 0) & (diagonal > 0))] = np.nan
        return gaps

    @property
    def logit_gap(self) -> float | None:
        """The single optimal gap (over the smoothed classes) when the loss is a label smoothing, else ``None``."""
        if not self.is_smoothing:
            return None
        return float(logit_gap(self.smoothing_classes or self.num_classes, self.eps_off_target))

    # -- words ---------------------------------------------------------------------
    def __str__(self) -> str:
        from lstheory.testing.report_text import report_lines

        return "\n".join(report_lines(self))


def level_name(precision: float) -> str:
    """``"float32"`` for float32's machine epsilon; else the number."""
    return _LEVEL_NAMES.get(precision, f"{precision:.1e}")


def fmt(value: float) -> str:
    """A number in 6 significant digits (scientific outside ``[1e-4, 1e6)``)."""
    value = float(value)
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}" if 1e-4 <= abs(value) < 1e6 else f"{value:.4e}"


def fmt_known(value: float, error: float) -> str:
    """``value`` to the decimals its ``error`` supports (``fmt`` when the error is below ``1e-6``)."""
    if not error > 1e-6 or not math.isfinite(float(value)):
        return fmt(value)
    decimals = min(6, max(1, math.ceil(-math.log10(error))))
    return f"{float(value):.{decimals}f}"


def short(values, limit: int = 6) -> str:
    """``[a, b, ...]`` with at most ``limit`` entries."""
    if values is None:
        return "none"
    values = np.asarray(values)
    shown = ", ".join(fmt(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def labels_text(labels, limit: int = 8) -> str:
    """``"3, 7 and 12"`` / ``"0, 1, 2, ... (40 labels)"``."""
    labels = [int(y) for y in labels]
    if len(labels) > limit:
        return ", ".join(map(str, labels[:limit])) + f", ... ({len(labels)} labels)"
    if len(labels) > 1:
        return ", ".join(map(str, labels[:-1])) + f" and {labels[-1]}"
    return str(labels[0]) if labels else "none"


def matching_convention(eps_off: float, eps_uniform: float | None, intended: float, atol: float) -> str | None:
    """The convention whose eps is within ``atol`` of ``intended`` (the closer; off_target on a tie)."""
    found = {"off_target": eps_off, "uniform": eps_uniform}
    distance = {name: abs(found[name] - intended) for name in CONVENTIONS if found[name] is not None}
    matching = [name for name in distance if distance[name] <= atol]
    if not matching:
        return None
    return min(matching, key=lambda name: (distance[name], CONVENTIONS.index(name)))
