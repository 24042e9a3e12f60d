r"""One experiment per trained claim, on the digits split, with settings fixed before any was run.

Shared set-up (claims a, b, c, and the teachers of e): a multilayer perceptron
64 -> 64 -> 64 -> 10 (ReLU), float64, PyTorch's default initialisation, trained
full-batch with Adam (learning rate 3e-3, 1,500 steps) on the 1,000 training
images, without smoothing and with ``eps = 0.1`` in PyTorch's
``cross_entropy(label_smoothing=)`` (the uniform convention), for seeds 0, 1, 2.
Every run is seeded and single-threaded (:func:`lstheory.trained.training.deterministic`).

Each experiment returns a :class:`TrainedMeasurement`: whether the source's
effect shows (by a criterion written in its docstring), a one-line summary and
the figures (JSON-ready) that ``lstheory verify --level trained --record`` stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lstheory.closed_form import logit_gap
from lstheory.neural_collapse import neural_collapse_optimum
from lstheory.trained import measures
from lstheory.trained.data import NUM_CLASSES, TRAIN_PER_CLASS, load_digits_split
from lstheory.trained.training import multilayer_perceptron, polish_lbfgs, train_full_batch

SEEDS: tuple[int, ...] = (0, 1, 2)
EPS = 0.1
CONVENTION = "uniform"
WIDTHS: tuple[int, ...] = (64, 64, 64, NUM_CLASSES)
STEPS = 1500
LEARNING_RATE = 3e-3
MONITOR_EVERY = 100

GAP_RELATIVE_TOLERANCE = 0.02
"""(a): the trained gap counts as at the closed form when within 2% of it, for every seed."""
ECE_COMPARABLE = 0.01
"""(b): temperature scaling's ECE counts as comparable to smoothing's when within 0.01 of it."""
NC_DECAYS: tuple[float, ...] = (1e-3, 2e-3, 4e-3, 1.2e-2)
"""(d): lambda_W = lambda_H, three below the threshold (0.009 here) and one past it."""
NC_FEATURE_DIM = 64
NC_ADAM_STEPS = 1000
NC_LBFGS_ITERATIONS = 300
NC_CONFIDENCE_TOLERANCE = 0.02
"""(d): the trained mean confidence counts as at the closed form when within 0.02 of it, at every decay."""
STUDENT_WIDTHS: tuple[int, ...] = (64, 16, NUM_CLASSES)
STUDENT_STEPS = 1000
TEMPERATURES: tuple[float, ...] = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class TrainedMeasurement:
    """A trained claim's outcome: did the effect show, a one-line summary, the figures."""

    reproduced: bool
    summary: str
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SmoothingRun:
    """What the shared runs keep: logits and penultimate features on each split, and the gap along training."""

    train_logits: object
    validation_logits: object
    test_logits: object
    train_features: object
    test_features: object
    gap_history: tuple[tuple[int, float], ...]


@lru_cache(maxsize=None)
def smoothing_run(seed: int, eps: float) -> SmoothingRun:
    """The shared network trained with smoothing ``eps`` (0: plain cross-entropy) from ``seed``."""
    import torch

    split = load_digits_split()
    model = multilayer_perceptron(WIDTHS, seed)
    history: list[tuple[int, float]] = []

    def objective():
        return torch.nn.functional.cross_entropy(model(split.train_x), split.train_y, label_smoothing=eps)

    def monitor(step: int) -> None:
        with torch.no_grad():
            history.append((step, measures.mean_logit_gap(model(split.train_x), split.train_y)))

    train_full_batch(model.parameters(), objective, steps=STEPS, learning_rate=LEARNING_RATE, monitor=monitor,
                     monitor_every=MONITOR_EVERY)
    with torch.no_grad():
        penultimate = model[:-1]
        return SmoothingRun(model(split.train_x), model(split.validation_x), model(split.test_x),
                            penultimate(split.train_x), penultimate(split.test_x), tuple(history))


def trained_gap() -> TrainedMeasurement:
    """(a) The train-set mean gap of the smoothed network vs ``logit_gap(10, 0.1, "uniform")``.

    Reproduced when the final relative error is below :data:`GAP_RELATIVE_TOLERANCE` for every seed.
    """
    theory = float(logit_gap(NUM_CLASSES, EPS, convention=CONVENTION))
    runs = [smoothing_run(seed, EPS) for seed in SEEDS]
    finals = [run.gap_history[-1][1] for run in runs]
    errors = [abs(g - theory) / theory for g in finals]
    steps = [step for step, _ in runs[0].gap_history]
    mean_history = [float(np.mean([run.gap_history[i][1] for run in runs])) for i in range(len(steps))]
    reproduced = max(errors) < GAP_RELATIVE_TOLERANCE
    shown = sorted({0, steps.index(min(steps, key=lambda step: abs(step - STEPS / 3))), len(steps) - 1})
    summary = (f"trained gap {np.mean(finals):.4f} (seeds {', '.join(f'{g:.4f}' for g in finals)}) vs closed form "
               f"{theory:.4f}: relative error at most {max(errors):.2%}; mean gap at steps "
               f"{'/'.join(str(steps[i]) for i in shown)}: {'/'.join(f'{mean_history[i]:.3f}' for i in shown)}")
    return TrainedMeasurement(reproduced, summary, {
        "theory_gap": theory, "trained_gaps": finals, "relative_errors": errors, "steps": steps,
        "mean_gap_history": mean_history, "tolerance": GAP_RELATIVE_TOLERANCE})


def calibration() -> TrainedMeasurement:
    """(b) Test-set ECE (15 bins): plain, smoothed, and plain with temperature scaling (T fitted on validation).

    Reproduced when smoothing lowers the mean ECE below the plain network's and temperature scaling's mean
    ECE is within :data:`ECE_COMPARABLE` of smoothing's (Müller et al. 2019, Table 3's direction).
    """
    import torch

    split = load_digits_split()
    plain, smoothed, scaled, temperatures, accuracies = [], [], [], [], {"plain": [], "smoothed": []}
    pooled: dict[str, list] = {"plain": [], "smoothed": [], "temperature_scaled": []}
    for seed in SEEDS:
        base, smooth = smoothing_run(seed, 0.0), smoothing_run(seed, EPS)
        temperature = measures.fit_temperature(base.validation_logits, split.validation_y)
        temperatures.append(temperature)
        for name, logits, store in (("plain", base.test_logits, plain), ("smoothed", smooth.test_logits, smoothed),
                                    ("temperature_scaled", base.test_logits / temperature, scaled)):
            store.append(measures.expected_calibration_error(logits, split.test_y))
            pooled[name].append(logits)
        accuracies["plain"].append(measures.accuracy(base.test_logits, split.test_y))
        accuracies["smoothed"].append(measures.accuracy(smooth.test_logits, split.test_y))
    labels = torch.cat([split.test_y] * len(SEEDS))
    diagrams = {name: measures.reliability_diagram(torch.cat(logits), labels) for name, logits in pooled.items()}
    lowers = np.mean(smoothed) < np.mean(plain)
    comparable = abs(np.mean(scaled) - np.mean(smoothed)) <= ECE_COMPARABLE and np.mean(scaled) < np.mean(plain)
    summary = (f"test ECE (15 bins, mean of 3 seeds): plain {np.mean(plain):.4f}, smoothed {np.mean(smoothed):.4f}, "
               f"temperature-scaled {np.mean(scaled):.4f} (T = {np.mean(temperatures):.2f}); smoothing lowers ECE: "
               f"{'yes' if lowers else 'no'}; temperature scaling comparable to smoothing: {'yes' if comparable else 'no'}; "
               f"mean confidence vs accuracy on the test images: plain {diagrams['plain']['mean_confidence']:.4f} vs "
               f"{diagrams['plain']['overall_accuracy']:.4f}, smoothed {diagrams['smoothed']['mean_confidence']:.4f} vs "
               f"{diagrams['smoothed']['overall_accuracy']:.4f}")
    return TrainedMeasurement(bool(lowers and comparable), summary, {
        "ece": {"plain": plain, "smoothed": smoothed, "temperature_scaled": scaled}, "temperatures": temperatures,
        "accuracy": accuracies, "smoothing_lowers_ece": bool(lowers), "temperature_scaling_comparable": bool(comparable),
        "reliability": diagrams, "comparable_within": ECE_COMPARABLE})


def penultimate_clusters() -> TrainedMeasurement:
    """(c) Within- over between-class spread of the penultimate activations, plain vs smoothed, train and test.

    Reproduced when smoothing lowers the mean ratio on both splits (Müller et al. 2019, sec. 2, Fig. 1: tighter clusters).
    """
    split = load_digits_split()
    ratios: dict[str, dict[str, list[float]]] = {"train": {"plain": [], "smoothed": []}, "test": {"plain": [], "smoothed": []}}
    for seed in SEEDS:
        for name, eps in (("plain", 0.0), ("smoothed", EPS)):
            run = smoothing_run(seed, eps)
            ratios["train"][name].append(measures.spread_ratio(run.train_features, split.train_y))
            ratios["test"][name].append(measures.spread_ratio(run.test_features, split.test_y))
    tighter = {part: bool(np.mean(r["smoothed"]) < np.mean(r["plain"])) for part, r in ratios.items()}
    summary = "within/between spread of the penultimate layer (mean of 3 seeds): " + "; ".join(
        f"{part} plain {np.mean(r['plain']):.3f}, smoothed {np.mean(r['smoothed']):.3f}" for part, r in ratios.items())
    return TrainedMeasurement(all(tighter.values()), summary, {"spread_ratio": ratios, "tighter": tighter})


def _neural_collapse_run(decay: float) -> dict:
    import torch

    split = load_digits_split()
    backbone = multilayer_perceptron((64, 64, NC_FEATURE_DIM), 0)  # its output layer is linear: h is unconstrained
    head = multilayer_perceptron((NC_FEATURE_DIM, NUM_CLASSES), 1)
    parameters = list(backbone.parameters()) + list(head.parameters())
    count = split.train_x.shape[0]

    def parts():
        features = backbone(split.train_x)
        data = torch.nn.functional.cross_entropy(head(features), split.train_y, label_smoothing=EPS)
        return data, decay / 2 * head[0].weight.pow(2).sum(), decay / 2 * features.pow(2).sum()

    def objective():
        return sum(parts())

    train_full_batch(parameters, objective, steps=NC_ADAM_STEPS, learning_rate=LEARNING_RATE)
    value = polish_lbfgs(parameters, objective, iterations=NC_LBFGS_ITERATIONS)
    with torch.no_grad():
        features = backbone(split.train_x)
        mean, spread = measures.mean_true_class_confidence(head(features), split.train_y)
        feature_norm = float(features.norm(dim=1).mean())
    theory = neural_collapse_optimum(NUM_CLASSES, EPS, samples_per_class=count // NUM_CLASSES, classifier_decay=decay,
                                     feature_decay=decay, convention=CONVENTION)
    # Past the threshold the features shrink to rounding noise, whose spread ratio means nothing.
    collapse = measures.spread_ratio(features, split.train_y) if theory.collapsed else None
    return {"decay": decay, "confidence": mean, "confidence_std": spread, "theory_confidence": theory.confidence,
            "theory_collapsed": theory.collapsed, "objective": value, "theory_objective": theory.objective,
            "feature_norm": feature_norm, "theory_feature_norm": theory.feature_norm,
            "within_between_spread": collapse}


def neural_collapse() -> TrainedMeasurement:
    """(d) A weight-decayed network vs :func:`lstheory.neural_collapse_optimum` (K = 10, n = 100, eps = 0.1 uniform).

    The network: a backbone 64 -> 64 (ReLU) -> 64 whose output is the feature ``h`` (no ReLU, so it is
    unconstrained in sign, as in the model), a linear head ``W h + b``; the objective is the model's, mean smoothed
    cross-entropy + (lambda/2)||W||^2 + (lambda/2) sum_i ||h_i||^2 (the bias and the backbone undecayed), minimised
    by Adam then L-BFGS.  Reproduced when the mean train confidence is within :data:`NC_CONFIDENCE_TOLERANCE` of
    the closed form at every decay.  The network can only reach the features its backbone can produce, so its
    objective stays above the model's minimum; the figures say by how much.
    """
    runs = [_neural_collapse_run(decay) for decay in NC_DECAYS]
    deviations = [abs(r["confidence"] - r["theory_confidence"]) for r in runs]
    summary = "mean train confidence vs closed form at lambda = " + ", ".join(
        f"{r['decay']:g}: {r['confidence']:.4f} vs {r['theory_confidence']:.4f}" for r in runs) + (
        f" (worst deviation {max(deviations):.4f}; objective above the model's minimum by at most "
        f"{max(r['objective'] - r['theory_objective'] for r in runs):.2g})")
    return TrainedMeasurement(max(deviations) <= NC_CONFIDENCE_TOLERANCE, summary, {
        "runs": runs, "samples_per_class": TRAIN_PER_CLASS, "tolerance": NC_CONFIDENCE_TOLERANCE})


def _student_accuracy(teacher_logits, temperature: float, seed: int) -> float:
    import torch

    split = load_digits_split()
    student = multilayer_perceptron(STUDENT_WIDTHS, 100 + seed)
    soft_targets = torch.softmax(teacher_logits / temperature, dim=1)

    def objective():
        return torch.nn.functional.cross_entropy(student(split.train_x) / temperature, soft_targets)

    train_full_batch(student.parameters(), objective, steps=STUDENT_STEPS, learning_rate=LEARNING_RATE)
    with torch.no_grad():
        return measures.accuracy(student(split.test_x), split.test_y)


def distillation() -> TrainedMeasurement:
    """(e) Students (64 -> 16 -> 10) distilled from the plain and the smoothed teachers at T = 1, 2, 4.

    The student is trained on the teacher's softened train-set predictions alone.  Reproduced when the best
    student over T, averaged over the seeds, is less accurate on the test set with the smoothed teacher
    (Müller et al. 2019, sec. 4, knowledge distillation).
    """
    split = load_digits_split()
    students: dict[str, dict[str, list[float]]] = {"plain": {}, "smoothed": {}}
    teachers: dict[str, list[float]] = {"plain": [], "smoothed": []}
    for name, eps in (("plain", 0.0), ("smoothed", EPS)):
        for temperature in TEMPERATURES:
            students[name][f"{temperature:g}"] = [
                _student_accuracy(smoothing_run(seed, eps).train_logits, temperature, seed) for seed in SEEDS]
        teachers[name] = [measures.accuracy(smoothing_run(seed, eps).test_logits, split.test_y) for seed in SEEDS]
    best = {name: [max(by_t[f"{t:g}"][i] for t in TEMPERATURES) for i in range(len(SEEDS))]
            for name, by_t in students.items()}
    worse = np.mean(best["smoothed"]) < np.mean(best["plain"])
    summary = (f"best student test accuracy over T (mean of 3 seeds): from the plain teacher {np.mean(best['plain']):.4f}, "
               f"from the smoothed teacher {np.mean(best['smoothed']):.4f}; teachers {np.mean(teachers['plain']):.4f} "
               f"and {np.mean(teachers['smoothed']):.4f}")
    return TrainedMeasurement(bool(worse), summary, {"student_accuracy": students, "best_student_accuracy": best,
                                                     "teacher_accuracy": teachers, "temperatures": list(TEMPERATURES)})


__all__ = ["TrainedMeasurement", "calibration", "distillation", "neural_collapse", "penultimate_clusters",
           "smoothing_run", "trained_gap"]
