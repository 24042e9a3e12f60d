r"""The inferred model of a loss: per label ``L(z, y) = m_y lse(z) - t_y . z + c_y``.

:class:`TargetModel` holds the targets either densely (every label fitted,
a ``(K, K)`` array, small ``K``) or in the structured form that label
smoothing has at any ``K``::

    t_y = on_y e_y + off_y v   (v_y ignored),

with one class profile ``v`` (1 for a class that receives smoothing mass, 0
for one that does not, a class weight otherwise) shared by every label, and
the rows of a few exceptional labels kept densely.  The structured form is
fitted on a sample of labels (:func:`structure_from_rows`) and costs ``O(K)``
memory; it predicts the loss at the sweep's logits in ``O(1)`` per sample.

Also here: which labels are padding (``m = t = c = 0``), the form of the
constant ``c_y`` (:func:`classify_form`), and what each label's parameters
say about it being a cross-entropy at all (:func:`label_kind`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lstheory.testing.probes import lse, softmax

if TYPE_CHECKING:
    from lstheory.testing.fit import LabelFits
    from lstheory.testing.summary import Errors

__all__ = [
    "TargetModel", "build_model", "structure_from_rows", "structured_masses", "structured_offsets", "label_kind", "classify_form",
    "kl_offset", "Z",
]

Z = 8.0
"""Standard deviations a measured deviation must exceed to count: a Gaussian error passes 8 sigma with
probability 1e-15, so no correct loss fails over the ~10^6 comparisons of a large-K check."""

DENSE_TARGETS_LIMIT = 4096
"""Largest K for which ``SmoothingReport.targets`` builds the ``(K, K)`` array."""


@dataclass
class TargetModel:
    """Per-label masses, constants and targets (dense or structured; see the module docstring)."""

    num_classes: int
    m: np.ndarray
    c: np.ndarray
    on: np.ndarray
    off: np.ndarray
    profile: np.ndarray
    dense: np.ndarray | None = None
    exceptions: dict[int, np.ndarray] = field(default_factory=dict)
    padding: set[int] = field(default_factory=set)

    def row(self, label: int) -> np.ndarray:
        """``t_y``, shape ``(K,)``."""
        if label in self.padding:
            return np.zeros(self.num_classes)
        if self.dense is not None:
            return self.dense[label]
        if label in self.exceptions:
            return self.exceptions[label]
        row = self.off[label] * self.profile
        row[label] = self.on[label]
        return row

    def rows(self, labels) -> np.ndarray:
        """``t_y`` for each label, shape ``(n, K)``."""
        return np.stack([self.row(int(y)) for y in labels]) if len(labels) else np.zeros((0, self.num_classes))

    def values(self, z: np.ndarray, labels) -> np.ndarray:
        """The model's per-sample losses at logits ``z`` ``(n, K)``."""
        labels = np.asarray(labels)
        t = self.rows(labels)
        return self.m[labels] * lse(z) - np.sum(t * z, axis=1) + self.c[labels]

    def gradients(self, z: np.ndarray, labels) -> np.ndarray:
        """The model's per-sample gradients ``m softmax(z) - t``, shape ``(n, K)``."""
        labels = np.asarray(labels)
        return self.m[labels][:, None] * softmax(z) - self.rows(labels)


def label_kind(m: float, t_sum: float, m_error: float, shift_error: float = 0.0, t_constant: bool = False) -> str:
    """What one label's ``m`` and ``sum(t)`` say: a cross-entropy or why not.

    ``"padding"`` is decided elsewhere; here: ``"constant"`` (``m = 0`` and
    ``t = 0``, ``t_constant``: the loss does not depend on the logits),
    ``"linear"`` (``m = 0``: no log-sum-exp), ``"negated"`` (``m < 0``), ``"not shift-invariant"``
    (``m != sum(t)``: shifting every logit changes the loss), or
    ``"cross_entropy"``.  ``shift_error``: the standard error of ``m - sum(t)``
    itself (the rounding of the gradient's sum, about ``sqrt(K)`` entries' noise).
    When ``m``'s error cannot tell 0 from 1, nothing is said (``"cross_entropy"``):
    such a label's fit is unstable, and validation shows the loss is no cross-entropy.
    """
    if Z * m_error >= 0.5:
        return "cross_entropy"  # the fit cannot tell m = 0 from m = 1: nothing to say here (validation judges)
    if abs(m) <= Z * m_error:
        return "constant" if t_constant else "linear"
    if m < 0:
        return "negated"
    if abs(m - t_sum) > Z * max(m_error, shift_error) * max(1.0, np.sqrt(abs(t_sum))):
        return "not shift-invariant"
    return "cross_entropy"


def kl_offset(row: np.ndarray) -> float:
    """``sum_i t_i log t_i`` (0 log 0 = 0): the constant of ``KL(t || q) = CE(t, q) + sum t log t``."""
    positive = row[row > 0]
    return float(np.sum(positive * np.log(positive)))


def classify_form(offsets: np.ndarray, kl: np.ndarray, allowed: np.ndarray) -> str:
    """``"cross_entropy"`` (``c = 0``), ``"kl_divergence"`` (``c = sum t log t``) or a CE plus a constant.

    ``allowed``: how far each offset may be from the form's (absolute).
    """
    if np.all(np.abs(offsets) <= allowed):
        return "cross_entropy"
    if np.all(np.abs(offsets - kl) <= allowed):
        return "kl_divergence"
    return "cross_entropy_plus_constant"


def structured_masses(on: np.ndarray, off: np.ndarray, profile: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``m_y = sum_i t_yi = on_y + off_y (sum(v) - v_y)``: the mass a shift-invariant loss must have."""
    return on + off * (float(np.sum(profile)) - profile[labels])


def _structured_kl(on: np.ndarray, off: np.ndarray, profile: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``sum_i t_yi log t_yi`` of structured rows in ``O(1)`` per label, negative entries (rounding) taken as 0.

    (Whether this predicts the fitted constants is checked by the caller.)
    """
    profile, on, off = np.maximum(profile, 0.0), np.maximum(on, 0.0), np.maximum(off, 0.0)
    positive = profile > 0
    total = float(np.sum(profile))
    v_log_v = float(np.sum(profile[positive] * np.log(profile[positive])))
    v_y = profile[labels]
    own = np.where(v_y > 0, v_y * np.log(np.where(v_y > 0, v_y, 1.0)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(off > 0, off * (np.log(np.where(off > 0, off, 1.0)) * (total - v_y) + v_log_v - own), 0.0)
    return np.where(on > 0, on * np.log(np.where(on > 0, on, 1.0)), 0.0) + spread


def structured_offsets(
    on: np.ndarray,
    off: np.ndarray,
    profile: np.ndarray,
    labels: np.ndarray,
    fitted: np.ndarray,
    fitted_c: np.ndarray,
    allowed: float,
) -> np.ndarray:
    """``c_y`` of each label of ``labels`` in the form of the fitted labels' constants.

    ``fitted`` (indices into ``labels``) have their own fitted ``fitted_c``;
    the forms, in this order: a cross-entropy (``c = 0``), the KL form (``c =
    sum t log t``), the KL form of the normalised target scaled by ``m`` (``c
    = sum t log t - m log m``), one constant (their median).  The first that
    predicts every fitted constant within ``allowed`` is taken, else the one
    closest; the sweep and the validation check the prediction like any other.
    """
    candidates = [np.zeros(len(labels))]
    kl = _structured_kl(on, off, profile, labels)
    mass = structured_masses(on, off, profile, labels)
    candidates += [kl, kl - np.where(mass > 0, mass * np.log(np.where(mass > 0, mass, 1.0)), 0.0)]
    candidates.append(np.full(len(labels), float(np.median(fitted_c)) if len(fitted_c) else 0.0))
    if not len(fitted):
        return candidates[0]
    misfit = np.array([float(np.max(np.abs(c[fitted] - fitted_c))) for c in candidates])
    within = np.flatnonzero(misfit <= allowed)
    return candidates[int(within[0]) if within.size else int(np.argmin(misfit))]


def _robust_scale(row: np.ndarray, label: int) -> float:
    others = np.delete(row, label)
    return float(np.median(others))


def structure_from_rows(
    num_classes: int, labels: np.ndarray, rows: np.ndarray, entry_error: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Fit ``t_y = on_y e_y + off_y v`` to fitted rows; return ``on``, ``off`` (per row), ``v`` and the misfits.

    ``v_i`` is the median over the rows (``y != i``) of ``t_yi / off_y``,
    scaled to median 1 over the classes that receive mass; a row whose
    entries leave that form by more than ``Z`` times their error is returned
    in the list of misfits (its index in ``labels``).  Classes no fitted row
    covers keep ``v_i = 1`` (validated by the sweep).
    """
    k = num_classes
    on = rows[np.arange(len(labels)), labels]
    off = np.array([_robust_scale(rows[i], int(y)) for i, y in enumerate(labels)])
    profile = np.ones(k)
    smoothing = np.abs(off) > Z * entry_error
    if np.any(smoothing):
        ratios = rows[smoothing] / off[smoothing][:, None]
        ratios[np.arange(int(smoothing.sum())), labels[smoothing]] = np.nan
        covered = ~np.all(np.isnan(ratios), axis=0)
        profile[covered] = np.nanmedian(ratios[:, covered], axis=0)
        receiving = profile[np.abs(profile) > 0.5]
        norm = float(np.median(receiving)) if receiving.size else 1.0
        profile /= norm
        off = off * norm
    predicted = off[:, None] * profile[None, :]
    predicted[np.arange(len(labels)), labels] = on
    misfit = np.abs(rows - predicted) > Z * entry_error[:, None] + 1e-300
    return on, off, profile, [int(i) for i in np.flatnonzero(misfit.any(axis=1))]


def build_model(fits: LabelFits, k: int, dense: bool, errors: Errors, padding: set[int]) -> TargetModel:
    """Every label's row: densely when all were fitted, else the structured form (shared by unfitted labels).

    Unfitted labels get ``m = sum(t)`` (:func:`structured_masses`) and ``c`` in
    the fitted labels' form (:func:`structured_offsets`); ``padding`` labels zero.
    """
    keep = [i for i, y in enumerate(fits.labels) if int(y) not in padding]
    labels, rows = fits.labels[keep], fits.t[keep]
    entry_error = np.full(len(keep), errors.off)
    if len(keep):
        on, off, profile, misfits = structure_from_rows(k, labels, rows, entry_error)
    else:
        on, off, profile, misfits = np.zeros(0), np.zeros(0), np.ones(k), []
    on_all = np.full(k, float(np.median(on)) if len(on) else 0.0)
    off_all = np.full(k, float(np.median(off)) if len(off) else 0.0)
    on_all[labels], off_all[labels] = on, off
    every = np.arange(k)
    # Unfitted labels: m = sum(t) (shift invariance) and c in the fitted labels' form (0, KL, ...).
    m_all = structured_masses(on_all, off_all, profile, every) if len(keep) else np.zeros(k)
    c_allowed = Z * (errors.c + k * errors.off * (1 + abs(math.log(max(float(np.median(np.abs(off_all))), 1e-300)))))
    c_all = structured_offsets(on_all, off_all, profile, every, labels, fits.c[keep], c_allowed) if len(keep) else np.zeros(k)
    m_all[fits.labels], c_all[fits.labels] = fits.m, fits.c
    for y in padding:
        m_all[y] = c_all[y] = on_all[y] = off_all[y] = 0.0
    model = TargetModel(k, m_all, c_all, on_all, off_all, profile, padding=set(padding))
    if dense:
        matrix = np.zeros((k, k))
        matrix[fits.labels] = fits.t
        model.dense = matrix
    else:
        model.exceptions = {int(labels[i]): rows[i] for i in misfits}
    return model
