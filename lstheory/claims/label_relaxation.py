"""Label relaxation (Lienen and Hüllermeier 2021): a set of optimal predictions instead of one smoothed target."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special

from lstheory.claims._levels import symbolic_check
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import logit_gap
from lstheory.symbolic.label_relaxation import label_relaxation_minimisers

SOURCE = ("Lienen and Hüllermeier 2021, 'From Label Smoothing to Label Relaxation', AAAI 35(10), "
          "doi:10.1609/aaai.v35i10.17041 (the label relaxation loss and its closed form)")
ALPHAS = (0.05, 0.1, 0.3)



def relaxation_loss_by_projection(z: np.ndarray, alpha: float, label: int = 0) -> float:
    """KL from the projection of q on {p : p_y >= 1 - alpha} to q, written from the definition (0 inside the set)."""
    q = scipy.special.softmax(z)
    if q[label] >= 1 - alpha:
        return 0.0
    projected = alpha * q / (1 - q[label])
    projected[label] = 1 - alpha
    return float(np.sum(scipy.special.rel_entr(projected, q)))


def bernoulli_kl(q_label: float, alpha: float) -> float:
    return float(scipy.special.rel_entr(1 - alpha, q_label) + scipy.special.rel_entr(alpha, 1 - q_label))


def _loss_scipy(context: CheckContext) -> CheckResult:
    rng = np.random.default_rng(context.seed)
    errors, inside = [], []
    for k in (2, 3, 10, 100):
        for alpha in ALPHAS:
            for scale, lead in ((0.5, 0.0), (3.0, 0.0), (1.0, 8.0)):
                z = rng.normal(scale=scale, size=k)
                z[0] += lead  # some predictions inside the set
                q_label = float(scipy.special.softmax(z)[0])
                by_projection = relaxation_loss_by_projection(z, alpha)
                if q_label >= 1 - alpha:
                    inside.append(by_projection)
                else:
                    errors.append(abs(by_projection - bernoulli_kl(q_label, alpha)) / bernoulli_kl(q_label, alpha))
    return CheckResult(bool(errors) and max(errors) < 1e-12 and all(v == 0 for v in inside), max(errors),
                       f"KL(projection || q) vs the Bernoulli KL at {len(errors)} points outside the set (worst relative "
                       f"{max(errors):.2g}); exactly 0 at the {len(inside)} points inside")


def _minimisers_scipy(context: CheckContext) -> CheckResult:
    """L-BFGS from random starts: every run reaches zero loss, at different gaps, all at least the boundary gap."""
    rng = np.random.default_rng(context.seed)
    rows = []
    for k in (3, 10):
        for alpha in ALPHAS:
            boundary = float(logit_gap(k, alpha))  # log((K-1)(1-alpha)/alpha)
            gaps, losses = [], []
            for scale in (1.0, 4.0, 8.0):
                start = rng.normal(scale=scale, size=k)
                start[0] += scale  # some starts already inside the set, some outside
                found = scipy.optimize.minimize(relaxation_loss_by_projection, start, args=(alpha,), method="Nelder-Mead",
                                                options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
                z = found.x
                # The effective gap g with q_y = e^g/(e^g + K - 1): z_y - log mean_{j != y} exp(z_j).
                gaps.append(float(z[0] - scipy.special.logsumexp(z[1:]) + np.log(k - 1)))
                losses.append(found.fun)
            rows.append((boundary, gaps, losses))
    zero = max(max(losses) for _, _, losses in rows)
    above = all(min(gaps) >= boundary - 1e-3 for boundary, gaps, _ in rows)
    spread = min(max(gaps) - min(gaps) for _, gaps, _ in rows)
    return CheckResult(zero < 1e-10 and above and spread > 0.1, zero,
                       f"SciPy (Nelder-Mead, 3 starts for each K in (3, 10) and alpha in {ALPHAS}): every run reaches loss "
                       f"<= {zero:.2g} with the effective gap z_y - log mean exp(z_j) at or above log((K-1)(1-alpha)/alpha); the optimal gaps "
                       f"differ between starts by at least {spread:.2f} (a set, not a point)")


def _relaxation_loss_torch(logits, alpha: float):
    import torch

    q = torch.softmax(logits, dim=-1)
    q_label = q[..., 0]
    kl = (1 - alpha) * torch.log((1 - alpha) / q_label) + alpha * torch.log(alpha / (1 - q_label))
    return torch.where(q_label >= 1 - alpha, torch.zeros_like(kl), kl)


def _minimisers_torch(context: CheckContext) -> CheckResult:
    """Gradient descent from random starts on the Bernoulli-KL form: zero loss at many gaps; smoothing's loss at one."""
    import torch

    generator = torch.Generator().manual_seed(context.seed)
    k, alpha = 10, 0.1
    starts = (4 * torch.randn(64, k, generator=generator, dtype=torch.float64)).to(context.device)
    starts[:, 0] += torch.linspace(-5, 15, 64, dtype=torch.float64, device=context.device)
    z = starts.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([z], lr=4.0)
    for _ in range(400):
        optimizer.zero_grad()
        _relaxation_loss_torch(z, alpha).sum().backward()
        optimizer.step()
    with torch.no_grad():
        losses = _relaxation_loss_torch(z, alpha)
        confidence = torch.softmax(z, dim=-1)[:, 0]
    worst = float(losses.max())
    boundary = 1 - alpha
    inside = bool((confidence >= boundary - 1e-9).all())
    spread = float(confidence.max() - confidence.min())
    return CheckResult(worst < 1e-9 and inside and spread > 0.05, worst,
                       f"torch gradient descent from 64 starts (K = {k}, alpha = {alpha}) on {context.device}: loss <= "
                       f"{worst:.2g}, every confidence >= 1 - alpha, confidences spread over {spread:.3f} (no single optimum)")


CLAIMS = (
    Claim(
        id="label_relaxation.loss",
        statement="The label relaxation loss is 0 exactly when q_y >= 1 - alpha and otherwise the Bernoulli KL "
        "(1-alpha) log((1-alpha)/q_y) + alpha log(alpha/(1-q_y)), the KL from q's projection on {p : p_y >= 1 - alpha}.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(label_relaxation_minimisers, 1, 2, 3, 4), "scipy": _loss_scipy},
    ),
    Claim(
        id="label_relaxation.minimiser_set",
        statement="Label relaxation's minimisers form a set: on two-level logits every gap >= log((K-1)(1-alpha)/alpha) "
        "has zero loss (no bounded gap), while off_target smoothing with eps = alpha has that boundary as its only "
        "optimal gap.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(label_relaxation_minimisers, 5, 6, 7),
                "scipy": _minimisers_scipy, "torch": _minimisers_torch},
    ),
)
