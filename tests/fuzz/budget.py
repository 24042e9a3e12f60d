"""How many examples each fuzz test draws: a share of the loaded Hypothesis profile's ``max_examples``.

``tests/conftest.py`` registers the profiles: ``lstheory`` (loaded by default: 100 examples, so a
share of 2 draws 200) and ``lstheory-slow`` (2500: thousands per test), selected with
``python -m pytest tests/fuzz --hypothesis-profile=lstheory-slow``.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from hypothesis import HealthCheck, settings


def fuzz_settings(share: float) -> settings:
    """``share`` times the profile's examples; no deadline (the machine is shared); slow draws allowed."""
    return settings(
        max_examples=max(1, round(settings.default.max_examples * share)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class DidNotReturn(Exception):
    """The call under :func:`returns_within` ran past its limit: a hang, reported as a failure."""


@contextlib.contextmanager
def returns_within(seconds: float, what: str):
    """Fail (``DidNotReturn``) if the block runs longer than ``seconds``: a hang guard for one example.

    pytest-timeout guards the whole test; this guards each example, so that Hypothesis can also
    replay a hanging example while it shrinks and still get a failure, not a second hang.  A
    SIGALRM timer on the main thread (where pytest runs tests); elsewhere, no guard.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise DidNotReturn(f"{what} did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
