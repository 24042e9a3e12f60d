"""Check that a loss implementation does what label-smoothing theory says.

* :func:`infer_smoothing` reads the target any ``loss_fn(logits, labels)``
  implies and reports it (:class:`SmoothingReport`);
* :func:`assert_loss_matches_theory` asserts it equals a convention's smoothed
  target, that the loss is minimal at ``optimal_logits`` and that padding and
  batches are handled, with a message naming the likely cause otherwise.

The pytest fixture ``lstheory_check`` (:mod:`lstheory.pytest_plugin`) and the
Hypothesis strategies in :mod:`lstheory.strategies` build on these.
"""

from lstheory.testing.assertions import assert_loss_matches_theory
from lstheory.testing.inference import SmoothingReport, WeightedSmoothing, infer_smoothing
from lstheory.testing.vocab_parallel import VocabParallelReport, assert_vocab_parallel_loss_matches_theory

__all__ = ["SmoothingReport", "WeightedSmoothing", "assert_loss_matches_theory", "infer_smoothing"]
__all__ += ["VocabParallelReport", "assert_vocab_parallel_loss_matches_theory"]
