"""Label smoothing as a penalty on logit distances (Liu et al. 2022, MbLS)."""

from __future__ import annotations

import numpy as np
import scipy.special

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.symbolic.logit_distances import logit_distance_decomposition

SOURCE = ("Liu et al. 2022, 'The Devil is in the Margin: Margin-based Label Smoothing for Network Calibration', CVPR, "
          "arXiv 2111.15430, sec. 3")



def _random_logits(seed: int) -> list[np.ndarray]:
    """Logit vectors of several sizes and scales, extreme ones included (a dominant logit, ties, huge offsets)."""
    rng = np.random.default_rng(seed)
    vectors = [rng.normal(scale=scale, size=k) for k in (2, 3, 10, 1000) for scale in (0.01, 1.0, 30.0)]
    vectors += [np.array([700.0, 0.0, -5.0]), np.full(7, -3.0), np.r_[1e4, np.zeros(9)], np.array([1e300, 1e300 - 1e285])]
    return vectors


def _uniform_cross_entropy(z: np.ndarray) -> float:
    return float(-np.mean(scipy.special.log_softmax(z)))


def _identity_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for z in _random_logits(context.seed):
        top = z.max()
        distances = float(np.mean(top - z)) + float(scipy.special.logsumexp(z) - top)
        errors.append(abs(distances - _uniform_cross_entropy(z)) / max(1.0, abs(distances)))
    return within(errors, 1e-13, "H(u, q) from scipy.special.log_softmax vs mean(max z - z_j) + (logsumexp - max), relative")


def _bounds_scipy(context: CheckContext) -> CheckResult:
    remainders, bounds = [], []
    for z in _random_logits(context.seed):
        remainder = float(scipy.special.logsumexp(z) - z.max())
        remainders.append(remainder)
        bounds.append(np.log(z.size))
    below = all(-1e-12 <= r <= b * (1 + 1e-12) for r, b in zip(remainders, bounds))
    tied = _random_logits(context.seed)[-3]  # all logits equal: the upper bound is attained
    attained = abs(float(scipy.special.logsumexp(tied) - tied.max()) - np.log(tied.size))
    return CheckResult(below and attained < 1e-14, attained,
                       f"0 <= logsumexp(z) - max z <= log K on {len(remainders)} logit vectors (scales 0.01 to 1e300); "
                       f"equality at log K for tied logits to {attained:.2g}")


def _expansion_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    ratios = []
    for k in (3, 10, 100):
        direction = rng.normal(size=k)
        direction -= direction.mean()
        direction /= np.linalg.norm(direction)
        for scale in (1e-2, 1e-3):
            delta = scale * direction
            remainder = _uniform_cross_entropy(delta) - np.log(k) - delta @ delta / (2 * k)
            ratios.append(abs(remainder) / np.linalg.norm(delta) ** 3)
    # The cubic term is sum_j delta_j^3/(6K) <= ||delta||^3/(6K); a wrong quadratic coefficient would leave a
    # remainder of order ||delta||^2/K, a ratio of order 1/(K ||delta||) >= 10 here.
    return within(ratios, 0.1, "|H(u, q) - log K - ||delta||^2/(2K)| / ||delta||^3 for ||delta|| down to 1e-3 (bounded: O(||delta||^3))")


def _identity_torch(context: CheckContext) -> CheckResult:
    import torch

    errors = []
    for z in _random_logits(context.seed)[:-1]:  # torch's float64 logsumexp overflows at 1e300 like any float64
        logits = torch.as_tensor(z, device=context.device)[None, :]
        smoothing_term = torch.nn.functional.cross_entropy(logits, torch.zeros(1, dtype=torch.long, device=context.device),
                                                           label_smoothing=1.0).item()
        top = logits.max()
        distances = ((top - logits).mean() + torch.logsumexp(logits, dim=1)[0] - top).item()
        errors.append(abs(smoothing_term - distances) / max(1.0, abs(distances)))
    return within(errors, 1e-13, f"PyTorch's cross_entropy(label_smoothing=1.0), which is H(u, q), vs the logit-distance "
                  f"form, on {context.device}")


def _expansion_torch(context: CheckContext) -> CheckResult:
    import torch

    generator = torch.Generator().manual_seed(context.seed)
    label = torch.zeros(1, dtype=torch.long, device=context.device)
    ratios = []
    for k in (3, 10, 100):
        direction = torch.randn(k, generator=generator, dtype=torch.float64)
        direction = direction - direction.mean()
        direction = (direction / direction.norm()).to(context.device)
        for scale in (1e-2, 1e-3):
            delta = scale * direction
            smoothing_term = torch.nn.functional.cross_entropy(delta[None, :], label, label_smoothing=1.0)
            remainder = smoothing_term - np.log(k) - (delta @ delta) / (2 * k)
            ratios.append(float(remainder.abs()) / scale**3)
    # As in the SciPy check: the cubic term is at most ||delta||^3/(6K); a wrong quadratic coefficient would not be.
    return within(ratios, 0.1, f"PyTorch's cross_entropy(label_smoothing=1.0) = H(u, q) near uniform: "
                  f"|H - log K - ||delta||^2/(2K)| / ||delta||^3, on {context.device}")


CLAIMS = (
    Claim(
        id="logit_distances.identity",
        statement="The smoothing term of label smoothing is a penalty on logit distances: "
        "H(u, q) = (1/K) sum_j (max z - z_j) + (lse(z) - max z).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(logit_distance_decomposition, 1, 2),
                "scipy": _identity_scipy, "torch": _identity_torch},
    ),
    Claim(
        id="logit_distances.remainder_bounds",
        statement="The remainder is bounded: 0 <= lse(z) - max z <= log K, the upper bound attained only when every "
        "logit is equal.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(logit_distance_decomposition, 3, 4), "scipy": _bounds_scipy},
    ),
    Claim(
        id="logit_distances.near_uniform",
        statement="Near the uniform prediction, H(u, q) = log K + ||z - zbar 1||^2/(2K) + O(||z - zbar 1||^3): a "
        "quadratic penalty on the centred logits.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(logit_distance_decomposition, 5),
                "scipy": _expansion_scipy, "torch": _expansion_torch},
    ),
)
