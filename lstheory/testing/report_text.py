"""``str(SmoothingReport)``: the report in words, one line per finding."""

from __future__ import annotations

import numpy as np

from lstheory.testing.report import _FORM_WORDS, SmoothingReport, fmt, fmt_known, labels_text, level_name, matching_convention, short

__all__ = ["report_lines"]


def _header(r: SmoothingReport) -> list[str]:
    noisy = f"; its values are noisy, about {level_name(r.precision)} precision" if level_name(r.precision) != r.dtype else ""
    how = r.options.describe()
    lines = [
        f"lstheory report for {r.name} with K={r.num_classes} "
        f"({r.backend} {r.dtype}, {'autograd' if r.autograd else 'values only'}{noisy}{'; ' + how if how else ''})"
    ]
    verdict = "yes" if r.is_cross_entropy else "NO"
    form = "" if r.form in ("cross_entropy", "not_cross_entropy") else f": {_FORM_WORDS[r.form]}"
    lines.append(
        f"  cross-entropy against a fixed target: {verdict}{form} (largest deviation {r.residual / r.tolerance if r.tolerance else 0.0:.2g} times the allowed error)"
    )
    lines.extend(f"    - {finding}" for finding in r.findings)
    return lines


def _batches(r: SmoothingReport) -> list[str]:
    text = f"  batch reduction: {r.reduction_detail or r.reduction or 'inconsistent'}"
    if r.reduction == "weighted mean":
        text += f", label weights {short(r.sample_weights)}"
    if r.ignore_index is not None:
        text += f"; labels {r.ignore_index}: {r.ignore_behaviour}"
    lines = [text]
    if r.padding_classes:
        lines.append(f"  padding classes (zero loss, left out of the mean): {labels_text(r.padding_classes)}")
    if r.unsmoothed_classes:
        lines.append(f"  classes that receive no smoothing mass: {labels_text(r.unsmoothed_classes)}")
    lines.extend(f"  note: {note}" for note in r.notes)
    return lines


def _targets(r: SmoothingReport) -> list[str]:
    k = r.num_classes
    ordinary = [y for y in range(min(k, 64)) if y not in r.padding_classes] or [0]
    masses = r.mass[[y for y in range(k) if y not in r.padding_classes] or [0]]
    mass = short(masses) if np.ptp(masses) > 8 * r.target_error + 1e-12 else fmt(masses[0])
    if r.is_smoothing:
        y = ordinary[0]
        row = r.target_row(y)
        p_true = float(row[y])
        receiving = [i for i in range(min(k, 64)) if i != y and i not in r.unsmoothed_classes]
        p_other = float(row[receiving[0]]) if receiving else 0.0
        over = "each other class" if not r.unsmoothed_classes else f"each of the other {r.smoothing_classes - 1} smoothed classes"
        lines = [
            f"  target for label y: {fmt(p_true)} on y, {fmt(p_other)} on {over} (unnormalised sum {mass})",
            f"  implied logit gap z_y - z_i: {fmt(r.logit_gap)}",
        ]
        uniform = "none (off-target mass > (K-1)/K)" if r.eps_uniform is None else fmt_known(r.eps_uniform, r.eps_error)
        error = f", each ± {r.eps_error:.1g}" if r.eps_error > 1e-6 else ""
        over_k = "" if not r.unsmoothed_classes else f" over the K'={r.smoothing_classes} smoothed classes"
        lines.append(f"  eps: {fmt_known(r.eps_off_target, r.eps_error)} (off_target) = {uniform} (uniform){over_k}{error}")
        if r.constants_dtype != "float64" and r.dtype == "float64":
            lines.append(
                f"  its target constants are {r.constants_dtype} numbers (rounded inside a float64 loss): eps is known "
                f"to {r.constants_dtype} rounding, ± {r.eps_error:.1g}"
            )
        return lines
    lines = [f"  target for label y: not one value on y and one elsewhere (unnormalised sums {mass})"]
    for y in ordinary[:3]:
        lines.append(f"    label {y}: {short(r.target_row(y) * r.mass[y])}")
    if k > 3:
        lines.append("    ...")
    if k <= 4096:
        finite = r.gaps[~np.eye(k, dtype=bool)]
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lines.append(f"  implied logit gaps z_y - z_i: from {fmt(finite.min())} to {fmt(finite.max())}")
    lines.append("  eps: none (no single smoothing describes these targets)")
    return lines


def _intended(r: SmoothingReport) -> str:
    if r.convention:
        return f"matches the {r.convention} convention"
    if r.is_smoothing and r.eps is not None:
        scaled = matching_convention(r.eps_off_target, r.eps_uniform, r.eps, r.eps_error)
        if scaled is not None:
            return f"matches {scaled}, up to a scale factor {fmt(np.mean(r.mass[r.mass != 0]))}"
    return "matches neither convention"


def _equivalent(r: SmoothingReport) -> str:
    if not r.is_cross_entropy:
        return "nothing lstheory can name (not a cross-entropy against a fixed target)"
    masses = r.mass[[y for y in range(r.num_classes) if y not in r.padding_classes] or [0]]
    scale = "" if np.allclose(masses, 1.0, atol=r.mass_error) else "a scaled "
    kl = {"kl_divergence": " in KL form", "cross_entropy_plus_constant": " plus a constant"}.get(r.form, "")
    if r.is_smoothing:
        text = f"{scale}label-smoothed cross-entropy{kl} with eps={fmt_known(r.eps_off_target, r.eps_error)} (off_target)"
        if r.eps_uniform is not None:
            text += f" = eps={fmt_known(r.eps_uniform, r.eps_error)} (uniform)"
            if not scale and not kl and not r.unsmoothed_classes:
                text += f", i.e. torch.nn.functional.cross_entropy(logits, labels, label_smoothing={fmt_known(r.eps_uniform, r.eps_error)})"
        return text
    if r.weighted_smoothing is not None:
        w = r.weighted_smoothing
        eps_text = fmt(w.eps_uniform) + " (uniform)" if w.eps_uniform is not None else fmt(w.eps_off_target) + " (off_target)"
        return (
            f"{scale}cross-entropy with class weights w ∝ {short(w.weights)} and label smoothing eps={eps_text}, like "
            f"torch.nn.functional.cross_entropy(logits, labels, weight=w, label_smoothing=eps): optimal gap "
            f"logit_gap(K, eps) + log(w_y / w_i)"
        )
    return f"{scale}cross-entropy{kl} against the per-label targets in .targets (no single eps)"


def report_lines(r: SmoothingReport) -> list[str]:
    """The report, line by line."""
    lines = _header(r) + _batches(r) + _targets(r)
    if r.eps is not None:
        lines.append(f"  intended eps {fmt(r.eps)}: {_intended(r)}")
    lines.append(f"  equivalent to: {_equivalent(r)}")
    if r.coverage:
        lines.append(f"  covered: {r.coverage}")
    return lines
