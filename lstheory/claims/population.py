"""The population minimiser of label smoothing for K classes: expected target, calibration, inverse."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.optimize
import scipy.special
import sympy

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.population import population_minimiser, slope_and_offset
from lstheory.symbolic.smoothing import EPS, K

SOURCE = "Yamasaki and Tanaka 2023, arXiv 2305.08501 (the binary population minimiser), extended here to K classes"
CASES: tuple[tuple[int, float, str], ...] = (
    (3, 0.1, "uniform"), (3, 0.1, "off_target"), (10, 0.3, "uniform"), (10, 0.3, "off_target"),
    (3, 0.9, "off_target"), (10, 0.95, "off_target"), (5, 0.95, "uniform"),
)
"""``(K, eps, convention)``; off_target eps = 0.9 (K = 3) and 0.95 (K = 10) lie above (K-1)/K."""


def expected_target(eta: np.ndarray, eps: float, convention: str) -> np.ndarray:
    """``c eta + b``, from the symbolic slope and offset (the derivation's closed form, evaluated)."""
    slope, offset = (float(sympy.sympify(v).subs({K: eta.size, EPS: sympy.Rational(eps)})) for v in slope_and_offset(convention))
    return slope * eta + offset


def inverse(q: np.ndarray, eps: float, convention: str) -> np.ndarray:
    slope, offset = (float(sympy.sympify(v).subs({K: q.size, EPS: sympy.Rational(eps)})) for v in slope_and_offset(convention))
    return (q - offset) / slope



def _class_probabilities(k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + k).dirichlet(np.ones(k))


@lru_cache(maxsize=None)
def scipy_population_minimisers(seed: int = 0) -> tuple:
    """``(K, eps, convention, eta, softmax at SciPy's minimiser of sum_y eta_y CE(smooth(e_y), z))``.

    The expected loss is summed term by term (one cross-entropy per label), so the check does not assume its linearity.
    """
    rows = []
    for k, eps, convention in CASES:
        eta = _class_probabilities(k, seed)
        targets = np.array([smoothed_target_vector(k, eps, label=y, convention=convention) for y in range(k)])

        def expected_loss(z):
            log_q = scipy.special.log_softmax(z)
            values = -(targets @ log_q)                        # one cross-entropy per label
            gradients = np.exp(log_q)[None, :] - targets       # and its gradient
            return float(eta @ values), eta @ gradients

        start = np.random.default_rng(seed).normal(size=k)
        found = scipy.optimize.minimize(expected_loss, start, jac=True, method="BFGS", options={"gtol": 1e-13})
        root = scipy.optimize.root(lambda z: expected_loss(z)[1], found.x, method="hybr", options={"xtol": 1e-15})
        rows.append((k, eps, convention, eta, scipy.special.softmax(root.x)))
    return tuple(rows)


def _minimiser_scipy(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(q - expected_target(eta, eps, c)))) for _, eps, c, eta, q in scipy_population_minimisers(context.seed)]
    return within(errors, 1e-12, "SciPy minimiser of sum_y eta_y CE(smooth(e_y), softmax(z)) vs c eta + b")


def _argmax_scipy(context: CheckContext) -> CheckResult:
    verdicts = []
    for k, eps, convention, eta, q in scipy_population_minimisers(context.seed):
        kept = convention == "uniform" or eps < (k - 1) / k
        verdicts.append(int(np.argmax(q)) == int(np.argmax(eta) if kept else np.argmin(eta)))
    return CheckResult(all(verdicts), None, f"argmax of SciPy's population minimiser is argmax(eta) where the slope is "
                       f"positive and argmin(eta) where it is negative (off_target eps > (K-1)/K): {sum(verdicts)} of "
                       f"{len(verdicts)} cases as predicted")


def _inverse_scipy(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(inverse(q, eps, c) - eta))) for _, eps, c, eta, q in scipy_population_minimisers(context.seed)]
    return within(errors, 1e-11, "the inverse map applied to SciPy's population minimiser vs eta")


@lru_cache(maxsize=None)
def _torch_population(device: str, seed: int) -> tuple:
    """PyTorch's own cross_entropy(label_smoothing=eps) (uniform), weighted by eta over all K labels, minimised by L-BFGS."""
    import torch

    rows = []
    for k, eps, convention, eta, _ in scipy_population_minimisers(seed):
        if convention != "uniform":
            continue
        weights = torch.as_tensor(eta, device=device)
        labels = torch.arange(k, device=device)
        z = torch.zeros(k, dtype=torch.float64, device=device, requires_grad=True)
        optimizer = torch.optim.LBFGS([z], max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-30,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            losses = torch.nn.functional.cross_entropy(z.expand(k, k), labels, label_smoothing=eps, reduction="none")
            loss = (weights * losses).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        rows.append((k, eps, eta, torch.softmax(z.detach(), dim=0).cpu().numpy()))
    return tuple(rows)


def _minimiser_torch(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(q - expected_target(eta, eps, "uniform"))))
              for k, eps, eta, q in _torch_population(context.device, context.seed)]
    # L-BFGS stops on function values, which locate this flat minimum to about 1e-9.
    return within(errors, 1e-8, f"torch L-BFGS on PyTorch's cross_entropy(label_smoothing), weighted by eta over the "
                  f"labels, vs (1-eps) eta + eps/K, on {context.device}")


def _inverse_torch(context: CheckContext) -> CheckResult:
    errors = [float(np.max(np.abs(inverse(q, eps, "uniform") - eta)))
              for k, eps, eta, q in _torch_population(context.device, context.seed)]
    return within(errors, 1e-8, f"inverse map on torch's population minimiser vs eta, on {context.device}")


CLAIMS = (
    Claim(
        id="population.minimiser",
        statement="With labels y ~ eta, argmin_q E_y CE(smooth(e_y), q) is the expected target: (1-eps) eta + eps/K "
        "(uniform) and (1 - eps K/(K-1)) eta + eps/(K-1) (off_target).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(population_minimiser, 1, 2, 3),
                "scipy": _minimiser_scipy, "torch": _minimiser_torch},
    ),
    Claim(
        id="population.argmax_preserved",
        statement="The population minimiser keeps the argmax of eta (smoothing is classification-calibrated) for every "
        "eps < 1 (uniform) and every eps < (K-1)/K (off_target); above (K-1)/K the off_target minimiser reverses the "
        "order of eta, and at (K-1)/K it is uniform.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(population_minimiser, 4, 5, 6, 7, 10), "scipy": _argmax_scipy},
    ),
    Claim(
        id="population.inverse",
        statement="The consistent inverse reads eta back from a smoothed prediction q: eta = (q - eps/K)/(1 - eps) "
        "(uniform), eta = (q - eps/(K-1))/(1 - eps K/(K-1)) (off_target, eps != (K-1)/K).",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(population_minimiser, 8, 9),
                "scipy": _inverse_scipy, "torch": _inverse_torch},
    ),
)
