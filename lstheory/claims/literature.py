"""Claims from the literature around label smoothing, each citing its paper by arXiv id and section.

Checked at every level that applies: SymPy proofs, SciPy numerics, and torch
(PyTorch's own losses and linear algebra, on the verification device).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

from lstheory.claims._levels import GAP_TOLERANCE, all_of, proven, smoothed_sweep, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import (
    binary_optimal_logit,
    binary_smoothed_probability,
    binary_unsmoothed_probability,
    logit_gap,
    optimal_logits_for_target,
    smoothed_target,
)
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic import literature as derivations

SZEGEDY = "Szegedy et al. 2016, arXiv 1512.00567, sec. 7"
PEREYRA = "Pereyra et al. 2017, 'Regularizing Neural Networks by Penalizing Confident Output Distributions', arXiv 1701.06548, sec. 3"
MEISTER = "Meister, Salesky, Cotterell 2020, 'Generalized Entropy Regularization', ACL, arXiv 2005.00820"
LUKASIK = "Lukasik et al. 2020, 'Does Label Smoothing Mitigate Label Noise?', ICML, arXiv 2003.02819"
YUAN = "Yuan et al. 2020, 'Revisiting Knowledge Distillation via Label Smoothing Regularization', CVPR, arXiv 1909.11723"
MULLER = "Müller, Kornblith, Hinton 2019, 'When Does Label Smoothing Help?', NeurIPS, arXiv 1906.02629"
BINARY = "Keras BinaryCrossentropy(label_smoothing); Yamasaki and Tanaka 2023, arXiv 2305.08501"
WEIGHTS = "PyTorch cross_entropy(weight=w, label_smoothing=eps), issue #104776; docs/conventions.md"

EPS_GRID = (1e-4, 0.05, 0.1, 0.3, 0.7)


def _torch():
    import torch

    return torch


def _symbolic(derivation_function, steps=None, **kwargs):
    def check(context: CheckContext) -> CheckResult:
        return proven(derivation_function(**kwargs), steps=steps)

    return check


def _uniform_target(k: int, eps: float, label: int = 0) -> np.ndarray:
    return smoothed_target_vector(k, eps, label=label, convention="uniform")


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(scipy.special.rel_entr(p, q)))


# --- Szegedy decomposition ------------------------------------------------------------------


def _szegedy_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors = []
    for k in (2, 3, 10, 1000):
        for eps in EPS_GRID:
            z = rng.normal(scale=3, size=k)
            log_q = scipy.special.log_softmax(z)
            smoothed = -(_uniform_target(k, eps) @ log_q)
            uniform = np.full(k, 1 / k)
            decomposed = (1 - eps) * -log_q[0] + eps * (_kl(uniform, np.exp(log_q)) + np.log(k))
            errors.append(abs(smoothed - decomposed) / smoothed)
    return within(errors, 1e-13, "H(p_LS, q) vs (1-eps) H(e_y, q) + eps (KL(u||q) + log K), relative")


def _szegedy_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    generator = torch.Generator().manual_seed(context.seed)
    errors = []
    for k in (2, 10, 1000):
        for eps in EPS_GRID:
            z = (3 * torch.randn(64, k, generator=generator, dtype=torch.float64)).to(context.device)
            y = torch.randint(0, k, (64,), generator=generator).to(context.device)
            builtin = torch.nn.functional.cross_entropy(z, y, label_smoothing=eps, reduction="none")
            log_q = torch.log_softmax(z, dim=1)
            kl_uniform = (-log_q).mean(dim=1) - np.log(k)  # KL(u || q) = -log K - mean log q
            decomposed = (1 - eps) * torch.nn.functional.nll_loss(log_q, y, reduction="none") + eps * (kl_uniform + np.log(k))
            errors.append(float(((builtin - decomposed).abs() / builtin).max()))
    return within(errors, 1e-13, f"torch cross_entropy(label_smoothing) vs the decomposition on {context.device}")


# --- Pereyra: the confidence penalty --------------------------------------------------------


def _penalised_objective(z: np.ndarray, target: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    log_q = scipy.special.log_softmax(z)
    q = np.exp(log_q)
    entropy = -(q @ log_q)
    value = -(target @ log_q) - beta * entropy
    gradient = q - target + beta * q * (log_q + entropy)  # the stationarity condition, derived symbolically
    return float(value), gradient


def _confidence_penalty_scipy_solution(k: int, beta: float, seed: int) -> np.ndarray:
    """SciPy: BFGS on the penalised loss, then its stationarity condition solved to full precision.

    The last logit is pinned at 0 (the gauge); the gradient's components sum to zero, so the first
    K - 1 of them vanishing is the whole condition.
    """
    target = np.eye(k)[0]
    start = np.random.default_rng(seed).normal(size=k - 1)

    def reduced(x):
        value, gradient = _penalised_objective(np.r_[x, 0.0], target, beta)
        return value, gradient[:-1]

    def jacobian(x):
        # d/dz_j of the gradient: q_i (d_ij - q_j) (1 + beta (log q_i + H + 1)) - beta q_i q_j (log q_j + H)
        log_q = scipy.special.log_softmax(np.r_[x, 0.0])
        q = np.exp(log_q)
        entropy = -(q @ log_q)
        softmax_jacobian = np.diag(q) - np.outer(q, q)
        full = softmax_jacobian * (1 + beta * (log_q + entropy + 1))[:, None] - beta * np.outer(q, q * (log_q + entropy))
        return full[:-1, :-1]

    minimised = scipy.optimize.minimize(reduced, start, jac=True, method="BFGS", options={"gtol": 1e-10})
    root = scipy.optimize.root(lambda x: reduced(x)[1], minimised.x, jac=jacobian, method="hybr",
                               options={"xtol": 1e-15})
    z = np.r_[root.x, 0.0]
    return z - z[1:].mean()


def _pereyra_scipy(context: CheckContext) -> CheckResult:
    residuals, finite_difference = [], []
    for k in (3, 10):
        for beta in (0.1, 0.5, 1.0):
            z = _confidence_penalty_scipy_solution(k, beta, context.seed)
            residuals.append(float(np.max(np.abs(_penalised_objective(z, np.eye(k)[0], beta)[1]))))
            # The derived gradient against SciPy's finite differences at a random point.
            point = np.random.default_rng(k).normal(size=k)
            numeric = scipy.optimize.approx_fprime(point, lambda x: _penalised_objective(x, np.eye(k)[0], beta)[0], 1e-7)
            finite_difference.append(float(np.max(np.abs(numeric - _penalised_objective(point, np.eye(k)[0], beta)[1]))))
    stationary = within(residuals, 1e-12, "stationarity residual of SciPy's optimum of CE - beta H(q)")
    gradient_ok = max(finite_difference) < 1e-5
    return CheckResult(stationary.passed and gradient_ok, stationary.max_error,
                       stationary.detail + f"; derived gradient vs finite differences: {max(finite_difference):.2g}")


def _pereyra_torch(context: CheckContext) -> CheckResult:
    """torch: L-BFGS on the penalised loss, then Newton steps with the autograd Hessian (gauge-fixed)."""
    torch = _torch()
    differences = []
    for k in (3, 10):
        for beta in (0.1, 0.5, 1.0):
            target = torch.eye(k, dtype=torch.float64, device=context.device)[0]

            def penalised(free):
                z = torch.cat([free, torch.zeros(1, dtype=free.dtype, device=free.device)])
                log_q = torch.log_softmax(z, dim=0)
                return -(target * log_q).sum() + beta * (log_q.exp() * log_q).sum()

            free = torch.zeros(k - 1, dtype=torch.float64, device=context.device, requires_grad=True)
            optimizer = torch.optim.LBFGS([free], max_iter=200, line_search_fn="strong_wolfe")

            def closure():
                optimizer.zero_grad()
                loss = penalised(free)
                loss.backward()
                return loss

            optimizer.step(closure)
            x = free.detach()
            for _ in range(20):
                gradient = torch.autograd.functional.jacobian(penalised, x)
                hessian = torch.autograd.functional.hessian(penalised, x)
                x = x - torch.linalg.solve(hessian, gradient)
            solved = torch.cat([x, torch.zeros(1, dtype=x.dtype, device=x.device)]).cpu().numpy()
            solved = solved - solved[1:].mean()
            differences.append(float(np.max(np.abs(solved - _confidence_penalty_scipy_solution(k, beta, context.seed)))))
    return within(differences, 1e-10, f"torch (L-BFGS + Newton) optimum of CE - beta H(q) vs SciPy's, on {context.device}")


def _pereyra_sign_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors, printed = [], []
    k, eps = 10, 0.1
    uniform = np.full(k, 1 / k)
    for _ in range(20):
        z = rng.normal(scale=2, size=k)
        log_q = scipy.special.log_softmax(z)
        q = np.exp(log_q)
        smoothed = -(_uniform_target(k, eps) @ log_q)
        corrected = (1 - eps) * (-log_q[0] + eps / (1 - eps) * _kl(uniform, q)) + eps * np.log(k)
        errors.append(abs(smoothed - corrected) / smoothed)
        printed.append(-log_q[0] - _kl(uniform, q) - smoothed / (1 - eps))
    spread = float(np.ptp(printed))  # a constant offset would be harmless; it is not constant
    result = within(errors, 1e-13, "smoothed CE vs (1-eps)[CE + eps/(1-eps) KL(u||q)] + eps log K, relative")
    return CheckResult(result.passed and spread > 1e-2, result.max_error,
                       result.detail + f"; the printed 'CE - KL(u||q)' differs by a non-constant (spread {spread:.3g})")


# --- Meister: the skew-Jensen family --------------------------------------------------------


def _skew_jensen(p: np.ndarray, a: float) -> float:
    u = np.full(p.size, 1 / p.size)

    def f(x):
        return float(np.sum(scipy.special.xlogy(x, x)))

    return (a * f(p) + (1 - a) * f(u) - f(a * p + (1 - a) * u)) / (a * (1 - a))


def _meister_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors = []
    h = 1e-6
    for k in (2, 5, 50):
        p = rng.dirichlet(np.ones(k))
        u = np.full(k, 1 / k)
        # Richardson extrapolation of J_a to each end: 2 J(h) - J(2h) = limit + O(h^2).
        errors.append(abs(2 * _skew_jensen(p, 1 - h) - _skew_jensen(p, 1 - 2 * h) - _kl(u, p)))
        errors.append(abs(2 * _skew_jensen(p, h) - _skew_jensen(p, 2 * h) - _kl(p, u)))
    # Truncation O(h^2) (~2.5e-9 at h = 1e-6) plus cancellation in J's numerator (~1e-16 / h).
    return within(errors, 1e-7, "J_a extrapolated to a -> 1 vs KL(u||p) and to a -> 0 vs KL(p||u) (O(h^2), h = 1e-6)")


def _sparse_scipy(context: CheckContext) -> CheckResult:
    k = 10
    u = np.full(k, 1 / k)
    values = []
    for exponent in range(1, 30, 4):
        p = np.full(k, (1 - 10.0**-exponent) / (k - 1))
        p[0] = 10.0**-exponent
        values.append(_kl(u, p))
    growing = bool(np.all(np.diff(values) > 0) and values[-1] > 5)
    floors = [float(np.min(scipy.special.softmax(r.logits))) for _, _, r in smoothed_sweep("uniform")]
    floor_ok = all(f > 0 for f in floors)
    return CheckResult(growing and floor_ok, None,
                       f"KL(u||p) as p_1 = 1e-1 ... 1e-29: {values[0]:.2f} ... {values[-1]:.2f} (unbounded); every "
                       "SciPy optimum of the smoothed loss keeps every class's probability positive")


# --- Lukasik: smearing -----------------------------------------------------------------------


def _smearing(k: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    smear = (1 - alpha) * np.eye(k) + alpha / k * np.ones((k, k))
    inverse = np.eye(k) / (1 - alpha) - alpha / ((1 - alpha) * k) * np.ones((k, k))
    return smear, inverse


def _lukasik_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for k in (2, 10, 100):
        for alpha in (0.05, 0.1, 0.5, 0.9):
            smear, inverse = _smearing(k, alpha)
            errors.append(float(np.max(np.abs(scipy.linalg.inv(smear) - inverse))))
    return within(errors, 1e-10, "scipy.linalg.inv(M) vs the closed-form inverse")


def _lukasik_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    errors = []
    for k in (2, 10, 100):
        for alpha in (0.05, 0.1, 0.5, 0.9):
            smear, inverse = _smearing(k, alpha)
            solved = torch.linalg.inv(torch.as_tensor(smear, device=context.device)).cpu().numpy()
            errors.append(float(np.max(np.abs(solved - inverse))))
    return within(errors, 1e-10, f"torch.linalg.inv(M) vs the closed-form inverse on {context.device}")


# --- Yuan: distillation ----------------------------------------------------------------------


def _yuan_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors = []
    for k in (3, 10, 100):
        for alpha in (0.1, 0.5):
            z = rng.normal(size=k)
            teacher = rng.dirichlet(np.ones(k))
            log_q = scipy.special.log_softmax(z)
            kd = (1 - alpha) * -log_q[0] + alpha * -(teacher @ log_q)
            mixed = (1 - alpha) * np.eye(k)[0] + alpha * teacher
            errors.append(abs(kd + mixed @ log_q) / kd)
            uniform_kd = (1 - alpha) * -log_q[0] + alpha * -(np.full(k, 1 / k) @ log_q)
            errors.append(abs(uniform_kd + _uniform_target(k, alpha) @ log_q) / uniform_kd)
    return within(errors, 1e-13, "KD loss vs CE against the mixed target; uniform teacher vs label smoothing")


def _yuan_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    generator = torch.Generator().manual_seed(context.seed)
    errors = []
    for k in (3, 100):
        for alpha in (0.1, 0.5):
            z = torch.randn(32, k, generator=generator, dtype=torch.float64).to(context.device)
            y = torch.randint(0, k, (32,), generator=generator).to(context.device)
            smoothed = torch.nn.functional.cross_entropy(z, y, label_smoothing=alpha)
            uniform_teacher = torch.full_like(z, 1 / k)
            kd = (1 - alpha) * torch.nn.functional.cross_entropy(z, y) + alpha * torch.nn.functional.cross_entropy(z, uniform_teacher)
            errors.append(float(abs(smoothed - kd) / smoothed))
    return within(errors, 1e-13, f"torch: label_smoothing=alpha vs KD from a uniform teacher on {context.device}")


# --- Müller: equivalent smoothing of a teacher ------------------------------------------------


def _muller_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for k, eps, result in smoothed_sweep("uniform"):
        teacher = scipy.special.softmax(result.logits)
        gamma = np.delete(teacher, result.label).sum() * k / (k - 1)  # off-label mass, summed (no cancellation)
        errors.append(abs(gamma - eps) / eps)
    return within(errors, 1e-9, "gamma of a SciPy-optimal LS teacher vs alpha, relative")


# --- temperature -------------------------------------------------------------------------------


def _temperature_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for temperature in (0.5, 2.0, 5.0):
        for k, eps in ((10, 0.1), (100, 0.01)):
            target = smoothed_target_vector(k, eps)

            def objective(x):  # the last logit pinned at 0 (the gauge)
                log_q = scipy.special.log_softmax(np.r_[x, 0.0] / temperature)
                return -(target @ log_q), ((np.exp(log_q) - target) / temperature)[:-1]

            def hessian(x):
                q = scipy.special.softmax(np.r_[x, 0.0] / temperature)
                return ((np.diag(q) - np.outer(q, q)) / temperature**2)[:-1, :-1]

            start = np.random.default_rng(context.seed).normal(size=k - 1)
            minimised = scipy.optimize.minimize(objective, start, jac=True, method="BFGS")
            # Function values stop BFGS near sqrt(machine eps); finish on the first-order condition.
            root = scipy.optimize.root(lambda x: objective(x)[1], minimised.x, jac=hessian, method="hybr",
                                       options={"xtol": 1e-15})
            z = np.r_[root.x, 0.0]
            expected = temperature * float(logit_gap(k, eps))
            errors.append(abs(z[0] - z[1:].mean() - expected) / expected)
    return within(errors, 1e-10, "SciPy gap under temperature T vs T * logit_gap (relative)")


def _temperature_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    gradients = []
    for temperature in (0.5, 2.0, 5.0):
        for k, eps in ((10, 0.1), (100, 0.01)):
            gap = temperature * float(logit_gap(k, eps))
            z = torch.zeros(1, k, dtype=torch.float64, device=context.device)
            z[0, 0] = gap
            z.requires_grad_(True)
            target = torch.zeros(1, dtype=torch.long, device=context.device)
            torch.nn.functional.cross_entropy(z / temperature, target, label_smoothing=0.0).backward()
            p_true, p_other = smoothed_target(k, eps)
            probs = torch.full((1, k), float(p_other), dtype=torch.float64, device=context.device)
            probs[0, 0] = float(p_true)
            z.grad = None
            torch.nn.functional.cross_entropy(z / temperature, probs).backward()
            gradients.append(float(z.grad.abs().max()))
    return within(gradients, 1e-14, f"torch gradient of CE(p, softmax(z/T)) at T * optimum on {context.device}")


# --- binary smoothing ----------------------------------------------------------------------


def _binary_loss(z: float, target: float) -> float:
    return float(-target * scipy.special.log_expit(z) - (1 - target) * scipy.special.log_expit(-z))


def _binary_scipy(context: CheckContext) -> CheckResult:
    errors = []
    for eps in (1e-6, 1e-3) + EPS_GRID:
        target = 1 - eps / 2
        result = scipy.optimize.minimize_scalar(lambda z: _binary_loss(z, target), bracket=(-1, 1),
                                                method="brent", tol=1e-12)
        # Brent locates the minimiser only to sqrt(machine eps); refine on the first-order condition.
        root = scipy.optimize.brentq(lambda z: scipy.special.expit(z) - target, result.x - 1, result.x + 1, xtol=1e-15)
        errors.append(abs(root - float(binary_optimal_logit(eps))))
    return within(errors, 1e-9, "SciPy minimiser of the smoothed sigmoid loss vs binary_optimal_logit")


def _binary_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    eps = torch.tensor((1e-6, 1e-3) + EPS_GRID, dtype=torch.float64, device=context.device)
    z = torch.as_tensor(binary_optimal_logit(eps.cpu().numpy()), device=context.device).requires_grad_(True)
    targets = torch.ones_like(eps) * (1 - eps) + eps / 2
    torch.nn.functional.binary_cross_entropy_with_logits(z, targets, reduction="sum").backward()
    return within(z.grad.abs().cpu().numpy(), 1e-15, f"torch BCE-with-logits gradient at z* on {context.device}")


def _binary_two_class_scipy(context: CheckContext) -> CheckResult:
    errors = [abs(r.gap - float(binary_optimal_logit(e))) for k, e, r in smoothed_sweep("uniform") if k == 2]
    return within(errors, GAP_TOLERANCE, "SciPy K = 2 uniform softmax gap vs binary_optimal_logit")


def _binary_two_class_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    errors = []
    for eps in EPS_GRID:
        z_star = float(binary_optimal_logit(eps))
        logits = torch.tensor([[z_star, 0.0]], dtype=torch.float64, device=context.device, requires_grad=True)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0], device=context.device), label_smoothing=eps).backward()
        errors.append(float(logits.grad.abs().max()))
    return within(errors, 1e-15, f"torch softmax CE (K = 2, label_smoothing) gradient at (z*, 0) on {context.device}")


def _population_scipy(context: CheckContext) -> CheckResult:
    brent_errors, refined_errors = [], []
    for eps in (0.05, 0.1, 0.3):
        for eta in (0.0, 0.2, 0.5, 0.9, 1.0):
            def expected_loss(z):
                return eta * _binary_loss(z, 1 - eps / 2) + (1 - eta) * _binary_loss(z, eps / 2)

            def expected_slope(z):  # eta * (per-sample slope at y = 1) + (1 - eta) * (at y = 0)
                return eta * (scipy.special.expit(z) - (1 - eps / 2)) + (1 - eta) * (scipy.special.expit(z) - eps / 2)

            claimed = float(binary_smoothed_probability(eta, eps))
            result = scipy.optimize.minimize_scalar(expected_loss, bracket=(-1, 1), method="brent", tol=1e-12)
            brent_errors.append(abs(float(scipy.special.expit(result.x)) - claimed))
            # Brent's function values locate the minimiser to about sqrt(machine eps); refine on the slope.
            root = scipy.optimize.brentq(expected_slope, result.x - 1, result.x + 1, xtol=1e-15)
            probability = float(scipy.special.expit(root))
            refined_errors.append(abs(probability - claimed))
            refined_errors.append(abs(float(binary_unsmoothed_probability(probability, eps)) - eta))
    return all_of(
        within(brent_errors, 1e-7, "Brent minimiser of the expected loss vs (1-eps) eta + eps/2"),
        within(refined_errors, 1e-12, "refined on the expected loss's slope, and the inverse"),
    )


# --- prior smoothing and PyTorch's class weights ----------------------------------------------


def _prior_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    rng = np.random.default_rng(context.seed)
    spreads = []
    for k in (3, 10, 100):
        prior = rng.dirichlet(np.ones(k))
        for eps in (0.1, 0.5):
            target = eps * prior
            target[0] += 1 - eps
            result = minimize_cross_entropy(target, seed=context.seed)
            spreads.append(float(np.ptp(result.logits - optimal_logits_for_target(target))))
    return within(spreads, 1e-9, "SciPy optimum vs optimal_logits_for_target((1-eps) e_y + eps pi), up to the shift")


def _weighted_target(k: int, eps: float, weights: np.ndarray, label: int = 0) -> np.ndarray:
    implied = weights * _uniform_target(k, eps, label)
    return implied / implied.sum()


def _weights_scipy(context: CheckContext) -> CheckResult:
    from lstheory.numeric import minimize_cross_entropy

    rng = np.random.default_rng(context.seed)
    errors = []
    for k in (3, 10):
        weights = rng.uniform(0.2, 5.0, size=k)
        for eps in (0.1, 0.3):
            result = minimize_cross_entropy(_weighted_target(k, eps, weights), seed=context.seed)
            expected = float(logit_gap(k, eps, convention="uniform")) + np.log(weights[0] / weights[1:])
            errors.append(float(np.max(np.abs(result.logits[0] - result.logits[1:] - expected))))
    return within(errors, GAP_TOLERANCE, "SciPy gaps vs log(1 + K(1-eps)/eps) + log(w_y / w_i)")


def _weights_torch(context: CheckContext) -> CheckResult:
    torch = _torch()
    rng = np.random.default_rng(context.seed)
    gradients = []
    for k in (3, 10, 100):
        weights = rng.uniform(0.2, 5.0, size=k)
        for eps in (0.1, 0.3):
            logits = np.log(_weighted_target(k, eps, weights))
            z = torch.tensor(logits[None, :], device=context.device, requires_grad=True)
            torch.nn.functional.cross_entropy(z, torch.tensor([0], device=context.device),
                                              weight=torch.tensor(weights, device=context.device),
                                              label_smoothing=eps).backward()
            gradients.append(float(z.grad.abs().max()))
    return within(gradients, 1e-14, f"torch weighted, smoothed CE gradient at the predicted optimum on {context.device}")


CLAIMS = (
    Claim(
        id="literature.szegedy_decomposition",
        statement="H(p_LS, q) = (1-eps) H(e_y, q) + eps H(u, q), and H(u, q) = KL(u || q) + log K.",
        source=SZEGEDY,
        status="verified",
        checks={"symbolic": _symbolic(derivations.szegedy_decomposition), "scipy": _szegedy_scipy, "torch": _szegedy_torch},
    ),
    Claim(
        id="literature.confidence_penalty",
        statement="The confidence penalty CE - beta H(q) has dH/dz_i = q_i(-log q_i - H(q)); its optimum solves "
        "q_i - p_i + beta q_i (log q_i + H(q)) = 0 (no closed form in general), and KL(q || u) = log K - H(q).",
        source=PEREYRA,
        status="verified",
        checks={"symbolic": _symbolic(derivations.pereyra_confidence_penalty, steps=[1, 2, 3]),
                "scipy": _pereyra_scipy, "torch": _pereyra_torch},
    ),
    Claim(
        id="literature.pereyra_sign",
        statement="Label smoothing adds +KL(u || q): H(p_LS, q) = (1-eps) [H(e_y, q) + eps/(1-eps) KL(u || q)] + eps log K; "
        "the confidence penalty is its reversed-KL counterpart.",
        source=f"{PEREYRA}.2",
        status="corrected",
        correction="Sec. 3.2 prints label smoothing as CE - KL(u || q); the sign of the KL term is a typo.",
        checks={"symbolic": _symbolic(derivations.pereyra_confidence_penalty, steps=[4, 5]), "scipy": _pereyra_sign_scipy},
    ),
    Claim(
        id="literature.skew_jensen_limits",
        statement="The skew-Jensen family J_a tends to KL(u || p) (label smoothing) as a -> 1 and to KL(p || u) "
        "(the confidence penalty) as a -> 0.",
        source=MEISTER,
        status="verified",
        checks={"symbolic": _symbolic(derivations.meister_skew_jensen, steps=[1, 2]), "scipy": _meister_scipy},
    ),
    Claim(
        id="literature.no_sparse_outputs",
        statement="Label smoothing forbids sparse outputs: KL(u || p) -> +inf as any p_i -> 0, and every optimum keeps "
        "every class's probability positive.",
        source=MEISTER,
        status="verified",
        checks={"symbolic": _symbolic(derivations.meister_skew_jensen, steps=[3]), "scipy": _sparse_scipy},
    ),
    Claim(
        id="literature.smearing_inverse",
        statement="The smearing matrix M = (1-alpha) I + (alpha/K) J has inverse I/(1-alpha) - alpha/((1-alpha) K) J: "
        "smoothing and backward loss correction carry the average-loss term with opposite signs.",
        source=LUKASIK,
        status="verified",
        checks={"symbolic": _symbolic(derivations.lukasik_smearing), "scipy": _lukasik_scipy, "torch": _lukasik_torch},
    ),
    Claim(
        id="literature.kd_as_smoothing",
        statement="At temperature 1, KD is cross-entropy against (1-alpha) e_y + alpha p_teacher; label smoothing is KD "
        "with a uniform teacher.",
        source=YUAN,
        status="verified",
        checks={"symbolic": _symbolic(derivations.yuan_distillation), "scipy": _yuan_scipy, "torch": _yuan_torch},
    ),
    Claim(
        id="literature.equivalent_smoothing",
        statement="The equivalent smoothing gamma = E[sum_k (1-y_k) p^t_k K/(K-1)] of a teacher at the label-smoothing "
        "optimum (T = 1) equals its alpha.",
        source=f"{MULLER}, sec. 4",
        status="verified",
        checks={"symbolic": _symbolic(derivations.muller_equivalent_smoothing), "scipy": _muller_scipy},
    ),
    Claim(
        id="literature.temperature",
        statement="Under temperature T, the optimum of H(p, softmax(z/T)) is T (log p + alpha): the gap scales by T, "
        "and the tempered confidence at the optimum is the target's.",
        source=f"{MULLER} (temperature scaling); Cover and Thomas 2006, Thm. 2.6.3 (the optimum is the target)",
        status="verified",
        checks={"symbolic": _symbolic(derivations.temperature_scaling), "scipy": _temperature_scipy,
                "torch": _temperature_torch},
    ),
    Claim(
        id="binary.optimal_logit",
        statement="Sigmoid cross-entropy against y(1-eps) + eps/2 is minimised by the logit +-log((2-eps)/eps).",
        source=BINARY,
        status="verified",
        checks={"symbolic": _symbolic(derivations.binary_smoothing, steps=[1, 2, 3]), "scipy": _binary_scipy,
                "torch": _binary_torch},
    ),
    Claim(
        id="binary.equals_two_class_softmax",
        statement="The binary optimal logit log((2-eps)/eps) equals the K = 2 uniform-convention softmax gap.",
        source=f"{BINARY}; docs/conventions.md",
        status="verified",
        checks={"symbolic": _symbolic(derivations.binary_smoothing, steps=[4]), "scipy": _binary_two_class_scipy,
                "torch": _binary_two_class_torch},
    ),
    Claim(
        id="binary.population_minimiser",
        statement="With y ~ Bernoulli(eta) the population minimiser is (1-eps) eta + eps/2 (squeezed toward 1/2), "
        "inverted by eta = (p - eps/2)/(1-eps).",
        source="Yamasaki and Tanaka 2023, arXiv 2305.08501",
        status="verified",
        checks={"symbolic": _symbolic(derivations.binary_smoothing, steps=[5, 6, 7]), "scipy": _population_scipy},
    ),
    Claim(
        id="prior.smoothing",
        statement="Smoothing toward a prior pi, target (1-eps) e_y + eps pi, is minimised by log((1-eps) e_y + eps pi) + alpha.",
        source="Cover and Thomas 2006, 'Elements of Information Theory', Thm. 2.6.3 (the general optimum), applied to a non-uniform prior",
        status="verified",
        checks={"symbolic": _symbolic(derivations.prior_smoothing, steps=[1, 2]), "scipy": _prior_scipy},
    ),
    Claim(
        id="prior.pytorch_class_weights",
        statement="PyTorch's class-weighted smoothing implies the target proportional to (w_y (1-eps+eps/K), w_i eps/K), "
        "a prior smoothing with pi proportional to w; its optimal gap is log(1 + K(1-eps)/eps) + log(w_y / w_i).",
        source=WEIGHTS,
        status="verified",
        checks={"symbolic": _symbolic(derivations.prior_smoothing, steps=[3, 4]), "scipy": _weights_scipy,
                "torch": _weights_torch},
    ),
)
