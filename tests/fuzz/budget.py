"""How many examples each fuzz test draws: a share of the loaded Hypothesis profile's ``max_examples``.

``tests/conftest.py`` registers the profiles: ``lstheory`` (loaded by default: 100 examples, so a
share of 2 draws 200) and ``lstheory-slow`` (2500: thousands per test), selected with
``python -m pytest tests/fuzz --hypothesis-profile=lstheory-slow``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def fuzz_settings(share: float) -> settings:
    """``share`` times the profile's examples; no deadline (the machine is shared); slow draws allowed."""
    return settings(
        max_examples=max(1, round(settings.default.max_examples * share)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
