"""The loss floor of language models trained with label smoothing: min_loss at the vocabularies in use."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.stats
import sympy

from lstheory.claims._levels import within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import min_loss
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.smoothing import EPS, K, min_loss_closed_form

VOCABULARY_SIZES: dict[int, str] = {
    32000: "Llama 2, Mistral",
    50257: "GPT-2",
    128256: "Llama 3",
    256000: "Gemma",
}
FLOOR_EPS = 0.1
SOURCE = ("PyTorch issue #130342 (the smoothed loss cannot reach zero); Cover and Thomas 2006, 'Elements of "
          "Information Theory', Thm. 2.6.3; vocabulary sizes of the Llama 2, GPT-2, Llama 3 and Gemma tokenizers")


def loss_floor_rows() -> list[dict]:
    """One row per vocabulary size and convention: the floor in nats, bits and as a perplexity (from :func:`min_loss`)."""
    rows = []
    for k, models in VOCABULARY_SIZES.items():
        for convention in ("uniform", "off_target"):
            nats = float(min_loss(k, FLOOR_EPS, convention=convention))
            rows.append({"num_classes": k, "models": models, "convention": convention, "nats": nats,
                         "bits": nats / float(np.log(2)), "perplexity": float(np.exp(nats))})
    return rows


def _symbolic(context: CheckContext) -> CheckResult:
    """The proven SymPy closed form, evaluated exactly at eps = 1/10 (30 digits), vs the float64 floors."""
    errors = []
    for row in loss_floor_rows():
        exact = min_loss_closed_form(row["convention"]).subs({K: row["num_classes"], EPS: sympy.Rational(FLOOR_EPS)})
        errors.append(abs(row["nats"] / float(exact.evalf(30)) - 1))
    return within(errors, 4 * 2.0**-52, "the table's floors vs SymPy's closed form at the exact eps (30 digits), relative")


def _scipy(context: CheckContext) -> CheckResult:
    errors = [abs(row["nats"] - float(scipy.stats.entropy(smoothed_target_vector(row["num_classes"], FLOOR_EPS,
                                                                                 convention=row["convention"]))))
              for row in loss_floor_rows()]
    return within(errors, 1e-12, "the floors vs scipy.stats.entropy of the full K-entry smoothed target")


@lru_cache(maxsize=None)
def _torch_minima(device: str) -> tuple:
    import torch
    import torch.nn.functional as F

    from lstheory.torch import solve_optimal_logits

    rows = []
    for row in loss_floor_rows():
        k = row["num_classes"]
        target = torch.as_tensor(smoothed_target_vector(k, FLOOR_EPS, convention=row["convention"]), device=device)[None, :]
        solution = solve_optimal_logits(target, tol=1e-13)
        builtin = None
        if row["convention"] == "uniform":  # PyTorch's own loss at the solved logits
            builtin = F.cross_entropy(solution.logits, torch.zeros(1, dtype=torch.long, device=device),
                                      label_smoothing=FLOOR_EPS).item()
        rows.append((row["nats"], float(solution.loss[0]), builtin, bool(solution.converged.all())))
    return tuple(rows)


def _torch(context: CheckContext) -> CheckResult:
    errors, converged = [], True
    for floor, solved, builtin, ok in _torch_minima(context.device):
        errors.append(abs(solved - floor))
        if builtin is not None:
            errors.append(abs(builtin - floor))
        converged &= ok
    # A float64 log-sum-exp over K = 256,000 logits carries about K ulps of rounding.
    result = within(errors, 1e-11, f"torch: solve_optimal_logits' minimum over all K logits, and PyTorch's "
                    f"cross_entropy(label_smoothing=0.1) at it, vs the floors, on {context.device}")
    return CheckResult(result.passed and converged, result.max_error, result.detail + f"; all converged: {converged}")


def _statement() -> str:
    rows = loss_floor_rows()
    uniform = [row for row in rows if row["convention"] == "uniform"]
    difference = max(abs(a["nats"] - b["nats"]) for a, b in zip(rows[::2], rows[1::2]))
    sizes = " / ".join(f"{row['num_classes']:,}" for row in uniform)
    nats = " / ".join(f"{row['nats']:.3f}" for row in uniform)
    perplexities = " / ".join(f"{row['perplexity']:.2f}" for row in uniform)
    return (f"A language model trained with label smoothing eps = {FLOOR_EPS} cannot push its training loss below "
            f"min_loss(K, {FLOOR_EPS}): for K = {sizes} that is {nats} nats (uniform convention; off_target within "
            f"{difference:.1e} of it), a perplexity floor of {perplexities}, never 1.")


CLAIMS = (
    Claim(
        id="loss_floor.language_models",
        statement=_statement(),
        source=SOURCE,
        status="verified",
        checks={"symbolic": _symbolic, "scipy": _scipy, "torch": _torch},
    ),
)
