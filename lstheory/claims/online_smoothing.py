"""Online label smoothing, idealised: the off-target mass decays geometrically to the one-hot fixed point."""

from __future__ import annotations

import numpy as np
import scipy.special

from lstheory.claims._levels import symbolic_check, within
from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.numeric import smoothed_target_vector
from lstheory.symbolic.online_smoothing import online_smoothing_fixed_point

SOURCE = "Zhang et al. 2021, 'Delving Deep into Label Smoothing', IEEE TIP, arXiv 2011.12562 (the online label smoothing method)"
ALPHAS = (0.1, 0.5, 0.9)
EPOCHS = 8
START_EPS = 0.3  # S^0: a smoothed target (off_target), so the initial off-target mass is 0.3


def _relative_errors(history: list[np.ndarray], alpha: float) -> list[float]:
    """``|(1 - S^t_y) / ((1 - alpha)^t (1 - S^0_y)) - 1|`` for t = 1..EPOCHS (the off-target mass summed, no cancellation)."""
    start_mass = history[0][1:].sum()
    return [abs(s[1:].sum() / ((1 - alpha) ** t * start_mass) - 1) for t, s in enumerate(history) if t > 0]


def _scipy(context: CheckContext) -> CheckResult:
    """Each epoch, the 'model' is SciPy's exact minimiser of CE against alpha e_y + (1 - alpha) S^{t-1}."""
    from lstheory.numeric import minimize_cross_entropy

    errors = []
    for k in (3, 10):
        for alpha in ALPHAS:
            history = [smoothed_target_vector(k, START_EPS)]
            for _ in range(EPOCHS):
                target = (1 - alpha) * history[-1]
                target[0] += alpha
                history.append(scipy.special.softmax(minimize_cross_entropy(target, seed=context.seed).logits))
            errors += _relative_errors(history, alpha)
    return within(errors, 1e-10, f"off-target mass after t = 1..{EPOCHS} idealised epochs (SciPy fits each epoch's target) "
                  "vs (1 - alpha)^t times the initial mass, relative")


def _torch(context: CheckContext) -> CheckResult:
    """The same recursion with lstheory.torch's batched Newton solver, every (K, alpha) in one batch per K."""
    import torch

    from lstheory.torch import solve_optimal_logits

    errors = []
    for k in (3, 10, 1000):
        alphas = torch.tensor(ALPHAS, dtype=torch.float64, device=context.device)[:, None]
        state = torch.as_tensor(smoothed_target_vector(k, START_EPS), device=context.device).expand(len(ALPHAS), k)
        history = [state.cpu().numpy()]
        for _ in range(EPOCHS):
            target = (1 - alphas) * state
            target[:, 0] += alphas[:, 0]
            state = torch.softmax(solve_optimal_logits(target, tol=1e-13).logits, dim=1)
            history.append(state.cpu().numpy())
        for i, alpha in enumerate(ALPHAS):
            errors += _relative_errors([h[i] for h in history], alpha)
    return within(errors, 1e-10, f"torch: off-target mass after t idealised epochs (solve_optimal_logits fits each epoch) vs "
                  f"(1 - alpha)^t times the initial mass, relative, on {context.device}")


CLAIMS = (
    Claim(
        id="online_smoothing.decay",
        statement="Idealised online label smoothing (the model fits alpha e_y + (1-alpha) S^{t-1} exactly each epoch) "
        "has S^t = e_y + (1-alpha)^t (S^0 - e_y): the off-target mass decays as (1-alpha)^t and the fixed point is the "
        "one-hot target.",
        source=SOURCE,
        status="verified",
        checks={"symbolic": symbolic_check(online_smoothing_fixed_point), "scipy": _scipy, "torch": _torch},
    ),
)
