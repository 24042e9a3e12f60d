"""Batched PyTorch layer: label-smoothed cross-entropy, the optimum, a batched solver.

torch is imported only in this package and below it.  Every value that has a
closed form comes from :mod:`lstheory.closed_form`; this package adds the
batched, device-resident forms and the memory-lean loss.

* :func:`label_smoothed_cross_entropy` -- both conventions; ``"uniform"``
  equals ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` and
  ``"off_target"`` equals fairseq's ``label_smoothed_nll_loss``.
* :func:`linear_label_smoothed_cross_entropy` -- the same loss of a linear
  head ``F.linear(hidden, classifier, bias)``, computed over chunks of rows
  so that the ``(N, K)`` logits never exist.
* :func:`optimal_logits`, :func:`logit_gap` -- the closed-form optimum as
  tensors of any batch shape, dtype and device.
* :func:`solve_optimal_logits` -- Newton's method for a batch of targets, an
  independent numerical check of the closed forms.
* :func:`vocab_parallel_label_smoothed_cross_entropy` -- the same loss over a
  vocabulary split across the ranks of a ``torch.distributed`` group (tensor
  parallelism), exact at every world size.
"""

from lstheory.torch.linear_loss import linear_label_smoothed_cross_entropy
from lstheory.torch.loss import label_smoothed_cross_entropy, smoothing_coefficients
from lstheory.torch.optimum import logit_gap, optimal_logits
from lstheory.torch.solver import OptimalLogitsSolution, solve_optimal_logits
from lstheory.torch.vocab_parallel import vocab_parallel_label_smoothed_cross_entropy, vocab_shard_bounds

__all__ = [
    "OptimalLogitsSolution",
    "label_smoothed_cross_entropy",
    "linear_label_smoothed_cross_entropy",
    "logit_gap",
    "optimal_logits",
    "smoothing_coefficients",
    "solve_optimal_logits",
    "vocab_parallel_label_smoothed_cross_entropy",
    "vocab_shard_bounds",
]
