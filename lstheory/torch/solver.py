r"""A batched Newton solver for the logits that minimise cross-entropy.

For a batch of target distributions ``p`` (rows of an ``(M, K)`` tensor) it
minimises, row by row and all rows at once,

    f(z) = s * logsumexp(z) - p . z,     s = sum_c p_c,

whose minimisers are ``z = log p + alpha`` (any ``alpha``).  It never uses
that formula: it is an independent numerical route, checked against the
closed forms of :mod:`lstheory.closed_form` and against SciPy.

Newton on the gauge-fixed problem
---------------------------------
``f`` is invariant under ``z -> z + alpha 1``; the gauge is fixed by pinning
the logit of a reference class ``r`` (the one of largest target mass) and
moving only the other ``K - 1``.  With ``q = softmax(z)`` the gradient is
``s q - p`` and the Hessian ``s (diag(q) - q q^T)``; on the free classes it is
``s (D - u u^T)`` with ``D = diag(q_free)``, ``u = q_free``, invertible
because ``1 - u^T D^{-1} u = q_r > 0``.  Sherman-Morrison,
``(D - u u^T)^{-1} = D^{-1} + D^{-1} u u^T D^{-1} / q_r``, turns the Newton
system into O(K) arithmetic, and it simplifies to

    Delta_c = p_c / (s q_c) - p_r / (s q_r)    (Delta_r = 0),

with the Newton decrement ``lambda^2 = -grad . Delta = s (sum_c p_c^2 / (s^2 q_c) - 1)``.

Globalisation: along the step, ``f''`` is ``s Var_q(Delta)``, and a shift of
at most ``rho`` in every logit changes each ``q_c`` by a factor within
``exp(+-2 rho)``; hence the full step decreases ``f`` by at least
``(1 - exp(2 rho) / 2) lambda^2`` whenever ``rho = max|Delta| <= 0.3``, and is
then taken without evaluating ``f`` (whose rounding error would swamp the
decrease near the optimum).  Longer steps are capped at ``max|t Delta| <= 4``
and backtracked (halving ``t``) until Armijo's condition holds, but never
below ``max|t Delta| = 0.3``: that length decreases ``f`` by the same bound
(``t < 1``), so it is accepted even where ``f`` is too flat for its rounded
values to show the decrease (targets with masses near ``1e-16``).  Each
iteration therefore decreases ``f``, and the loop needs no function values
once the steps are short.

Robustness
----------
Rows are scaled by their largest mass before they are normalised, so rows whose sum overflows
(``[1e308, 5e307, 1e308, 1e308]``) are solved like any other.  Where ``q_c`` is below the
smallest normal number (a far start, or masses near ``1e-300``), ``p_c / q_c`` is formed as
``exp(log p_c - log q_c)`` instead, which keeps its accuracy; where it overflows, the step keeps
its direction (``exp(L_c - M) - exp(L_r - M)`` with ``L = log(p / q)``, ``M = max L``) and
the line search caps its length.  Every loop is bounded (``max_iter`` steps, at most
``MAX_BACKTRACKS`` halvings per step), nothing divides ``inf`` by ``inf``, and a row is
reported converged only after a full Newton step of length ``<= tol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lstheory._validation import as_integer, as_real

__all__ = ["solve_optimal_logits", "OptimalLogitsSolution"]

FULL_STEP_RADIUS = 0.3
"""Newton steps with ``max|Delta| <= 0.3`` provably decrease ``f``; they skip the line search."""

TRIAL_STEP_RADIUS = 4.0
"""Longer steps are first tried at this infinity-norm length."""

ARMIJO_SLOPE = 1e-4

MAX_BACKTRACKS = 8
"""Halvings per line search at most: from ``4`` down to the safe ``0.3`` takes four."""

LONG_STEP_NORM = 1e30
"""Steps longer than this (far from the optimum, where ``p_c / q_c`` can overflow) are only used
for their direction: they are rescaled to this length, and the line search caps them at 4."""


@dataclass(frozen=True)
class OptimalLogitsSolution:
    """Result of :func:`solve_optimal_logits`.

    Attributes
    ----------
    logits : Tensor of shape ``(..., K)``
        The minimiser in the gauge ``logsumexp(logits) = 0``, i.e. the
        log-probabilities of the fitted softmax (add any constant per row).
    converged : bool Tensor of shape ``(...)``
        The last Newton step was a full one of infinity norm ``<= tol``.
    iterations : int64 Tensor of shape ``(...)``
        Newton steps taken by each row.
    loss : Tensor of shape ``(...)``
        ``-sum_c p_c log softmax(logits)_c`` at the solution.
    """

    logits: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    loss: torch.Tensor


def _check_target(target_probs) -> torch.Tensor:
    if not isinstance(target_probs, torch.Tensor):
        raise TypeError(f"target_probs must be a torch.Tensor of shape (M, K); got {type(target_probs).__name__}")
    if not target_probs.is_floating_point():
        raise TypeError(f"target_probs must have a floating dtype; got {target_probs.dtype}")
    if target_probs.dim() == 0 or target_probs.shape[-1] < 2:
        raise ValueError(
            f"target_probs must have shape (..., K) with K >= 2 classes on the last axis; got {tuple(target_probs.shape)}"
        )
    if target_probs.numel():
        good = torch.isfinite(target_probs) & (target_probs > 0)
        if not bool(good.all()):
            index = tuple(int(i) for i in torch.nonzero(~good)[0].tolist())
            raise ValueError(
                f"target_probs must be finite and > 0 everywhere (full support: a zero mass has no finite "
                f"optimal logit); got {float(target_probs[index])!r} at index {index}"
            )
    return target_probs


def _check_settings(max_iter, tol, dtype: torch.dtype) -> tuple[int, float]:
    max_iter = as_integer(max_iter, "max_iter", "an integer >= 0")
    if max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0; got {max_iter!r}")
    tol = _default_tol(dtype) if tol is None else as_real(tol, "tol", "a finite real number > 0")
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite real number > 0; got {tol!r}")
    return max_iter, tol


def _initial_logits(initial_logits, target_probs: torch.Tensor, p_all: torch.Tensor) -> torch.Tensor:
    """The start, ``(M, K)`` in the solver's dtype, shifted so that each row's largest logit is 0."""
    if initial_logits is None:
        return torch.zeros_like(p_all)
    if not isinstance(initial_logits, torch.Tensor) or initial_logits.shape != target_probs.shape:
        shape = tuple(initial_logits.shape) if isinstance(initial_logits, torch.Tensor) else type(initial_logits).__name__
        raise ValueError(
            f"initial_logits must be a tensor of the shape of target_probs {tuple(target_probs.shape)}; got {shape}"
        )
    if not initial_logits.is_floating_point():
        raise TypeError(f"initial_logits must have a floating dtype; got {initial_logits.dtype}")
    z = initial_logits.detach().reshape(p_all.shape).to(device=p_all.device, dtype=p_all.dtype)
    if not bool(torch.isfinite(z).all()):
        raise ValueError("initial_logits must be finite")
    if z.numel() == 0:
        return z.clone()
    top = z.amax(1, keepdim=True)
    shifted = z - top  # the gauge: softmax is unchanged
    if not bool(torch.isfinite(shifted).all()):
        raise ValueError(
            f"initial_logits must have rows whose spread max - min is finite in {p_all.dtype}; got a row "
            f"from {float(z.amin()):.3g} to {float(z.amax()):.3g}"
        )
    return shifted


def _normalised_rows(target_probs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``p / sum(p)``, scaled by their largest mass first where the plain sum would overflow."""
    p = target_probs.detach().reshape(-1, target_probs.shape[-1]).to(dtype)
    total = p.sum(1, keepdim=True)
    overflow = torch.isinf(total)
    if bool(overflow.any()):
        scaled = p / p.amax(1, keepdim=True)
        total = torch.where(overflow, scaled.sum(1, keepdim=True), total)
        p = torch.where(overflow, scaled, p)
    return p / total


def _default_tol(dtype: torch.dtype) -> float:
    return math.sqrt(torch.finfo(dtype).eps)


def _softmax_into(z: torch.Tensor, q: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Write ``softmax(z)`` into ``q`` (rows); return ``logsumexp(z)`` of shape ``(M, 1)``.

    ``logsumexp = m + log1p((e_r - 1) + sum_{c != r} e_c)``, ``e = exp(z - m)``,
    ``m = max(z)``, ``r`` the reference class.  Near the optimum ``r`` holds the
    largest logit, ``e_r = 1`` exactly, and the sum that leaves it out keeps its
    relative accuracy where ``log(sum_c e_c)`` would round the small terms away.
    """
    shift = z.amax(1, keepdim=True)
    torch.sub(z, shift, out=q)
    q.exp_()
    e_reference = q.gather(1, reference)
    q.scatter_(1, reference, 0.0)
    rest = q.sum(1, keepdim=True)
    denominator = rest + e_reference
    q.scatter_(1, reference, e_reference)
    q.div_(denominator)
    return shift.add_(torch.log1p(rest + (e_reference - 1.0)))


class _Rows:
    """The rows still iterating (the working set) and their Newton state.

    ``p`` are the normalised target rows, ``z`` the logits (the reference logit, that of the
    largest mass, never moves: it is the gauge), ``q = softmax(z)`` and ``lse = logsumexp(z)``.
    """

    def __init__(self, p: torch.Tensor, z: torch.Tensor):
        self.index = torch.arange(p.shape[0], device=p.device)
        self.p, self.z = p, z.clone()
        with torch.no_grad():
            self.log_p = torch.log(p)
        self.reference = p.argmax(1, keepdim=True)
        self.q = torch.empty_like(self.z)
        self.lse = _softmax_into(self.z, self.q, self.reference)
        self.finished = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)  # converged
        self.failed = torch.zeros_like(self.finished)  # stopped on a step that is not finite
        self.f = None  # the objective at z, where the last iteration computed it

    def _step_buffer(self) -> torch.Tensor:
        if getattr(self, "_step", None) is None or self._step.shape != self.z.shape:
            self._step = torch.empty_like(self.z)
        return self._step

    def keep(self, keep: torch.Tensor) -> None:
        """Drop the rows where ``keep`` is false."""
        for name in ("index", "p", "z", "log_p", "reference", "q", "lse", "finished", "failed"):
            setattr(self, name, getattr(self, name)[keep])
        self.f = None if self.f is None else self.f[keep]

    def objective(self, rows=slice(None)) -> torch.Tensor:
        """``f = logsumexp(z) - p . z`` per row (the target normalised: ``f`` is the loss over ``sum p``)."""
        return self.lse[rows].squeeze(1) - torch.linalg.vecdot(self.p[rows], self.z[rows])

    def newton_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``Delta_c = p_c / q_c - p_r / q_r`` and its infinity norm, finite in every row.

        Rows where some ``q_c < 1 / LONG_STEP_NORM`` (``z_c - lse`` below its log) take
        :meth:`_far_step` instead: only there can ``p_c / q_c`` lose accuracy, overflow or make
        a step longer than :data:`LONG_STEP_NORM`.
        """
        step = torch.div(self.p, self.q, out=self._step_buffer())  # no fresh (N, K) memory per step
        step.sub_(step.gather(1, self.reference))
        far = torch.nonzero(self.z.amin(1) - self.lse.squeeze(1) < -math.log(LONG_STEP_NORM)).squeeze(1)
        if far.numel():
            step[far] = self._far_step(far)
        norm = torch.maximum(step.amax(1), step.amin(1).neg_())  # max_c |Delta_c|
        return step, norm

    def _far_step(self, rows: torch.Tensor) -> torch.Tensor:
        """The Newton step of ``rows``, finite and at most :data:`LONG_STEP_NORM` long.

        ``p_c / q_c`` is ``exp(log p_c - log q_c)`` where ``q_c`` is below the smallest normal
        number (subnormal or 0), which keeps its accuracy.  Where that overflows, the step keeps
        its direction, ``exp(L_c - M) - exp(L_r - M)`` (``L = log(p / q)``, ``M = max L``), at
        length about :data:`LONG_STEP_NORM` (``|direction| <= 1`` and it is about 1 somewhere:
        some class has ``p_c <= q_c``, ``L_c <= 0 << M``); a longer finite step is rescaled to
        that length (the line search caps it anyway: only its direction matters).
        """
        q, reference = self.q[rows], self.reference[rows]
        log_ratio = self.log_p[rows] - (self.z[rows] - self.lse[rows])
        ratio = torch.where(q < torch.finfo(q.dtype).tiny, torch.exp(log_ratio), self.p[rows] / q)
        step = ratio - ratio.gather(1, reference)
        overflow = ~torch.isfinite(step).all(1)
        if bool(overflow.any()):
            direction = torch.exp(log_ratio[overflow] - log_ratio[overflow].amax(1, keepdim=True))
            step[overflow] = (direction - direction.gather(1, reference[overflow])) * LONG_STEP_NORM
        norm = torch.maximum(step.amax(1, keepdim=True), step.amin(1, keepdim=True).neg())
        return torch.where(norm > LONG_STEP_NORM, step * (LONG_STEP_NORM / norm), step)

    def move(self, step: torch.Tensor, t: torch.Tensor, rows=None) -> None:
        """``z += t Delta`` in ``rows`` (default: all, in place), with ``q`` and ``lse`` updated."""
        if rows is None:
            self.z.addcmul_(step, t.unsqueeze(1))
            self.lse = _softmax_into(self.z, self.q, self.reference)
            return
        z = self.z[rows].addcmul_(step, t.unsqueeze(1))
        q = torch.empty_like(z)
        lse = _softmax_into(z, q, self.reference[rows])
        self.z[rows], self.q[rows], self.lse[rows] = z, q, lse


def _damped_newton_iteration(rows: _Rows, tol: float) -> None:
    """One Newton step in every unfinished row, damped where it is long.

    A row whose step is not finite fails (it stops, not converged); with finite inputs this
    does not happen, it only guards the loop against running on NaN.
    """
    step, norm = rows.newton_step()
    finite = torch.isfinite(norm)
    full = norm <= FULL_STEP_RADIUS
    moving = finite & ~(rows.finished | rows.failed)
    t = torch.where(full, torch.ones_like(norm), (TRIAL_STEP_RADIUS / norm).clamp(max=1.0))
    t = torch.where(moving, t, torch.zeros_like(t))
    search = moving & ~full  # rows whose step is long: Armijo line search
    any_search, any_failure = torch.stack((search.any(), ~finite.all())).tolist()  # one device sync
    if any_failure:
        rows.failed |= ~finite
        step = torch.where(finite.unsqueeze(1), step, torch.zeros_like(step))  # no 0 * NaN into z
    if any_search:
        _line_search(rows, step, norm, t, search)
    else:
        rows.move(step, t)
        rows.f = None
    rows.finished |= full & moving & (norm <= tol)


def _line_search(rows: _Rows, step, norm, t, search) -> None:
    """Move by ``t Delta``; halve ``t`` in the ``search`` rows until Armijo holds or ``t`` is safe."""
    f_start = rows.objective() if rows.f is None else rows.f
    # the decrease predicted per unit t: -grad f . Delta, grad f = q - p (normalised target)
    decrement = torch.linalg.vecdot(rows.p, step) - torch.linalg.vecdot(rows.q, step)
    t_safe = FULL_STEP_RADIUS / norm  # provably decreasing (module docstring)
    rows.move(step, t)
    rows.f = f = rows.objective()
    accepted = ~search | (f <= f_start - ARMIJO_SLOPE * t * decrement) | (t <= t_safe)
    for _ in range(MAX_BACKTRACKS):
        retry = torch.nonzero(~accepted).squeeze(1)
        if retry.numel() == 0:
            return
        # Halve, but never below the safe length: f may be too flat to judge there.
        t_old = t[retry]
        t_new = torch.maximum(t_old * 0.5, t_safe[retry])
        t[retry] = t_new
        rows.move(step[retry], t_new - t_old, retry)
        f_retry = f[retry] = rows.objective(rows=retry)
        accepted[retry] = (f_retry <= f_start[retry] - ARMIJO_SLOPE * t_new * decrement[retry]) | (
            t_new <= t_safe[retry]
        )


def solve_optimal_logits(
    target_probs: torch.Tensor,
    *,
    max_iter: int = 100,
    tol: float | None = None,
    initial_logits: torch.Tensor | None = None,
) -> OptimalLogitsSolution:
    r"""Minimise cross-entropy against each row of ``target_probs``, all rows at once.

    Formula: for each row ``p`` (``K`` classes), find ``z`` minimising
    ``f(z) = -sum_c p_c log softmax(z)_c``; the exact minimiser is
    ``log p + alpha``, which the solver does not use.  Each iteration is a
    Newton step on the gauge-fixed problem, ``Delta_c = p_c / (s q_c) -
    p_r / (s q_r)`` (Sherman-Morrison on ``diag(q) - q q^T``; see the module
    docstring), O(K) per row, damped by a line search while it is long.

    Parameters
    ----------
    target_probs : Tensor of shape ``(M, K)`` or ``(..., K)``
        Target masses, finite and ``> 0`` (full support), any device.  Rows
        need not sum to 1 (``s = sum_c p_c`` scales ``f``, not its
        minimiser); their sum may even overflow (rows are scaled by their
        largest mass first).  float64 and float32 are solved in their own
        dtype; float16 and bfloat16 are solved in float32.
    max_iter : int
        A hard cap: at most this many Newton steps per row (each with at most
        ``MAX_BACKTRACKS`` halvings of its length); the solver always
        returns, a row not converged by then with ``converged = False``.
    tol : float, optional
        A row has converged when it takes a full Newton step of infinity
        norm ``<= tol`` (the error left after it is of order ``tol**2``).
        Default ``sqrt(finfo(dtype).eps)``: ``1.5e-8`` in float64.
    initial_logits : Tensor of the shape of ``target_probs``, optional
        Starting point, finite, each row's spread ``max - min`` finite;
        default all zeros (uniform softmax).  A start far from the optimum
        is approached at most 4 per step in every logit (a start 1000 away
        needs about 250 steps: raise ``max_iter``).

    Returns
    -------
    OptimalLogitsSolution
        ``.logits`` in the gauge ``logsumexp = 0``, ``.converged``,
        ``.iterations`` and ``.loss``, with the batch shape of the input.
        ``.converged`` is true only after a full Newton step of length
        ``<= tol``, computed accurately also where ``q_c`` underflows; rows
        it cannot represent (a mass below the smallest float after
        normalisation, ``p_c / sum(p) = 0``) never converge.

    Accuracy: in float64, from the zero start, every logit gap ``z_i - z_j``
    is within about ``1e-14`` of ``log(p_i / p_j)`` for ``K <= 10**4``
    (tested at ``1e-12`` against :func:`lstheory.closed_form.logit_gap`).
    The step count grows with the spread of the target, roughly 2.3 steps
    per decade of ``max(p) / min(p)``: about 1 to 15 steps when every mass
    is within a factor ``1e4`` of the largest, but near-one-hot rows take
    more (smoothed one-hot targets, ``K`` from 2 to ``10**4``: 18 to 19
    steps at ``eps = 1e-6``, 31 to 33 at ``eps = 1e-12``, about 40 at
    ``eps = 1e-15``), well within the default ``max_iter=100``; masses
    down to ``1e-300`` take about 700 steps.

    References: Boyd and Vandenberghe, "Convex Optimization", sec. 9.5
    (Newton's method, backtracking line search); Sherman and Morrison, Ann.
    Math. Statist. 21 (1950) 124.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]], dtype=torch.float64)
    >>> solution = solve_optimal_logits(p)
    >>> bool(solution.converged.all())
    True
    >>> gap = solution.logits[0, 0] - solution.logits[0, 1]
    >>> print(f"{gap.item():.12f}")
    2.890371757896
    >>> print(f"{torch.log(p[0, 0] / p[0, 1]).item():.12f}")
    2.890371757896
    """
    target_probs = _check_target(target_probs)
    dtype = torch.float32 if target_probs.dtype in (torch.float16, torch.bfloat16) else target_probs.dtype
    max_iter, tol = _check_settings(max_iter, tol, dtype)
    batch_shape = tuple(target_probs.shape[:-1])
    p_all = _normalised_rows(target_probs, dtype)
    z_all = _initial_logits(initial_logits, target_probs, p_all)
    num_rows = p_all.shape[0]
    iterations = torch.zeros(num_rows, dtype=torch.int64, device=p_all.device)
    converged = torch.zeros(num_rows, dtype=torch.bool, device=p_all.device)
    rows = _Rows(p_all, z_all)
    for _ in range(max_iter):
        if rows.index.numel() == 0:
            break
        iterations[rows.index[~(rows.finished | rows.failed)]] += 1
        _damped_newton_iteration(rows, tol)
        done = rows.finished | rows.failed
        finished = int(done.sum())  # retire rows once a quarter of the working set is done
        if finished and (finished == done.numel() or 4 * finished >= done.numel()):
            z_all[rows.index[done]] = rows.z[done]
            converged[rows.index[rows.finished]] = True
            rows.keep(~done)
    z_all[rows.index] = rows.z
    converged[rows.index[rows.finished]] = True
    log_q = z_all - torch.logsumexp(z_all, dim=1, keepdim=True)
    p_given = target_probs.detach().reshape(-1, target_probs.shape[-1]).to(dtype)
    loss = -torch.linalg.vecdot(p_given, log_q)
    return OptimalLogitsSolution(
        logits=log_q.reshape(target_probs.shape),
        converged=converged.reshape(batch_shape),
        iterations=iterations.reshape(batch_shape),
        loss=loss.reshape(batch_shape),
    )
