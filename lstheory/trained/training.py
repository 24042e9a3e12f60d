"""Small multilayer perceptrons and full-batch training, seeded and single-threaded."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch's generator and run on one thread; the caller's RNG state and thread count are restored."""
    import torch

    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def multilayer_perceptron(widths: Sequence[int], seed: int):
    """``Linear -> ReLU -> ... -> ReLU -> Linear`` in float64, PyTorch's default initialisation from ``seed``.

    ``widths`` lists the layer sizes, input first; the output layer has no activation.
    """
    import torch

    layers: list = []
    with deterministic(seed):
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [torch.nn.Linear(width_in, width_out, dtype=torch.float64), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def train_full_batch(
    parameters,
    objective: Callable[[], object],
    *,
    steps: int,
    learning_rate: float,
    monitor: Callable[[int], None] | None = None,
    monitor_every: int = 0,
) -> float:
    """Full-batch Adam on ``objective()`` for ``steps`` updates; returns the final objective.

    ``monitor(step)`` is called after every ``monitor_every`` updates (and after the last).
    """
    import torch

    parameters = list(parameters)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    with deterministic(0):
        for step in range(1, steps + 1):
            optimizer.zero_grad()
            value = objective()
            value.backward()
            optimizer.step()
            if monitor is not None and (step == steps or (monitor_every and step % monitor_every == 0)):
                monitor(step)
        with torch.no_grad():
            return float(objective())


def polish_lbfgs(parameters, objective: Callable[[], object], *, iterations: int) -> float:
    """Full-batch L-BFGS (strong Wolfe line search) after Adam, to reach the optimum of a smooth objective."""
    import torch

    parameters = list(parameters)
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=iterations, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = objective()
        value.backward()
        return value

    with deterministic(0):
        optimizer.step(closure)
        with torch.no_grad():
            return float(objective())
