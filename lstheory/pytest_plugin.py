"""pytest plugin (entry point ``pytest11``) exposing lstheory's fixtures.

Installed with lstheory, so any test suite can ask for the fixture
``lstheory_check``::

    def test_my_loss_is_label_smoothing(lstheory_check):
        lstheory_check(my_loss, num_classes=10, eps=0.1, convention="uniform")

    def test_what_my_loss_does(lstheory_check):
        report = lstheory_check.infer(my_loss, num_classes=10)
        assert report.eps_uniform == pytest.approx(0.1)

A failure is an ``AssertionError`` naming the failed check and the likely
cause (see :func:`lstheory.testing.assert_loss_matches_theory`).  Each report
is also recorded in the test's ``user_properties`` (shown in JUnit XML).
The plugin imports nothing heavy until the fixture is used.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


class LabelSmoothingCheck:
    """The object the ``lstheory_check`` fixture returns.

    Calling it is :func:`lstheory.testing.assert_loss_matches_theory`;
    :meth:`infer` is :func:`lstheory.testing.infer_smoothing`.  Both return the
    :class:`~lstheory.testing.SmoothingReport` and record it on the test.
    """

    def __init__(self, user_properties: list | None = None, seed: int = 0):
        self.user_properties = [] if user_properties is None else user_properties
        self.seed = seed
        self.reports: list = []

    def __call__(
        self,
        loss_fn: Callable[..., Any],
        num_classes: int,
        eps: float,
        *,
        convention: str = "off_target",
        rtol: float | None = None,
        ignore_index: int | None = -100,
        smooth_padding_class: bool = True,
        inputs: str = "logits",
        targets: str = "index",
        argument_order: str = "logits_first",
        layout: str = "NK",
    ):
        """Assert that ``loss_fn`` is label smoothing with ``eps`` in ``convention``; return the report.

        The keywords are :func:`~lstheory.testing.assert_loss_matches_theory`'s:
        padding (``ignore_index``, ``smooth_padding_class``) and how the loss
        is called (``inputs``, ``targets``, ``argument_order``, ``layout``).
        """
        __tracebackhide__ = True
        from lstheory.testing import assert_loss_matches_theory

        report = assert_loss_matches_theory(
            loss_fn, num_classes, eps, convention=convention, rtol=rtol, ignore_index=ignore_index,
            smooth_padding_class=smooth_padding_class, seed=self.seed, inputs=inputs, targets=targets,
            argument_order=argument_order, layout=layout,
        )
        return self._record(report)

    def infer(
        self,
        loss_fn: Callable[..., Any],
        num_classes: int,
        *,
        eps: float | None = None,
        ignore_index: int | None = -100,
        inputs: str = "logits",
        targets: str = "index",
        argument_order: str = "logits_first",
        layout: str = "NK",
    ):
        """The :class:`~lstheory.testing.SmoothingReport` of ``loss_fn`` (asserts nothing; keywords as for calling)."""
        from lstheory.testing import infer_smoothing

        report = infer_smoothing(
            loss_fn, num_classes, eps=eps, ignore_index=ignore_index, seed=self.seed, inputs=inputs, targets=targets,
            argument_order=argument_order, layout=layout,
        )
        return self._record(report)

    def _record(self, report):
        self.reports.append(report)
        self.user_properties.append(("lstheory_report", str(report)))
        return report


@pytest.fixture
def lstheory_check(request: pytest.FixtureRequest) -> LabelSmoothingCheck:
    """Check a label-smoothing loss against the theory: ``lstheory_check(loss_fn, K, eps, convention=...)``.

    Returns a :class:`LabelSmoothingCheck`; ``lstheory_check.infer(loss_fn, K)``
    reports what a loss does without asserting.
    """
    return LabelSmoothingCheck(request.node.user_properties)
